//! Door check-in: per-show links with a secret token (door staff need no producer login),
//! and admitting attendees by the UUID printed in their ticket's QR code.
//!
//! Admission is one conditional `UPDATE ... WHERE checked_in_at IS NULL`: two phones scanning
//! the same ticket at the same instant both run it, PostgreSQL serialises them on the row
//! lock, the second re-evaluates the condition and updates nothing. Exactly one is admitted.

use chrono::{DateTime, Utc};
use pique_core::OrderStatus;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{StoreError, auth::new_token_key};

/// A check-in link.
#[derive(Debug, Clone, Serialize)]
pub struct CheckinLink {
    /// Primary key.
    pub id: i64,
    /// Show id.
    pub show: i64,
    /// The secret the check-in app sends.
    pub token: String,
    /// After this the link no longer admits anyone.
    pub expires_at: DateTime<Utc>,
    /// Set when revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Creates a link for one of the producer's live shows; `None` if the show is not theirs.
pub async fn create_link(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    created_by: i64,
    expires_at: DateTime<Utc>,
) -> Result<Option<CheckinLink>, StoreError> {
    // 40 hex characters of OS randomness, like an auth token: unguessable, so the link itself
    // is the credential.
    let token = new_token_key();
    Ok(sqlx::query_as!(
        CheckinLink,
        "INSERT INTO checkin_links (show_id, token, created_by, expires_at) \
         SELECT s.id, $3, $4, $5 FROM shows s WHERE s.id = $2 AND s.producer_id = $1 AND NOT s.is_deleted \
         RETURNING id, show_id AS show, token, expires_at, revoked_at, created_at",
        producer_id,
        show_id,
        token,
        created_by,
        expires_at
    )
    .fetch_optional(pool)
    .await?)
}

/// Links of one of the producer's shows, newest first; `None` if the show is not theirs.
pub async fn list_links(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
) -> Result<Option<Vec<CheckinLink>>, StoreError> {
    if !crate::portal::owns_show(pool, producer_id, show_id).await? {
        return Ok(None);
    }
    Ok(Some(
        sqlx::query_as!(
            CheckinLink,
            "SELECT id, show_id AS show, token, expires_at, revoked_at, created_at \
               FROM checkin_links WHERE show_id = $1 ORDER BY id DESC",
            show_id
        )
        .fetch_all(pool)
        .await?,
    ))
}

/// Revokes one link (`link_id`) or every active link of the show (`None`). Returns how many
/// were revoked, or `None` if the show (or that link) is not the producer's.
pub async fn revoke(
    pool: &PgPool,
    producer_id: i64,
    show_id: i64,
    link_id: Option<i64>,
) -> Result<Option<u64>, StoreError> {
    if !crate::portal::owns_show(pool, producer_id, show_id).await? {
        return Ok(None);
    }
    if let Some(id) = link_id {
        let exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM checkin_links WHERE id = $1 AND show_id = $2) AS "exists!""#,
            id,
            show_id
        )
        .fetch_one(pool)
        .await?;
        if !exists {
            return Ok(None);
        }
    }
    let done = sqlx::query!(
        "UPDATE checkin_links SET revoked_at = now() WHERE show_id = $1 AND revoked_at IS NULL \
         AND (id = $2 OR ($2::int8 IS NULL AND expires_at > now()))",
        show_id,
        link_id
    )
    .execute(pool)
    .await?;
    Ok(Some(done.rows_affected()))
}

/// The show a token admits to, if the link is neither expired nor revoked and the show is
/// not deleted.
pub async fn show_for_token(pool: &PgPool, token: &str) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar!(
        "SELECT l.show_id FROM checkin_links l JOIN shows s ON s.id = l.show_id \
         WHERE l.token = $1 AND l.revoked_at IS NULL AND l.expires_at > now() AND NOT s.is_deleted",
        token
    )
    .fetch_optional(pool)
    .await?)
}

/// An attendee as the door sees them.
#[derive(Debug, Clone, Serialize)]
pub struct DoorAttendee {
    /// Primary key.
    pub id: i64,
    /// QR payload.
    pub uuid: Uuid,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Tier id.
    pub ticket: i64,
    /// Tier name.
    pub ticket_name: String,
    /// Order id.
    pub order: i64,
    /// When admitted.
    pub checked_in_at: Option<DateTime<Utc>>,
}

/// What a scan did.
#[derive(Debug)]
pub enum Admission {
    /// Admitted now.
    Admitted(DoorAttendee),
    /// Admitted before, at `checked_in_at`.
    AlreadyCheckedIn(DoorAttendee),
    /// No attendee has this UUID.
    Unknown,
    /// The ticket is for another show.
    OtherShow,
    /// The order is no longer paid (refunded).
    NotValid,
}

/// Admits attendee `code` to `show_id` once.
pub async fn admit(pool: &PgPool, show_id: i64, code: Uuid) -> Result<Admission, StoreError> {
    let admitted = sqlx::query!(
        "UPDATE attendees a SET checked_in_at = now() FROM orders o \
          WHERE a.uuid = $1 AND a.show_id = $2 AND a.checked_in_at IS NULL \
            AND o.id = a.order_id AND o.status = 'paid' RETURNING a.id",
        code,
        show_id
    )
    .fetch_optional(pool)
    .await?;
    // Admitted or not, the attendee as the door sees it (its order's state says why not).
    let Some(row) = door_attendees(pool, None, Some(code)).await?.pop() else {
        return Ok(Admission::Unknown);
    };
    Ok(match row {
        (a, _, _) if admitted.is_some() => Admission::Admitted(a),
        (_, other, _) if other != show_id => Admission::OtherShow,
        (_, _, status) if status != OrderStatus::Paid => Admission::NotValid,
        (a, _, _) => Admission::AlreadyCheckedIn(a),
    })
}

/// Attendees of show `show` (paid orders only, by name) or the attendee `code` (any order),
/// with their show and their order's status.
async fn door_attendees(
    pool: &PgPool,
    show: Option<i64>,
    code: Option<Uuid>,
) -> Result<Vec<(DoorAttendee, i64, OrderStatus)>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT a.id, a.uuid, a.name, a.email, a.ticket_id, t.name AS ticket_name, a.order_id, a.checked_in_at,
                  a.show_id, o.status AS "status: OrderStatus"
             FROM attendees a JOIN tickets t ON t.id = a.ticket_id JOIN orders o ON o.id = a.order_id
            WHERE (a.show_id = $1 AND o.status = 'paid') OR a.uuid = $2 ORDER BY a.name, a.id"#,
        show,
        code
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let attendee = DoorAttendee {
                id: r.id,
                uuid: r.uuid,
                name: r.name,
                email: r.email,
                ticket: r.ticket_id,
                ticket_name: r.ticket_name,
                order: r.order_id,
                checked_in_at: r.checked_in_at,
            };
            (attendee, r.show_id, r.status)
        })
        .collect())
}

/// The show as the check-in app shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DoorShow {
    /// Show id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Start.
    pub start_time: DateTime<Utc>,
}

/// A show's attendance: counts and every valid attendee.
#[derive(Debug, Clone, Serialize)]
pub struct Attendance {
    /// The show.
    pub show: DoorShow,
    /// Valid tickets (paid orders).
    pub total: i64,
    /// Admitted so far.
    pub checked_in: i64,
    /// Not yet admitted.
    pub remaining: i64,
    /// Attendees by name.
    pub attendees: Vec<DoorAttendee>,
}

/// Attendance of `show_id` (paid orders only).
pub async fn attendance(pool: &PgPool, show_id: i64) -> Result<Option<Attendance>, StoreError> {
    let show = sqlx::query_as!(
        DoorShow,
        "SELECT id, title, start_time FROM shows WHERE id = $1",
        show_id
    )
    .fetch_optional(pool)
    .await?;
    let Some(show) = show else { return Ok(None) };
    let attendees: Vec<DoorAttendee> = door_attendees(pool, Some(show_id), None)
        .await?
        .into_iter()
        .map(|(a, _, _)| a)
        .collect();
    let total = attendees.len() as i64;
    let checked_in = attendees
        .iter()
        .filter(|a| a.checked_in_at.is_some())
        .count() as i64;
    Ok(Some(Attendance {
        show,
        total,
        checked_in,
        remaining: total - checked_in,
        attendees,
    }))
}
