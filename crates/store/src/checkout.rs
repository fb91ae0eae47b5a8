//! Checkout storage: reading what pricing needs, and taking seats under each strategy.
//!
//! Every strategy ends in the same transaction shape:
//! 1. release the expired holds of the tiers involved ([`release_expired_for`]), so a lapsed
//!    hold never blocks a buyer even before the sweeper runs;
//! 2. take the seats: `reservation` with one conditional `UPDATE ... WHERE quantity - sold -
//!    held >= n` per tier, `redis-lock` with `SELECT ... FOR UPDATE` and the shared
//!    availability function (the Redis locks themselves are [`RedisLocks`]);
//! 3. count a promo use (conditional on `max_uses`);
//! 4. insert the pending order and its lines (the order *is* the hold, until `expires_at`);
//! 5. a free order is paid in the same transaction ([`crate::orders::pay_in_tx`]).
//!
//! A paid-for hold with conditional updates (`reservation`, `queue`: nearly every checkout)
//! runs these steps as one statement, the `pique_reserve` function of migration 0006, outside
//! any explicit transaction: statement and commit are one round trip, so the hot tier's row
//! lock is never held while the client reads an answer and sends the next statement. Free
//! orders (paid in the transaction) and `redis-lock` run them statement by statement.
//!
//! Lock order, everywhere (checkout, cancel, expiry, sweeper, late payment): the order row,
//! then promo code rows (id order), then tier rows (id order). Taking the promo after the
//! tiers in one path and before them in another let a promo checkout and a cancel of the
//! same promo deadlock; PostgreSQL broke it after `deadlock_timeout` and the checkout
//! answered 500 ([`lock_promo`]).
//! The `tickets_no_oversell` CHECK constraint backs all of this up in the database itself.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pique_core::{
    CheckoutStrategy, OrderStatus, RequestStatus, availability,
    jobs::JobSpec,
    pricing::{DiscountType, PricedOrder, PromoInfo, TierInfo},
};
use redis::aio::ConnectionManager;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{StoreError, orders};

/// The title of show `show_id` if tickets can be bought for it (published, not deleted).
pub async fn open_show_title(pool: &PgPool, show_id: i64) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar!(
        "SELECT title FROM shows WHERE id = $1 AND published AND NOT is_deleted",
        show_id
    )
    .fetch_optional(pool)
    .await?)
}

/// The tiers with ids in `ids` (whatever show they belong to; pricing checks that).
pub async fn tiers_for_pricing(pool: &PgPool, ids: &[i64]) -> Result<Vec<TierInfo>, StoreError> {
    Ok(sqlx::query_as!(
        TierInfo,
        "SELECT id, show_id, name, price, is_donation_based, max_per_order FROM tickets WHERE id = ANY($1)",
        ids
    )
    .fetch_all(pool)
    .await?)
}

/// The promo code `code` (case-insensitive) of show `show_id`.
pub async fn find_promo(
    pool: &PgPool,
    show_id: i64,
    code: &str,
) -> Result<Option<PromoInfo>, StoreError> {
    Ok(sqlx::query_as!(
        PromoInfo,
        r#"SELECT id, show_id, code, discount, discount_type AS "discount_type: DiscountType", max_uses, uses,
                  valid_from, valid_until, is_active
             FROM promo_codes WHERE show_id = $1 AND upper(code) = upper($2)"#,
        show_id,
        code
    )
    .fetch_optional(pool)
    .await?)
}

/// Promo codes named `code` on upcoming public shows, soonest show first, at most `limit`
/// (for `POST /validate-promo/` without a `show_id`).
pub async fn promos_on_upcoming_shows(
    pool: &PgPool,
    code: &str,
    limit: i64,
) -> Result<Vec<PromoInfo>, StoreError> {
    Ok(sqlx::query_as!(
        PromoInfo,
        r#"SELECT p.id, p.show_id, p.code, p.discount, p.discount_type AS "discount_type: DiscountType", p.max_uses,
                  p.uses, p.valid_from, p.valid_until, p.is_active
             FROM shows s JOIN promo_codes p ON p.show_id = s.id AND upper(p.code) = upper($1)
            WHERE s.published AND NOT s.is_deleted AND s.start_time > now()
            ORDER BY s.start_time, s.id LIMIT $2"#,
        code,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Everything needed to write a pending order.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    /// Public id of the order (the `queue` strategy passes its request id, so a redelivered
    /// job finds the order it already made).
    pub uuid: Uuid,
    /// The show.
    pub show_id: i64,
    /// Buyer email.
    pub email: &'a str,
    /// Buyer name.
    pub name: &'a str,
    /// Priced lines and totals.
    pub priced: &'a PricedOrder,
    /// Strategy stored on the order.
    pub strategy: CheckoutStrategy,
    /// How long the hold lasts.
    pub hold_ttl: Duration,
}

/// A hold that was taken.
#[derive(Debug, Clone)]
pub struct Reserved {
    /// The new order.
    pub order: orders::OrderRow,
    /// Stripe sessions of expired holds released on the way (their sessions should be
    /// expired at Stripe too, after commit).
    pub released_sessions: Vec<String>,
}

/// Why seats could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// Not enough seats left in a tier.
    #[error("Not enough tickets available for \"{name}\": {available} left.")]
    SoldOut {
        /// The tier.
        ticket_id: i64,
        /// Its name.
        name: String,
        /// Seats still available.
        available: i32,
    },
    /// The promo code reached `max_uses` meanwhile.
    #[error("This promo code has reached its usage limit.")]
    PromoUsedUp,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ReserveError {
    fn from(e: sqlx::Error) -> Self {
        ReserveError::Store(e.into())
    }
}

/// How seats are taken inside the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatMode {
    /// Conditional `UPDATE` per tier (`reservation`, `queue`).
    ConditionalUpdate,
    /// `SELECT ... FOR UPDATE`, check with [`availability::can_take`], then `UPDATE`
    /// (`redis-lock`, as the original does inside its locks).
    RowLock,
}

/// Takes the seats of `new` and writes its pending order, in one transaction.
///
/// If an order with `new.uuid` already exists (a redelivered queue job), it is returned as is.
pub async fn reserve(
    pool: &PgPool,
    new: &NewOrder<'_>,
    mode: SeatMode,
) -> Result<Reserved, ReserveError> {
    if mode == SeatMode::ConditionalUpdate && !new.priced.is_free() {
        return reserve_in_one_statement(pool, new).await;
    }
    let mut tx = pool.begin().await?;
    if new.strategy == CheckoutStrategy::Queue
        && let Some(existing) = orders::by_uuid(&mut *tx, new.uuid).await?
    {
        return Ok(Reserved {
            order: existing,
            released_sessions: Vec::new(),
        });
    }
    if !new.priced.is_free() {
        // See `reserve_in_one_statement` for why a hold commits without waiting for the WAL.
        sqlx::query_scalar!("SELECT set_config('synchronous_commit', 'off', true)")
            .fetch_one(&mut *tx)
            .await?;
    }
    // The promo row is locked before anything touches a tier (see the module's lock order);
    // the conditional use count comes after expired holds gave their uses back.
    if let Some(promo_id) = new.priced.promo_id {
        lock_promo(&mut tx, promo_id).await?;
    }
    let seats = new.priced.seats();
    let tier_ids: Vec<i64> = seats.iter().map(|(id, _)| *id).collect();
    let released_sessions = release_expired_for(&mut tx, &tier_ids).await?;
    // Everything that does not need the tier rows comes first: the row lock the seat update
    // takes is then held only until the commit right after it, which is what bounds
    // throughput when every buyer wants the same tier.
    let mut order = insert_order(&mut tx, new).await?;
    if let Some(promo_id) = new.priced.promo_id {
        let used = sqlx::query_scalar!(
            "UPDATE promo_codes SET uses = uses + 1 WHERE id = $1 AND (max_uses IS NULL OR uses < max_uses) RETURNING id",
            promo_id
        )
        .fetch_optional(&mut *tx)
        .await?;
        if used.is_none() {
            return Err(ReserveError::PromoUsedUp);
        }
    }
    take_seats(&mut tx, new.show_id, &seats, mode).await?;
    if new.priced.is_free() {
        orders::pay_in_tx(&mut tx, order.id, None).await?;
        order = orders::by_id(&mut *tx, order.id)
            .await?
            .ok_or(StoreError::NotFound)?;
    }
    tx.commit().await?;
    Ok(Reserved {
        order,
        released_sessions,
    })
}

/// SQLSTATE `pique_reserve` raises when a tier lacks seats (DETAIL: the tier id).
const NOT_ENOUGH_SEATS: &str = "PQ001";
/// SQLSTATE `pique_reserve` raises when the promo code reached `max_uses` meanwhile.
const PROMO_USED_UP: &str = "PQ002";

/// A paid-for hold with conditional updates (`reservation`, `queue`): the same steps as
/// [`reserve`], done by the `pique_reserve` function (migration 0006) in one statement outside
/// any explicit transaction, so the statement and its commit are one round trip. The hot
/// tier's row lock is taken last inside it and released by that commit: no client round trip
/// ever happens while it is held (with a statement per round trip, the lock holder was idle
/// in transaction most of the time, and a hot tier's checkouts per second were bounded by
/// that idle time).
///
/// A hold is not money: it lapses on its own in 30 minutes, and no payment exists yet. So its
/// commit does not wait for the WAL flush, which otherwise runs while the hot tier's row lock
/// is held and caps every tier at one checkout per disk flush (~4 ms here, ~220 checkouts/s
/// for a sold-out-in-minutes show). If PostgreSQL crashes within the next ~0.6 s the hold can
/// be lost; a payment for it then arrives for an order that does not exist and is refunded
/// like any payment without seats. Orders paid at once (free ones) and every payment path
/// keep synchronous commits.
async fn reserve_in_one_statement(
    pool: &PgPool,
    new: &NewOrder<'_>,
) -> Result<Reserved, ReserveError> {
    let p = new.priced;
    let seats = p.seats();
    let seat_tickets: Vec<i64> = seats.iter().map(|(id, _)| *id).collect();
    let seat_counts: Vec<i32> = seats.iter().map(|(_, n)| *n).collect();
    let LineColumns {
        uuids,
        tickets,
        quantities,
        prices,
        donations,
        discounts,
        totals,
    } = LineColumns::of(p);
    let result = sqlx::query!(
        r#"SELECT order_id AS "order_id!", existing AS "existing!", expires_at AS "expires_at!",
                  created_at AS "created_at!", currency AS "currency!", released_sessions AS "released_sessions!"
             FROM pique_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"#,
        new.uuid,
        new.show_id,
        new.email,
        new.name,
        p.promo_id,
        p.subtotal as _,
        p.discount as _,
        p.total as _,
        new.strategy.as_str(),
        new.hold_ttl.as_secs_f64(),
        &uuids,
        &tickets,
        &quantities,
        &prices,
        &donations as &[Option<Decimal>],
        &discounts,
        &totals,
        &seat_tickets,
        &seat_counts,
    )
    .fetch_one(pool)
    .await;
    let row = match result {
        Ok(row) => row,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(NOT_ENOUGH_SEATS) => {
            let ticket_id = e
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| pg.detail())
                .and_then(|d| d.parse().ok())
                .unwrap_or_default();
            return Err(sold_out(pool, ticket_id).await);
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(PROMO_USED_UP) => {
            return Err(ReserveError::PromoUsedUp);
        }
        Err(e) => return Err(e.into()),
    };
    let order = if row.existing {
        orders::by_id(pool, row.order_id)
            .await?
            .ok_or(StoreError::NotFound)?
    } else {
        orders::OrderRow {
            id: row.order_id,
            uuid: new.uuid,
            show_id: new.show_id,
            order_email: new.email.to_string(),
            order_name: new.name.to_string(),
            status: OrderStatus::Pending,
            promo_code_id: p.promo_id,
            subtotal: p.subtotal.into(),
            discount: p.discount.into(),
            total: p.total.into(),
            currency: row.currency,
            checkout_strategy: new.strategy,
            session_id: None,
            payment_intent_id: None,
            expires_at: row.expires_at,
            paid_at: None,
            cancelled_at: None,
            refunded_at: None,
            created_at: row.created_at,
        }
    };
    Ok(Reserved {
        order,
        released_sessions: row.released_sessions,
    })
}

/// Locks promo code `promo_id` (`FOR UPDATE`): callers that will touch tier rows take the
/// promo first, so promo and tier locks are always acquired in the same order.
pub(crate) async fn lock_promo(conn: &mut PgConnection, promo_id: i64) -> Result<(), StoreError> {
    sqlx::query_scalar!(
        "SELECT id FROM promo_codes WHERE id = $1 FOR UPDATE",
        promo_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(())
}

async fn take_seats(
    conn: &mut PgConnection,
    show_id: i64,
    seats: &[(i64, i32)],
    mode: SeatMode,
) -> Result<(), ReserveError> {
    // `seats` is sorted by tier id (pricing merges lines into a BTreeMap).
    for &(ticket_id, n) in seats {
        match mode {
            SeatMode::ConditionalUpdate => {
                let taken = sqlx::query_scalar!(
                    "UPDATE tickets SET held = held + $3 WHERE id = $1 AND show_id = $2 AND quantity - sold - held >= $3 \
                     RETURNING id",
                    ticket_id,
                    show_id,
                    n
                )
                .fetch_optional(&mut *conn)
                .await?;
                if taken.is_none() {
                    return Err(sold_out(&mut *conn, ticket_id).await);
                }
            }
            SeatMode::RowLock => {
                let row = sqlx::query!(
                    "SELECT name, quantity, sold, held FROM tickets WHERE id = $1 AND show_id = $2 FOR UPDATE",
                    ticket_id,
                    show_id
                )
                .fetch_optional(&mut *conn)
                .await?;
                let Some(t) = row else {
                    return Err(ReserveError::SoldOut {
                        ticket_id,
                        name: String::new(),
                        available: 0,
                    });
                };
                // Expired holds of this tier were released just before, so `held` is active.
                if !availability::can_take(t.quantity, t.sold, t.held, n) {
                    return Err(ReserveError::SoldOut {
                        ticket_id,
                        name: t.name,
                        available: availability::available(t.quantity, t.sold, t.held),
                    });
                }
                sqlx::query!(
                    "UPDATE tickets SET held = held + $2 WHERE id = $1",
                    ticket_id,
                    n
                )
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// The sold-out error of a tier, with what is left (read in the failing transaction, or
/// after it rolled back).
async fn sold_out<'c>(conn: impl sqlx::PgExecutor<'c>, ticket_id: i64) -> ReserveError {
    let row = sqlx::query!(
        "SELECT name, quantity, sold, held FROM tickets WHERE id = $1",
        ticket_id
    )
    .fetch_optional(conn)
    .await;
    match row {
        Ok(Some(t)) => ReserveError::SoldOut {
            ticket_id,
            name: t.name,
            available: availability::available(t.quantity, t.sold, t.held),
        },
        Ok(None) => ReserveError::SoldOut {
            ticket_id,
            name: String::new(),
            available: 0,
        },
        Err(e) => e.into(),
    }
}

async fn insert_order(
    conn: &mut PgConnection,
    new: &NewOrder<'_>,
) -> Result<orders::OrderRow, StoreError> {
    let p = new.priced;
    let order = sqlx::query_as!(
        orders::OrderRow,
        r#"INSERT INTO orders (uuid, show_id, order_email, order_name, status, promo_code_id, subtotal, discount,
                               total, checkout_strategy, expires_at)
           VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, now() + make_interval(secs => $10))
        RETURNING id, uuid, show_id, order_email, order_name, status AS "status: OrderStatus", promo_code_id,
                  subtotal, discount, total, currency, checkout_strategy AS "checkout_strategy: CheckoutStrategy",
                  session_id, payment_intent_id, expires_at, paid_at, cancelled_at, refunded_at, created_at"#,
        new.uuid,
        new.show_id,
        new.email,
        new.name,
        p.promo_id,
        p.subtotal,
        p.discount,
        p.total,
        new.strategy as CheckoutStrategy,
        new.hold_ttl.as_secs_f64(),
    )
    .fetch_one(&mut *conn)
    .await?;
    let LineColumns {
        uuids,
        tickets,
        quantities,
        prices,
        donations,
        discounts,
        totals,
    } = LineColumns::of(p);
    sqlx::query!(
        "INSERT INTO order_lines (uuid, order_id, ticket_id, quantity, price_per_ticket, donation_amount, discount, line_total) \
         SELECT u, $2, t, q, p, d, disc, lt \
           FROM UNNEST($1::uuid[], $3::int8[], $4::int4[], $5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[]) \
                AS x(u, t, q, p, d, disc, lt)",
        &uuids,
        order.id,
        &tickets,
        &quantities,
        &prices,
        &donations as &[Option<Decimal>],
        &discounts,
        &totals,
    )
    .execute(&mut *conn)
    .await?;
    Ok(order)
}

/// Expires the lapsed pending orders that hold seats of `tier_ids` and gives their seats
/// back, inside the caller's transaction. Returns their Stripe session ids.
///
/// Orders another transaction is working on are skipped (`SKIP LOCKED`): that transaction
/// either pays them or releases them itself. The work is the `pique_release_expired_for`
/// function (migration 0006), shared with the one-statement checkout.
pub async fn release_expired_for(
    conn: &mut PgConnection,
    tier_ids: &[i64],
) -> Result<Vec<String>, StoreError> {
    let sessions =
        sqlx::query_scalar!("SELECT s FROM pique_release_expired_for($1) AS s", tier_ids)
            .fetch_all(conn)
            .await?;
    Ok(sessions.into_iter().flatten().collect())
}

/// Expires up to `limit` lapsed pending orders of any tier and releases their seats (the
/// sweeper). Returns `(order id, Stripe session id)` of each.
pub async fn sweep_expired(
    pool: &PgPool,
    limit: i64,
) -> Result<Vec<(i64, Option<String>)>, StoreError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query!(
        "SELECT id, session_id FROM orders WHERE status = 'pending' AND expires_at <= now() \
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit
    )
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    orders::release_locked(&mut tx, &ids, OrderStatus::Expired).await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|r| (r.id, r.session_id)).collect())
}

/// Seats held by pending orders, all tiers (the `pique_holds_active` gauge).
pub async fn seats_held(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT COALESCE(sum(held), 0)::int8 AS "held!" FROM tickets"#)
            .fetch_one(pool)
            .await?,
    )
}

// ---------------------------------------------------------------- queue strategy

/// A queued checkout request (`checkout_requests`).
#[derive(Debug, Clone)]
pub struct CheckoutRequestRow {
    /// The id returned to the client as `checkout_id`.
    pub id: Uuid,
    /// Where it stands.
    pub status: RequestStatus,
    /// The request body.
    pub request: serde_json::Value,
    /// The `POST /checkout/` answer once completed.
    pub result: Option<serde_json::Value>,
    /// Why it was refused, once failed.
    pub refusal: Option<serde_json::Value>,
    /// When accepted.
    pub created_at: DateTime<Utc>,
}

/// Records a request and its `checkout` job in one transaction (the relay pushes the job).
pub async fn enqueue_request(
    pool: &PgPool,
    id: Uuid,
    request: &serde_json::Value,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "INSERT INTO checkout_requests (id, request) VALUES ($1, $2)",
        id,
        request
    )
    .execute(&mut *tx)
    .await?;
    crate::outbox::enqueue(&mut tx, &[JobSpec::ProcessCheckout { checkout_id: id }]).await?;
    tx.commit().await?;
    Ok(())
}

/// A queued request by id.
pub async fn request(pool: &PgPool, id: Uuid) -> Result<Option<CheckoutRequestRow>, StoreError> {
    Ok(sqlx::query_as!(
        CheckoutRequestRow,
        r#"SELECT id, status AS "status: RequestStatus", request, result, refusal, created_at
             FROM checkout_requests WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?)
}

/// Stores the outcome of a queued request, once (a finished request is never rewritten):
/// its result when `completed`, else its refusal.
pub async fn finish_request(
    pool: &PgPool,
    id: Uuid,
    completed: bool,
    body: &serde_json::Value,
) -> Result<bool, StoreError> {
    let (status, result, refusal) = if completed {
        (RequestStatus::Completed, Some(body), None)
    } else {
        (RequestStatus::Failed, None, Some(body))
    };
    let done = sqlx::query!(
        "UPDATE checkout_requests SET status = $2, result = $3, refusal = $4, updated_at = now() \
         WHERE id = $1 AND status = 'processing'",
        id,
        status as RequestStatus,
        result,
        refusal
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

// ---------------------------------------------------------------- redis-lock strategy

/// Per-tier Redis locks as the original takes them (PIQUE-573): `SET key value NX PX ttl`
/// with a value unique to the request, in tier-id order, each waited on up to a deadline;
/// released by compare-and-delete so a lock that expired and was retaken by someone else is
/// never deleted by its first owner.
pub struct RedisLocks {
    conn: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

/// The locks one request holds; call [`HeldLocks::release`] when done (an unreleased lock
/// simply expires after its TTL, as in the original).
#[derive(Debug)]
pub struct HeldLocks {
    keys: Vec<String>,
    value: String,
    /// Total time spent waiting for the locks.
    pub waited: Duration,
}

/// Why locks could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another request held a lock for longer than the wait deadline.
    #[error("Tickets are being purchased by other buyers right now; please try again.")]
    Timeout {
        /// Time waited.
        waited: Duration,
    },
    /// Redis failed.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
}

const RELEASE_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

impl RedisLocks {
    /// Locks under `{prefix}:lock:ticket:{id}` with `ttl` (120 s in the original).
    pub fn new(conn: ConnectionManager, prefix: &str, ttl: Duration) -> Self {
        RedisLocks {
            conn,
            prefix: prefix.to_string(),
            ttl,
        }
    }

    /// Takes one lock per tier in `tier_ids` (sorted, deduplicated here), waiting up to
    /// `wait` in total. On failure, the locks already taken are released.
    pub async fn acquire(&self, tier_ids: &[i64], wait: Duration) -> Result<HeldLocks, LockError> {
        let mut ids = tier_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let value = Uuid::new_v4().to_string();
        let started = std::time::Instant::now();
        let deadline = started + wait;
        let mut held = HeldLocks {
            keys: Vec::with_capacity(ids.len()),
            value,
            waited: Duration::ZERO,
        };
        let mut conn = self.conn.clone();
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut backoff = Duration::from_millis(1);
        for id in ids {
            let key = format!("{}:lock:ticket:{id}", self.prefix);
            loop {
                let ok: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&held.value)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut conn)
                    .await?;
                if ok.is_some() {
                    held.keys.push(key);
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    let waited = started.elapsed();
                    let _ = self.release_keys(&held).await;
                    return Err(LockError::Timeout { waited });
                }
                // Short, growing, jittered sleeps: waiters poll like Django's cache.add loop.
                let jitter = Duration::from_micros(u64::from(Uuid::new_v4().as_bytes()[0]) * 4);
                tokio::time::sleep(backoff + jitter).await;
                backoff = (backoff * 2).min(Duration::from_millis(8));
            }
        }
        held.waited = started.elapsed();
        Ok(held)
    }

    /// Releases `held` by compare-and-delete.
    pub async fn release(&self, held: HeldLocks) -> Result<(), LockError> {
        self.release_keys(&held).await
    }

    async fn release_keys(&self, held: &HeldLocks) -> Result<(), LockError> {
        let mut conn = self.conn.clone();
        let script = redis::Script::new(RELEASE_SCRIPT);
        for key in held.keys.iter().rev() {
            let _: i64 = script
                .key(key)
                .arg(&held.value)
                .invoke_async(&mut conn)
                .await?;
        }
        Ok(())
    }
}

/// An order's priced lines as one array per `order_lines` column (with a fresh uuid each), the
/// shape `UNNEST` takes to insert them all in one statement.
struct LineColumns {
    uuids: Vec<Uuid>,
    tickets: Vec<i64>,
    quantities: Vec<i32>,
    prices: Vec<Decimal>,
    donations: Vec<Option<Decimal>>,
    discounts: Vec<Decimal>,
    totals: Vec<Decimal>,
}

impl LineColumns {
    fn of(p: &PricedOrder) -> Self {
        Self {
            uuids: p.lines.iter().map(|_| Uuid::new_v4()).collect(),
            tickets: p.lines.iter().map(|l| l.ticket_id).collect(),
            quantities: p.lines.iter().map(|l| l.quantity).collect(),
            prices: p.lines.iter().map(|l| l.price_per_ticket).collect(),
            donations: p.lines.iter().map(|l| l.donation_amount).collect(),
            discounts: p.lines.iter().map(|l| l.discount).collect(),
            totals: p.lines.iter().map(|l| l.line_total).collect(),
        }
    }
}
