//! The message carried by every queue.

use pique_core::jobs::{JobSpec, Queue};
use serde::{Deserialize, Serialize};

/// One unit of work, as stored in Redis.
///
/// Every queue carries the same envelope, relayed generically from the outbox: `kind` says
/// what to do, `payload` holds its arguments and `dedup_key` names the side effect, which is
/// what makes a redelivered job a no-op. What they mean is the contract of
/// [`JobSpec`]: [`Job::from_spec`] writes it, [`Job::spec`] reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// What to do, e.g. `render_ticket`.
    pub kind: String,
    /// Arguments of the job.
    pub payload: serde_json::Value,
    /// The outbox dedup key (the identity of the side effect).
    pub dedup_key: String,
    /// Failed attempts before this delivery (0 on the first run).
    #[serde(default)]
    pub attempt: u32,
    /// The last error, carried along retries for the dead-letter record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When this delivery became due (Unix ms): the push, or the end of its retry delay. Set
    /// by [`crate::queue::Queues::push_all`]; the worker records the wait from then to the
    /// handler's start as `pique_job_queue_wait_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at_ms: Option<i64>,
}

impl Job {
    /// A first attempt of `kind` with `payload`.
    pub fn new(
        kind: impl Into<String>,
        payload: serde_json::Value,
        dedup_key: impl Into<String>,
    ) -> Self {
        Job {
            kind: kind.into(),
            payload,
            dedup_key: dedup_key.into(),
            attempt: 0,
            last_error: None,
            due_at_ms: None,
        }
    }

    /// A first attempt of `spec`.
    pub fn from_spec(spec: &JobSpec) -> Self {
        Job::new(spec.kind(), spec.payload(), spec.dedup_key())
    }

    /// What the job is, read from `queue` against the contract; a job that does not read
    /// back is a permanent error.
    pub fn spec(&self, queue: Queue) -> Result<JobSpec, crate::JobError> {
        JobSpec::decode(queue.as_str(), &self.kind, &self.payload)
            .map_err(|e| crate::JobError::Invalid(e.to_string()))
    }
}
