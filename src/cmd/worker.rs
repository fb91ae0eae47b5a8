//! `pique worker`: the job workers (Celery's equivalent).

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use pique_checkout::Checkout;
use pique_core::Config;
use pique_jobs::{JobsConfig, WorkerOptions};

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
///
/// One database pool serves every queue: the PDF and email jobs, and the money path
/// (`pique_checkout`) for the `checkout` queue's requests and the hold sweeper.
pub async fn run(config: Config, args: WorkerArgs) -> anyhow::Result<()> {
    let queues = pique_jobs::process::queue_specs(&args.queues, &args.concurrency, 4)?;
    let pool = pique_store::db::pool(&config.database_url, &config.pg)?;
    let checkout =
        Checkout::new(pool.clone(), &config).context("cannot build the Stripe client")?;
    let mut jobs = JobsConfig::from_core(&config);
    jobs.namespace = args.namespace;
    let options = WorkerOptions {
        queues,
        name: args.name.unwrap_or_else(pique_jobs::worker::default_name),
    };
    pique_jobs::process::run(
        pool,
        jobs,
        checkout,
        options,
        Some(args.metrics_bind),
        super::shutdown_signal(),
    )
    .await
    .context("worker failed")?;
    Ok(())
}
