//! The money path's orchestration: validate and price (pique-core), hold seats (pique-store,
//! per strategy), then talk to Stripe (outside any transaction or lock); payment, cancel,
//! webhook events, the queue strategy's job and the hold sweeper.
//!
//! Handlers in `routes::checkout` only parse and map; the worker calls [`process_queued`]
//! and [`sweep`] through the hooks of `pique worker`.

use std::time::{Duration, Instant};

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use pique_core::{
    CheckoutStrategy, money,
    pricing::{self, CheckoutRequest, PricedOrder},
    query::FieldErrors,
};
use pique_store::{
    StoreError,
    checkout::{self as store, NewOrder, RedisLocks, ReserveError, SeatMode},
    orders::{self, EventRef, OrderKey, OrderRow, PaymentOutcome, ReleaseOutcome, Status},
};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    AppState,
    payments::{PaymentError, SessionRequest, SessionState},
};

/// How long a Redis tier lock lives (the original's 120 s).
pub const LOCK_TTL: Duration = Duration::from_secs(120);
/// How long a buyer waits for the Redis locks before giving up (the original's 5 s).
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Why a checkout step failed; each maps to a DRF-shaped response.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// Bad input: 400 with per-field messages.
    #[error("validation failed")]
    Invalid(FieldErrors),
    /// Not enough seats: 409.
    #[error("{message}")]
    SoldOut {
        /// Message for the buyer.
        message: String,
        /// The tier.
        ticket_id: i64,
        /// Seats left.
        available: i32,
    },
    /// A state conflict other than seats (promo used up meanwhile, order no longer pending): 409.
    #[error("{0}")]
    Conflict(String),
    /// The Redis locks could not be taken in time, or Redis is down: 503.
    #[error("{0}")]
    Busy(String),
    /// Unknown order / session: 404.
    #[error("not found")]
    NotFound,
    /// The session was not paid: 400.
    #[error("Payment has not been completed.")]
    NotPaid,
    /// Stripe failed; the hold was released: 502 (refused) or 503 (unavailable).
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CheckoutError {
    /// HTTP status and DRF body.
    pub fn status_and_body(&self) -> (StatusCode, serde_json::Value) {
        match self {
            CheckoutError::Invalid(e) => (StatusCode::BAD_REQUEST, json!(e)),
            CheckoutError::SoldOut {
                message,
                ticket_id,
                available,
            } => (
                StatusCode::CONFLICT,
                json!({ "detail": message, "ticket_id": ticket_id, "available": available }),
            ),
            CheckoutError::Conflict(m) => (StatusCode::CONFLICT, json!({ "detail": m })),
            CheckoutError::Busy(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "detail": m })),
            CheckoutError::NotFound => (StatusCode::NOT_FOUND, json!({ "detail": "Not found." })),
            CheckoutError::NotPaid => (
                StatusCode::BAD_REQUEST,
                json!({ "detail": self.to_string() }),
            ),
            CheckoutError::Payment(PaymentError::Rejected { message, .. }) => (
                StatusCode::BAD_GATEWAY,
                json!({ "detail": format!("The payment provider refused the request: {message}") }),
            ),
            CheckoutError::Payment(PaymentError::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "detail": "The payment provider is not answering; no seats were held. Please try again." }),
            ),
            CheckoutError::Store(e) => match e {
                StoreError::Database(sqlx::Error::PoolTimedOut) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "detail": "The database is not answering; try again shortly." }),
                ),
                other => {
                    tracing::error!(cause = %other, "checkout storage error");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({ "detail": "A server error occurred." }),
                    )
                }
            },
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            CheckoutError::Invalid(_) => "invalid",
            CheckoutError::SoldOut { .. } => "sold_out",
            CheckoutError::Conflict(_) => "conflict",
            CheckoutError::Busy(_) => "busy",
            CheckoutError::NotFound | CheckoutError::NotPaid => "invalid",
            CheckoutError::Payment(_) => "payment_error",
            CheckoutError::Store(_) => "error",
        }
    }
}

impl IntoResponse for CheckoutError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        (status, Json(body)).into_response()
    }
}

impl From<ReserveError> for CheckoutError {
    fn from(e: ReserveError) -> Self {
        match e {
            ReserveError::SoldOut {
                ticket_id,
                name,
                available,
            } => CheckoutError::SoldOut {
                message: if available == 0 {
                    format!("Sold out: no tickets left for \"{name}\".")
                } else {
                    format!("Not enough tickets available for \"{name}\": only {available} left.")
                },
                ticket_id,
                available,
            },
            ReserveError::PromoUsedUp => CheckoutError::Invalid(FieldErrors::single(
                "promo_code",
                "This promo code has reached its usage limit.",
            )),
            ReserveError::Store(s) => CheckoutError::Store(s),
        }
    }
}

impl From<FieldErrors> for CheckoutError {
    fn from(e: FieldErrors) -> Self {
        CheckoutError::Invalid(e)
    }
}

/// The answer of `POST /checkout/` (and the stored result of a queued request).
#[derive(Debug, Clone, Serialize)]
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
    pub status: String,
    /// Sum of lines before discount.
    #[serde(serialize_with = "money::two_places::serialize")]
    pub subtotal: Decimal,
    /// Promo discount.
    #[serde(serialize_with = "money::two_places::serialize")]
    pub discount: Decimal,
    /// Amount to pay.
    #[serde(serialize_with = "money::two_places::serialize")]
    pub total: Decimal,
    /// ISO currency.
    pub currency: String,
    /// Strategy that took the hold.
    pub checkout_strategy: String,
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

/// Validates a request against the database (show, tiers, promo) and prices it. Writes
/// nothing.
pub async fn prepare(
    state: &AppState,
    request: CheckoutRequest,
) -> Result<Prepared, CheckoutError> {
    let Some(show_title) = store::open_show_title(&state.pool, request.show_id).await? else {
        return Err(FieldErrors::single(
            "show_id",
            format!(
                "Invalid pk \"{}\" - object does not exist.",
                request.show_id
            ),
        )
        .into());
    };
    let ids: Vec<i64> = request.lines.iter().map(|l| l.ticket_id).collect();
    let tiers = store::tiers_for_pricing(&state.pool, &ids).await?;
    let promo = match &request.promo_code {
        None => None,
        Some(code) => match store::find_promo(&state.pool, request.show_id, code).await? {
            Some(p) => Some(p),
            None => return Err(FieldErrors::single("promo_code", "Invalid promo code.").into()),
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

/// Holds the seats of `prepared` with `strategy`, then creates the Stripe session (or pays a
/// free order at once). `uuid` becomes the order's public id.
pub async fn start(
    state: &AppState,
    prepared: &Prepared,
    uuid: Uuid,
    strategy: CheckoutStrategy,
) -> Result<CheckoutStarted, CheckoutError> {
    let started = Instant::now();
    let result = start_inner(state, prepared, uuid, strategy).await;
    let outcome = match &result {
        Ok(s) if s.status == "paid" => "free",
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    metrics::counter!("pique_checkout_attempts_total", "strategy" => strategy.as_str(), "outcome" => outcome).increment(1);
    metrics::histogram!("pique_checkout_duration_seconds", "strategy" => strategy.as_str())
        .record(started.elapsed().as_secs_f64());
    result
}

async fn start_inner(
    state: &AppState,
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
        strategy: strategy.as_str(),
        hold_ttl: state.config.hold_ttl,
    };
    let reserved = match strategy {
        CheckoutStrategy::Reservation | CheckoutStrategy::Queue => {
            store::reserve(&state.pool, &new, SeatMode::ConditionalUpdate).await?
        }
        CheckoutStrategy::RedisLock => {
            let Some(conn) = state.cache.connection().await else {
                // Fail closed: the original's locks are its only guard, so no Redis, no sale.
                return Err(CheckoutError::Busy(
                    "Checkout is temporarily unavailable; please try again.".into(),
                ));
            };
            let locks = RedisLocks::new(
                conn,
                &format!("{}:checkout", state.cache.prefix()),
                LOCK_TTL,
            );
            let tiers: Vec<i64> = prepared.priced.seats().iter().map(|s| s.0).collect();
            let held = match locks.acquire(&tiers, LOCK_WAIT).await {
                Ok(h) => h,
                Err(e) => {
                    if let store::LockError::Timeout { waited } = &e {
                        metrics::histogram!("pique_lock_wait_seconds").record(waited.as_secs_f64());
                        metrics::counter!("pique_lock_timeouts_total").increment(1);
                    }
                    return Err(CheckoutError::Busy(e.to_string()));
                }
            };
            metrics::histogram!("pique_lock_wait_seconds").record(held.waited.as_secs_f64());
            let result = store::reserve(&state.pool, &new, SeatMode::RowLock).await;
            // Released after the transaction, before the Stripe call, as in the original.
            if let Err(e) = locks.release(held).await {
                tracing::warn!(error = %e, "releasing checkout locks failed; they expire by TTL");
            }
            result?
        }
    };
    expire_sessions_later(state, reserved.released_sessions);
    let order = reserved.order;
    if order.status == "paid" {
        return Ok(started(&order, None, Some(free_url(state, &order))));
    }
    if order.status != "pending" {
        return Err(CheckoutError::Conflict(
            "This checkout is no longer pending.".into(),
        ));
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
    let session = match state.payments.create_session(&request).await {
        Ok(s) => s,
        Err(e) => {
            // No session, no sale: give the seats back at once.
            if let Err(release) =
                orders::release_by_id(&state.pool, order.id, Status::Cancelled).await
            {
                tracing::error!(order_id = order.id, error = %release, "releasing the hold after a Stripe failure failed");
            } else {
                metrics::gauge!("pique_holds_active").decrement(f64::from(seats));
            }
            return Err(e.into());
        }
    };
    if !orders::set_session(&state.pool, order.id, &session.id).await? {
        // A redelivered queue job finds the session already stored; anything else means the
        // hold was released meanwhile, so the session must not stay payable.
        let current = orders::by_id(&state.pool, order.id)
            .await?
            .ok_or(CheckoutError::NotFound)?;
        if current.status != "pending" || current.session_id.as_deref() != Some(session.id.as_str())
        {
            let _ = state.payments.expire(&session.id).await;
            return Err(CheckoutError::Conflict(
                "The seat hold ended before payment could start.".into(),
            ));
        }
    }
    Ok(started(&order, Some(session.id), session.url))
}

fn free_url(state: &AppState, order: &OrderRow) -> String {
    format!(
        "{}/success/?order_id={}",
        state.config.public_url.trim_end_matches('/'),
        order.uuid
    )
}

fn started(order: &OrderRow, session_id: Option<String>, url: Option<String>) -> CheckoutStarted {
    CheckoutStarted {
        order_id: order.id,
        order_uuid: order.uuid,
        session_id,
        url,
        expires_at: order.expires_at,
        status: order.status.clone(),
        subtotal: order.subtotal,
        discount: order.discount,
        total: order.total,
        currency: order.currency.clone(),
        checkout_strategy: order.checkout_strategy.clone(),
    }
}

/// Expires Stripe sessions of released holds in the background (they must not stay payable,
/// but the buyer who freed the seats should not wait for it).
fn expire_sessions_later(state: &AppState, sessions: Vec<String>) {
    if sessions.is_empty() {
        return;
    }
    let payments = state.payments.clone();
    tokio::spawn(async move {
        for s in sessions {
            if let Err(e) = payments.expire(&s).await {
                tracing::warn!(session = %s, error = %e, "expiring a lapsed session failed");
            }
        }
    });
}

// ---------------------------------------------------------------- payment

/// An order as `/success/` answers it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    /// Order id.
    pub order_id: i64,
    /// Public uuid.
    pub order_uuid: Uuid,
    /// Status.
    pub status: String,
    /// Show.
    pub show_id: i64,
    /// Buyer email.
    pub order_email: String,
    /// Buyer name.
    pub order_name: String,
    /// Before discount.
    #[serde(serialize_with = "money::two_places::serialize")]
    pub subtotal: Decimal,
    /// Discount.
    #[serde(serialize_with = "money::two_places::serialize")]
    pub discount: Decimal,
    /// Charged.
    #[serde(serialize_with = "money::two_places::serialize")]
    pub total: Decimal,
    /// Currency.
    pub currency: String,
    /// Stripe session.
    pub session_id: Option<String>,
    /// When paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// When refunded (late payment without seats).
    pub refunded_at: Option<DateTime<Utc>>,
    /// Lines.
    pub lines: Vec<LineOut>,
    /// One per seat once paid.
    pub attendees: Vec<AttendeeOut>,
}

/// A line of [`OrderView`].
#[derive(Debug, Clone, Serialize)]
pub struct LineOut {
    /// Tier.
    pub ticket_id: i64,
    /// Tier name.
    pub ticket_name: String,
    /// Seats.
    pub quantity: i32,
    /// Unit price paid.
    #[serde(serialize_with = "money::two_places::serialize")]
    pub price_per_ticket: Decimal,
    /// Donation per ticket.
    #[serde(serialize_with = "money::two_places_opt::serialize")]
    pub donation_amount: Option<Decimal>,
    /// Promo share.
    #[serde(serialize_with = "money::two_places::serialize")]
    pub discount: Decimal,
    /// Line total.
    #[serde(serialize_with = "money::two_places::serialize")]
    pub line_total: Decimal,
}

/// An attendee of [`OrderView`].
#[derive(Debug, Clone, Serialize)]
pub struct AttendeeOut {
    /// The ticket's QR payload.
    pub uuid: Uuid,
    /// Tier.
    pub ticket_id: i64,
    /// Seat number within the line.
    pub seq: i32,
    /// Name.
    pub name: String,
}

/// The full view of an order.
pub async fn order_view(state: &AppState, order: OrderRow) -> Result<OrderView, CheckoutError> {
    let lines = orders::lines(&state.pool, order.id).await?;
    let attendees = orders::attendees(&state.pool, order.id).await?;
    Ok(OrderView {
        order_id: order.id,
        order_uuid: order.uuid,
        status: order.status,
        show_id: order.show_id,
        order_email: order.order_email,
        order_name: order.order_name,
        subtotal: order.subtotal,
        discount: order.discount,
        total: order.total,
        currency: order.currency,
        session_id: order.session_id,
        paid_at: order.paid_at,
        refunded_at: order.refunded_at,
        lines: lines
            .into_iter()
            .map(|l| LineOut {
                ticket_id: l.ticket_id,
                ticket_name: l.ticket_name,
                quantity: l.quantity,
                price_per_ticket: l.price_per_ticket,
                donation_amount: l.donation_amount,
                discount: l.discount,
                line_total: l.line_total,
            })
            .collect(),
        attendees: attendees
            .into_iter()
            .map(|a| AttendeeOut {
                uuid: a.uuid,
                ticket_id: a.ticket_id,
                seq: a.seq,
                name: a.name,
            })
            .collect(),
    })
}

/// Applies a paid session (the shared path of `/success/` and the webhook). A late payment
/// whose seats are gone is refunded at Stripe and the order marked `refunded`.
/// `Ok(None)` for a repeated event.
pub async fn complete(
    state: &AppState,
    session: &SessionState,
    event: Option<EventRef<'_>>,
) -> Result<Option<OrderRow>, CheckoutError> {
    if !session.paid {
        return Err(CheckoutError::NotPaid);
    }
    let uuid = session
        .client_reference_id
        .as_deref()
        .and_then(|s| Uuid::parse_str(s).ok());
    let key = OrderKey::Session(&session.id, uuid);
    let pi = session.payment_intent.as_deref();
    match orders::apply_payment(&state.pool, key, pi, event).await? {
        PaymentOutcome::Paid(o) => {
            let seats: i64 = orders::lines(&state.pool, o.id)
                .await?
                .iter()
                .map(|l| i64::from(l.quantity))
                .sum();
            metrics::gauge!("pique_holds_active").decrement(seats as f64);
            metrics::counter!("pique_orders_paid_total").increment(1);
            Ok(Some(o))
        }
        PaymentOutcome::AlreadyPaid(o) | PaymentOutcome::AlreadyRefunded(o) => Ok(Some(o)),
        PaymentOutcome::Duplicate => Ok(None),
        PaymentOutcome::NotFound => Err(CheckoutError::NotFound),
        PaymentOutcome::NeedsRefund(o) => {
            let Some(pi) = pi else {
                return Err(CheckoutError::Conflict(
                    "The payment cannot be refunded: no payment intent.".into(),
                ));
            };
            state.payments.refund(pi, o.uuid).await?;
            metrics::counter!("pique_late_payments_refunded_total").increment(1);
            tracing::warn!(
                order_id = o.id,
                "payment arrived after the hold lapsed and the seats were gone; refunded"
            );
            match orders::mark_refunded(&state.pool, o.id, Some(pi), event).await? {
                Some(r) => Ok(Some(r)),
                None => Ok(orders::by_id(&state.pool, o.id).await?),
            }
        }
    }
}

/// `POST /success/`: the order of `session_id`, paid once. An order already paid answers
/// from the database without asking Stripe.
pub async fn success(state: &AppState, session_id: &str) -> Result<OrderView, CheckoutError> {
    if let Some(order) = orders::by_session(&state.pool, session_id).await?
        && (order.status == "paid" || order.status == "refunded")
    {
        return order_view(state, order).await;
    }
    let session = match state.payments.retrieve(session_id).await {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Err(CheckoutError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let order = complete(state, &session, None)
        .await?
        .ok_or(CheckoutError::NotFound)?;
    order_view(state, order).await
}

/// An order by public uuid (the success page of a free order).
pub async fn order_by_uuid(state: &AppState, uuid: Uuid) -> Result<OrderView, CheckoutError> {
    let order = orders::by_uuid(&state.pool, uuid)
        .await?
        .ok_or(CheckoutError::NotFound)?;
    order_view(state, order).await
}

/// What `/cancel/` refers to.
#[derive(Debug, Clone)]
pub enum CancelKey {
    /// A Stripe session.
    Session(String),
    /// An order uuid (Stripe's `cancel_url` carries it).
    Order(Uuid),
}

/// `/cancel/`: releases the hold of a pending order and expires its Stripe session. A cancel
/// of a paid order is refused (409); of a released one, answered as is.
pub async fn cancel(state: &AppState, key: &CancelKey) -> Result<serde_json::Value, CheckoutError> {
    let order_key = match key {
        CancelKey::Session(s) => OrderKey::Session(s, None),
        CancelKey::Order(u) => OrderKey::Uuid(*u),
    };
    match orders::release(&state.pool, order_key, Status::Cancelled, None).await? {
        ReleaseOutcome::Released(o) => {
            let seats: i64 = orders::lines(&state.pool, o.id)
                .await?
                .iter()
                .map(|l| i64::from(l.quantity))
                .sum();
            metrics::gauge!("pique_holds_active").decrement(seats as f64);
            if let Some(s) = &o.session_id
                && let Err(e) = state.payments.expire(s).await
            {
                // The seats are already free; a payment on this session later is refunded
                // or re-seated by the success path.
                tracing::warn!(session = %s, error = %e, "expiring a cancelled session failed");
            }
            Ok(json!({ "detail": "Order cancelled.", "order_id": o.id, "status": o.status }))
        }
        ReleaseOutcome::NotPending(o) if o.status == "paid" || o.status == "refunded" => {
            Err(CheckoutError::Conflict(format!(
                "This order is {} and cannot be cancelled.",
                o.status
            )))
        }
        ReleaseOutcome::NotPending(o) => Ok(
            json!({ "detail": format!("Order already {}.", o.status), "order_id": o.id, "status": o.status }),
        ),
        ReleaseOutcome::NotFound | ReleaseOutcome::Duplicate => Err(CheckoutError::NotFound),
    }
}

/// A verified webhook event, handled: `Ok(true)` if it changed something or was new,
/// `Ok(false)` for a repeat.
pub async fn handle_event(
    state: &AppState,
    event: &stripe_webhook::Event,
) -> Result<bool, CheckoutError> {
    use stripe_webhook::EventObject;
    let r = EventRef {
        id: event.id.as_str(),
        kind: event.type_.as_str(),
    };
    match &event.data.object {
        EventObject::CheckoutSessionCompleted(s)
        | EventObject::CheckoutSessionAsyncPaymentSucceeded(s) => {
            let session = SessionState::from_session(s);
            if !session.paid {
                // Async payment methods complete later with another event.
                return Ok(orders::record_event_only(&state.pool, r).await?);
            }
            match complete(state, &session, Some(r)).await {
                Ok(o) => Ok(o.is_some()),
                // Not ours (another integration on the same account): acknowledge.
                Err(CheckoutError::NotFound) => Ok(true),
                Err(e) => Err(e),
            }
        }
        EventObject::CheckoutSessionExpired(s) => {
            let uuid = s
                .client_reference_id
                .as_deref()
                .and_then(|u| Uuid::parse_str(u).ok());
            let key = OrderKey::Session(s.id.as_str(), uuid);
            match orders::release(&state.pool, key, Status::Expired, Some(r)).await? {
                ReleaseOutcome::Released(o) => {
                    let seats: i64 = orders::lines(&state.pool, o.id)
                        .await?
                        .iter()
                        .map(|l| i64::from(l.quantity))
                        .sum();
                    metrics::gauge!("pique_holds_active").decrement(seats as f64);
                    Ok(true)
                }
                ReleaseOutcome::Duplicate => Ok(false),
                _ => Ok(true),
            }
        }
        _ => Ok(orders::record_event_only(&state.pool, r).await?),
    }
}

// ---------------------------------------------------------------- queue strategy

/// Accepts a validated request for the `queue` strategy: stores it with its job and returns
/// the `checkout_id` to poll.
pub async fn enqueue(state: &AppState, prepared: &Prepared) -> Result<Uuid, CheckoutError> {
    let id = Uuid::now_v7();
    store::enqueue_request(&state.pool, id, &prepared.request.to_json()).await?;
    metrics::counter!("pique_checkout_attempts_total", "strategy" => "queue", "outcome" => "queued").increment(1);
    Ok(id)
}

/// A queued request failed in a way worth retrying (the job is delivered again), or the
/// job itself is malformed.
#[derive(Debug, thiserror::Error)]
pub enum QueueJobError {
    /// Storage failed while processing the request.
    #[error("queued checkout {id}: {source}")]
    Store {
        /// The request.
        id: Uuid,
        /// What failed.
        #[source]
        source: StoreError,
    },
    /// The job payload has no valid `checkout_id`.
    #[error("checkout job without a valid checkout_id: {0}")]
    InvalidPayload(String),
}

/// The `checkout` queue job's entry point: reads `checkout_id` from the payload and runs
/// [`process_queued`].
pub async fn process_job(
    state: &AppState,
    payload: &serde_json::Value,
) -> Result<(), QueueJobError> {
    let id = payload
        .get("checkout_id")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| QueueJobError::InvalidPayload(payload.to_string()))?;
    process_queued(state, id).await
}

/// The `checkout` queue's job: runs the reservation path for a queued request and stores
/// the answer. Idempotent: a finished request is skipped, and a redelivered one finds the
/// order it already made (its uuid is the request id) and the same Stripe session (same
/// idempotency key).
pub async fn process_queued(state: &AppState, id: Uuid) -> Result<(), QueueJobError> {
    let err = |source| QueueJobError::Store { id, source };
    let Some(row) = store::request(&state.pool, id).await.map_err(err)? else {
        return Ok(());
    };
    if row.status != "processing" {
        return Ok(());
    }
    let outcome = match pricing::parse_checkout_request(&row.request) {
        Err(e) => Err(CheckoutError::Invalid(e)),
        Ok(request) => match prepare(state, request).await {
            Ok(prepared) => start(state, &prepared, id, CheckoutStrategy::Queue).await,
            Err(e) => Err(e),
        },
    };
    let (completed, body, status) = match outcome {
        Ok(s) => (
            true,
            serde_json::to_value(&s).unwrap_or_default(),
            StatusCode::CREATED,
        ),
        Err(CheckoutError::Store(e)) => return Err(err(e)),
        Err(e) => {
            let (status, body) = e.status_and_body();
            (false, body, status)
        }
    };
    store::finish_request(&state.pool, id, completed, &body, status.as_u16())
        .await
        .map_err(err)?;
    Ok(())
}

/// `GET /checkout/status/{id}/`: `{"status": "processing"|"completed"|"failed",
/// "checkout_id", ...}` with the checkout answer merged in when completed (the order's own
/// status as `order_status`), or `error` and `http_status` when failed.
pub async fn queued_status(state: &AppState, id: Uuid) -> Result<serde_json::Value, CheckoutError> {
    let row = store::request(&state.pool, id)
        .await?
        .ok_or(CheckoutError::NotFound)?;
    // The checkout answer's own `status` (the order's) moves to `order_status`, so `status`
    // stays the request's.
    let mut body = match row.result {
        Some(serde_json::Value::Object(mut result)) => {
            if let Some(order_status) = result.remove("status") {
                result.insert("order_status".into(), order_status);
            }
            serde_json::Value::Object(result)
        }
        _ => json!({}),
    };
    body["status"] = json!(row.status);
    body["checkout_id"] = json!(row.id);
    if let Some(error) = row.error {
        body["error"] = error;
        body["http_status"] = json!(row.http_status);
    }
    Ok(body)
}

// ---------------------------------------------------------------- sweeper

/// Releases every lapsed hold and expires its Stripe session; returns how many orders it
/// expired. Safe to run anywhere, any number of times at once.
pub async fn sweep(state: &AppState) -> Result<u64, StoreError> {
    const BATCH: i64 = 500;
    let mut total = 0u64;
    loop {
        let swept = store::sweep_expired(&state.pool, BATCH).await?;
        let n = swept.len();
        total += n as u64;
        for (order_id, session) in swept {
            if let Some(s) = session
                && let Err(e) = state.payments.expire(&s).await
            {
                tracing::warn!(order_id, session = %s, error = %e, "expiring a lapsed session failed");
            }
        }
        if (n as i64) < BATCH {
            break;
        }
    }
    if let Ok(held) = store::seats_held(&state.pool).await {
        metrics::gauge!("pique_holds_active").set(held as f64);
    }
    Ok(total)
}
