//! What each job kind does, and the dependencies handlers share.

use std::sync::Arc;

use futures::future::BoxFuture;
use pique_store::{
    PgPool,
    outbox::{OrderConfirmation, RenderTicket, kinds, queues},
};

use crate::{
    JobError, config::JobsConfig, confirmation, job::Job, maintenance, queue::Queues, relay,
    tickets, transport::Mailer,
};

/// The error type of handlers provided by other crates.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Processes one job of the `checkout` queue (provided by the checkout code, so that this
/// crate need not depend on the API crate). It must be idempotent: jobs are delivered at
/// least once.
pub type CheckoutHandler =
    Arc<dyn Fn(Job) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync>;

/// Releases lapsed seat holds; returns how many orders it expired (provided by the checkout
/// code).
pub type HoldSweeper = Arc<dyn Fn() -> BoxFuture<'static, Result<u64, HandlerError>> + Send + Sync>;

/// Functions other crates plug into the workers.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Handler of the `checkout` queue; without it, checkout jobs fail (and are retried, so
    /// a worker with the handler can still take them).
    pub checkout: Option<CheckoutHandler>,
    /// The hold sweeper run by the maintenance loop; skipped if absent.
    pub hold_sweeper: Option<HoldSweeper>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("checkout", &self.checkout.is_some())
            .field("hold_sweeper", &self.hold_sweeper.is_some())
            .finish()
    }
}

/// What the handlers need: connections, transport, settings, hooks.
#[derive(Debug, Clone)]
pub struct Deps {
    /// PostgreSQL.
    pub pool: PgPool,
    /// The Redis queues.
    pub queues: Queues,
    /// Outgoing mail.
    pub mailer: Mailer,
    /// Settings.
    pub config: Arc<JobsConfig>,
    /// Handlers provided by other crates.
    pub hooks: Hooks,
}

impl Deps {
    /// Opens the queues and the mail transport described by `config`.
    pub fn new(pool: PgPool, config: JobsConfig, hooks: Hooks) -> Result<Self, JobError> {
        let queues = Queues::open(&config.redis_url, &config.namespace)?
            .with_liveness(config.heartbeat, config.missed_heartbeats);
        let mailer = Mailer::from_config(config.smtp_url.as_deref(), &config.mail_dir)?;
        Ok(Deps {
            pool,
            queues,
            mailer,
            config: Arc::new(config),
            hooks,
        })
    }
}

/// Maintenance job kinds (the `maintenance` queue also runs them on a timer).
pub mod maintenance_kinds {
    /// Relay the outbox once.
    pub const RELAY: &str = "relay";
    /// Re-enqueue missing PDFs and emails.
    pub const RECONCILE: &str = "reconcile";
    /// Release lapsed holds.
    pub const SWEEP_HOLDS: &str = "sweep_holds";
}

/// Runs `job` taken from `queue`.
pub async fn dispatch(deps: &Deps, queue: &str, job: &Job) -> Result<(), JobError> {
    match (queue, job.kind.as_str()) {
        (queues::PDF, kinds::RENDER_TICKET) => {
            let args: RenderTicket = job.args()?;
            tickets::ensure_ticket_pdf(&deps.pool, &deps.config.media_dir, args.attendee_uuid)
                .await?;
            Ok(())
        }
        (queues::EMAIL, kinds::ORDER_CONFIRMATION) => {
            let args: OrderConfirmation = job.args()?;
            let outcome = confirmation::send_order_confirmation(deps, args.order_id).await?;
            tracing::info!(order_id = args.order_id, ?outcome, "order confirmation");
            Ok(())
        }
        (queues::CHECKOUT, _) => match &deps.hooks.checkout {
            Some(handler) => handler(job.clone())
                .await
                .map_err(|e| JobError::Handler(e.to_string())),
            None => Err(JobError::Handler(
                "no checkout handler registered in this worker".into(),
            )),
        },
        (queues::MAINTENANCE, maintenance_kinds::RELAY) => {
            relay::relay_once(&deps.pool, &deps.queues, deps.config.relay_batch).await?;
            Ok(())
        }
        (queues::MAINTENANCE, maintenance_kinds::RECONCILE) => {
            maintenance::reconcile(deps).await?;
            Ok(())
        }
        (queues::MAINTENANCE, maintenance_kinds::SWEEP_HOLDS) => {
            maintenance::sweep_holds(deps).await?;
            Ok(())
        }
        (queue, kind) => Err(JobError::Invalid(format!(
            "unknown job kind {kind:?} on queue {queue:?}"
        ))),
    }
}
