//! Settings of the workers, derived from the process configuration.

use std::{path::PathBuf, time::Duration};

use crate::retry::RetryPolicy;

/// Everything the job handlers and loops need besides connections.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Redis URL of the queues.
    pub redis_url: String,
    /// Prefix of every Redis key (`{namespace}:{queue}:...`), so tests and several
    /// deployments can share one Redis.
    pub namespace: String,
    /// Base URL of the API, used in email links (download, tracking, show page).
    pub public_url: String,
    /// Where PDFs are written (`{media_dir}/tickets/{uuid}.pdf`).
    pub media_dir: PathBuf,
    /// SMTP server (`smtp://host:port`); `None` writes `.eml` files to `mail_dir`.
    pub smtp_url: Option<String>,
    /// Directory of `.eml` files when there is no SMTP server.
    pub mail_dir: PathBuf,
    /// Sender of the emails.
    pub mail_from: String,
    /// Retry and dead-letter policy.
    pub retry: RetryPolicy,
    /// How long a worker's claim on an email protects it from other workers: a claim older
    /// than this belongs to a dead worker and may be taken over.
    pub email_lease: Duration,
    /// Worker liveness heartbeat (apalis-redis).
    pub heartbeat: Duration,
    /// Missed heartbeats after which a worker's in-flight jobs are given to others.
    pub missed_heartbeats: usize,
    /// How often an idle worker polls its queue.
    pub poll_interval: Duration,
    /// Relay tick when no notification arrives.
    pub relay_interval: Duration,
    /// Rows relayed per transaction.
    pub relay_batch: i64,
    /// Reconciler and hold-sweeper tick.
    pub maintenance_interval: Duration,
    /// An order is reconciled only once it has been paid this long (its jobs had a chance).
    pub reconcile_grace: Duration,
    /// How far back the reconciler looks.
    pub reconcile_window: Duration,
    /// Time allowed to in-flight jobs on shutdown.
    pub shutdown_grace: Duration,
}

impl JobsConfig {
    /// The defaults for a process configured by `config`.
    pub fn from_core(config: &pique_core::Config) -> Self {
        JobsConfig {
            redis_url: config.redis_url.clone(),
            namespace: "pique".to_string(),
            public_url: config.public_url.trim_end_matches('/').to_string(),
            media_dir: config.media_dir.clone(),
            smtp_url: config.smtp_url.clone(),
            mail_dir: config.mail_dir.clone(),
            mail_from: "PiqueTickets <tickets@piquetickets.local>".to_string(),
            retry: RetryPolicy::default(),
            email_lease: Duration::from_secs(120),
            heartbeat: Duration::from_secs(5),
            missed_heartbeats: 6,
            poll_interval: Duration::from_millis(200),
            relay_interval: Duration::from_secs(1),
            relay_batch: 200,
            maintenance_interval: Duration::from_secs(30),
            reconcile_grace: Duration::from_secs(300),
            reconcile_window: Duration::from_secs(7 * 24 * 3600),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}
