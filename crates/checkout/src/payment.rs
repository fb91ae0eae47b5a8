//! Payment events: a paid session (`/success/` and the webhook share one path), a cancel, an
//! expired session, and the refund of a payment that arrived after its seats were gone.

use chrono::{DateTime, Utc};
use pique_core::{Money, OrderStatus};
use pique_store::orders::{self, EventRef, OrderKey, OrderRow, PaymentOutcome, ReleaseOutcome};
use serde::Serialize;
use uuid::Uuid;

use crate::{Checkout, CheckoutError, Refusal, payments::SessionState};

/// An order as `/success/` answers it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    /// Order id.
    pub order_id: i64,
    /// Public uuid.
    pub order_uuid: Uuid,
    /// Status.
    pub status: OrderStatus,
    /// Show.
    pub show_id: i64,
    /// Buyer email.
    pub order_email: String,
    /// Buyer name.
    pub order_name: String,
    /// Before discount.
    pub subtotal: Money,
    /// Discount.
    pub discount: Money,
    /// Charged.
    pub total: Money,
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
    pub price_per_ticket: Money,
    /// Donation per ticket.
    pub donation_amount: Option<Money>,
    /// Promo share.
    pub discount: Money,
    /// Line total.
    pub line_total: Money,
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

/// What became of a webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookReceipt {
    /// The signature or payload did not verify: nothing done.
    Rejected,
    /// Verified and handled.
    Handled {
        /// `duplicate`: the event had been processed before.
        duplicate: bool,
    },
}

/// What `/cancel/` refers to.
#[derive(Debug, Clone)]
pub enum CancelKey {
    /// A Stripe session.
    Session(String),
    /// An order uuid (Stripe's `cancel_url` carries it).
    Order(Uuid),
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// The order.
    pub order_id: i64,
    /// Its status now.
    pub status: OrderStatus,
    /// `false` when it had already been released (cancelled or expired) before.
    pub now: bool,
}

impl Checkout {
    /// The full view of an order.
    pub async fn order_view(&self, order: OrderRow) -> Result<OrderView, CheckoutError> {
        let lines = orders::lines(&self.pool, order.id).await?;
        let attendees = orders::attendees(&self.pool, order.id).await?;
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

    /// Applies a paid session (the shared path of `/success/` and the webhook). A late
    /// payment whose seats are gone is refunded at Stripe and the order marked `refunded`.
    /// `Ok(None)` for a repeated event.
    pub async fn complete(
        &self,
        session: &SessionState,
        event: Option<EventRef<'_>>,
    ) -> Result<Option<OrderRow>, CheckoutError> {
        if !session.paid {
            return Err(Refusal::NotPaid.into());
        }
        let uuid = session
            .client_reference_id
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok());
        let key = OrderKey::Session(&session.id, uuid);
        let pi = session.payment_intent.as_deref();
        match orders::apply_payment(&self.pool, key, pi, event).await? {
            PaymentOutcome::Paid(o) => {
                self.holds_released(o.id).await?;
                metrics::counter!("pique_orders_paid_total").increment(1);
                Ok(Some(o))
            }
            PaymentOutcome::AlreadyPaid(o) | PaymentOutcome::AlreadyRefunded(o) => Ok(Some(o)),
            PaymentOutcome::Duplicate => Ok(None),
            PaymentOutcome::NotFound => Err(Refusal::NotFound.into()),
            PaymentOutcome::NeedsRefund(o) => {
                let Some(pi) = pi else {
                    return Err(Refusal::conflict(
                        "The payment cannot be refunded: no payment intent.",
                    )
                    .into());
                };
                self.payments.refund(pi, o.uuid).await?;
                metrics::counter!("pique_late_payments_refunded_total").increment(1);
                tracing::warn!(
                    order_id = o.id,
                    "payment arrived after the hold lapsed and the seats were gone; refunded"
                );
                match orders::mark_refunded(&self.pool, o.id, Some(pi), event).await? {
                    Some(r) => Ok(Some(r)),
                    None => Ok(orders::by_id(&self.pool, o.id).await?),
                }
            }
        }
    }

    /// `POST /success/`: the order of `session_id`, paid once. An order already paid
    /// answers from the database without asking Stripe.
    pub async fn success(&self, session_id: &str) -> Result<OrderView, CheckoutError> {
        if let Some(order) = orders::by_session(&self.pool, session_id).await?
            && order.status.is_settled()
        {
            return self.order_view(order).await;
        }
        let session = match self.payments.retrieve(session_id).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Err(Refusal::NotFound.into()),
            Err(e) => return Err(e.into()),
        };
        let order = self
            .complete(&session, None)
            .await?
            .ok_or(Refusal::NotFound)?;
        self.order_view(order).await
    }

    /// An order by public uuid (the success page of a free order).
    pub async fn order_by_uuid(&self, uuid: Uuid) -> Result<OrderView, CheckoutError> {
        let order = orders::by_uuid(&self.pool, uuid)
            .await?
            .ok_or(Refusal::NotFound)?;
        self.order_view(order).await
    }

    /// `/cancel/`: releases the hold of a pending order and expires its Stripe session. A
    /// cancel of a paid order is refused; of a released one, answered as is.
    pub async fn cancel(&self, key: &CancelKey) -> Result<Cancelled, CheckoutError> {
        let order_key = match key {
            CancelKey::Session(s) => OrderKey::Session(s, None),
            CancelKey::Order(u) => OrderKey::Uuid(*u),
        };
        match orders::release(&self.pool, order_key, OrderStatus::Cancelled, None).await? {
            ReleaseOutcome::Released(o) => {
                self.holds_released(o.id).await?;
                if let Some(s) = &o.session_id
                    && let Err(e) = self.payments.expire(s).await
                {
                    // The seats are already free; a payment on this session later is
                    // refunded or re-seated by the success path.
                    tracing::warn!(session = %s, error = %e, "expiring a cancelled session failed");
                }
                Ok(Cancelled {
                    order_id: o.id,
                    status: o.status,
                    now: true,
                })
            }
            ReleaseOutcome::NotPending(o) if o.status.is_settled() => Err(Refusal::conflict(
                format!("This order is {} and cannot be cancelled.", o.status),
            )
            .into()),
            ReleaseOutcome::NotPending(o) => Ok(Cancelled {
                order_id: o.id,
                status: o.status,
                now: false,
            }),
            ReleaseOutcome::NotFound | ReleaseOutcome::Duplicate => Err(Refusal::NotFound.into()),
        }
    }

    /// A Stripe webhook delivery: verifies its signature, then handles the event once (see
    /// [`Checkout::handle_event`]).
    pub async fn receive_webhook(
        &self,
        payload: &str,
        signature: &str,
    ) -> Result<WebhookReceipt, CheckoutError> {
        let event = match self.payments.verify_webhook(payload, signature) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "rejected a webhook");
                metrics::counter!("pique_webhooks_rejected_total").increment(1);
                return Ok(WebhookReceipt::Rejected);
            }
        };
        let new = self.handle_event(&event).await?;
        metrics::counter!("pique_webhooks_total", "type" => event.type_.as_str().to_string(), "duplicate" => (!new).to_string())
            .increment(1);
        Ok(WebhookReceipt::Handled { duplicate: !new })
    }

    /// A verified webhook event, handled: `Ok(true)` if it changed something or was new,
    /// `Ok(false)` for a repeat.
    pub async fn handle_event(&self, event: &stripe_webhook::Event) -> Result<bool, CheckoutError> {
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
                    return Ok(orders::record_event_only(&self.pool, r).await?);
                }
                match self.complete(&session, Some(r)).await {
                    Ok(o) => Ok(o.is_some()),
                    // Not ours (another integration on the same account): acknowledge.
                    Err(e) if e.is_not_found() => Ok(true),
                    Err(e) => Err(e),
                }
            }
            EventObject::CheckoutSessionExpired(s) => {
                let uuid = s
                    .client_reference_id
                    .as_deref()
                    .and_then(|u| Uuid::parse_str(u).ok());
                let key = OrderKey::Session(s.id.as_str(), uuid);
                match orders::release(&self.pool, key, OrderStatus::Expired, Some(r)).await? {
                    ReleaseOutcome::Released(o) => {
                        self.holds_released(o.id).await?;
                        Ok(true)
                    }
                    ReleaseOutcome::Duplicate => Ok(false),
                    _ => Ok(true),
                }
            }
            _ => Ok(orders::record_event_only(&self.pool, r).await?),
        }
    }

    /// Takes the seats of order `order_id` off the `pique_holds_active` gauge.
    async fn holds_released(&self, order_id: i64) -> Result<(), CheckoutError> {
        let seats = orders::seat_count(&self.pool, order_id).await?;
        metrics::gauge!("pique_holds_active").decrement(seats as f64);
        Ok(())
    }
}
