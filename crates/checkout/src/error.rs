//! What can go wrong on the money path, in the domain's words. `pique-api` turns these into
//! HTTP answers in one place; a queued checkout stores its [`Refusal`] so that polling answers
//! exactly what the synchronous strategies would have.

use pique_core::validate::FieldErrors;
use pique_store::{StoreError, checkout::ReserveError};
use serde::{Deserialize, Serialize};

use crate::payments::PaymentError;

/// Why a checkout step failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The request was refused for a reason the buyer must hear (bad input, sold out, Stripe
    /// refused...). Nothing is held.
    #[error("{0}")]
    Refused(Refusal),
    /// Storage failed; worth retrying.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A refused request: everything but a storage failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// Bad input, per field.
    #[error("validation failed")]
    Invalid {
        /// Messages per field.
        errors: FieldErrors,
    },
    /// Not enough seats in a tier.
    #[error("{message}")]
    SoldOut {
        /// Message for the buyer.
        message: String,
        /// The tier.
        ticket_id: i64,
        /// Seats left.
        available: i32,
    },
    /// A state conflict other than seats (the order is no longer pending, the hold ended...).
    #[error("{message}")]
    Conflict {
        /// Message for the buyer.
        message: String,
    },
    /// The Redis locks could not be taken in time, or Redis is down.
    #[error("{message}")]
    Busy {
        /// Message for the buyer.
        message: String,
    },
    /// Unknown order or session.
    #[error("not found")]
    NotFound,
    /// The session was not paid.
    #[error("Payment has not been completed.")]
    NotPaid,
    /// Stripe refused the request (4xx); the hold was released.
    #[error("the payment provider refused the request ({status}): {message}")]
    PaymentRejected {
        /// Stripe's HTTP status.
        status: u16,
        /// Stripe's message.
        message: String,
    },
    /// Stripe did not answer usefully after the retries; the hold was released.
    #[error("the payment provider is unavailable: {message}")]
    PaymentUnavailable {
        /// What failed.
        message: String,
    },
}

impl Refusal {
    /// A single field error.
    pub fn invalid(field: &str, message: impl Into<String>) -> Refusal {
        Refusal::Invalid {
            errors: FieldErrors::single(field, message),
        }
    }

    /// A conflict with `message`.
    pub fn conflict(message: impl Into<String>) -> Refusal {
        Refusal::Conflict {
            message: message.into(),
        }
    }

    /// The `outcome` label of `pique_checkout_attempts_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Refusal::Invalid { .. } | Refusal::NotFound | Refusal::NotPaid => "invalid",
            Refusal::SoldOut { .. } => "sold_out",
            Refusal::Conflict { .. } => "conflict",
            Refusal::Busy { .. } => "busy",
            Refusal::PaymentRejected { .. } | Refusal::PaymentUnavailable { .. } => "payment_error",
        }
    }
}

impl CheckoutError {
    /// The `outcome` label of `pique_checkout_attempts_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            CheckoutError::Refused(r) => r.outcome(),
            CheckoutError::Store(_) => "error",
        }
    }

    /// Whether this is the refusal `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CheckoutError::Refused(Refusal::NotFound))
    }
}

impl From<Refusal> for CheckoutError {
    fn from(r: Refusal) -> Self {
        CheckoutError::Refused(r)
    }
}

impl From<FieldErrors> for CheckoutError {
    fn from(errors: FieldErrors) -> Self {
        Refusal::Invalid { errors }.into()
    }
}

impl From<PaymentError> for CheckoutError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Rejected { status, message } => {
                Refusal::PaymentRejected { status, message }.into()
            }
            PaymentError::Unavailable(message) => Refusal::PaymentUnavailable { message }.into(),
        }
    }
}

impl From<ReserveError> for CheckoutError {
    fn from(e: ReserveError) -> Self {
        match e {
            ReserveError::SoldOut {
                ticket_id,
                name,
                available,
            } => Refusal::SoldOut {
                message: if available == 0 {
                    format!("Sold out: no tickets left for \"{name}\".")
                } else {
                    format!("Not enough tickets available for \"{name}\": only {available} left.")
                },
                ticket_id,
                available,
            }
            .into(),
            ReserveError::PromoUsedUp => {
                Refusal::invalid("promo_code", "This promo code has reached its usage limit.")
                    .into()
            }
            ReserveError::Store(s) => CheckoutError::Store(s),
        }
    }
}

/// A producer's Stripe Connect call failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Stripe refused or did not answer.
    #[error(transparent)]
    Stripe(#[from] PaymentError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
