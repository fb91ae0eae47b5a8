//! What the PDF and email workers read and record, and what the tracking routes look up.
//!
//! Every write here is keyed so that a job run twice is a no-op:
//! - a ticket PDF by attendee UUID (`ticket_pdfs` primary key);
//! - an email by (order, template) (`email_messages` unique key), claimed with a lease before
//!   it is sent, so two deliveries of the same job send one email.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pique_core::{EmailStatus, Money, OrderStatus, jobs::JobSpec};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{StoreError, outbox};

/// Everything printed on one attendee's ticket.
#[derive(Debug, Clone)]
pub struct TicketContext {
    /// The attendee (QR payload).
    pub attendee_uuid: Uuid,
    /// Name printed on the ticket.
    pub attendee_name: String,
    /// Position of the attendee within its order line (1..n).
    pub seq: i32,
    /// Order id.
    pub order_id: i64,
    /// Public order reference.
    pub order_uuid: Uuid,
    /// Show title.
    pub show_title: String,
    /// Show slug (for links).
    pub show_slug: String,
    /// Doors open, if set.
    pub door_time: Option<DateTime<Utc>>,
    /// Show start.
    pub start_time: DateTime<Utc>,
    /// IANA time zone the show's times are printed in.
    pub time_zone: String,
    /// Age restriction note, possibly empty.
    pub age_restriction: String,
    /// Venue name.
    pub venue_name: String,
    /// Street address, possibly empty.
    pub venue_address: String,
    /// City.
    pub venue_city: String,
    /// State, possibly empty.
    pub venue_state: String,
    /// Postal code, possibly empty.
    pub venue_postal_code: String,
    /// Tier (ticket type) name.
    pub tier_name: String,
    /// Price paid per ticket.
    pub price: Money,
    /// Order currency (ISO, lower case).
    pub currency: String,
}

/// The ticket of one attendee; `None` if the attendee does not exist.
pub async fn ticket_context(
    pool: &PgPool,
    attendee_uuid: Uuid,
) -> Result<Option<TicketContext>, StoreError> {
    Ok(tickets(pool, Some(attendee_uuid), None).await?.pop())
}

/// The tickets of an order, in line and seat order.
pub async fn order_tickets(pool: &PgPool, order_id: i64) -> Result<Vec<TicketContext>, StoreError> {
    tickets(pool, None, Some(order_id)).await
}

/// The ticket of attendee `attendee_uuid`, or the tickets of order `order_id`.
async fn tickets(
    pool: &PgPool,
    attendee_uuid: Option<Uuid>,
    order_id: Option<i64>,
) -> Result<Vec<TicketContext>, StoreError> {
    Ok(sqlx::query_as!(
        TicketContext,
        r#"SELECT a.uuid AS attendee_uuid, a.name AS attendee_name, a.seq, o.id AS order_id, o.uuid AS order_uuid,
                  s.title AS show_title, s.slug AS show_slug, s.door_time, s.start_time, s.time_zone, s.age_restriction,
                  v.name AS venue_name, v.address AS venue_address, v.city AS venue_city, v.state AS venue_state,
                  v.postal_code AS venue_postal_code, t.name AS tier_name,
                  COALESCE(ol.donation_amount, ol.price_per_ticket) AS "price!: Money", o.currency
             FROM attendees a JOIN orders o ON o.id = a.order_id JOIN order_lines ol ON ol.id = a.order_line_id
             JOIN tickets t ON t.id = a.ticket_id JOIN shows s ON s.id = a.show_id JOIN venues v ON v.id = s.venue_id
            WHERE a.uuid = $1 OR a.order_id = $2 ORDER BY a.order_line_id, a.seq"#,
        attendee_uuid,
        order_id
    )
    .fetch_all(pool)
    .await?)
}

/// A generated ticket PDF.
#[derive(Debug, Clone)]
pub struct TicketPdf {
    /// Its attendee.
    pub attendee_uuid: Uuid,
    /// File path (absolute or relative to the worker's working directory).
    pub path: String,
    /// Unguessable token of the download link.
    pub download_token: String,
    /// File size.
    pub bytes: i32,
    /// When it was first generated.
    pub created_at: DateTime<Utc>,
}

/// The stored PDF of an attendee, if generated.
pub async fn ticket_pdf(
    pool: &PgPool,
    attendee_uuid: Uuid,
) -> Result<Option<TicketPdf>, StoreError> {
    Ok(sqlx::query_as!(
        TicketPdf,
        "SELECT attendee_uuid, path, download_token, bytes, created_at FROM ticket_pdfs WHERE attendee_uuid = $1",
        attendee_uuid
    )
    .fetch_optional(pool)
    .await?)
}

/// The PDF behind a download link; `None` for an unknown token.
pub async fn ticket_pdf_by_token(
    pool: &PgPool,
    token: &str,
) -> Result<Option<TicketPdf>, StoreError> {
    Ok(sqlx::query_as!(
        TicketPdf,
        "SELECT attendee_uuid, path, download_token, bytes, created_at FROM ticket_pdfs WHERE download_token = $1",
        token
    )
    .fetch_optional(pool)
    .await?)
}

/// Records a generated PDF. If another worker recorded the same attendee first, its row wins
/// and is returned (both wrote the same file path, so either file is the ticket).
pub async fn record_ticket_pdf(
    pool: &PgPool,
    attendee_uuid: Uuid,
    path: &str,
    download_token: &str,
    bytes: i32,
) -> Result<TicketPdf, StoreError> {
    let inserted = sqlx::query_as!(
        TicketPdf,
        "INSERT INTO ticket_pdfs (attendee_uuid, path, download_token, bytes) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (attendee_uuid) DO NOTHING \
         RETURNING attendee_uuid, path, download_token, bytes, created_at",
        attendee_uuid,
        path,
        download_token,
        bytes
    )
    .fetch_optional(pool)
    .await?;
    match inserted {
        Some(row) => Ok(row),
        None => ticket_pdf(pool, attendee_uuid)
            .await?
            .ok_or(StoreError::NotFound),
    }
}

/// What the confirmation email says about an order.
#[derive(Debug, Clone)]
pub struct OrderSummary {
    /// Order id.
    pub order_id: i64,
    /// Public order reference.
    pub order_uuid: Uuid,
    /// Buyer's name.
    pub order_name: String,
    /// Buyer's email.
    pub order_email: String,
    /// Order state; only paid orders are mailed.
    pub status: OrderStatus,
    /// Amount paid.
    pub total: Money,
    /// ISO currency, lower case.
    pub currency: String,
    /// Show title.
    pub show_title: String,
    /// Show slug.
    pub show_slug: String,
    /// Show start.
    pub start_time: DateTime<Utc>,
    /// Doors open, if set.
    pub door_time: Option<DateTime<Utc>>,
    /// IANA time zone of the show.
    pub time_zone: String,
    /// Venue name.
    pub venue_name: String,
    /// Venue street address.
    pub venue_address: String,
    /// Venue city.
    pub venue_city: String,
}

/// The order behind a confirmation email; `None` if it does not exist.
pub async fn order_summary(
    pool: &PgPool,
    order_id: i64,
) -> Result<Option<OrderSummary>, StoreError> {
    Ok(sqlx::query_as!(
        OrderSummary,
        r#"SELECT o.id AS order_id, o.uuid AS order_uuid, o.order_name, o.order_email,
                  o.status AS "status: OrderStatus", o.total, o.currency, s.title AS show_title, s.slug AS show_slug,
                  s.start_time, s.door_time, s.time_zone, v.name AS venue_name,
                  v.address AS venue_address, v.city AS venue_city
             FROM orders o JOIN shows s ON s.id = o.show_id JOIN venues v ON v.id = s.venue_id
            WHERE o.id = $1"#,
        order_id
    )
    .fetch_optional(pool)
    .await?)
}

/// One row of `email_messages`.
#[derive(Debug, Clone)]
pub struct EmailMessage {
    /// Row id.
    pub id: i64,
    /// Tracking token (open pixel and click redirects).
    pub token: String,
    /// The order it is about.
    pub order_id: Option<i64>,
    /// Template name, e.g. `order_confirmation`.
    pub template: String,
    /// Recipient.
    pub to_email: String,
    /// Subject line.
    pub subject: String,
    /// URLs the email contains (the only targets the click redirect accepts).
    pub links: serde_json::Value,
    /// Where its delivery stands.
    pub status: EmailStatus,
    /// Send attempts so far.
    pub attempts: i32,
    /// Last send error.
    pub last_error: Option<String>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
}

/// Returns the message of (`order_id`, `template`), creating it as `pending` with `token` if it
/// does not exist yet (an existing row keeps its token).
pub async fn ensure_email_message(
    pool: &PgPool,
    order_id: i64,
    template: &str,
    to_email: &str,
    subject: &str,
    token: &str,
) -> Result<EmailMessage, StoreError> {
    sqlx::query!(
        "INSERT INTO email_messages (token, order_id, template, to_email, subject) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (order_id, template) DO NOTHING",
        token,
        order_id,
        template,
        to_email,
        subject
    )
    .execute(pool)
    .await?;
    email_message(pool, order_id, template)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Atomically moves a message to `sending` and records the links it will contain.
///
/// Succeeds (returns `true`) only if the message is `pending` or `failed`, or `sending` under
/// a claim older than `lease` (its worker died). Of two concurrent claims exactly one wins.
pub async fn claim_email(
    pool: &PgPool,
    id: i64,
    links: &serde_json::Value,
    lease: Duration,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "UPDATE email_messages SET status = 'sending', claimed_at = now(), attempts = attempts + 1, links = $2 \
          WHERE id = $1 AND (status IN ('pending', 'failed') \
                OR (status = 'sending' AND claimed_at < now() - make_interval(secs => $3)))",
        id,
        links,
        lease.as_secs_f64()
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a claimed message sent.
pub async fn mark_email_sent(pool: &PgPool, id: i64) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE email_messages SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = $1",
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Releases a claim after a failed send, so a retry may claim it again.
pub async fn mark_email_failed(pool: &PgPool, id: i64, error: &str) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE email_messages SET status = 'failed', claimed_at = NULL, last_error = $2 \
          WHERE id = $1 AND status = 'sending'",
        id,
        error
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The message of (`order_id`, `template`), if any.
pub async fn email_message(
    pool: &PgPool,
    order_id: i64,
    template: &str,
) -> Result<Option<EmailMessage>, StoreError> {
    Ok(sqlx::query_as!(
        EmailMessage,
        r#"SELECT id, token, order_id, template, to_email, subject, links, status AS "status: EmailStatus",
                  attempts, last_error, sent_at
             FROM email_messages WHERE order_id = $1 AND template = $2"#,
        order_id,
        template
    )
    .fetch_optional(pool)
    .await?)
}

/// Records an open of the message with `token`; returns `false` for an unknown token.
pub async fn record_open(
    pool: &PgPool,
    token: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "INSERT INTO email_events (message_id, kind, ip, user_agent) \
         SELECT id, 'open', $2, $3 FROM email_messages WHERE token = $1",
        token,
        ip,
        user_agent
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records a click on `url` in the message with `token`, only if that message contained `url`.
/// Returns `false` (nothing recorded) for an unknown token or a URL the email did not contain,
/// which is what keeps the redirect from being an open redirect.
pub async fn record_click(
    pool: &PgPool,
    token: &str,
    url: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "INSERT INTO email_events (message_id, kind, url, ip, user_agent) \
         SELECT id, 'click', $2, $3, $4 FROM email_messages \
          WHERE token = $1 AND links @> jsonb_build_array($2::text)",
        token,
        url,
        ip,
        user_agent
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Counts of the tracking events of a message: (opens, clicks).
pub async fn email_event_counts(pool: &PgPool, message_id: i64) -> Result<(i64, i64), StoreError> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE kind = 'open') AS "opens!", count(*) FILTER (WHERE kind = 'click') AS "clicks!"
             FROM email_events WHERE message_id = $1"#,
        message_id
    )
    .fetch_one(pool)
    .await?;
    Ok((row.opens, row.clicks))
}

/// What one reconciler pass re-armed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// PDF jobs written or re-armed.
    pub pdf_jobs: u64,
    /// Email jobs written or re-armed.
    pub email_jobs: u64,
}

/// Finds orders paid between `window` and `grace` ago whose PDFs or confirmation email are
/// missing, and re-arms their outbox jobs under the same dedup keys: a missing row is
/// inserted, a row relayed more than `grace` ago is marked unrelayed again. A job relayed
/// recently is left alone (it is probably queued or running), so a pass never doubles work
/// that is merely in progress.
pub async fn reconcile(
    pool: &PgPool,
    grace: Duration,
    window: Duration,
) -> Result<ReconcileReport, StoreError> {
    let (grace_secs, window_secs) = (grace.as_secs_f64(), window.as_secs_f64());
    let missing_pdfs = sqlx::query!(
        "SELECT a.uuid, a.order_id FROM orders o JOIN attendees a ON a.order_id = o.id \
           LEFT JOIN ticket_pdfs p ON p.attendee_uuid = a.uuid \
          WHERE o.status = 'paid' AND p.attendee_uuid IS NULL \
            AND o.paid_at < now() - make_interval(secs => $1) AND o.paid_at > now() - make_interval(secs => $2)",
        grace_secs,
        window_secs
    )
    .fetch_all(pool)
    .await?;
    let unmailed = sqlx::query_scalar!(
        "SELECT o.id FROM orders o WHERE o.status = 'paid' \
            AND o.paid_at < now() - make_interval(secs => $1) AND o.paid_at > now() - make_interval(secs => $2) \
            AND NOT EXISTS (SELECT 1 FROM email_messages m \
                             WHERE m.order_id = o.id AND m.template = $3 AND m.status = 'sent')",
        grace_secs,
        window_secs,
        pique_core::jobs::ORDER_CONFIRMATION
    )
    .fetch_all(pool)
    .await?;
    let pdf_jobs: Vec<JobSpec> = missing_pdfs
        .into_iter()
        .map(|a| JobSpec::RenderTicket {
            attendee_uuid: a.uuid,
            order_id: a.order_id,
        })
        .collect();
    let email_jobs: Vec<JobSpec> = unmailed
        .into_iter()
        .map(|order_id| JobSpec::OrderConfirmation { order_id })
        .collect();
    let mut conn = pool.acquire().await?;
    Ok(ReconcileReport {
        pdf_jobs: outbox::rearm(&mut conn, &pdf_jobs, grace).await?,
        email_jobs: outbox::rearm(&mut conn, &email_jobs, grace).await?,
    })
}
