//! `/health/` and `/metrics`.

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// Body of `/health/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every dependency answers, else `degraded`.
    pub status: &'static str,
    /// `ok` or `down`.
    pub database: &'static str,
    /// `ok` or `down`.
    pub redis: &'static str,
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    super::both(Router::new(), "/health/", get(health)).route("/metrics", get(metrics))
}

/// Checks PostgreSQL and Redis; 200 when both answer, 503 otherwise.
#[utoipa::path(get, path = "/health/", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health, description = "a dependency is down")))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let (db, redis) = tokio::join!(pique_store::db::ping(&state.pool), state.cache.ping());
    let up = |b: bool| if b { "ok" } else { "down" };
    let status = if db && redis {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if db && redis { "ok" } else { "degraded" },
        database: up(db),
        redis: up(redis),
    };
    (status, Json(body))
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    pique_store::db::record_pool_metrics(&state.pool);
    crate::metrics::record_process_metrics();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
}
