//! Orders after checkout: payment, cancel, expiry and refund.
//!
//! State machine ([`OrderStatus`]): `pending -> paid | cancelled | expired`, and
//! `cancelled | expired -> paid` (a late payment that still finds seats) or `-> refunded`
//! (a late payment that does not). Every transition locks the order row first
//! (`FOR UPDATE`), then touches tiers in id order, so concurrent success / cancel / webhook /
//! sweeper calls serialise on the order and each transition happens once.
//!
//! A Stripe event id is recorded in `stripe_events` in the same transaction as the state
//! change it causes: a duplicate delivery blocks on the primary key until the first commits,
//! then finds the row and does nothing.

use chrono::{DateTime, Utc};
use pique_core::{CheckoutStrategy, Money, OrderStatus, jobs::JobSpec};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::{StoreError, checkout, outbox};

/// An order row.
#[derive(Debug, Clone)]
pub struct OrderRow {
    /// Primary key (the API's `order_id`).
    pub id: i64,
    /// Public reference (Stripe's `client_reference_id`).
    pub uuid: Uuid,
    /// The show.
    pub show_id: i64,
    /// Buyer email.
    pub order_email: String,
    /// Buyer name.
    pub order_name: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// Promo code used.
    pub promo_code_id: Option<i64>,
    /// Sum of line subtotals.
    pub subtotal: Money,
    /// Promo discount.
    pub discount: Money,
    /// Amount charged.
    pub total: Money,
    /// ISO currency, lower case.
    pub currency: String,
    /// Strategy that created it.
    pub checkout_strategy: CheckoutStrategy,
    /// Stripe Checkout Session.
    pub session_id: Option<String>,
    /// Stripe PaymentIntent once paid.
    pub payment_intent_id: Option<String>,
    /// End of the hold.
    pub expires_at: DateTime<Utc>,
    /// When paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// When cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When refunded.
    pub refunded_at: Option<DateTime<Utc>>,
    /// When created.
    pub created_at: DateTime<Utc>,
}

/// An order by id.
pub async fn by_id<'c>(db: impl PgExecutor<'c>, id: i64) -> Result<Option<OrderRow>, StoreError> {
    Ok(sqlx::query_as!(
        OrderRow,
        r#"SELECT id, uuid, show_id, order_email, order_name, status AS "status: OrderStatus", promo_code_id,
                  subtotal, discount, total, currency, checkout_strategy AS "checkout_strategy: CheckoutStrategy",
                  session_id, payment_intent_id, expires_at, paid_at, cancelled_at, refunded_at, created_at
             FROM orders WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await?)
}

/// An order by public uuid.
pub async fn by_uuid<'c>(
    db: impl PgExecutor<'c>,
    uuid: Uuid,
) -> Result<Option<OrderRow>, StoreError> {
    Ok(sqlx::query_as!(
        OrderRow,
        r#"SELECT id, uuid, show_id, order_email, order_name, status AS "status: OrderStatus", promo_code_id,
                  subtotal, discount, total, currency, checkout_strategy AS "checkout_strategy: CheckoutStrategy",
                  session_id, payment_intent_id, expires_at, paid_at, cancelled_at, refunded_at, created_at
             FROM orders WHERE uuid = $1"#,
        uuid
    )
    .fetch_optional(db)
    .await?)
}

/// An order by Stripe session id.
pub async fn by_session(pool: &PgPool, session_id: &str) -> Result<Option<OrderRow>, StoreError> {
    Ok(sqlx::query_as!(
        OrderRow,
        r#"SELECT id, uuid, show_id, order_email, order_name, status AS "status: OrderStatus", promo_code_id,
                  subtotal, discount, total, currency, checkout_strategy AS "checkout_strategy: CheckoutStrategy",
                  session_id, payment_intent_id, expires_at, paid_at, cancelled_at, refunded_at, created_at
             FROM orders WHERE session_id = $1"#,
        session_id
    )
    .fetch_optional(pool)
    .await?)
}

/// Records the Stripe session of a pending order that has none yet; `false` if the order
/// is no longer pending (cancelled or expired meanwhile) or already has one.
///
/// This one write skips the WAL flush wait (`synchronous_commit = off` for its own implicit
/// transaction): losing it in a crash is harmless, because every payment path also finds
/// the order by the session's `client_reference_id` (the order uuid), and it saves an fsync
/// on every checkout.
pub async fn set_session(
    pool: &PgPool,
    order_id: i64,
    session_id: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)) \
         UPDATE orders SET session_id = $2, updated_at = now() FROM async_commit \
          WHERE id = $1 AND status = 'pending' AND session_id IS NULL",
        order_id,
        session_id
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A line as shown to the buyer.
#[derive(Debug, Clone)]
pub struct LineView {
    /// Tier id.
    pub ticket_id: i64,
    /// Tier name.
    pub ticket_name: String,
    /// Seats.
    pub quantity: i32,
    /// Unit price snapshot.
    pub price_per_ticket: Money,
    /// Donation per ticket.
    pub donation_amount: Option<Money>,
    /// Promo share.
    pub discount: Money,
    /// Line total.
    pub line_total: Money,
}

/// An attendee as shown to the buyer.
#[derive(Debug, Clone)]
pub struct AttendeeView {
    /// QR payload.
    pub uuid: Uuid,
    /// Tier id.
    pub ticket_id: i64,
    /// Position within its line.
    pub seq: i32,
    /// Name on the ticket.
    pub name: String,
}

/// The lines of an order, in tier order.
pub async fn lines(pool: &PgPool, order_id: i64) -> Result<Vec<LineView>, StoreError> {
    Ok(sqlx::query_as!(
        LineView,
        r#"SELECT ol.ticket_id, t.name AS ticket_name, ol.quantity, ol.price_per_ticket,
                  ol.donation_amount AS "donation_amount: Money", ol.discount, ol.line_total
             FROM order_lines ol JOIN tickets t ON t.id = ol.ticket_id
            WHERE ol.order_id = $1 ORDER BY ol.ticket_id"#,
        order_id
    )
    .fetch_all(pool)
    .await?)
}

/// Seats of an order (its lines' quantities).
pub async fn seat_count(pool: &PgPool, order_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT COALESCE(sum(quantity), 0)::int8 AS "seats!" FROM order_lines WHERE order_id = $1"#,
        order_id
    )
    .fetch_one(pool)
    .await?)
}

/// The attendees of an order.
pub async fn attendees(pool: &PgPool, order_id: i64) -> Result<Vec<AttendeeView>, StoreError> {
    Ok(sqlx::query_as!(
        AttendeeView,
        "SELECT uuid, ticket_id, seq, name FROM attendees WHERE order_id = $1 ORDER BY order_line_id, seq",
        order_id
    )
    .fetch_all(pool)
    .await?)
}

/// Seats per tier of the given orders (only those still in `status`), in tier-id order.
async fn seats_of(
    conn: &mut PgConnection,
    ids: &[i64],
    status: OrderStatus,
) -> Result<Vec<(i64, i32)>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT ol.ticket_id, sum(ol.quantity)::int4 AS "seats!"
             FROM order_lines ol JOIN orders o ON o.id = ol.order_id
            WHERE o.id = ANY($1) AND o.status = $2 GROUP BY ol.ticket_id ORDER BY ol.ticket_id"#,
        ids,
        status as OrderStatus
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.ticket_id, r.seats)).collect())
}

/// Releases the seats and promo uses of pending orders `ids` (already locked by the caller)
/// and moves them to `status`. Returns their Stripe session ids.
///
/// The work is the `pique_release_orders` function (migration 0006), which the one-statement
/// checkout (`checkout::reserve`) calls too: one implementation of giving seats back.
pub async fn release_locked(
    conn: &mut PgConnection,
    ids: &[i64],
    status: OrderStatus,
) -> Result<Vec<String>, StoreError> {
    // Promo rows before the tier rows `pique_release_orders` updates, in id order: the lock
    // order `reserve` uses too (the other order deadlocked a promo checkout with a cancel).
    sqlx::query_scalar!(
        "SELECT p.id FROM promo_codes p \
          WHERE p.id IN (SELECT promo_code_id FROM orders WHERE id = ANY($1) AND status = 'pending') \
          ORDER BY p.id FOR UPDATE",
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let sessions = sqlx::query_scalar!(
        "SELECT s FROM pique_release_orders($1, $2) AS s",
        ids,
        status as OrderStatus
    )
    .fetch_all(conn)
    .await?;
    Ok(sessions.into_iter().flatten().collect())
}

/// Marks pending order `order_id` (locked by the caller) paid: its held seats become sold,
/// one attendee per ticket is created, and the PDF and email jobs are written to the
/// outbox, all in the caller's transaction.
pub async fn pay_in_tx(
    conn: &mut PgConnection,
    order_id: i64,
    payment_intent: Option<&str>,
) -> Result<(), StoreError> {
    for (ticket_id, n) in seats_of(conn, &[order_id], OrderStatus::Pending).await? {
        sqlx::query!(
            "UPDATE tickets SET held = held - $2, sold = sold + $2 WHERE id = $1",
            ticket_id,
            n
        )
        .execute(&mut *conn)
        .await?;
    }
    finish_payment(conn, order_id, payment_intent).await
}

async fn finish_payment(
    conn: &mut PgConnection,
    order_id: i64,
    payment_intent: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE orders SET status = 'paid', paid_at = now(), updated_at = now(), \
                payment_intent_id = COALESCE($2, payment_intent_id) WHERE id = $1",
        order_id,
        payment_intent
    )
    .execute(&mut *conn)
    .await?;
    // One attendee per seat; the (order_line_id, seq) key makes a second run a no-op, and
    // only the attendees created now need their jobs.
    let attendees = sqlx::query_scalar!(
        "INSERT INTO attendees (uuid, order_id, order_line_id, show_id, ticket_id, seq, name, email) \
         SELECT gen_random_uuid(), o.id, ol.id, o.show_id, ol.ticket_id, g.seq, o.order_name, o.order_email \
           FROM orders o JOIN order_lines ol ON ol.order_id = o.id \
           CROSS JOIN LATERAL generate_series(1, ol.quantity) AS g(seq) \
          WHERE o.id = $1 \
         ON CONFLICT (order_line_id, seq) DO NOTHING RETURNING uuid",
        order_id
    )
    .fetch_all(&mut *conn)
    .await?;
    outbox::enqueue(conn, &JobSpec::fulfilment(order_id, &attendees)).await
}

/// Pays an order whose hold was already released (cancelled or expired) if its seats can
/// still be sold; `false` (nothing changed) if any tier lacks them.
async fn revive_in_tx(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment_intent: Option<&str>,
) -> Result<bool, StoreError> {
    // Promo before tiers (the store's lock order).
    if let Some(promo) = order.promo_code_id {
        checkout::lock_promo(conn, promo).await?;
    }
    let seats = seats_of(conn, &[order.id], order.status).await?;
    let tier_ids: Vec<i64> = seats.iter().map(|s| s.0).collect();
    checkout::release_expired_for(conn, &tier_ids).await?;
    for (ticket_id, n) in seats {
        let sold = sqlx::query_scalar!(
            "UPDATE tickets SET sold = sold + $2 WHERE id = $1 AND quantity - sold - held >= $2 RETURNING id",
            ticket_id,
            n
        )
        .fetch_optional(&mut *conn)
        .await?;
        if sold.is_none() {
            return Ok(false);
        }
    }
    if let Some(promo) = order.promo_code_id {
        // The buyer paid the discounted price; count the use again if the limit allows.
        sqlx::query!(
            "UPDATE promo_codes SET uses = uses + 1 WHERE id = $1 AND (max_uses IS NULL OR uses < max_uses)",
            promo
        )
        .execute(&mut *conn)
        .await?;
    }
    finish_payment(conn, order.id, payment_intent).await?;
    Ok(true)
}

/// A Stripe event being handled.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    /// `evt_...`
    pub id: &'a str,
    /// `checkout.session.completed`, ...
    pub kind: &'a str,
}

/// Records `event` as processed; `false` if it already was.
async fn record_event(conn: &mut PgConnection, event: EventRef<'_>) -> Result<bool, StoreError> {
    let row = sqlx::query_scalar!(
        "INSERT INTO stripe_events (id, type, processed_at) VALUES ($1, $2, now()) ON CONFLICT (id) DO NOTHING RETURNING id",
        event.id,
        event.kind
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Records an event that needs no state change (e.g. a type the replica ignores); `false`
/// for a repeat.
pub async fn record_event_only(pool: &PgPool, event: EventRef<'_>) -> Result<bool, StoreError> {
    let mut conn = pool.acquire().await?;
    record_event(&mut conn, event).await
}

/// Which order a payment or release refers to.
#[derive(Debug, Clone, Copy)]
pub enum OrderKey<'a> {
    /// By Stripe session, falling back to the public uuid (Stripe's `client_reference_id`)
    /// in case the event overtook the write of the session id.
    Session(&'a str, Option<Uuid>),
    /// By public uuid.
    Uuid(Uuid),
}

async fn lock_order(
    conn: &mut PgConnection,
    key: OrderKey<'_>,
) -> Result<Option<OrderRow>, StoreError> {
    let (session, uuid) = match key {
        OrderKey::Session(s, u) => (Some(s), u),
        OrderKey::Uuid(u) => (None, Some(u)),
    };
    if let Some(s) = session {
        let row = sqlx::query_as!(
            OrderRow,
            r#"SELECT id, uuid, show_id, order_email, order_name, status AS "status: OrderStatus", promo_code_id,
                      subtotal, discount, total, currency, checkout_strategy AS "checkout_strategy: CheckoutStrategy",
                      session_id, payment_intent_id, expires_at, paid_at, cancelled_at, refunded_at, created_at
                 FROM orders WHERE session_id = $1 FOR UPDATE"#,
            s
        )
        .fetch_optional(&mut *conn)
        .await?;
        if row.is_some() {
            return Ok(row);
        }
    }
    let Some(u) = uuid else { return Ok(None) };
    Ok(sqlx::query_as!(
        OrderRow,
        r#"SELECT id, uuid, show_id, order_email, order_name, status AS "status: OrderStatus", promo_code_id,
                  subtotal, discount, total, currency, checkout_strategy AS "checkout_strategy: CheckoutStrategy",
                  session_id, payment_intent_id, expires_at, paid_at, cancelled_at, refunded_at, created_at
             FROM orders WHERE uuid = $1 FOR UPDATE"#,
        u
    )
    .fetch_optional(&mut *conn)
    .await?)
}

/// What applying a payment did.
#[derive(Debug, Clone)]
pub enum PaymentOutcome {
    /// The order became paid now (attendees and outbox rows written).
    Paid(OrderRow),
    /// It already was paid: nothing done.
    AlreadyPaid(OrderRow),
    /// It was already refunded: nothing done.
    AlreadyRefunded(OrderRow),
    /// Its hold had been released and the seats are gone: the caller must refund the
    /// payment at Stripe, then call [`mark_refunded`]. Nothing was written.
    NeedsRefund(OrderRow),
    /// No order has this session.
    NotFound,
    /// This event was already processed.
    Duplicate,
}

/// Applies a completed payment of the order `key` names (the shared path of `/success/` and
/// the `checkout.session.completed` webhook).
pub async fn apply_payment(
    pool: &PgPool,
    key: OrderKey<'_>,
    payment_intent: Option<&str>,
    event: Option<EventRef<'_>>,
) -> Result<PaymentOutcome, StoreError> {
    let mut tx = pool.begin().await?;
    if let Some(e) = event
        && !record_event(&mut tx, e).await?
    {
        return Ok(PaymentOutcome::Duplicate);
    }
    let Some(order) = lock_order(&mut tx, key).await? else {
        tx.commit().await?;
        return Ok(PaymentOutcome::NotFound);
    };
    let outcome = match order.status {
        OrderStatus::Paid => PaymentOutcome::AlreadyPaid(order),
        OrderStatus::Refunded => PaymentOutcome::AlreadyRefunded(order),
        OrderStatus::Pending => {
            if let OrderKey::Session(s, _) = key
                && order.session_id.is_none()
            {
                sqlx::query!(
                    "UPDATE orders SET session_id = $2 WHERE id = $1",
                    order.id,
                    s
                )
                .execute(&mut *tx)
                .await?;
            }
            pay_in_tx(&mut tx, order.id, payment_intent).await?;
            let paid = by_id(&mut *tx, order.id)
                .await?
                .ok_or(StoreError::NotFound)?;
            PaymentOutcome::Paid(paid)
        }
        OrderStatus::Cancelled | OrderStatus::Expired => {
            if revive_in_tx(&mut tx, &order, payment_intent).await? {
                let paid = by_id(&mut *tx, order.id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                PaymentOutcome::Paid(paid)
            } else {
                // Roll back (the event stays unrecorded so a retry can finish the refund).
                drop(tx);
                return Ok(PaymentOutcome::NeedsRefund(order));
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Marks a released order refunded after its late payment was refunded at Stripe; `None`
/// if it was not in `cancelled`/`expired` any more.
pub async fn mark_refunded(
    pool: &PgPool,
    order_id: i64,
    payment_intent: Option<&str>,
    event: Option<EventRef<'_>>,
) -> Result<Option<OrderRow>, StoreError> {
    let mut tx = pool.begin().await?;
    if let Some(e) = event {
        // A concurrent duplicate may have recorded it; the refund itself is idempotent.
        record_event(&mut tx, e).await?;
    }
    let row = sqlx::query_as!(
        OrderRow,
        r#"UPDATE orders SET status = 'refunded', refunded_at = now(), updated_at = now(),
                  payment_intent_id = COALESCE($2, payment_intent_id)
            WHERE id = $1 AND status IN ('cancelled', 'expired')
        RETURNING id, uuid, show_id, order_email, order_name, status AS "status: OrderStatus", promo_code_id,
                  subtotal, discount, total, currency, checkout_strategy AS "checkout_strategy: CheckoutStrategy",
                  session_id, payment_intent_id, expires_at, paid_at, cancelled_at, refunded_at, created_at"#,
        order_id,
        payment_intent
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// What releasing an order did.
#[derive(Debug, Clone)]
pub enum ReleaseOutcome {
    /// Released now.
    Released(OrderRow),
    /// Not pending (already paid, cancelled, expired or refunded): nothing done.
    NotPending(OrderRow),
    /// No such order.
    NotFound,
    /// This event was already processed.
    Duplicate,
}

/// Cancels or expires the pending order `key` names and gives its seats back.
pub async fn release(
    pool: &PgPool,
    key: OrderKey<'_>,
    status: OrderStatus,
    event: Option<EventRef<'_>>,
) -> Result<ReleaseOutcome, StoreError> {
    let mut tx = pool.begin().await?;
    if let Some(e) = event
        && !record_event(&mut tx, e).await?
    {
        return Ok(ReleaseOutcome::Duplicate);
    }
    let Some(order) = lock_order(&mut tx, key).await? else {
        tx.commit().await?;
        return Ok(ReleaseOutcome::NotFound);
    };
    if order.status != OrderStatus::Pending {
        tx.commit().await?;
        return Ok(ReleaseOutcome::NotPending(order));
    }
    release_locked(&mut tx, &[order.id], status).await?;
    let row = by_id(&mut *tx, order.id)
        .await?
        .ok_or(StoreError::NotFound)?;
    tx.commit().await?;
    Ok(ReleaseOutcome::Released(row))
}

/// Releases a pending order by id (after a failed Stripe call); `true` if it was pending.
pub async fn release_by_id(
    pool: &PgPool,
    order_id: i64,
    status: OrderStatus,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let locked = sqlx::query_scalar!(
        "SELECT id FROM orders WHERE id = $1 AND status = 'pending' FOR UPDATE",
        order_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if locked.is_none() {
        return Ok(false);
    }
    release_locked(&mut tx, &[order_id], status).await?;
    tx.commit().await?;
    Ok(true)
}
