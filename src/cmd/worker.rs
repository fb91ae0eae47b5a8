//! `pique worker`: the job workers (Celery's equivalent).

use std::{net::SocketAddr, pin::Pin, sync::Arc};

use anyhow::Context;
use clap::Args;
use pique_core::Config;
use pique_jobs::{Hooks, JobsConfig, WorkerOptions};

/// Flags of `pique worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Queues to serve, comma separated (`maintenance` also runs the outbox relay, the hold
    /// sweeper and the reconciler).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pdf,email,checkout,maintenance"
    )]
    pub queues: Vec<String>,
    /// Jobs run at once per queue: `4`, or per queue `pdf=8,email=2` (Celery's default is 4).
    #[arg(long, default_value = "4")]
    pub concurrency: String,
    /// Where to serve the worker's Prometheus `/metrics`.
    #[arg(long, default_value = "127.0.0.1:9091")]
    pub metrics_bind: SocketAddr,
    /// Worker name, unique among live workers; reusing a dead worker's name lets the new one
    /// take its in-flight jobs back at once [default: hostname-pid].
    #[arg(long, env = "PIQUE_WORKER_NAME")]
    pub name: Option<String>,
    /// Prefix of the Redis keys of the queues.
    #[arg(long, env = "PIQUE_QUEUE_NAMESPACE", default_value = "pique")]
    pub namespace: String,
}

/// Runs the workers until Ctrl-C / SIGTERM, then finishes in-flight jobs (up to 30 s).
pub async fn run(config: Config, args: WorkerArgs) -> anyhow::Result<()> {
    let queues = pique_jobs::process::queue_specs(&args.queues, &args.concurrency, 4)?;
    let pool = pique_store::db::pool(&config.database_url, &config.pg)?;
    let mut jobs = JobsConfig::from_core(&config);
    jobs.namespace = args.namespace;
    let options = WorkerOptions {
        queues,
        name: args.name.unwrap_or_else(pique_jobs::worker::default_name),
    };
    pique_jobs::process::run(
        pool,
        jobs,
        hooks(&config),
        options,
        Some(args.metrics_bind),
        super::shutdown_signal(),
    )
    .await
    .context("worker failed")?;
    Ok(())
}

/// The handlers other crates plug into the workers: the `checkout` queue's handler (the
/// `queue` strategy's requests, run through the reservation path) and the hold sweeper
/// (releases lapsed holds and expires their Stripe sessions), both from `pique_api::checkout`.
/// If the API state cannot be built, the hooks are left out: checkout jobs are then retried
/// and dead-lettered, and the sweep is skipped, as logged.
pub fn hooks(config: &Config) -> Hooks {
    let state = match pique_api::AppState::from_config(config.clone()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "checkout hooks unavailable");
            return Hooks::default();
        }
    };
    let sweep_state = state.clone();
    let checkout: pique_jobs::CheckoutHandler = Arc::new(move |job: pique_jobs::Job| {
        let state = state.clone();
        let fut: BoxedJob<()> =
            Box::pin(
                async move { Ok(pique_api::checkout::process_job(&state, &job.payload).await?) },
            );
        fut
    });
    let hold_sweeper: pique_jobs::HoldSweeper = Arc::new(move || {
        let state = sweep_state.clone();
        let fut: BoxedJob<u64> =
            Box::pin(async move { Ok(pique_api::checkout::sweep(&state).await?) });
        fut
    });
    Hooks {
        checkout: Some(checkout),
        hold_sweeper: Some(hold_sweeper),
    }
}

type BoxedJob<T> = Pin<Box<dyn Future<Output = Result<T, pique_jobs::HandlerError>> + Send>>;
