//! The crate's error type.

use pique_store::StoreError;

/// What can go wrong while running a job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// PostgreSQL failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis failed (down, timeout, script error).
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// The queue library refused an operation.
    #[error("queue error: {0}")]
    Queue(String),
    /// A PDF could not be rendered.
    #[error("pdf error: {0}")]
    Pdf(String),
    /// The mail server refused or could not be reached; retrying may help.
    #[error("mail error: {0}")]
    Mail(String),
    /// The mail server refused for good (5xx); retrying will not help.
    #[error("mail refused permanently: {0}")]
    MailPermanent(String),
    /// A file could not be written or read.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A job or stored value could not be (de)serialised.
    #[error("serialisation error: {0}")]
    Json(#[from] serde_json::Error),
    /// The job can never succeed (unknown kind, missing order...): dead-lettered at once.
    #[error("invalid job: {0}")]
    Invalid(String),
    /// Someone else holds the side effect right now (a live claim on the email): try again
    /// after `retry_after`, without counting a failed attempt.
    #[error("busy: {what}; retry in {retry_after:?}")]
    Busy {
        /// What is busy.
        what: String,
        /// When the holder's claim expires.
        retry_after: std::time::Duration,
    },
    /// A queued checkout could not be processed (storage failed); retried.
    #[error(transparent)]
    Checkout(#[from] pique_checkout::queued::QueueJobError),
    /// The metrics recorder could not be installed.
    #[error("metrics error: {0}")]
    Metrics(String),
}

impl JobError {
    /// Whether retrying cannot help, so the job goes straight to the dead-letter set.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            JobError::Invalid(_)
                | JobError::MailPermanent(_)
                | JobError::Checkout(pique_checkout::queued::QueueJobError::Corrupt { .. })
        )
    }
}
