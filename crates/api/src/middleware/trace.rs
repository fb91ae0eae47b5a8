//! The span every request is logged in, carrying its request id.

use axum::{extract::Request, http::HeaderName};
use tracing::Span;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A span with method, path and the `x-request-id` set by `SetRequestIdLayer`.
pub fn make_span(request: &Request) -> Span {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
}
