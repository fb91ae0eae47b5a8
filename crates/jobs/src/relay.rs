//! The outbox relay: moves jobs written in PostgreSQL transactions to the Redis queues.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED`, pushed, and marked relayed in the same
//! transaction, so two relays never push the same row and a Redis outage only delays jobs:
//! the rows stay in the outbox until a push succeeds.

use std::{collections::BTreeMap, time::Duration};

use pique_core::jobs::Queue;
use pique_store::{
    PgPool,
    outbox::{self, OutboxListener},
};
use tokio::sync::watch;

use crate::{JobError, job::Job, metrics, queue::Queues};

/// What one relay pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Rows pushed and marked relayed.
    pub relayed: usize,
    /// Rows whose push failed (left in the outbox with one more attempt counted).
    pub failed: usize,
    /// The first push error, if any.
    pub error: Option<String>,
}

/// Relays up to `batch` rows once.
pub async fn relay_once(
    pool: &PgPool,
    queues: &Queues,
    batch: i64,
) -> Result<RelayReport, JobError> {
    let claimed = outbox::claim_batch(pool, batch).await?;
    if claimed.rows.is_empty() {
        claimed.finish(&[], &[]).await?;
        return Ok(RelayReport::default());
    }
    // One push (one Lua call) per queue, jobs in outbox order.
    let mut by_queue: BTreeMap<&str, (Queue, Vec<i64>, Vec<Job>)> = BTreeMap::new();
    for row in &claimed.rows {
        let entry = by_queue
            .entry(row.queue.as_str())
            .or_insert_with(|| (row.queue, Vec::new(), Vec::new()));
        entry.1.push(row.id);
        entry.2.push(Job::new(
            row.kind.clone(),
            row.payload.clone(),
            row.dedup_key.clone(),
        ));
    }
    let mut report = RelayReport::default();
    let mut relayed = Vec::new();
    let mut failed = Vec::new();
    for (queue, ids, jobs) in by_queue.into_values() {
        match queues.push_all(queue, &jobs, None).await {
            Ok(()) => relayed.extend(ids),
            Err(e) => {
                report.error.get_or_insert_with(|| e.to_string());
                failed.extend(ids);
            }
        }
    }
    report.relayed = relayed.len();
    report.failed = failed.len();
    claimed.finish(&relayed, &failed).await?;
    Ok(report)
}

/// Relays until `stop` turns true: on start, on every outbox notification, and at least
/// every `interval`. A full batch is followed at once by the next one; after a failure the
/// relay waits a full interval so a Redis outage is not hammered.
pub async fn run(
    pool: PgPool,
    queues: Queues,
    interval: Duration,
    batch: i64,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener = match OutboxListener::connect(&pool).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "outbox LISTEN unavailable; relaying on the timer only");
            None
        }
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let mut immediate = false;
        match relay_once(&pool, &queues, batch).await {
            Ok(report) if report.failed > 0 => {
                tracing::warn!(failed = report.failed, error = ?report.error, "outbox relay: push failed; rows kept");
            }
            Ok(report) => {
                if report.relayed > 0 {
                    tracing::debug!(relayed = report.relayed, "outbox relayed");
                }
                immediate = report.relayed as i64 >= batch;
            }
            Err(e) => tracing::warn!(error = %e, "outbox relay failed"),
        }
        if let Ok(pending) = outbox::pending_count(&pool).await {
            metrics::outbox_pending(pending);
        }
        if immediate {
            continue;
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => {
                    if l.recv().await.is_err() {
                        tokio::time::sleep(interval).await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
}
