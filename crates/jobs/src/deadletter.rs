//! The dead-letter set: jobs that failed for good, kept with their last error until an
//! operator retries them (`pique jobs retry`).
//!
//! One Redis hash per queue, `{namespace}:{queue}:deadletter`, maps an entry id to the
//! JSON [`DeadJob`]. apalis-redis keeps its own `:dead` set of bare task ids; ours keeps the
//! whole job, so it can be shown and re-enqueued.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use pique_core::jobs::Queue;

use crate::{JobError, job::Job, metrics, queue::Queues};

/// A dead-lettered job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadJob {
    /// Entry id (for `retry`).
    pub id: String,
    /// Queue it came from.
    pub queue: Queue,
    /// The job as last attempted.
    pub job: Job,
    /// Why it failed.
    pub error: String,
    /// When it was dead-lettered.
    pub failed_at: DateTime<Utc>,
}

fn key(queues: &Queues, queue: Queue) -> String {
    format!("{}:deadletter", queues.key(queue))
}

/// Stores `job` as dead with `error`; returns its entry id.
pub async fn add(
    queues: &Queues,
    queue: Queue,
    job: &Job,
    error: &str,
) -> Result<String, JobError> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let entry = DeadJob {
        id: id.clone(),
        queue,
        job: job.clone(),
        error: error.to_string(),
        failed_at: Utc::now(),
    };
    let mut conn = queues.connection();
    redis::cmd("HSET")
        .arg(key(queues, queue))
        .arg(&id)
        .arg(serde_json::to_string(&entry)?)
        .query_async::<()>(&mut conn)
        .await?;
    metrics::dead(queue);
    Ok(id)
}

/// Dead jobs of `queues`, oldest first.
pub async fn list(queues: &Queues, queue_names: &[Queue]) -> Result<Vec<DeadJob>, JobError> {
    let mut all = Vec::new();
    let mut conn = queues.connection();
    for &queue in queue_names {
        let values: Vec<String> = redis::cmd("HVALS")
            .arg(key(queues, queue))
            .query_async(&mut conn)
            .await?;
        for v in values {
            match serde_json::from_str::<DeadJob>(&v) {
                Ok(entry) => all.push(entry),
                Err(e) => tracing::warn!(%queue, error = %e, "unreadable dead-letter entry"),
            }
        }
    }
    // Ids are UUIDv7, so their order is the order of death.
    all.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(all)
}

/// Number of dead jobs in `queue`.
pub async fn count(queues: &Queues, queue: Queue) -> Result<u64, JobError> {
    let mut conn = queues.connection();
    Ok(redis::cmd("HLEN")
        .arg(key(queues, queue))
        .query_async(&mut conn)
        .await?)
}

/// Re-enqueues the dead job `id` (searched in `queue_names`) as a fresh first attempt.
/// Returns `false` if there is no such entry.
pub async fn retry(queues: &Queues, queue_names: &[Queue], id: &str) -> Result<bool, JobError> {
    let mut conn = queues.connection();
    for &queue in queue_names {
        let raw: Option<String> = redis::cmd("HGET")
            .arg(key(queues, queue))
            .arg(id)
            .query_async(&mut conn)
            .await?;
        let Some(raw) = raw else { continue };
        let entry: DeadJob = serde_json::from_str(&raw)?;
        let job = Job {
            attempt: 0,
            last_error: None,
            ..entry.job
        };
        // Push before deleting: a crash in between leaves a duplicate (harmless, jobs are
        // idempotent) rather than a lost job.
        queues.push(queue, &job).await?;
        redis::cmd("HDEL")
            .arg(key(queues, queue))
            .arg(id)
            .query_async::<()>(&mut conn)
            .await?;
        return Ok(true);
    }
    Ok(false)
}

/// Re-enqueues every dead job of `queue_names`; returns how many.
pub async fn retry_all(queues: &Queues, queue_names: &[Queue]) -> Result<usize, JobError> {
    let entries = list(queues, queue_names).await?;
    let mut n = 0;
    for entry in entries {
        if retry(queues, &[entry.queue], &entry.id).await? {
            n += 1;
        }
    }
    Ok(n)
}
