//! `/auth/login/`, `/auth/logout/`, `/auth/me/`: DRF's `ObtainAuthToken` and friends.

use axum::{Json, extract::State, http::StatusCode};
use pique_core::validate::{self, FieldErrors, Fields, msg};
use pique_store::auth;
use serde_json::{Value, json};

use crate::{ApiError, AppState, auth::Authenticated, extract::ApiJson};

/// DRF's message for wrong credentials (the same for an unknown user, a wrong password and
/// an inactive account, so none of them can be told apart).
pub const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";

/// Longest password accepted: Argon2 would hash megabytes happily, which is a cheap way to
/// burn the server's CPU.
const MAX_PASSWORD_LEN: usize = 1024;

/// `POST /auth/login/ {username, password}` -> `{token, user, producer}`.
#[utoipa::path(post, path = "/auth/login/", tag = "auth",
    request_body(content = Object, description = "`{\"username\": \"producer1\", \"password\": \"pique-demo\"}`"),
    responses(
        (status = 200, description = "`{\"token\": \"<40 hex>\", \"user\": {...}, \"producer\": {...} | null}`"),
        (status = 400, description = "`{\"non_field_errors\": [\"Unable to log in with provided credentials.\"]}` or missing fields"),
        (status = 429, description = "Too many login attempts from this address (`Retry-After`)"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let obj = validate::object(body)?;
    let mut f = Fields::new(&obj);
    let read = f.string("username", 150, false);
    let failed = read.is_none();
    let username = f.require("username", read.flatten(), failed);
    // Passwords are taken as sent, never trimmed (DRF: `trim_whitespace=False`).
    let password = match obj.get("password") {
        None => f.require::<String>("password", None, false),
        Some(Value::String(p)) if p.is_empty() => {
            f.errors.add("password", msg::BLANK);
            None
        }
        Some(Value::String(p)) if p.len() > MAX_PASSWORD_LEN => {
            f.errors.add("password", msg::max_length(MAX_PASSWORD_LEN));
            None
        }
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => {
            f.errors.add("password", msg::NOT_STRING);
            None
        }
    };
    f.finish()?;
    let (Some(username), Some(password)) = (username, password) else {
        return Err(ApiError::BadRequest(BAD_CREDENTIALS.into()));
    };
    let credentials = auth::credentials(&state.pool, &username).await?;
    // Argon2 takes tens of milliseconds of CPU: off the async workers, so a burst of logins
    // cannot stall every other request.
    let user_id = tokio::task::spawn_blocking(move || match credentials {
        Some(c) if auth::verify_password(&c.password_hash, &password) => Some(c.user_id),
        Some(_) => None,
        None => {
            auth::verify_against_dummy(&password);
            None
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("password check task: {e}")))?;
    let Some(user_id) = user_id else {
        return Err(FieldErrors::single("non_field_errors", BAD_CREDENTIALS).into());
    };
    let (token, principal) = auth::create_token(&state.pool, user_id).await?;
    Ok(Json(
        json!({ "token": token, "user": principal.user, "producer": principal.producer }),
    ))
}

/// `POST /auth/logout/`: deletes the token used for this request.
#[utoipa::path(post, path = "/auth/logout/", tag = "auth",
    responses((status = 204, description = "Logged out"), (status = 401, description = "No or invalid token")))]
pub async fn logout(
    State(state): State<AppState>,
    who: Authenticated,
) -> Result<StatusCode, ApiError> {
    auth::delete_token(&state.pool, &who.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /auth/me/` -> `{user, producer}`.
#[utoipa::path(get, path = "/auth/me/", tag = "auth",
    responses((status = 200, description = "`{\"user\": {...}, \"producer\": {...} | null}`"), (status = 401, description = "No or invalid token")))]
pub async fn me(who: Authenticated) -> Json<Value> {
    Json(json!({ "user": who.user, "producer": who.producer }))
}
