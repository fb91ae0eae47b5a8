//! `Idempotency-Key` handling for `POST /v1/*`, as Stripe does it: a successful result is saved
//! and replayed for a retry with the same key and parameters (header `Idempotent-Replayed: true`);
//! the same key with other parameters is a 400 `idempotency_error`; a concurrent request with a
//! key still in flight is a 409. Failed requests are not saved, so they can be retried.
//!
//! This matters because async-stripe's `Retry`/`ExponentialBackoff` strategies send a key and
//! retry on the sim's injected 5xx/429: with the key, a retry never creates a second session.

use std::collections::{HashMap, VecDeque};

use axum::{
    body::{Body, Bytes, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header::CONTENT_TYPE},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use crate::{error::ApiError, knobs::Caller, state::SimState};

/// Saved results kept (oldest evicted first).
const CAP: usize = 10_000;
/// Largest request or response body buffered (Stripe's own limit is far below).
const MAX_BODY: usize = 1 << 20;

/// A saved response.
#[derive(Debug, Clone)]
struct Saved {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

#[derive(Debug, Clone)]
enum Entry {
    InFlight {
        fingerprint: [u8; 32],
    },
    Done {
        fingerprint: [u8; 32],
        response: Saved,
    },
}

/// Results by idempotency key (scoped by account, like Stripe).
#[derive(Debug, Default)]
pub struct IdempotencyCache {
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
}

enum Lookup {
    Miss,
    Replay(Saved),
    Conflict,
    InFlight,
}

impl IdempotencyCache {
    fn begin(&mut self, key: &str, fingerprint: [u8; 32]) -> Lookup {
        match self.entries.get(key) {
            Some(Entry::Done {
                fingerprint: f,
                response,
            }) if *f == fingerprint => Lookup::Replay(response.clone()),
            Some(Entry::InFlight { fingerprint: f }) if *f == fingerprint => Lookup::InFlight,
            Some(_) => Lookup::Conflict,
            None => {
                if self.order.len() >= CAP
                    && let Some(old) = self.order.pop_front()
                {
                    self.entries.remove(&old);
                }
                self.order.push_back(key.to_owned());
                self.entries
                    .insert(key.to_owned(), Entry::InFlight { fingerprint });
                Lookup::Miss
            }
        }
    }

    fn finish(&mut self, key: &str, fingerprint: [u8; 32], response: Option<Saved>) {
        match response {
            Some(response) => {
                self.entries.insert(
                    key.to_owned(),
                    Entry::Done {
                        fingerprint,
                        response,
                    },
                );
            }
            None => {
                self.entries.remove(key);
                self.order.retain(|k| k != key);
            }
        }
    }
}

fn idempotency_error(status: StatusCode, message: String) -> Response {
    let mut e = ApiError::invalid_state(message);
    e.status = status;
    e.kind = "idempotency_error";
    e.into_response()
}

/// Middleware for `/v1/*` POSTs carrying an `Idempotency-Key`; runs inside the gate (it needs
/// the [`Caller`]), so injected faults are never saved.
pub async fn idempotency(State(state): State<SimState>, req: Request, next: Next) -> Response {
    let caller = req.extensions().get::<Caller>().cloned();
    let key = caller.as_ref().and_then(|c| c.idempotency_key.clone());
    let (Some(key), true) = (key, req.method() == Method::POST) else {
        return next.run(req).await;
    };
    let account = caller.and_then(|c| c.account).unwrap_or_default();
    let scoped = format!("{account}\n{key}");

    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return ApiError::invalid_state("Request body too large.").into_response();
    };
    let mut h = Sha256::new();
    h.update(parts.uri.path().as_bytes());
    h.update([0]);
    h.update(&body);
    let fingerprint: [u8; 32] = h.finalize().into();

    match state.with_idempotency(|c| c.begin(&scoped, fingerprint)) {
        Lookup::Replay(saved) => {
            let mut resp = (saved.status, saved.body).into_response();
            if let Some(ct) = saved.content_type {
                resp.headers_mut().insert(CONTENT_TYPE, ct);
            }
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return resp;
        }
        Lookup::Conflict => {
            return idempotency_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "Keys for idempotent requests can only be used with the same parameters they \
                     were first used with. Try using a key other than '{key}' if you meant to \
                     execute a different request."
                ),
            );
        }
        Lookup::InFlight => {
            return idempotency_error(
                StatusCode::CONFLICT,
                "There is currently another in-progress request using this Idempotent Key \
                 (that probably means you submitted twice, and the other request is still going \
                 through). Please retry this request later."
                    .to_owned(),
            );
        }
        Lookup::Miss => {}
    }

    let resp = next.run(Request::from_parts(parts, Body::from(body))).await;
    if !resp.status().is_success() {
        state.with_idempotency(|c| c.finish(&scoped, fingerprint, None));
        return resp;
    }
    let (parts, body) = resp.into_parts();
    match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            let saved = Saved {
                status: parts.status,
                content_type: parts.headers.get(CONTENT_TYPE).cloned(),
                body: bytes.clone(),
            };
            state.with_idempotency(|c| c.finish(&scoped, fingerprint, Some(saved)));
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(_) => {
            state.with_idempotency(|c| c.finish(&scoped, fingerprint, None));
            ApiError::internal().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_conflict_and_failure_release() {
        let mut c = IdempotencyCache::default();
        assert!(matches!(c.begin("k", [1; 32]), Lookup::Miss));
        assert!(matches!(c.begin("k", [1; 32]), Lookup::InFlight));
        let saved = Saved {
            status: StatusCode::OK,
            content_type: None,
            body: Bytes::from_static(b"{}"),
        };
        c.finish("k", [1; 32], Some(saved));
        assert!(matches!(c.begin("k", [1; 32]), Lookup::Replay(_)));
        assert!(matches!(c.begin("k", [2; 32]), Lookup::Conflict));
        assert!(matches!(c.begin("f", [3; 32]), Lookup::Miss));
        c.finish("f", [3; 32], None);
        assert!(
            matches!(c.begin("f", [4; 32]), Lookup::Miss),
            "failures are not saved"
        );
    }
}
