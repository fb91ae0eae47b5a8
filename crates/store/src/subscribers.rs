//! Mailing-list subscribers (`POST /api/v1/subscriber/create/`), one per email address,
//! case-insensitively.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::StoreError;

/// A subscriber.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscriber {
    /// Primary key.
    pub id: i64,
    /// Email as first given.
    pub email: String,
    /// Name.
    pub name: String,
    /// Where they signed up (`website` by default).
    pub source: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Subscribes `email`; returns the subscriber and whether it was created now. A second call
/// with the same address (any case) returns the first subscriber unchanged: the unique index
/// on `lower(email)` decides, so concurrent sign-ups cannot make duplicates.
pub async fn subscribe(
    pool: &PgPool,
    email: &str,
    name: &str,
    source: &str,
) -> Result<(Subscriber, bool), StoreError> {
    let created = sqlx::query_as!(
        Subscriber,
        "INSERT INTO subscribers (email, name, source) VALUES ($1, $2, $3) \
         ON CONFLICT ((lower(email))) DO NOTHING RETURNING id, email, name, source, created_at",
        email,
        name,
        source
    )
    .fetch_optional(pool)
    .await?;
    if let Some(s) = created {
        return Ok((s, true));
    }
    let existing = sqlx::query_as!(
        Subscriber,
        "SELECT id, email, name, source, created_at FROM subscribers WHERE lower(email) = lower($1)",
        email
    )
    .fetch_one(pool)
    .await?;
    Ok((existing, false))
}

/// Number of subscribers (tests and reports).
pub async fn count(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM subscribers"#)
            .fetch_one(pool)
            .await?,
    )
}
