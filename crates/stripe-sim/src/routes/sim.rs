//! `/_sim/*`: test and load-plan controls (complete/expire sessions, knobs, stats, webhooks).
//! Not subject to API keys or fault injection.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{
    config::KnobsPatch,
    error::ApiError,
    objects::{self, EventMeta},
    routes::checkout,
    state::SimState,
};

/// `POST /_sim/sessions/{id}/complete`: pays the session as the hosted page would; answers the
/// session JSON. Idempotent for a completed session (no second webhook).
pub async fn complete(
    State(state): State<SimState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = checkout::complete(&state, &id)?;
    Ok(Json(objects::checkout_session(
        &session,
        &state.settings().public_base,
    )))
}

/// `POST /_sim/sessions/{id}/expire`: expires an open session whatever its account.
pub async fn expire(
    State(state): State<SimState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account = state.with_store(|s| s.session_any(&id).map(|s| s.account.clone()));
    let Some(account) = account else {
        return Err(ApiError::no_such("checkout.session", "session", &id));
    };
    let session = state.with_store(|s| s.expire_session(&id, account.as_deref()))?;
    Ok(Json(checkout::emit_session_event(
        &state,
        "checkout.session.expired",
        &session,
        EventMeta::default(),
    )))
}

fn config_json(state: &SimState) -> Value {
    let mut v = serde_json::to_value(state.knobs()).unwrap_or_else(|_| json!({}));
    v["webhook_url"] = json!(state.webhook_url());
    v["public_base"] = json!(state.settings().public_base);
    v
}

/// `GET /_sim/config`: current knobs, webhook URL and public base.
pub async fn get_config(State(state): State<SimState>) -> Json<Value> {
    Json(config_json(&state))
}

/// `POST /_sim/config`: partial update (see [`KnobsPatch`]); answers the new config.
pub async fn set_config(State(state): State<SimState>, body: axum::body::Bytes) -> Response {
    let patch: KnobsPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad_request(&e.to_string()),
    };
    let knobs = match state.knobs().apply(&patch) {
        Ok(k) => k,
        Err(e) => return bad_request(&e.to_string()),
    };
    if let Err(e) = state.set_knobs(knobs) {
        return bad_request(&e.to_string());
    }
    if let Some(url) = patch.webhook_url {
        state.set_webhook_url(url);
    }
    Json(config_json(&state)).into_response()
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"type": "invalid_request_error", "message": message}})),
    )
        .into_response()
}

/// `GET /_sim/stats`: request counters by endpoint.
pub async fn stats(State(state): State<SimState>) -> Json<Value> {
    Json(serde_json::to_value(state.stats()).unwrap_or_else(|_| json!({})))
}

/// `GET /_sim/webhooks`: webhook deliveries, oldest first.
pub async fn deliveries(State(state): State<SimState>) -> Json<Value> {
    Json(serde_json::to_value(state.deliveries()).unwrap_or_else(|_| json!([])))
}

/// `GET /_sim/events`: every event emitted, oldest first.
pub async fn events(State(state): State<SimState>) -> Json<Value> {
    Json(Value::Array(state.events()))
}

/// `POST /_sim/reset`: forget all objects, counters, events and deliveries.
pub async fn reset(State(state): State<SimState>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}
