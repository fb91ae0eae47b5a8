//! What each job kind does, and the dependencies handlers share.

use std::sync::Arc;

use pique_checkout::Checkout;
use pique_core::jobs::{JobSpec, Queue};
use pique_store::PgPool;

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

/// Runs `job` taken from `queue`.
pub async fn dispatch(deps: &Deps, queue: Queue, job: &Job) -> Result<(), JobError> {
    match job.spec(queue)? {
        JobSpec::RenderTicket { attendee_uuid, .. } => {
            tickets::ensure_ticket_pdf(&deps.pool, &deps.config.media_dir, attendee_uuid).await?;
        }
        JobSpec::OrderConfirmation { order_id } => {
            let outcome = confirmation::send_order_confirmation(deps, order_id).await?;
            tracing::info!(order_id, ?outcome, "order confirmation");
        }
        JobSpec::ProcessCheckout { checkout_id } => {
            deps.checkout.process_queued(checkout_id).await?;
        }
        JobSpec::Relay => {
            relay::relay_once(&deps.pool, &deps.queues, deps.config.relay_batch).await?;
        }
        JobSpec::Reconcile => {
            maintenance::reconcile(deps).await?;
        }
        JobSpec::SweepHolds => {
            maintenance::sweep_holds(deps).await?;
        }
    }
    Ok(())
}
