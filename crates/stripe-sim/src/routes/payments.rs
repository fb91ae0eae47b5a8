//! `/v1/refunds` and `/v1/payment_intents/{id}`.

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
};
use serde_json::Value;

use crate::{
    error::ApiError,
    form::Form,
    knobs::Caller,
    objects::{self, EventMeta},
    state::{SimState, now},
    store::NewRefund,
};

/// `POST /v1/refunds` (by `payment_intent` or `charge`; `amount` defaults to the rest).
/// Emits `refund.created`.
pub async fn create_refund(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let f = Form::parse(&body);
    let reason = f.str(&["reason"]);
    if let Some(r) = &reason
        && !matches!(
            r.as_str(),
            "duplicate" | "fraudulent" | "requested_by_customer"
        )
    {
        return Err(ApiError::invalid(
            "reason",
            format!(
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer \
                 (got {r})"
            ),
        ));
    }
    let req = NewRefund {
        payment_intent: f.str(&["payment_intent"]),
        charge: f.str(&["charge"]),
        amount: f.int(&["amount"])?,
        reason,
        metadata: f.string_map(&["metadata"]),
        reverse_transfer: f.bool(&["reverse_transfer"])?.unwrap_or(false),
    };
    let refund = state.with_store(|s| s.create_refund(req, caller.account.as_deref(), now()))?;
    let json = objects::refund(&refund);
    let meta = EventMeta {
        account: caller.account.clone(),
        livemode: caller.livemode,
        created: refund.created,
        request_id: Some(caller.request_id),
        idempotency_key: caller.idempotency_key,
        ..EventMeta::default()
    };
    state.emit("refund.created", json.clone(), meta);
    Ok(Json(json))
}

/// `GET /v1/refunds/{id}`.
pub async fn retrieve_refund(
    State(state): State<SimState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .with_store(|s| s.refund(&id).map(objects::refund))
        .map(Json)
}

/// `GET /v1/payment_intents/{id}`.
pub async fn retrieve_payment_intent(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .with_store(|s| {
            s.payment_intent(&id, caller.account.as_deref())
                .map(objects::payment_intent)
        })
        .map(Json)
}
