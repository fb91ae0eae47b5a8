//! The tickets app, mounted at `/` as in the original: `/checkout/`, `/success/`,
//! `/cancel/`, `/validate-promo/`, plus the replica's `/stripe/webhook/` (also under
//! `/api/v1/stripe/webhook/`, where stripe-sim's docs point) and `/checkout/status/{id}/`
//! (the `queue` strategy's polling endpoint).
//!
//! Handlers parse, call the money path (`pique_checkout`) and map its errors; rules live in
//! `pique_core::pricing`, SQL in `pique_store::{checkout, orders}`.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::Utc;
use pique_checkout::{
    Began,
    payment::{CancelKey, WebhookReceipt},
    queued::QueuedState,
};
use pique_core::{
    Money,
    pricing::{self, PromoInfo},
    validate::{FieldErrors, Fields, msg},
};
use pique_store::checkout as store;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    extract::{ApiJson, QueryPairs},
};

/// Most shows `POST /validate-promo/` lists when no `show_id` is given.
pub const PROMO_SHOWS_LIMIT: i64 = 100;

/// Routes of the money path.
pub fn router() -> Router<AppState> {
    let r = Router::new();
    let r = super::both(r, "/checkout/", post(create_checkout));
    let r = super::both(r, "/checkout/status/{id}/", get(checkout_status));
    let r = super::both(r, "/success/", post(success).get(success_page));
    let r = super::both(r, "/cancel/", post(cancel).get(cancel));
    let r = super::both(r, "/validate-promo/", post(validate_promo));
    let r = super::both(r, "/stripe/webhook/", post(stripe_webhook));
    super::both(r, "/api/v1/stripe/webhook/", post(stripe_webhook))
}

/// Creates an order holding the seats and a Stripe Checkout Session.
///
/// Body: `{"show_id", "tickets": [{"ticket_id", "quantity", "donation_amount"?}],
/// "order_email", "order_name", "promo_code"?}`. Answers 201 `{order_id, order_uuid,
/// session_id, url, expires_at, status, subtotal, discount, total, currency,
/// checkout_strategy}`; a free order is paid at once (`session_id: null`, `status: "paid"`).
/// With `CHECKOUT_STRATEGY=queue`: 202 `{"status": "processing", "checkout_id"}`.
#[utoipa::path(post, path = "/checkout/", tag = "checkout",
    responses(
        (status = 201, description = "seats held; pay at `url` (or paid, for a free order)"),
        (status = 202, description = "queue strategy: accepted, poll /checkout/status/{checkout_id}/"),
        (status = 400, description = "invalid field (DRF field map) or malformed JSON"),
        (status = 409, description = "not enough seats left: {detail, ticket_id, available}"),
        (status = 502, description = "Stripe refused the session; nothing held"),
        (status = 503, description = "Stripe or the checkout locks unavailable; nothing held")))]
pub async fn create_checkout(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    Ok(match state.checkout.begin(&body).await? {
        Began::Started(started) => (StatusCode::CREATED, Json(started)).into_response(),
        Began::Queued(id) => {
            let body = json!({ "status": "processing", "checkout_id": id });
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
    })
}

/// The outcome of a queued checkout: `{"status": "processing"|"completed"|"failed",
/// "checkout_id", ...}`; completed adds the `/checkout/` answer, failed adds `error` (the
/// DRF body) and `http_status`.
#[utoipa::path(get, path = "/checkout/status/{id}/", tag = "checkout",
    params(("id" = String, Path, description = "checkout_id returned by POST /checkout/")),
    responses((status = 200, description = "current state"), (status = 404, description = "unknown id")))]
pub async fn checkout_status(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(raw.trim()).map_err(|_| ApiError::NotFound)?;
    let queued = state
        .checkout
        .queued_state(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut body = json!({});
    let status = match queued {
        QueuedState::Processing => "processing",
        QueuedState::Completed(started) => {
            // The checkout answer's own `status` (the order's) moves to `order_status`, so
            // `status` stays the request's.
            body = serde_json::to_value(&started).map_err(|e| ApiError::Internal(e.to_string()))?;
            if let Some(result) = body.as_object_mut()
                && let Some(order_status) = result.remove("status")
            {
                result.insert("order_status".into(), order_status);
            }
            "completed"
        }
        QueuedState::Failed(refusal) => {
            let (http_status, error) = ApiError::from(refusal).status_and_body();
            body["error"] = error;
            body["http_status"] = json!(http_status.as_u16());
            "failed"
        }
    };
    body["status"] = json!(status);
    body["checkout_id"] = json!(id);
    Ok(Json(body).into_response())
}

/// The payment success handler: `{"session_id"}`. Asks Stripe, marks the order paid once
/// (attendees and PDF/email jobs in the same transaction) and answers the order with its
/// lines and attendees. Idempotent; a payment that arrived after the hold lapsed and found
/// no seats is refunded (`status: "refunded"`).
#[utoipa::path(post, path = "/success/", tag = "checkout",
    responses((status = 200, description = "the order"), (status = 400, description = "missing session_id, or not paid"),
              (status = 404, description = "unknown session")))]
pub async fn success(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let session_id = required_str(&body, "session_id")?;
    Ok(Json(state.checkout.success(&session_id).await?).into_response())
}

/// Where Stripe sends the buyer back (`?session_id=`), and the success page of a free order
/// (`?order_id=<uuid>`): the same answer as `POST /success/`.
pub async fn success_page(
    State(state): State<AppState>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    if let Some(s) = q.get("session_id").filter(|s| !s.trim().is_empty()) {
        return Ok(Json(state.checkout.success(s.trim()).await?).into_response());
    }
    match q.get("order_id").map(|s| Uuid::parse_str(s.trim())) {
        Some(Ok(uuid)) => Ok(Json(state.checkout.order_by_uuid(uuid).await?).into_response()),
        Some(Err(_)) => Err(ApiError::NotFound),
        None => Err(FieldErrors::single("session_id", msg::REQUIRED).into()),
    }
}

/// Cancels a pending order and releases its seats: `session_id` (or `order_id`, the uuid
/// in Stripe's `cancel_url`) in the JSON body or the query string. Answers
/// `{"detail", "order_id", "status"}`; 409 for a paid order.
#[utoipa::path(post, path = "/cancel/", tag = "checkout",
    responses((status = 200, description = "cancelled (or already released)"), (status = 404, description = "unknown"),
              (status = 409, description = "already paid")))]
pub async fn cancel(
    State(state): State<AppState>,
    q: QueryPairs,
    body: String,
) -> Result<Response, ApiError> {
    let parsed: Option<Value> = if body.trim().is_empty() {
        None
    } else {
        Some(serde_json::from_str(&body).map_err(|e| {
            FieldErrors::single("non_field_errors", format!("JSON parse error - {e}"))
        })?)
    };
    let field = |name: &str| -> Option<String> {
        parsed
            .as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| q.get(name).map(str::to_string))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let key = if let Some(s) = field("session_id") {
        CancelKey::Session(s)
    } else if let Some(o) = field("order_id") {
        CancelKey::Order(Uuid::parse_str(&o).map_err(|_| ApiError::NotFound)?)
    } else {
        return Err(FieldErrors::single("session_id", msg::REQUIRED).into());
    };
    let c = state.checkout.cancel(&key).await?;
    let detail = if c.now {
        "Order cancelled.".to_string()
    } else {
        format!("Order already {}.", c.status)
    };
    Ok(
        Json(json!({ "detail": detail, "order_id": c.order_id, "status": c.status }))
            .into_response(),
    )
}

/// Checks a promo code: `{"code", "show_id"?}` (case-insensitive).
///
/// With `show_id`: `{"valid": true, "code", "discount", "discount_type", "show_id"}`.
/// Without (the seed's client sends only the code): the same fields for the soonest upcoming
/// show carrying the code, plus `shows: [{"show_id", "discount", "discount_type"}]` for every
/// upcoming public show carrying it (at most 100). Unknown code: 404 `{"detail": "Invalid
/// promo code."}`; known but unusable (inactive, outside its window, used up): 400 with why.
#[utoipa::path(post, path = "/validate-promo/", tag = "checkout",
    responses((status = 200, description = "valid"), (status = 400, description = "unusable, or bad body"),
              (status = 404, description = "unknown code")))]
pub async fn validate_promo(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let empty = serde_json::Map::new();
    let mut f = Fields::new(body.as_object().unwrap_or(&empty));
    let read = f.string("code", MAX_TEXT_LEN, false);
    let code = f.required("code", read);
    let show_id = f
        .nullable("show_id", |f| f.id("show_id"))
        .flatten()
        .flatten();
    let code = f.finish_with("code", code)?;
    let now = Utc::now();
    let promos = match show_id {
        Some(id) => store::find_promo(&state.pool, id, &code)
            .await?
            .into_iter()
            .collect(),
        None => store::promos_on_upcoming_shows(&state.pool, &code, PROMO_SHOWS_LIMIT).await?,
    };
    if promos.is_empty() {
        return Ok(invalid_promo(StatusCode::NOT_FOUND, "Invalid promo code."));
    }
    let usable: Vec<&PromoInfo> = promos
        .iter()
        .filter(|p| pricing::check_promo(p, now).is_ok())
        .collect();
    let Some(first) = usable.first() else {
        let why = promos
            .first()
            .and_then(|p| pricing::check_promo(p, now).err())
            .map(|e| e.to_string());
        return Ok(invalid_promo(
            StatusCode::BAD_REQUEST,
            &why.unwrap_or_else(|| "Invalid promo code.".into()),
        ));
    };
    let one = |p: &PromoInfo| {
        json!({
            "show_id": p.show_id,
            "discount": Money::new(p.discount),
            "discount_type": p.discount_type.as_str(),
        })
    };
    let mut answer = json!({
        "valid": true,
        "code": first.code,
        "discount": Money::new(first.discount),
        "discount_type": first.discount_type.as_str(),
        "show_id": first.show_id,
    });
    if show_id.is_none() {
        answer["shows"] = Value::Array(usable.iter().map(|p| one(p)).collect());
    }
    Ok(Json(answer).into_response())
}

fn invalid_promo(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({ "valid": false, "detail": detail }))).into_response()
}

/// Stripe webhooks: verifies `Stripe-Signature` (HMAC-SHA256, 5 minute tolerance), records
/// each event id once and shares the success path. Handles `checkout.session.completed` /
/// `async_payment_succeeded` (pay) and `checkout.session.expired` (release); others are
/// acknowledged. Answers `{"received": true, "duplicate": bool}`.
#[utoipa::path(post, path = "/stripe/webhook/", tag = "checkout",
    responses((status = 200, description = "processed (or a repeat)"), (status = 400, description = "missing or bad signature")))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, ApiError> {
    let Some(signature) = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(bad_request("Missing Stripe-Signature header."));
    };
    match state.checkout.receive_webhook(&body, signature).await? {
        WebhookReceipt::Rejected => Ok(bad_request("Invalid Stripe signature or payload.")),
        WebhookReceipt::Handled { duplicate } => {
            Ok(Json(json!({ "received": true, "duplicate": duplicate })).into_response())
        }
    }
}

fn bad_request(detail: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "detail": detail }))).into_response()
}

/// Longest text field accepted in these bodies.
const MAX_TEXT_LEN: usize = 255;

/// A required text field of a JSON body.
fn required_str(body: &Value, field: &str) -> Result<String, ApiError> {
    let empty = serde_json::Map::new();
    let mut f = Fields::new(body.as_object().unwrap_or(&empty));
    let read = f.string(field, MAX_TEXT_LEN, false);
    let value = f.required(field, read);
    Ok(f.finish_with(field, value)?)
}
