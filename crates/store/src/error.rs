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
}

impl StoreError {
    /// Whether this is a unique-constraint violation (a concurrent duplicate insert).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}
