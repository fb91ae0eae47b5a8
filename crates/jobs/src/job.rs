//! The message carried by every queue.

use serde::{Deserialize, Serialize};

/// One unit of work, as stored in Redis.
///
/// Every queue carries the same envelope (rather than one Rust type per job) because jobs are
/// written by SQL into the outbox and relayed generically: `kind` says what to do, `payload`
/// holds its arguments, and `dedup_key` names the side effect, which is what makes a
/// redelivered job a no-op.
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

    /// Decodes the payload into the job's argument type; a mismatch is a permanent error.
    pub fn args<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::JobError> {
        serde_json::from_value(self.payload.clone())
            .map_err(|e| crate::JobError::Invalid(format!("{} payload: {e}", self.kind)))
    }
}
