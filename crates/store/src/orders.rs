//! Orders after checkout: payment, cancel, expiry, refund, and the invariants `pique check`
//! verifies.
//!
//! State machine (DESIGN section 6): `pending -> paid | cancelled | expired`, and
//! `cancelled | expired -> paid` (a late payment that still finds seats) or `-> refunded`
//! (a late payment that does not). Every transition locks the order row first
//! (`FOR UPDATE`), then touches tiers in id order, so concurrent success / cancel / webhook /
//! sweeper calls serialise on the order and each transition happens once.
//!
//! A Stripe event id is recorded in `stripe_events` in the same transaction as the state
//! change it causes: a duplicate delivery blocks on the primary key until the first commits,
//! then finds the row and does nothing.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{StoreError, checkout, outbox};

/// Order status (the `orders.status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Holding seats until `expires_at`.
    Pending,
    /// Paid; seats sold.
    Paid,
    /// Cancelled by the buyer (or after a failed Stripe call); seats released.
    Cancelled,
    /// The hold lapsed; seats released.
    Expired,
    /// Paid too late for any seat; the payment was refunded.
    Refunded,
}

impl Status {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Refunded => "refunded",
        }
    }
}

/// An order row.
#[derive(Debug, Clone, sqlx::FromRow)]
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
    /// `pending`, `paid`, `cancelled`, `expired` or `refunded`.
    pub status: String,
    /// Promo code used.
    pub promo_code_id: Option<i64>,
    /// Sum of line subtotals.
    pub subtotal: Decimal,
    /// Promo discount.
    pub discount: Decimal,
    /// Amount charged.
    pub total: Decimal,
    /// ISO currency, lower case.
    pub currency: String,
    /// Strategy that created it.
    pub checkout_strategy: String,
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

/// The columns of [`OrderRow`], for `SELECT` and `RETURNING`.
pub const ORDER_COLUMNS: &str = "id, uuid, show_id, order_email, order_name, status, promo_code_id, subtotal, discount, total, \
    currency, checkout_strategy, session_id, payment_intent_id, expires_at, paid_at, cancelled_at, refunded_at, created_at";

/// An order by id (inside a transaction).
pub async fn by_id_conn(conn: &mut PgConnection, id: i64) -> Result<Option<OrderRow>, StoreError> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?)
}

/// An order by public uuid (inside a transaction).
pub async fn by_uuid_conn(
    conn: &mut PgConnection,
    uuid: Uuid,
) -> Result<Option<OrderRow>, StoreError> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE uuid = $1");
    Ok(sqlx::query_as(&sql).bind(uuid).fetch_optional(conn).await?)
}

/// An order by id.
pub async fn by_id(pool: &PgPool, id: i64) -> Result<Option<OrderRow>, StoreError> {
    let mut conn = pool.acquire().await?;
    by_id_conn(&mut conn, id).await
}

/// An order by public uuid.
pub async fn by_uuid(pool: &PgPool, uuid: Uuid) -> Result<Option<OrderRow>, StoreError> {
    let mut conn = pool.acquire().await?;
    by_uuid_conn(&mut conn, uuid).await
}

/// An order by Stripe session id.
pub async fn by_session(pool: &PgPool, session_id: &str) -> Result<Option<OrderRow>, StoreError> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE session_id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(session_id)
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
    let done = sqlx::query(
        "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)) \
         UPDATE orders SET session_id = $2, updated_at = now() FROM async_commit \
          WHERE id = $1 AND status = 'pending' AND session_id IS NULL",
    )
    .bind(order_id)
    .bind(session_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A line as shown to the buyer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LineView {
    /// Tier id.
    pub ticket_id: i64,
    /// Tier name.
    pub ticket_name: String,
    /// Seats.
    pub quantity: i32,
    /// Unit price snapshot.
    pub price_per_ticket: Decimal,
    /// Donation per ticket.
    pub donation_amount: Option<Decimal>,
    /// Promo share.
    pub discount: Decimal,
    /// Line total.
    pub line_total: Decimal,
}

/// An attendee as shown to the buyer.
#[derive(Debug, Clone, sqlx::FromRow)]
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
    Ok(sqlx::query_as(
        "SELECT ol.ticket_id, t.name AS ticket_name, ol.quantity, ol.price_per_ticket, ol.donation_amount, ol.discount, \
                ol.line_total FROM order_lines ol JOIN tickets t ON t.id = ol.ticket_id WHERE ol.order_id = $1 ORDER BY ol.ticket_id",
    )
    .bind(order_id)
    .fetch_all(pool)
    .await?)
}

/// The attendees of an order.
pub async fn attendees(pool: &PgPool, order_id: i64) -> Result<Vec<AttendeeView>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT uuid, ticket_id, seq, name FROM attendees WHERE order_id = $1 ORDER BY order_line_id, seq",
    )
    .bind(order_id)
    .fetch_all(pool)
    .await?)
}

/// Seats per tier of the given orders (only those still in `status`), in tier-id order.
async fn seats_of(
    conn: &mut PgConnection,
    ids: &[i64],
    status: &str,
) -> Result<Vec<(i64, i32)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT ol.ticket_id, sum(ol.quantity)::int4 FROM order_lines ol JOIN orders o ON o.id = ol.order_id \
         WHERE o.id = ANY($1) AND o.status = $2 GROUP BY ol.ticket_id ORDER BY ol.ticket_id",
    )
    .bind(ids)
    .bind(status)
    .fetch_all(conn)
    .await?)
}

/// Releases the seats and promo uses of pending orders `ids` (already locked by the caller)
/// and moves them to `status`. Returns their Stripe session ids.
pub async fn release_locked(
    conn: &mut PgConnection,
    ids: &[i64],
    status: Status,
) -> Result<Vec<String>, StoreError> {
    for (ticket_id, n) in seats_of(conn, ids, "pending").await? {
        sqlx::query("UPDATE tickets SET held = held - $2 WHERE id = $1")
            .bind(ticket_id)
            .bind(n)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "UPDATE promo_codes p SET uses = GREATEST(p.uses - x.n, 0) \
           FROM (SELECT promo_code_id, count(*)::int4 AS n FROM orders \
                 WHERE id = ANY($1) AND status = 'pending' AND promo_code_id IS NOT NULL GROUP BY promo_code_id) x \
          WHERE p.id = x.promo_code_id",
    )
    .bind(ids)
    .execute(&mut *conn)
    .await?;
    let sessions: Vec<Option<String>> = sqlx::query_scalar(
        "UPDATE orders SET status = $2, updated_at = now(), \
                cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE cancelled_at END \
          WHERE id = ANY($1) AND status = 'pending' RETURNING session_id",
    )
    .bind(ids)
    .bind(status.as_str())
    .fetch_all(&mut *conn)
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
    for (ticket_id, n) in seats_of(conn, &[order_id], "pending").await? {
        sqlx::query("UPDATE tickets SET held = held - $2, sold = sold + $2 WHERE id = $1")
            .bind(ticket_id)
            .bind(n)
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
    sqlx::query(
        "UPDATE orders SET status = 'paid', paid_at = now(), updated_at = now(), \
                payment_intent_id = COALESCE($2, payment_intent_id) WHERE id = $1",
    )
    .bind(order_id)
    .bind(payment_intent)
    .execute(&mut *conn)
    .await?;
    // One attendee per seat; the (order_line_id, seq) key makes a second run a no-op.
    sqlx::query(
        "INSERT INTO attendees (uuid, order_id, order_line_id, show_id, ticket_id, seq, name, email) \
         SELECT gen_random_uuid(), o.id, ol.id, o.show_id, ol.ticket_id, g.seq, o.order_name, o.order_email \
           FROM orders o JOIN order_lines ol ON ol.order_id = o.id \
           CROSS JOIN LATERAL generate_series(1, ol.quantity) AS g(seq) \
          WHERE o.id = $1 \
         ON CONFLICT (order_line_id, seq) DO NOTHING",
    )
    .bind(order_id)
    .execute(&mut *conn)
    .await?;
    outbox::enqueue_order_fulfilment(conn, order_id).await
}

/// Pays an order whose hold was already released (cancelled or expired) if its seats can
/// still be sold; `false` (nothing changed) if any tier lacks them.
async fn revive_in_tx(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment_intent: Option<&str>,
) -> Result<bool, StoreError> {
    let seats = seats_of(conn, &[order.id], &order.status).await?;
    let tier_ids: Vec<i64> = seats.iter().map(|s| s.0).collect();
    checkout::release_expired_for(conn, &tier_ids).await?;
    for (ticket_id, n) in seats {
        let ok: Option<i64> = sqlx::query_scalar(
            "UPDATE tickets SET sold = sold + $2 WHERE id = $1 AND quantity - sold - held >= $2 RETURNING id",
        )
        .bind(ticket_id)
        .bind(n)
        .fetch_optional(&mut *conn)
        .await?;
        if ok.is_none() {
            return Ok(false);
        }
    }
    if let Some(promo) = order.promo_code_id {
        // The buyer paid the discounted price; count the use again if the limit allows.
        sqlx::query("UPDATE promo_codes SET uses = uses + 1 WHERE id = $1 AND (max_uses IS NULL OR uses < max_uses)")
            .bind(promo)
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
    let row: Option<String> = sqlx::query_scalar(
        "INSERT INTO stripe_events (id, type, processed_at) VALUES ($1, $2, now()) ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(event.id)
    .bind(event.kind)
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
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE session_id = $1 FOR UPDATE");
        if let Some(row) = sqlx::query_as::<_, OrderRow>(&sql)
            .bind(s)
            .fetch_optional(&mut *conn)
            .await?
        {
            return Ok(Some(row));
        }
    }
    match uuid {
        Some(u) => {
            let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE uuid = $1 FOR UPDATE");
            Ok(sqlx::query_as(&sql)
                .bind(u)
                .fetch_optional(&mut *conn)
                .await?)
        }
        None => Ok(None),
    }
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
    let outcome = match order.status.as_str() {
        "paid" => PaymentOutcome::AlreadyPaid(order),
        "refunded" => PaymentOutcome::AlreadyRefunded(order),
        "pending" => {
            if let OrderKey::Session(s, _) = key
                && order.session_id.is_none()
            {
                sqlx::query("UPDATE orders SET session_id = $2 WHERE id = $1")
                    .bind(order.id)
                    .bind(s)
                    .execute(&mut *tx)
                    .await?;
            }
            pay_in_tx(&mut tx, order.id, payment_intent).await?;
            let paid = by_id_conn(&mut tx, order.id)
                .await?
                .ok_or(StoreError::NotFound)?;
            PaymentOutcome::Paid(paid)
        }
        _ => {
            if revive_in_tx(&mut tx, &order, payment_intent).await? {
                let paid = by_id_conn(&mut tx, order.id)
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
    let sql = format!(
        "UPDATE orders SET status = 'refunded', refunded_at = now(), updated_at = now(), \
                payment_intent_id = COALESCE($2, payment_intent_id) \
          WHERE id = $1 AND status IN ('cancelled', 'expired') RETURNING {ORDER_COLUMNS}"
    );
    let row: Option<OrderRow> = sqlx::query_as(&sql)
        .bind(order_id)
        .bind(payment_intent)
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
    status: Status,
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
    if order.status != "pending" {
        tx.commit().await?;
        return Ok(ReleaseOutcome::NotPending(order));
    }
    release_locked(&mut tx, &[order.id], status).await?;
    let row = by_id_conn(&mut tx, order.id)
        .await?
        .ok_or(StoreError::NotFound)?;
    tx.commit().await?;
    Ok(ReleaseOutcome::Released(row))
}

/// Releases a pending order by id (after a failed Stripe call); `true` if it was pending.
pub async fn release_by_id(
    pool: &PgPool,
    order_id: i64,
    status: Status,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let locked: Option<i64> =
        sqlx::query_scalar("SELECT id FROM orders WHERE id = $1 AND status = 'pending' FOR UPDATE")
            .bind(order_id)
            .fetch_optional(&mut *tx)
            .await?;
    if locked.is_none() {
        return Ok(false);
    }
    release_locked(&mut tx, &[order_id], status).await?;
    tx.commit().await?;
    Ok(true)
}

// ---------------------------------------------------------------- invariants (`pique check`)

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which check.
    pub check: &'static str,
    /// What it is about, e.g. `ticket 3`.
    pub subject: String,
    /// What is wrong.
    pub detail: String,
}

/// Names of the checks [`check_invariants`] runs, in order.
pub const CHECKS: [&str; 8] = [
    "no oversell (sold + held <= quantity)",
    "held = seats of pending orders",
    "sold = seats of paid orders",
    "no lapsed hold left after the sweep",
    "paid orders have one attendee per seat",
    "paid orders have their PDF and email jobs",
    "promo uses within limits and counted",
    "order totals add up",
];

/// Runs every check; `lapsed_before` is the instant of the sweep that preceded (pending
/// orders that expired before it must be gone). At most `limit` rows per check are listed.
pub async fn check_invariants(
    pool: &PgPool,
    lapsed_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Violation>, StoreError> {
    let mut out = Vec::new();
    let rows: Vec<(i64, i32, i32, i32)> = sqlx::query_as(
        "SELECT id, quantity, sold, held FROM tickets WHERE sold + held > quantity OR sold < 0 OR held < 0 ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    for (id, q, s, h) in rows {
        out.push(Violation {
            check: CHECKS[0],
            subject: format!("ticket {id}"),
            detail: format!("quantity {q}, sold {s}, held {h}"),
        });
    }
    for (i, status, column) in [(1, "pending", "held"), (2, "paid", "sold")] {
        let sql = format!(
            "SELECT t.id, t.{column}, COALESCE(x.n, 0)::int4 FROM tickets t LEFT JOIN \
               (SELECT ol.ticket_id, sum(ol.quantity) AS n FROM order_lines ol JOIN orders o ON o.id = ol.order_id \
                 WHERE o.status = $1 GROUP BY ol.ticket_id) x ON x.ticket_id = t.id \
              WHERE t.{column} <> COALESCE(x.n, 0) ORDER BY t.id LIMIT $2"
        );
        let rows: Vec<(i64, i32, i32)> = sqlx::query_as(&sql)
            .bind(status)
            .bind(limit)
            .fetch_all(pool)
            .await?;
        for (id, counter, n) in rows {
            out.push(Violation {
                check: CHECKS[i],
                subject: format!("ticket {id}"),
                detail: format!("{column} = {counter} but {status} orders hold {n}"),
            });
        }
    }
    let rows: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, expires_at FROM orders WHERE status = 'pending' AND expires_at <= $1 ORDER BY id LIMIT $2",
    )
    .bind(lapsed_before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    for (id, at) in rows {
        out.push(Violation {
            check: CHECKS[3],
            subject: format!("order {id}"),
            detail: format!("pending, expired at {at}"),
        });
    }
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT o.id, COALESCE((SELECT sum(quantity) FROM order_lines WHERE order_id = o.id), 0)::int8, \
                (SELECT count(*) FROM attendees WHERE order_id = o.id) \
           FROM orders o WHERE o.status = 'paid' \
            AND COALESCE((SELECT sum(quantity) FROM order_lines WHERE order_id = o.id), 0) \
                <> (SELECT count(*) FROM attendees WHERE order_id = o.id) \
          ORDER BY o.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    for (id, want, got) in rows {
        out.push(Violation {
            check: CHECKS[4],
            subject: format!("order {id}"),
            detail: format!("{want} seats, {got} attendees"),
        });
    }
    let rows: Vec<i64> = sqlx::query_scalar(
        "SELECT o.id FROM orders o WHERE o.status = 'paid' AND ( \
            NOT EXISTS (SELECT 1 FROM outbox x WHERE x.dedup_key = 'email:order_confirmation:' || o.id::text) \
            OR EXISTS (SELECT 1 FROM attendees a WHERE a.order_id = o.id \
                       AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.dedup_key = 'pdf:' || a.uuid::text))) \
          ORDER BY o.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    for id in rows {
        out.push(Violation {
            check: CHECKS[5],
            subject: format!("order {id}"),
            detail: "missing outbox job (email confirmation or a ticket PDF)".into(),
        });
    }
    let rows: Vec<(i64, String, i32, Option<i32>, i64)> = sqlx::query_as(
        "SELECT * FROM (SELECT p.id, p.code, p.uses, p.max_uses, \
                (SELECT count(*) FROM orders o WHERE o.promo_code_id = p.id AND o.status IN ('pending', 'paid')) AS n \
           FROM promo_codes p) x WHERE (x.max_uses IS NOT NULL AND x.uses > x.max_uses) OR x.uses <> x.n \
          ORDER BY x.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    for (id, code, uses, max, n) in rows {
        out.push(Violation {
            check: CHECKS[6],
            subject: format!("promo {id} ({code})"),
            detail: format!("uses {uses}, max_uses {max:?}, pending+paid orders using it {n}"),
        });
    }
    let rows: Vec<(i64, Decimal, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT * FROM (SELECT o.id, o.subtotal, o.discount, o.total, \
                COALESCE((SELECT sum(line_total) FROM order_lines WHERE order_id = o.id), 0) AS lines \
           FROM orders o) x WHERE x.total <> x.subtotal - x.discount OR x.total <> x.lines ORDER BY x.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    for (id, sub, disc, total, lines) in rows {
        out.push(Violation {
            check: CHECKS[7],
            subject: format!("order {id}"),
            detail: format!("subtotal {sub} - discount {disc} vs total {total}, lines {lines}"),
        });
    }
    Ok(out)
}
