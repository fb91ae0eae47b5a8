//! Connect: `/v1/accounts`, `/v1/account`, `/v1/account_links`, and `/v1/balance` (which honours
//! `Stripe-Account`).

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
};
use serde_json::Value;

use crate::{
    error::ApiError,
    form::Form,
    ids,
    knobs::Caller,
    model::Account,
    objects,
    state::{SimState, now},
    store::AccountLinkInfo,
};

/// Lifetime of an onboarding link, as Stripe's (a few minutes).
const LINK_TTL_SECS: i64 = 300;

/// `POST /v1/accounts` (`type` defaults to `express`).
pub async fn create_account(
    State(state): State<SimState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let f = Form::parse(&body);
    let kind = f.str(&["type"]).unwrap_or_else(|| "express".into());
    if !matches!(kind.as_str(), "express" | "standard" | "custom") {
        return Err(ApiError::invalid(
            "type",
            format!("Invalid type: must be one of custom, express, or standard (got {kind})"),
        ));
    }
    let country = f
        .str(&["country"])
        .unwrap_or_else(|| "US".into())
        .to_uppercase();
    if country.len() != 2 {
        return Err(ApiError::invalid(
            "country",
            format!("Country '{country}' is unknown."),
        ));
    }
    let business_type = f.str(&["business_type"]);
    if let Some(bt) = &business_type
        && !matches!(
            bt.as_str(),
            "company" | "government_entity" | "individual" | "non_profit"
        )
    {
        return Err(ApiError::invalid(
            "business_type",
            format!("Invalid business_type: {bt}"),
        ));
    }
    let account = Account {
        id: ids::account(),
        created: now(),
        kind,
        country,
        email: f.str(&["email"]),
        business_type,
        metadata: f.string_map(&["metadata"]),
        details_submitted: false,
    };
    let json = objects::account(&account);
    state.with_store(|s| s.insert_account(account));
    Ok(Json(json))
}

/// `GET /v1/accounts/{id}`.
pub async fn retrieve_account(
    State(state): State<SimState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if id == ids::PLATFORM_ACCOUNT {
        return Ok(Json(objects::platform_account(&id, 0)));
    }
    state
        .with_store(|s| s.account(&id).map(objects::account))
        .map(Json)
}

/// `GET /v1/account`: the `Stripe-Account` account, or the platform itself.
pub async fn retrieve_own_account(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    match caller.account {
        Some(id) => state
            .with_store(|s| s.account(&id).map(objects::account))
            .map(Json),
        None => Ok(Json(objects::platform_account(ids::PLATFORM_ACCOUNT, 0))),
    }
}

/// `POST /v1/account_links`: url `{public_base}/connect/onboard/{account}`.
pub async fn create_account_link(
    State(state): State<SimState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let f = Form::parse(&body);
    let account = f.required_str(&["account"])?;
    let kind = f.required_str(&["type"])?;
    if !matches!(kind.as_str(), "account_onboarding" | "account_update") {
        return Err(ApiError::invalid(
            "type",
            format!(
                "Invalid type: must be one of account_onboarding or account_update (got {kind})"
            ),
        ));
    }
    let return_url = f.url(&["return_url"])?;
    let refresh_url = f.url(&["refresh_url"])?;
    let created = now();
    let expires_at = created + LINK_TTL_SECS;
    state.with_store(|s| {
        if !s.has_account(&account) {
            return Err(ApiError::no_such_param("account", "account", &account));
        }
        s.set_link(
            &account,
            AccountLinkInfo {
                return_url,
                refresh_url,
                expires_at,
            },
        );
        Ok(())
    })?;
    let url = format!("{}/connect/onboard/{account}", state.settings().public_base);
    Ok(Json(objects::account_link(&url, created, expires_at)))
}

/// `GET /v1/balance`: the platform's balance, or the connected account's with `Stripe-Account`.
pub async fn balance(
    State(state): State<SimState>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    let amounts = state.with_store(|s| s.balance(caller.account.as_deref()));
    Json(objects::balance(&amounts, caller.livemode))
}
