//! The `/v1/*` gate: API-key check, `Stripe-Account` check, fault injection (latency, 429, hangs,
//! 500s) and request counting. Hosted pages and `/_sim/*` bypass it.

use std::time::{Duration, Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};
use rand::Rng;

use crate::{
    error::{ApiError, redact_key},
    ids,
    state::SimState,
    stats::Outcome,
};

/// Who is calling, as established by the gate; handlers take it as `Extension<Caller>`.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key was a live key (`sk_live_...`).
    pub livemode: bool,
    /// `Stripe-Account` header (a connected account), if any.
    pub account: Option<String>,
    /// `req_...` id of this request (also sent back as `Request-Id`).
    pub request_id: String,
    /// `Idempotency-Key` header, if any.
    pub idempotency_key: Option<String>,
    /// The key redacted, for error messages.
    pub key_hint: String,
}

/// A token bucket holding up to `rps` tokens, refilled at `rps` per second.
#[derive(Debug)]
pub struct TokenBucket {
    rps: Option<u32>,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket; `None` never limits.
    pub fn new(rps: Option<u32>) -> Self {
        Self {
            rps,
            tokens: f64::from(rps.unwrap_or(0)),
            last: Instant::now(),
        }
    }

    /// Changes the rate; the bucket restarts full when the rate changes.
    pub fn reconfigure(&mut self, rps: Option<u32>) {
        if rps != self.rps {
            *self = Self::new(rps);
        }
    }

    /// Takes one token if available.
    pub fn try_take(&mut self) -> bool {
        let Some(rps) = self.rps else {
            return true;
        };
        let now = Instant::now();
        let cap = f64::from(rps);
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * cap).min(cap);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the dice said for one request, drawn before any await (`ThreadRng` is not `Send`).
struct Draw {
    latency: Duration,
    hang: Option<Duration>,
    fail: bool,
}

fn draw(state: &SimState) -> Draw {
    let k = state.knobs();
    let mut rng = rand::rng();
    let latency_ms = if k.jitter_ms == 0 {
        k.latency_ms
    } else {
        let lo = k.latency_ms.saturating_sub(k.jitter_ms);
        let hi = k.latency_ms.saturating_add(k.jitter_ms);
        rng.random_range(lo..=hi)
    };
    let hang = (k.timeout_rate > 0.0 && rng.random_bool(k.timeout_rate.clamp(0.0, 1.0)))
        .then(|| Duration::from_millis(k.timeout_hang_ms));
    let fail = k.error_rate > 0.0 && rng.random_bool(k.error_rate.clamp(0.0, 1.0));
    Draw {
        latency: Duration::from_millis(latency_ms),
        hang,
        fail,
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The secret key of an `Authorization` header: `Bearer sk_...` (what the SDKs send) or Basic
/// auth with the key as user name (what `curl -u sk_test_...:` sends, as in Stripe's docs).
fn key_from_authorization(auth: &str) -> Option<String> {
    let (scheme, rest) = auth.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let user = text.split_once(':').map_or(text.as_str(), |(user, _)| user);
        return Some(user.to_owned());
    }
    None
}

/// Checks the key against the configured one or the `sk_test_`/`sk_live_` prefixes; returns
/// `livemode` and the redacted key.
fn authenticate(state: &SimState, headers: &HeaderMap) -> Result<(bool, String), ApiError> {
    let auth = header(headers, "authorization").ok_or_else(ApiError::no_api_key)?;
    let key = key_from_authorization(&auth)
        .filter(|k| !k.is_empty())
        .ok_or_else(ApiError::no_api_key)?;
    let key = key.as_str();
    let accepted = match &state.settings().secret_key {
        Some(expected) => key == expected,
        None => key.starts_with("sk_test_") || key.starts_with("sk_live_"),
    };
    if !accepted || key.len() <= "sk_test_".len() {
        return Err(ApiError::invalid_api_key(key));
    }
    Ok((key.starts_with("sk_live_"), redact_key(key)))
}

/// The gate for every `/v1/*` route (installed with `route_layer`, so `MatchedPath` is known).
pub async fn v1_guard(
    State(state): State<SimState>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let endpoint = format!(
        "{} {}",
        req.method(),
        matched
            .as_ref()
            .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned())
    );
    let request_id = ids::request();
    let dice = draw(&state);

    // Network/processing latency applies to every request, errors included.
    if !dice.latency.is_zero() {
        tokio::time::sleep(dice.latency).await;
    }

    let (outcome, mut resp) = match gate(&state, req.headers(), &request_id) {
        Err((outcome, e)) => (outcome, e.into_response()),
        Ok(caller) => {
            if !state.take_token() {
                (
                    Outcome::RateLimited,
                    ApiError::rate_limited().into_response(),
                )
            } else if let Some(hang) = dice.hang {
                // Hang so the client's own timeout fires; bounded, so a client without a timeout
                // still gets an answer and the task always ends.
                tokio::time::sleep(hang).await;
                (Outcome::TimedOut, ApiError::internal().into_response())
            } else if dice.fail {
                (Outcome::InjectedError, ApiError::internal().into_response())
            } else {
                req.extensions_mut().insert(caller);
                (Outcome::Handled, next.run(req).await)
            }
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("request-id", v);
    }
    let status = resp.status().as_u16();
    tracing::debug!(%endpoint, status, ?outcome, request_id, "stripe-sim request");
    state.with_stats(|s| s.record(&endpoint, status, outcome));
    resp
}

fn gate(
    state: &SimState,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<Caller, (Outcome, ApiError)> {
    let (livemode, key_hint) =
        authenticate(state, headers).map_err(|e| (Outcome::Unauthorized, e))?;
    let account = header(headers, "stripe-account");
    if let Some(acct) = &account
        && acct != ids::PLATFORM_ACCOUNT
        && !state.with_store(|s| s.has_account(acct))
    {
        return Err((Outcome::Handled, ApiError::account_invalid(&key_hint, acct)));
    }
    Ok(Caller {
        livemode,
        // Acting as the platform itself is the same as sending no header.
        account: account.filter(|a| a != ids::PLATFORM_ACCOUNT),
        request_id: request_id.to_owned(),
        idempotency_key: header(headers, "idempotency-key"),
        key_hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_bearer_and_basic_auth() {
        assert_eq!(
            key_from_authorization("Bearer sk_test_1").as_deref(),
            Some("sk_test_1")
        );
        // base64("sk_test_1:")
        assert_eq!(
            key_from_authorization("Basic c2tfdGVzdF8xOg==").as_deref(),
            Some("sk_test_1")
        );
        assert_eq!(key_from_authorization("Token sk_test_1"), None);
        assert_eq!(key_from_authorization("Bearer"), None);
    }

    #[test]
    fn bucket_allows_rps_then_refuses() {
        let mut b = TokenBucket::new(Some(3));
        assert!(b.try_take() && b.try_take() && b.try_take());
        assert!(!b.try_take());
        let mut open = TokenBucket::new(None);
        assert!((0..1000).all(|_| open.try_take()));
    }
}
