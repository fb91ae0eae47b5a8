//! # pique-api
//!
//! The HTTP face of the replica: the original's URL map on axum, DRF-shaped JSON and errors,
//! the architecture profiles, metrics and the OpenAPI document.
//!
//! - [`app`] builds the whole router from an [`AppState`];
//! - [`routes`] holds one module per URL area, each handler thin: parse, call the store or
//!   the money path (`pique-checkout`), map errors;
//! - [`error`] turns every failure into DRF's JSON shape;
//! - [`middleware`] has request metrics, the architecture profiles' Gunicorn model, rate
//!   limits and trace spans.

pub mod auth;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod state;

use std::{net::SocketAddr, time::Duration};

use axum::{Router, http::StatusCode};
use tokio::net::TcpListener;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

pub use error::ApiError;
pub use state::AppState;

/// Largest request body accepted (checkout bodies are tiny; this stops abuse).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The complete application: every route, the docs, and the middleware stack.
pub fn app(state: AppState) -> Router {
    // Install the recorder before the first request, or early counts would go nowhere.
    metrics::handle();
    let router = Router::new()
        .merge(routes::public::router())
        .merge(routes::health::router())
        .merge(routes::checkout::router())
        .merge(routes::portal::router())
        .merge(routes::tracking::router())
        .merge(openapi::router())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state.clone());
    // Layers run outside-in from the bottom: request id, trace, metrics, rate limit, profile
    // model, timeout.
    let router = router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(65),
        ));
    let router = middleware::profile::apply(router, &state.config.profile);
    // Outside the profile model: a throttled request never takes a worker.
    let router = middleware::rate_limit::apply(router, &state.config);
    router
        .layer(axum::middleware::from_fn(middleware::metrics::record))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(middleware::trace::make_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
