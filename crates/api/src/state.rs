//! What every handler can reach.

use std::sync::Arc;

use pique_checkout::Checkout;
use pique_core::Config;
use pique_store::{PgPool, cache::Cache, catalog::LiveTiers};

/// Shared application state; cheap to clone (everything inside is a handle).
#[derive(Clone)]
pub struct AppState {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// PostgreSQL pool.
    pub pool: PgPool,
    /// Read-through cache (Redis + in-process).
    pub cache: Cache,
    /// Tiers with live availability, concurrent reads of one show coalesced.
    pub live_tiers: LiveTiers,
    /// The money path (checkout, payment events, Stripe), on the same pool.
    pub checkout: Checkout,
}

impl AppState {
    /// Builds the state from configuration: a lazy pool and a lazy cache, so the API starts
    /// (and `/health/` reports what is down) even if PostgreSQL or Redis is not up yet.
    pub fn from_config(config: Config) -> Result<AppState, crate::ApiError> {
        let pool = pique_store::db::pool(&config.database_url, &config.pg)?;
        let cache = Cache::new(
            &config.redis_url,
            &config.redis.key_prefix,
            config.redis.cache_ttl,
            config.redis.socket_timeout,
        )
        .map_err(pique_store::StoreError::from)?;
        AppState::new(config, pool, cache)
    }

    /// Builds the state around an existing pool and cache (tests use a per-test database and
    /// cache prefix). Every other handle is derived from `config` here, in one place.
    pub fn new(config: Config, pool: PgPool, cache: Cache) -> Result<AppState, crate::ApiError> {
        let checkout = Checkout::new(pool.clone(), &config)
            .map_err(|e| crate::ApiError::Internal(e.to_string()))?
            .with_redis_locks(cache.clone());
        Ok(AppState {
            config: Arc::new(config),
            live_tiers: LiveTiers::new(pool.clone()),
            pool,
            cache,
            checkout,
        })
    }
}
