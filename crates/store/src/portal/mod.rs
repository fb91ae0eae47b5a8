//! The producer portal's storage, one module per resource (as the API's
//! `routes/portal/`): a producer's shows, their ticket tiers, promo codes and page design,
//! orders and attendees, and the producer's Stripe Connect account id.
//!
//! Every query is scoped by `producer_id` in SQL itself (a join or a `WHERE` on
//! `shows.producer_id`), never by a check in the caller: another producer's object is simply
//! not found, which the API turns into a 404 that does not reveal that it exists.
//! Soft-deleted shows are invisible here too, except in the show list with `status=deleted`.

pub mod orders;
pub mod page_design;
pub mod promo_codes;
pub mod shows;
pub mod stripe;
pub mod tiers;

use pique_core::query::PageRequest;
use sqlx::PgPool;

use crate::StoreError;

/// Result of a write that can be refused for a reason the client must hear about.
#[derive(Debug)]
pub enum Outcome<T> {
    /// Written; the new state.
    Done(T),
    /// No such object for this producer.
    NotFound,
    /// A field's value is not acceptable (400 `{field: [message]}`).
    Invalid {
        /// Field name.
        field: &'static str,
        /// Message.
        message: String,
    },
    /// The object's state forbids the change (409).
    Conflict(String),
}

impl<T> Outcome<T> {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Outcome::Invalid {
            field,
            message: message.into(),
        }
    }

    /// `Done` with the object, or `NotFound`.
    fn found(object: Option<T>) -> Self {
        object.map_or(Outcome::NotFound, Outcome::Done)
    }
}

/// One page of rows and the total count.
#[derive(Debug)]
pub struct Page<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// Rows matching the filters across all pages.
    pub count: i64,
}

/// `LIMIT` and `OFFSET` of a page; no page is every row (`LIMIT NULL`).
fn limit_offset(page: Option<PageRequest>) -> (Option<i64>, i64) {
    page.map_or((None, 0), |p| (Some(i64::from(p.size)), p.offset()))
}

/// An `ILIKE` pattern matching `text` anywhere: `%` and `_` in user text match themselves.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Whether `show_id` is one of the producer's live (not deleted) shows.
pub async fn owns_show(pool: &PgPool, producer_id: i64, show_id: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM shows WHERE id = $1 AND producer_id = $2 AND NOT is_deleted) AS "owns!""#,
        show_id,
        producer_id
    )
    .fetch_one(pool)
    .await?)
}
