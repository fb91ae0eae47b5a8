//! Errors: `SimError` for starting/running the sim, `ApiError` for Stripe-shaped HTTP errors.

use axum::{
    Json,
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

/// Redacts a secret key like Stripe's messages do: first 8 and last 4 characters kept.
pub fn redact_key(key: &str) -> String {
    let head: String = key.chars().take(8).collect();
    let tail: Vec<char> = key.chars().rev().take(4).collect();
    format!(
        "{head}{}{}",
        "*".repeat(16),
        tail.into_iter().rev().collect::<String>()
    )
}

/// Failure to start or run the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot bind stripe-sim to {addr}: {source}")]
    Bind {
        /// Address from the config.
        addr: std::net::SocketAddr,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The HTTP server stopped with an I/O error.
    #[error("stripe-sim server error: {0}")]
    Serve(#[from] std::io::Error),
    /// The initial knobs were invalid.
    #[error("invalid stripe-sim config: {0}")]
    Config(#[from] crate::config::KnobsError),
    /// The HTTP client for webhooks could not be built.
    #[error("cannot build webhook client: {0}")]
    Client(#[from] reqwest::Error),
}

/// An error answered in Stripe's shape: `{"error":{"type","message","code"?,"param"?}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stripe error `type` (`invalid_request_error`, `api_error`, ...).
    pub kind: &'static str,
    /// Human readable message, worded like Stripe's.
    pub message: String,
    /// Stripe error `code`, e.g. `parameter_missing`.
    pub code: Option<&'static str>,
    /// The offending parameter in bracket notation, e.g. `line_items[0][quantity]`.
    pub param: Option<String>,
    /// Value of the `Stripe-Should-Retry` header, when Stripe would send one.
    pub should_retry: Option<bool>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            code: None,
            param: None,
            should_retry: None,
        }
    }

    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// 400 `parameter_missing`: "Missing required param: {param}."
    pub fn missing(param: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("Missing required param: {param}."),
        )
        .code("parameter_missing")
        .param(param)
    }

    /// 400 `parameter_invalid_integer`: "Invalid integer: {value}"
    pub fn invalid_integer(param: &str, value: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("Invalid integer: {value}"),
        )
        .code("parameter_invalid_integer")
        .param(param)
    }

    /// 400 `parameter_invalid_empty`, for required strings sent empty.
    pub fn invalid_empty(param: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!(
                "You passed an empty string for '{param}'. We assume empty values are an attempt to \
                 unset a parameter; however '{param}' cannot be unset. You should remove '{param}' \
                 from your request or supply a non-empty value."
            ),
        )
        .code("parameter_invalid_empty")
        .param(param)
    }

    /// 400 for a parameter with a value Stripe would not accept.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message).param(param)
    }

    /// 400 for a request that is well formed but not allowed in the object's current state.
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 404 `resource_missing`: "No such {object}: '{id}'"
    pub fn no_such(object: &str, param: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("No such {object}: '{id}'"),
        )
        .code("resource_missing")
        .param(param)
    }

    /// 400 `resource_missing` for an id given as a parameter (Stripe answers 400, not 404, when
    /// the missing object is referenced from the request body).
    pub fn no_such_param(object: &str, param: &str, id: &str) -> Self {
        let mut e = Self::no_such(object, param, id);
        e.status = StatusCode::BAD_REQUEST;
        e
    }

    /// 404 for a path Stripe does not have.
    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or \
                 we can help at https://support.stripe.com/."
            ),
        )
    }

    /// 401 when no `Authorization` header was sent.
    pub fn no_api_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the Authorization \
             header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    }

    /// 401 for a key that is not accepted; the key is redacted like Stripe does.
    pub fn invalid_api_key(key: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            format!("Invalid API Key provided: {}", redact_key(key)),
        )
    }

    /// 403 for a `Stripe-Account` the key cannot act on.
    pub fn account_invalid(key_hint: &str, account: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            format!(
                "The provided key '{key_hint}' does not have access to account '{account}' (or that \
                 account does not exist). Application access may have been revoked."
            ),
        )
        .code("account_invalid")
    }

    /// 429 `rate_limit`.
    pub fn rate_limited() -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request_error",
            "Request rate limit exceeded. You can learn more about rate limits here \
             https://stripe.com/docs/rate-limits.",
        )
        .code("rate_limit");
        e.should_retry = Some(true);
        e
    }

    /// 500 `api_error`, as injected by the error-rate knob.
    pub fn internal() -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "Sorry, something went wrong. We've already been notified of the problem, but if you \
             need any help, you can reach us at support.stripe.com/contact.",
        );
        e.should_retry = Some(true);
        e
    }

    /// The JSON body Stripe would send.
    pub fn body(&self) -> Value {
        let mut inner = Map::new();
        if let Some(code) = self.code {
            inner.insert("code".into(), json!(code));
            inner.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        inner.insert("message".into(), json!(self.message));
        if let Some(param) = &self.param {
            inner.insert("param".into(), json!(param));
        }
        inner.insert("type".into(), json!(self.kind));
        json!({ "error": inner })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        if let Some(retry) = self.should_retry {
            resp.headers_mut().insert(
                "stripe-should-retry",
                HeaderValue::from_static(if retry { "true" } else { "false" }),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_param_has_stripe_shape() {
        let b = ApiError::missing("mode").body();
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert_eq!(b["error"]["code"], "parameter_missing");
        assert_eq!(b["error"]["param"], "mode");
        assert_eq!(b["error"]["message"], "Missing required param: mode.");
    }

    #[test]
    fn api_key_is_redacted() {
        let e = ApiError::invalid_api_key("sk_nope_1234567890abcd");
        assert!(e.message.ends_with("abcd"));
        assert!(!e.message.contains("1234567890"));
        assert_eq!(e.code, None);
    }
}
