//! The store's error type.

/// What can go wrong below the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL failed (connection, timeout, constraint...).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Redis failed.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stored value could not be (de)serialised.
    #[error("serialisation error: {0}")]
    Json(#[from] serde_json::Error),
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A business rule refused the operation; the message is for the client.
    #[error("{0}")]
    Conflict(String),
    /// An error of a read shared by several callers (see [`crate::coalesce`]).
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
}

impl StoreError {
    /// Whether PostgreSQL is away or refusing work for now (connection lost or refused, pool
    /// exhausted, server shutting down or starting, out of connections or resources, a
    /// statement cancelled by its timeout): retrying later may succeed, so clients get 503,
    /// not 500.
    pub fn is_database_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // SQLSTATE classes 08 (connection exception), 53 (insufficient resources),
            // 57P (operator intervention: shutdown, cannot connect now) and 57014 (query
            // cancelled, i.e. statement timeout).
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "57014"
            }),
            _ => false,
        }
    }

    /// Whether this is a unique-constraint violation (a concurrent duplicate insert).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}
