//! # pique-jobs
//!
//! The Celery equivalent of the replica (`docs/architecture.md`, "The job pipeline"): apalis
//! workers over Redis with queues `pdf`, `email`, `checkout` and `maintenance`.
//!
//! - [`relay`]: moves jobs from the PostgreSQL outbox (written in the payment transaction)
//!   to the Redis queues, so a Redis outage at payment time loses nothing;
//! - [`worker`]: one apalis worker per queue, per-queue concurrency, graceful shutdown,
//!   retries with exponential backoff and jitter ([`retry`]) then the [`deadletter`] set;
//! - [`tickets`] + [`pdf`]: one PDF per attendee, keyed by attendee UUID;
//! - [`confirmation`] + [`email`] + [`transport`]: the confirmation email, exactly once in
//!   effect, over SMTP or to `.eml` files;
//! - [`maintenance`]: relay loop, hold sweeper, reconciler, queue sampling;
//! - [`process`]: a whole worker process (`pique worker`);
//! - [`metrics`]: the worker's Prometheus metrics and `/metrics` endpoint;
//! - [`smtp_sink`]: a minimal SMTP server that stores what it receives (tests, benches, demo).
//!
//! The `checkout` queue and the hold sweeper call the money path (`pique_checkout`)
//! directly. All SQL lives in `pique_store`.

pub mod config;
pub mod confirmation;
pub mod deadletter;
pub mod email;
pub mod error;
pub mod handlers;
pub mod job;
pub mod maintenance;
pub mod metrics;
pub mod pdf;
pub mod process;
pub mod queue;
pub mod relay;
pub mod retry;
pub mod smtp_sink;
pub mod tickets;
pub mod transport;
pub mod worker;

pub use config::JobsConfig;
pub use error::JobError;
pub use handlers::Deps;
pub use job::Job;
pub use queue::Queues;
pub use worker::{QueueSpec, WorkerOptions};

/// A random token for links (download, email tracking): 32 random bytes, hex.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
