//! What each job kind does, and the dependencies handlers share.

use std::sync::Arc;

use pique_checkout::Checkout;
use pique_store::{
    PgPool,
    outbox::{OrderConfirmation, RenderTicket, kinds, queues},
};

use crate::{
    JobError, config::JobsConfig, confirmation, job::Job, maintenance, queue::Queues, relay,
    tickets, transport::Mailer,
};

/// What the handlers need: connections, transport, settings and the money path.
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
    /// The money path: the `checkout` queue's requests and the hold sweeper (on `pool`).
    pub checkout: Checkout,
}

impl Deps {
    /// Opens the queues and the mail transport described by `config`; `checkout` runs the
    /// `checkout` queue's jobs and the hold sweeper, on the same pool.
    pub fn new(pool: PgPool, config: JobsConfig, checkout: Checkout) -> Result<Self, JobError> {
        let queues = Queues::open(&config.redis_url, &config.namespace)?
            .with_liveness(config.heartbeat, config.missed_heartbeats);
        let mailer = Mailer::from_config(config.smtp_url.as_deref(), &config.mail_dir)?;
        Ok(Deps {
            pool,
            queues,
            mailer,
            config: Arc::new(config),
            checkout,
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
        (queues::CHECKOUT, _) => {
            let id = job
                .payload
                .get("checkout_id")
                .and_then(|v| v.as_str())
                .and_then(|s| uuid::Uuid::parse_str(s).ok())
                .ok_or_else(|| {
                    JobError::Invalid(format!(
                        "checkout job without a valid checkout_id: {}",
                        job.payload
                    ))
                })?;
            deps.checkout.process_queued(id).await?;
            Ok(())
        }
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
