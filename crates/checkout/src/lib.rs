//! # pique-checkout
//!
//! The money path of the replica, with no HTTP in it: the API calls it from its handlers and
//! the workers call it from their jobs.
//!
//! - [`start`]: validate and price a request (rules in `pique_core::pricing`), hold the seats
//!   with the configured strategy (`reservation`, `redis-lock`, or `queue`), then create the
//!   Stripe Checkout Session outside any transaction or lock;
//! - [`payment`]: a paid session (`/success/` and the `checkout.session.completed` webhook
//!   share one path), a cancel, an expired session, and the refund of a payment that arrived
//!   after its seats were gone;
//! - [`queued`]: the `queue` strategy's accepted requests, processed by the `checkout` job;
//! - [`sweeper`]: releases lapsed holds and expires their Stripe sessions;
//! - [`connect`]: producers' Stripe Connect onboarding and balance;
//! - [`payments`]: every Stripe call, with per-attempt timeouts, retries and metrics;
//! - [`error`]: what can go wrong, in the domain's words (`pique-api` maps it to HTTP).
//!
//! All SQL lives in `pique_store::{checkout, orders}`.

pub mod connect;
pub mod error;
pub mod payment;
pub mod payments;
pub mod queued;
pub mod start;
pub mod sweeper;

use std::{sync::Arc, time::Duration};

use pique_core::{CheckoutStrategy, Config};
use pique_store::{PgPool, cache::Cache};

pub use error::{CheckoutError, ConnectError, Refusal};
pub use payments::{PaymentError, Payments};
pub use start::{Began, CheckoutStarted};

/// The settings the money path reads.
#[derive(Debug, Clone)]
pub struct CheckoutSettings {
    /// How seats are taken for `POST /checkout/`.
    pub strategy: CheckoutStrategy,
    /// How long a pending order holds its seats.
    pub hold_ttl: Duration,
    /// Base URL the buyer comes back to (free orders' success page).
    pub public_url: String,
}

impl CheckoutSettings {
    /// The settings of a process configured by `config`.
    pub fn from_config(config: &Config) -> CheckoutSettings {
        CheckoutSettings {
            strategy: config.checkout_strategy,
            hold_ttl: config.hold_ttl,
            public_url: config.public_url.trim_end_matches('/').to_string(),
        }
    }
}

/// The money path's handle: a database pool, the Stripe client, the settings and (for the
/// `redis-lock` strategy) Redis. Cheap to clone; one per process.
#[derive(Clone)]
pub struct Checkout {
    pool: PgPool,
    payments: Payments,
    settings: Arc<CheckoutSettings>,
    locks: Option<Cache>,
}

impl std::fmt::Debug for Checkout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout")
            .field("settings", &self.settings)
            .field("redis_locks", &self.locks.is_some())
            .finish_non_exhaustive()
    }
}

impl Checkout {
    /// The money path of a process configured by `config`, on `pool`. Connects to nothing
    /// yet: the pool is lazy and the Stripe client opens connections on first use.
    pub fn new(pool: PgPool, config: &Config) -> Result<Checkout, PaymentError> {
        Ok(Checkout {
            pool,
            payments: Payments::from_config(config)?,
            settings: Arc::new(CheckoutSettings::from_config(config)),
            locks: None,
        })
    }

    /// Takes the `redis-lock` strategy's tier locks through `cache`'s Redis connection (and
    /// its circuit breaker: with Redis down, that strategy refuses to sell). Without it, the
    /// strategy refuses every checkout.
    pub fn with_redis_locks(mut self, cache: Cache) -> Checkout {
        self.locks = Some(cache);
        self
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The Stripe client.
    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    /// The settings.
    pub fn settings(&self) -> &CheckoutSettings {
        &self.settings
    }
}
