//! DRF `TokenAuthentication` as axum extractors.
//!
//! - [`Authenticated`]: any logged-in user (`Authorization: Token <key>`), else 401 with
//!   `WWW-Authenticate: Token` and DRF's own messages;
//! - [`Producer`]: a logged-in member of a producer, else 403 (a logged-in user without a
//!   producer, e.g. staff, has the wrong role).
//!
//! The token is looked up on every request (one indexed join); there is no session cache, so
//! logout takes effect at once.

use axum::{extract::FromRequestParts, http::request::Parts};
use pique_store::auth::{self, Principal, ProducerAccount, User};

use crate::{ApiError, AppState};

/// DRF's message for a request without credentials.
pub const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
/// DRF's message for an unknown token.
pub const INVALID_TOKEN: &str = "Invalid token.";
/// DRF's message for a permission failure.
pub const NO_PERMISSION: &str = "You do not have permission to perform this action.";

/// A request made with a valid token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token key sent (logout deletes it).
    pub token: String,
    /// The user.
    pub user: User,
    /// Their producer, if any.
    pub producer: Option<ProducerAccount>,
}

/// A request made with a valid token by a producer member.
#[derive(Debug, Clone)]
pub struct Producer {
    /// The token key sent.
    pub token: String,
    /// The user.
    pub user: User,
    /// The producer they act for.
    pub producer: ProducerAccount,
}

impl Producer {
    /// The producer's id, the scope of every portal query.
    pub fn id(&self) -> i64 {
        self.producer.id
    }
}

/// The key of `Authorization: Token <key>`, as DRF parses it: the keyword is
/// case-insensitive; a header of another scheme means "no credentials"; a malformed one is
/// an invalid token header.
fn token_from(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        ApiError::Unauthorized(
            "Invalid token header. Token string should not contain invalid characters.".into(),
        )
    })?;
    let mut words = value.split_whitespace();
    match words.next() {
        Some(scheme) if scheme.eq_ignore_ascii_case("token") => {}
        _ => return Ok(None),
    }
    let (Some(key), None) = (words.next(), words.next()) else {
        return Err(ApiError::Unauthorized(
            "Invalid token header. Token string should not contain spaces.".into(),
        ));
    };
    Ok(Some(key.to_string()))
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = token_from(parts)?.ok_or_else(|| ApiError::Unauthorized(NOT_PROVIDED.into()))?;
        // Keys are 40 hex characters; anything else cannot exist, so skip the query.
        if key.len() != 40 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::Unauthorized(INVALID_TOKEN.into()));
        }
        let Principal { user, producer } = auth::principal_for_token(&state.pool, &key)
            .await?
            .ok_or_else(|| ApiError::Unauthorized(INVALID_TOKEN.into()))?;
        Ok(Authenticated {
            token: key,
            user,
            producer,
        })
    }
}

impl FromRequestParts<AppState> for Producer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let a = Authenticated::from_request_parts(parts, state).await?;
        let producer = a
            .producer
            .ok_or_else(|| ApiError::Forbidden(NO_PERMISSION.into()))?;
        Ok(Producer {
            token: a.token,
            user: a.user,
            producer,
        })
    }
}
