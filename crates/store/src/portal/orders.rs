//! The orders of a producer's shows (filtered lists, an order's detail, the streaming export)
//! and their attendees.

use chrono::{DateTime, Utc};
use futures::{SinkExt, Stream, StreamExt};
use pique_core::{Money, OrderStatus, query::PageRequest};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Page, contains_pattern, limit_offset};
use crate::StoreError;

/// Filters of the order list and export.
#[derive(Debug, Clone, Default)]
pub struct OrderFilters {
    /// Order status.
    pub status: Option<OrderStatus>,
    /// Show id.
    pub show: Option<i64>,
    /// Case-insensitive substring of the buyer's email.
    pub email: Option<String>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
}

/// An order of one of the producer's shows.
#[derive(Debug, Clone, Serialize)]
pub struct PortalOrder {
    /// Primary key.
    pub id: i64,
    /// Public reference.
    pub uuid: Uuid,
    /// Show id.
    pub show: i64,
    /// Show title.
    pub show_title: String,
    /// Buyer email.
    pub order_email: String,
    /// Buyer name.
    pub order_name: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// Before discount.
    pub subtotal: Money,
    /// Discount.
    pub discount: Money,
    /// Charged.
    pub total: Money,
    /// ISO currency.
    pub currency: String,
    /// Promo code used.
    pub promo_code: Option<String>,
    /// Tickets in the order.
    pub tickets: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Paid.
    pub paid_at: Option<DateTime<Utc>>,
}

/// A page of the producer's orders, newest first. Orders of deleted shows stay visible: the
/// money was taken either way.
pub async fn list_orders(
    pool: &PgPool,
    producer_id: i64,
    f: &OrderFilters,
    page: PageRequest,
) -> Result<Page<PortalOrder>, StoreError> {
    let email = f.email.as_deref().map(contains_pattern);
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM orders o JOIN shows s ON s.id = o.show_id
            WHERE s.producer_id = $1 AND ($2::text IS NULL OR o.status = $2) AND ($3::int8 IS NULL OR o.show_id = $3)
              AND ($4::text IS NULL OR o.order_email ILIKE $4)
              AND ($5::timestamptz IS NULL OR o.created_at >= $5) AND ($6::timestamptz IS NULL OR o.created_at < $6)"#,
        producer_id,
        f.status as Option<OrderStatus>,
        f.show,
        email,
        f.created_after,
        f.created_before
    )
    .fetch_one(pool)
    .await?;
    let rows = orders(pool, producer_id, f, None, Some(page)).await?;
    Ok(Page { rows, count })
}

/// The producer's orders matching `f` (and `id`), newest first: the list and an order.
async fn orders(
    pool: &PgPool,
    producer_id: i64,
    f: &OrderFilters,
    id: Option<i64>,
    page: Option<PageRequest>,
) -> Result<Vec<PortalOrder>, StoreError> {
    let email = f.email.as_deref().map(contains_pattern);
    let (limit, offset) = limit_offset(page);
    Ok(sqlx::query_as!(
        PortalOrder,
        r#"SELECT o.id, o.uuid, o.show_id AS show, s.title AS show_title, o.order_email, o.order_name,
                  o.status AS "status: OrderStatus", o.subtotal, o.discount, o.total, o.currency, c.code AS "promo_code?",
                  COALESCE((SELECT SUM(ol.quantity) FROM order_lines ol WHERE ol.order_id = o.id), 0)::int8 AS "tickets!",
                  o.created_at, o.paid_at
             FROM orders o JOIN shows s ON s.id = o.show_id LEFT JOIN promo_codes c ON c.id = o.promo_code_id
            WHERE s.producer_id = $1 AND ($2::text IS NULL OR o.status = $2) AND ($3::int8 IS NULL OR o.show_id = $3)
              AND ($4::text IS NULL OR o.order_email ILIKE $4)
              AND ($5::timestamptz IS NULL OR o.created_at >= $5) AND ($6::timestamptz IS NULL OR o.created_at < $6)
              AND ($7::int8 IS NULL OR o.id = $7)
            ORDER BY o.created_at DESC, o.id DESC LIMIT $8 OFFSET $9"#,
        producer_id,
        f.status as Option<OrderStatus>,
        f.show,
        email,
        f.created_after,
        f.created_before,
        id,
        limit,
        offset
    )
    .fetch_all(pool)
    .await?)
}

/// Every order matching `f`, oldest first, as a stream that holds only a few rows at a time.
///
/// A task runs the query with sqlx's row stream and hands rows over a small bounded channel:
/// when the consumer is slow the channel fills, the task stops reading, and PostgreSQL's
/// socket back-pressures. Memory stays flat whatever the row count. Dropping the stream
/// (consumer gone) ends the task and releases the connection. The connection is held until
/// the last row is consumed, so the consumer should be fast (the API spools to a file rather
/// than feeding a client directly); `query_timeout` bounds the query either way.
pub fn stream_orders(
    pool: &PgPool,
    producer_id: i64,
    f: OrderFilters,
    query_timeout: std::time::Duration,
) -> impl Stream<Item = Result<PortalOrder, StoreError>> + Send + 'static {
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<PortalOrder, StoreError>>(64);
    let pool = pool.clone();
    tokio::spawn(async move {
        if let Err(e) = export_into(&pool, producer_id, &f, query_timeout, &mut tx).await {
            // The consumer may already be gone; then nobody needs the error.
            let _ = tx.send(Err(e)).await;
        }
    });
    rx
}

async fn export_into(
    pool: &PgPool,
    producer_id: i64,
    f: &OrderFilters,
    query_timeout: std::time::Duration,
    out: &mut futures::channel::mpsc::Sender<Result<PortalOrder, StoreError>>,
) -> Result<(), StoreError> {
    let mut db = pool.begin().await?;
    // The statement runs until its last row is consumed; its own timeout replaces the pool's
    // 30 s, which would cut big exports short.
    let timeout = format!("{}ms", query_timeout.as_millis());
    sqlx::query_scalar!("SELECT set_config('statement_timeout', $1, true)", timeout)
        .fetch_one(&mut *db)
        .await?;
    let email = f.email.as_deref().map(contains_pattern);
    let mut rows = sqlx::query_as!(
        PortalOrder,
        r#"SELECT o.id, o.uuid, o.show_id AS show, s.title AS show_title, o.order_email, o.order_name,
                  o.status AS "status: OrderStatus", o.subtotal, o.discount, o.total, o.currency, c.code AS "promo_code?",
                  COALESCE((SELECT SUM(ol.quantity) FROM order_lines ol WHERE ol.order_id = o.id), 0)::int8 AS "tickets!",
                  o.created_at, o.paid_at
             FROM orders o JOIN shows s ON s.id = o.show_id LEFT JOIN promo_codes c ON c.id = o.promo_code_id
            WHERE s.producer_id = $1 AND ($2::text IS NULL OR o.status = $2) AND ($3::int8 IS NULL OR o.show_id = $3)
              AND ($4::text IS NULL OR o.order_email ILIKE $4)
              AND ($5::timestamptz IS NULL OR o.created_at >= $5) AND ($6::timestamptz IS NULL OR o.created_at < $6)
            ORDER BY o.created_at, o.id"#,
        producer_id,
        f.status as Option<OrderStatus>,
        f.show,
        email,
        f.created_after,
        f.created_before
    )
    .fetch(&mut *db);
    while let Some(row) = rows.next().await {
        if out.send(Ok(row?)).await.is_err() {
            // The client went away: stop reading; dropping the transaction rolls it back
            // and returns the connection.
            break;
        }
    }
    Ok(())
}

/// A line of an order.
#[derive(Debug, Clone, Serialize)]
pub struct PortalOrderLine {
    /// Primary key.
    pub id: i64,
    /// Tier id.
    pub ticket: i64,
    /// Tier name.
    pub ticket_name: String,
    /// Seats.
    pub quantity: i32,
    /// Unit price.
    pub price_per_ticket: Money,
    /// Donation per ticket.
    pub donation_amount: Option<Money>,
    /// Line discount.
    pub discount: Money,
    /// Line total.
    pub line_total: Money,
}

/// An order with its lines and attendees.
#[derive(Debug, Clone, Serialize)]
pub struct PortalOrderDetail {
    /// The order.
    #[serde(flatten)]
    pub order: PortalOrder,
    /// Its lines.
    pub lines: Vec<PortalOrderLine>,
    /// Its attendees.
    pub attendees: Vec<PortalAttendee>,
}

/// One of the producer's orders with lines and attendees.
pub async fn get_order(
    pool: &PgPool,
    producer_id: i64,
    order_id: i64,
) -> Result<Option<PortalOrderDetail>, StoreError> {
    let filters = OrderFilters::default();
    let Some(order) = orders(pool, producer_id, &filters, Some(order_id), None)
        .await?
        .pop()
    else {
        return Ok(None);
    };
    let lines = sqlx::query_as!(
        PortalOrderLine,
        r#"SELECT ol.id, ol.ticket_id AS ticket, t.name AS ticket_name, ol.quantity, ol.price_per_ticket,
                  ol.donation_amount AS "donation_amount: Money", ol.discount, ol.line_total
             FROM order_lines ol JOIN tickets t ON t.id = ol.ticket_id WHERE ol.order_id = $1 ORDER BY ol.id"#,
        order_id
    )
    .fetch_all(pool)
    .await?;
    let of_order = AttendeeFilters::default();
    let attendees = attendees(pool, producer_id, &of_order, Some(order_id), None).await?;
    Ok(Some(PortalOrderDetail {
        order,
        lines,
        attendees,
    }))
}

/// An attendee (one admitted person) of one of the producer's shows.
#[derive(Debug, Clone, Serialize)]
pub struct PortalAttendee {
    /// Primary key.
    pub id: i64,
    /// QR payload.
    pub uuid: Uuid,
    /// Show id.
    pub show: i64,
    /// Tier id.
    pub ticket: i64,
    /// Tier name.
    pub ticket_name: String,
    /// Order id.
    pub order: i64,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// When admitted at the door.
    pub checked_in_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Filters of the attendee list.
#[derive(Debug, Clone, Default)]
pub struct AttendeeFilters {
    /// Show id.
    pub show: Option<i64>,
    /// Tier id.
    pub ticket: Option<i64>,
    /// Case-insensitive substring of the email.
    pub email: Option<String>,
    /// Checked in or not.
    pub checked_in: Option<bool>,
}

/// A page of the producer's attendees.
pub async fn list_attendees(
    pool: &PgPool,
    producer_id: i64,
    f: &AttendeeFilters,
    page: PageRequest,
) -> Result<Page<PortalAttendee>, StoreError> {
    let email = f.email.as_deref().map(contains_pattern);
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM attendees a JOIN shows s ON s.id = a.show_id
            WHERE s.producer_id = $1 AND ($2::int8 IS NULL OR a.show_id = $2) AND ($3::int8 IS NULL OR a.ticket_id = $3)
              AND ($4::text IS NULL OR a.email ILIKE $4) AND ($5::bool IS NULL OR (a.checked_in_at IS NOT NULL) = $5)"#,
        producer_id,
        f.show,
        f.ticket,
        email,
        f.checked_in
    )
    .fetch_one(pool)
    .await?;
    let rows = attendees(pool, producer_id, f, None, Some(page)).await?;
    Ok(Page { rows, count })
}

/// The producer's attendees matching `f` (and of order `order`), by id.
async fn attendees(
    pool: &PgPool,
    producer_id: i64,
    f: &AttendeeFilters,
    order: Option<i64>,
    page: Option<PageRequest>,
) -> Result<Vec<PortalAttendee>, StoreError> {
    let email = f.email.as_deref().map(contains_pattern);
    let (limit, offset) = limit_offset(page);
    Ok(sqlx::query_as!(
        PortalAttendee,
        r#"SELECT a.id, a.uuid, a.show_id AS show, a.ticket_id AS ticket, t.name AS ticket_name,
                  a.order_id AS "order", a.name, a.email, a.checked_in_at, a.created_at
             FROM attendees a JOIN tickets t ON t.id = a.ticket_id JOIN shows s ON s.id = a.show_id
            WHERE s.producer_id = $1 AND ($2::int8 IS NULL OR a.show_id = $2) AND ($3::int8 IS NULL OR a.ticket_id = $3)
              AND ($4::text IS NULL OR a.email ILIKE $4) AND ($5::bool IS NULL OR (a.checked_in_at IS NOT NULL) = $5)
              AND ($6::int8 IS NULL OR a.order_id = $6)
            ORDER BY a.id LIMIT $7 OFFSET $8"#,
        producer_id,
        f.show,
        f.ticket,
        email,
        f.checked_in,
        order,
        limit,
        offset
    )
    .fetch_all(pool)
    .await?)
}
