//! Errors as DRF writes them: `{"detail": "..."}` for most statuses and
//! `{"field": ["message"]}` for validation failures.
//!
//! Every failure of the layers below reaches the client through this module: store errors,
//! the money path's refusals and Stripe Connect failures are mapped here and nowhere else.
//! Internal errors are logged with their cause and answered with a generic message: a client
//! never sees SQL or a stack trace.

use axum::{
    Json,
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use pique_checkout::{CheckoutError, ConnectError, PaymentError, Refusal};
use pique_core::validate::FieldErrors;
use pique_store::StoreError;
use serde_json::json;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with per-field messages.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// 400 with a single message.
    #[error("{0}")]
    BadRequest(String),
    /// 401.
    #[error("authentication credentials were not provided")]
    Unauthorized(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `{"detail": "Not found."}`.
    #[error("not found")]
    NotFound,
    /// 404 `{"detail": "Invalid page."}`: a page number past the last page (DRF).
    #[error("invalid page")]
    InvalidPage,
    /// 409 with a message (sold out, already checked in...), optionally with extra fields.
    #[error("{0}")]
    Conflict(String, Option<serde_json::Value>),
    /// 429 with `Retry-After` seconds.
    #[error("rate limited")]
    TooManyRequests(u64),
    /// 502: an upstream (Stripe) refused what we asked.
    #[error("{0}")]
    BadGateway(String),
    /// 503 (a dependency is down, or the server is saturated).
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure below.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `Retry-After` of a 503: a dependency that is restarting is usually back within seconds,
/// and clients that all retried at once would slow its recovery.
pub const UNAVAILABLE_RETRY_AFTER_SECS: &str = "5";

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        from_store(&e)
    }
}

fn from_store(e: &StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound,
        StoreError::Conflict(m) => ApiError::Conflict(m.clone(), None),
        e if e.is_database_unavailable() => {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::Unavailable("The database is not answering; try again shortly.".into())
        }
        // A read shared by several requests failed: each answers as it would have alone.
        StoreError::Shared(shared) => from_store(shared),
        other => ApiError::Internal(other.to_string()),
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::Validation(e)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Invalid { errors } => ApiError::Validation(errors),
            Refusal::SoldOut {
                message,
                ticket_id,
                available,
            } => ApiError::Conflict(
                message,
                Some(json!({ "ticket_id": ticket_id, "available": available })),
            ),
            Refusal::Conflict { message } => ApiError::Conflict(message, None),
            Refusal::Busy { message } => ApiError::Unavailable(message),
            Refusal::NotFound => ApiError::NotFound,
            Refusal::NotPaid => ApiError::BadRequest(Refusal::NotPaid.to_string()),
            Refusal::PaymentRejected { message, .. } => ApiError::BadGateway(format!(
                "The payment provider refused the request: {message}"
            )),
            Refusal::PaymentUnavailable { .. } => ApiError::Unavailable(
                "The payment provider is not answering; no seats were held. Please try again."
                    .into(),
            ),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::Refused(r) => r.into(),
            CheckoutError::Store(s) => s.into(),
        }
    }
}

/// Stripe Connect failures are 503: the portal cannot do its job, and retrying later may help.
impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Store(s) => s.into(),
            ConnectError::Stripe(e) => {
                tracing::warn!(error = %e, "stripe connect call failed");
                ApiError::Unavailable(match e {
                    PaymentError::Rejected { status, message } => format!(
                        "Stripe refused the request ({status}): {}",
                        if message.is_empty() {
                            "no message"
                        } else {
                            &message
                        }
                    ),
                    PaymentError::Unavailable(_) => {
                        "Stripe is not answering; try again shortly.".to_string()
                    }
                })
            }
        }
    }
}

impl ApiError {
    /// The HTTP status and DRF body of this error (what [`IntoResponse`] sends, and what a
    /// refused queued checkout reports when polled).
    pub fn status_and_body(&self) -> (StatusCode, serde_json::Value) {
        match self {
            ApiError::Validation(errors) => (StatusCode::BAD_REQUEST, json!(errors)),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "detail": m })),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, json!({ "detail": m })),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, json!({ "detail": m })),
            ApiError::NotFound => (StatusCode::NOT_FOUND, json!({ "detail": "Not found." })),
            ApiError::InvalidPage => (StatusCode::NOT_FOUND, json!({ "detail": "Invalid page." })),
            ApiError::Conflict(m, extra) => {
                let mut body = json!({ "detail": m });
                if let (Some(obj), Some(serde_json::Value::Object(more))) =
                    (body.as_object_mut(), extra)
                {
                    obj.extend(more.clone());
                }
                (StatusCode::CONFLICT, body)
            }
            ApiError::TooManyRequests(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "detail": format!("Request was throttled. Expected available in {secs} seconds.") }),
            ),
            ApiError::BadGateway(m) => (StatusCode::BAD_GATEWAY, json!({ "detail": m })),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "detail": m })),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "detail": "A server error occurred." }),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        let mut response = (status, Json(body)).into_response();
        if let ApiError::Unauthorized(_) = self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        }
        if let ApiError::Unavailable(_) = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER_SECS),
            );
        }
        if let ApiError::TooManyRequests(secs) = self
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// Fallback for unknown paths: JSON 404, never an HTML page.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Fallback for a known path with the wrong method: DRF's 405 message.
pub async fn method_not_allowed(method: Method) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({ "detail": format!("Method \"{method}\" not allowed.") })),
    )
        .into_response()
}
