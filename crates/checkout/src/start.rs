//! Starting a checkout: validate and price (pique-core), hold seats (pique-store, per
//! strategy), then talk to Stripe (outside any transaction or lock).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pique_core::{
    CheckoutStrategy, Money, OrderStatus,
    pricing::{self, CheckoutRequest, PricedOrder},
};
use pique_store::{
    checkout::{self as store, LockError, NewOrder, RedisLocks, SeatMode},
    orders::{self, OrderRow},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Checkout, CheckoutError, Refusal, payments::SessionRequest};

/// How long a Redis tier lock lives (the original's 120 s).
pub const LOCK_TTL: Duration = Duration::from_secs(120);
/// How long a buyer waits for the Redis locks before giving up (the original's 5 s).
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The answer of `POST /checkout/` (and the stored result of a queued request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckoutStarted {
    /// Order id.
    pub order_id: i64,
    /// Order public uuid.
    pub order_uuid: Uuid,
    /// Stripe Checkout Session (`null` for a free order).
    pub session_id: Option<String>,
    /// Where to send the buyer: Stripe's hosted page, or the success page of a free order.
    pub url: Option<String>,
    /// End of the seat hold.
    pub expires_at: DateTime<Utc>,
    /// `pending`, or `paid` for a free order.
    pub status: OrderStatus,
    /// Sum of lines before discount.
    pub subtotal: Money,
    /// Promo discount.
    pub discount: Money,
    /// Amount to pay.
    pub total: Money,
    /// ISO currency.
    pub currency: String,
    /// Strategy that took the hold.
    pub checkout_strategy: CheckoutStrategy,
}

/// What `POST /checkout/` did.
#[derive(Debug, Clone)]
pub enum Began {
    /// Seats held and the Stripe session created (or a free order paid).
    Started(CheckoutStarted),
    /// `queue` strategy: accepted; poll `checkout_id` for the outcome.
    Queued(Uuid),
}

/// A validated, priced request, ready to hold seats.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The request.
    pub request: CheckoutRequest,
    /// Its pricing.
    pub priced: PricedOrder,
    /// Show title (Stripe line names).
    pub show_title: String,
}

impl Checkout {
    /// `POST /checkout/`: validates the body, then holds the seats with the configured
    /// strategy, or (`queue`) stores the request for the `checkout` job.
    pub async fn begin(&self, body: &serde_json::Value) -> Result<Began, CheckoutError> {
        let request = pricing::parse_checkout_request(body)?;
        let prepared = self.prepare(request).await?;
        match self.settings.strategy {
            CheckoutStrategy::Queue => Ok(Began::Queued(self.enqueue(&prepared).await?)),
            strategy => Ok(Began::Started(
                self.start(&prepared, Uuid::new_v4(), strategy).await?,
            )),
        }
    }

    /// Validates a request against the database (show, tiers, promo) and prices it. Writes
    /// nothing.
    pub async fn prepare(&self, request: CheckoutRequest) -> Result<Prepared, CheckoutError> {
        let pool = &self.pool;
        let Some(show_title) = store::open_show_title(pool, request.show_id).await? else {
            return Err(Refusal::invalid(
                "show_id",
                format!(
                    "Invalid pk \"{}\" - object does not exist.",
                    request.show_id
                ),
            )
            .into());
        };
        let ids: Vec<i64> = request.lines.iter().map(|l| l.ticket_id).collect();
        let tiers = store::tiers_for_pricing(pool, &ids).await?;
        let promo = match &request.promo_code {
            None => None,
            Some(code) => match store::find_promo(pool, request.show_id, code).await? {
                Some(p) => Some(p),
                None => return Err(Refusal::invalid("promo_code", "Invalid promo code.").into()),
            },
        };
        let priced = pricing::price_order(
            request.show_id,
            &request.lines,
            &tiers,
            promo.as_ref(),
            Utc::now(),
        )?;
        Ok(Prepared {
            request,
            priced,
            show_title,
        })
    }

    /// Holds the seats of `prepared` with `strategy`, then creates the Stripe session (or
    /// pays a free order at once). `uuid` becomes the order's public id.
    pub async fn start(
        &self,
        prepared: &Prepared,
        uuid: Uuid,
        strategy: CheckoutStrategy,
    ) -> Result<CheckoutStarted, CheckoutError> {
        let started = Instant::now();
        let result = self.start_inner(prepared, uuid, strategy).await;
        let outcome = match &result {
            Ok(s) if s.status == OrderStatus::Paid => "free",
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        metrics::counter!("pique_checkout_attempts_total", "strategy" => strategy.as_str(), "outcome" => outcome).increment(1);
        metrics::histogram!("pique_checkout_duration_seconds", "strategy" => strategy.as_str())
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn start_inner(
        &self,
        prepared: &Prepared,
        uuid: Uuid,
        strategy: CheckoutStrategy,
    ) -> Result<CheckoutStarted, CheckoutError> {
        let req = &prepared.request;
        let new = NewOrder {
            uuid,
            show_id: req.show_id,
            email: &req.order_email,
            name: &req.order_name,
            priced: &prepared.priced,
            strategy,
            hold_ttl: self.settings.hold_ttl,
        };
        let reserved = match strategy {
            CheckoutStrategy::Reservation | CheckoutStrategy::Queue => {
                store::reserve(&self.pool, &new, SeatMode::ConditionalUpdate).await?
            }
            CheckoutStrategy::RedisLock => self.reserve_under_redis_locks(prepared, &new).await?,
        };
        self.expire_sessions_later(reserved.released_sessions);
        let order = reserved.order;
        if order.status == OrderStatus::Paid {
            let url = format!(
                "{}/success/?order_id={}",
                self.settings.public_url, order.uuid
            );
            return Ok(started(&order, None, Some(url)));
        }
        if order.status != OrderStatus::Pending {
            return Err(Refusal::conflict("This checkout is no longer pending.").into());
        }
        let seats: i32 = prepared.priced.lines.iter().map(|l| l.quantity).sum();
        metrics::gauge!("pique_holds_active").increment(f64::from(seats));
        let request = SessionRequest {
            order_id: order.id,
            order_uuid: order.uuid,
            email: &order.order_email,
            show_title: &prepared.show_title,
            lines: &prepared.priced.lines,
            hold_expires_at: order.expires_at.timestamp(),
        };
        let session = match self.payments.create_session(&request).await {
            Ok(s) => s,
            Err(e) => {
                // No session, no sale: give the seats back at once.
                if let Err(release) =
                    orders::release_by_id(&self.pool, order.id, OrderStatus::Cancelled).await
                {
                    tracing::error!(order_id = order.id, error = %release, "releasing the hold after a Stripe failure failed");
                } else {
                    metrics::gauge!("pique_holds_active").decrement(f64::from(seats));
                }
                return Err(e.into());
            }
        };
        if !orders::set_session(&self.pool, order.id, &session.id).await? {
            // A redelivered queue job finds the session already stored; anything else means
            // the hold was released meanwhile, so the session must not stay payable.
            let current = orders::by_id(&self.pool, order.id)
                .await?
                .ok_or(Refusal::NotFound)?;
            if current.status != OrderStatus::Pending
                || current.session_id.as_deref() != Some(session.id.as_str())
            {
                let _ = self.payments.expire(&session.id).await;
                return Err(
                    Refusal::conflict("The seat hold ended before payment could start.").into(),
                );
            }
        }
        Ok(started(&order, Some(session.id), session.url))
    }

    /// The `redis-lock` strategy: per-tier Redis locks around a `SELECT ... FOR UPDATE`
    /// transaction, released before the Stripe call, as the original does.
    async fn reserve_under_redis_locks(
        &self,
        prepared: &Prepared,
        new: &NewOrder<'_>,
    ) -> Result<store::Reserved, CheckoutError> {
        let busy = |message: String| CheckoutError::from(Refusal::Busy { message });
        // Fail closed: the original's locks are its only guard, so no Redis, no sale.
        let unavailable = || busy("Checkout is temporarily unavailable; please try again.".into());
        let Some(cache) = &self.locks else {
            return Err(unavailable());
        };
        let Some(conn) = cache.connection().await else {
            return Err(unavailable());
        };
        let locks = RedisLocks::new(conn, &format!("{}:checkout", cache.prefix()), LOCK_TTL);
        let tiers: Vec<i64> = prepared.priced.seats().iter().map(|s| s.0).collect();
        let held = match locks.acquire(&tiers, LOCK_WAIT).await {
            Ok(h) => h,
            Err(e) => {
                if let LockError::Timeout { waited } = &e {
                    metrics::histogram!("pique_lock_wait_seconds").record(waited.as_secs_f64());
                    metrics::counter!("pique_lock_timeouts_total").increment(1);
                }
                return Err(busy(e.to_string()));
            }
        };
        metrics::histogram!("pique_lock_wait_seconds").record(held.waited.as_secs_f64());
        let result = store::reserve(&self.pool, new, SeatMode::RowLock).await;
        // Released after the transaction, before the Stripe call.
        if let Err(e) = locks.release(held).await {
            tracing::warn!(error = %e, "releasing checkout locks failed; they expire by TTL");
        }
        Ok(result?)
    }

    /// Expires Stripe sessions of released holds in the background (they must not stay
    /// payable, but the buyer who freed the seats should not wait for it).
    fn expire_sessions_later(&self, sessions: Vec<String>) {
        if sessions.is_empty() {
            return;
        }
        let payments = self.payments.clone();
        tokio::spawn(async move {
            for s in sessions {
                if let Err(e) = payments.expire(&s).await {
                    tracing::warn!(session = %s, error = %e, "expiring a lapsed session failed");
                }
            }
        });
    }
}

fn started(order: &OrderRow, session_id: Option<String>, url: Option<String>) -> CheckoutStarted {
    CheckoutStarted {
        order_id: order.id,
        order_uuid: order.uuid,
        session_id,
        url,
        expires_at: order.expires_at,
        status: order.status,
        subtotal: order.subtotal,
        discount: order.discount,
        total: order.total,
        currency: order.currency.clone(),
        checkout_strategy: order.checkout_strategy,
    }
}
