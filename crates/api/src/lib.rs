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
pub mod spool;
pub mod state;

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo, http::StatusCode};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, watch},
};
use tower::ServiceExt;
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
///
/// The accept loop is ours rather than `axum::serve`'s for two slow-client protections that
/// axum does not offer (configured in [`pique_core::config::HttpSettings`]):
/// - a connection limit: a semaphore permit per open connection; at the limit the loop stops
///   accepting and new connections wait in the kernel's listen backlog;
/// - a header read timeout: hyper closes a connection that has not sent a complete header
///   block within the timeout of opening it or of its previous response, so idle or
///   trickling (slowloris) connections do not pile up.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.http.clone();
    let app = app(state);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // Connections watch this channel: when the sender goes, they finish their request and
    // close. `closed` completes when every connection's receiver is gone.
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: not fatal.
                    // Back off briefly, as axum does, instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service =
            app.clone()
                .map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(remote));
                    req.map(axum::body::Body::new)
                });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => log_connection_end(result),
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    log_connection_end(conn.await);
                }
            }
            drop(permit);
        });
    }
    drop(stop_rx);
    // Tell every connection to finish, then wait until they have.
    let _ = stop_tx.send(());
    stop_tx.closed().await;
    Ok(())
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        // Header timeouts and clients that hang up are routine, not errors of ours.
        tracing::debug!(error = %e, "connection ended");
    }
}
