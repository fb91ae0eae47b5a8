//! Stripe Connect for producers: onboarding link, onboarding status and balance. The calls
//! themselves (and their retries) are the money path's (`pique_checkout::connect`); these
//! handlers read the body and shape the answer.

use axum::{Json, body::Bytes, extract::State};
use pique_checkout::payments::BalanceAmount;
use pique_core::validate::{Fields, msg};
use serde_json::{Value, json};

use crate::{ApiError, AppState, auth::Producer, extract::optional_object};

/// An http(s) URL from the body, or the default.
fn url_field(f: &mut Fields<'_>, key: &str, default: String) -> Option<String> {
    match f.string(key, 2_000, false)? {
        None => Some(default),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Some(u),
        Some(_) => {
            f.errors.add(key, msg::INVALID_URL);
            None
        }
    }
}

/// `POST /api/v1/producers/stripe-connect-link/`: creates the producer's Express account on
/// first use, stores its id, and returns a fresh onboarding link.
#[utoipa::path(post, path = "/api/v1/producers/stripe-connect-link/", tag = "producers",
    request_body(content = Object, description = "optional `return_url`, `refresh_url` (default: under PIQUE_PUBLIC_URL)"),
    responses((status = 200, description = "`{\"url\", \"account_id\", \"expires_at\"}`"), (status = 401, description = "No token"), (status = 403, description = "Not a producer"), (status = 503, description = "Stripe failed")))]
pub async fn connect_link(
    State(state): State<AppState>,
    who: Producer,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: the original's portal posts nothing.
    let obj = optional_object(&body)?;
    let mut f = Fields::new(&obj);
    let base = state.config.public_url.clone();
    let return_url = url_field(&mut f, "return_url", format!("{base}/portal/stripe/return"));
    let refresh_url = url_field(
        &mut f,
        "refresh_url",
        format!("{base}/portal/stripe/refresh"),
    );
    f.finish()?;
    let (Some(return_url), Some(refresh_url)) = (return_url, refresh_url) else {
        return Err(ApiError::BadRequest("Invalid URLs.".into()));
    };
    let onboarding = state
        .checkout
        .connect_link(&who.producer, &who.user.email, &return_url, &refresh_url)
        .await?;
    Ok(Json(json!({
        "url": onboarding.link.url,
        "account_id": onboarding.account_id,
        "expires_at": onboarding.link.expires_at,
    })))
}

/// `GET /api/v1/producers/stripe-status/`: onboarding state, read from Stripe and recorded.
#[utoipa::path(get, path = "/api/v1/producers/stripe-status/", tag = "producers",
    responses((status = 200, description = "`{\"account_id\", \"charges_enabled\", \"details_submitted\", \"payouts_enabled\", \"onboarding_complete\"}`"), (status = 503, description = "Stripe failed")))]
pub async fn status(State(state): State<AppState>, who: Producer) -> Result<Json<Value>, ApiError> {
    let Some((account_id, account)) = state.checkout.connect_status(&who.producer).await? else {
        return Ok(Json(json!({
            "account_id": null, "charges_enabled": false, "details_submitted": false,
            "payouts_enabled": false, "onboarding_complete": false,
        })));
    };
    Ok(Json(json!({
        "account_id": account_id,
        "charges_enabled": account.charges_enabled,
        "details_submitted": account.details_submitted,
        "payouts_enabled": account.payouts_enabled,
        "onboarding_complete": account.charges_enabled && account.details_submitted,
    })))
}

/// `GET /api/v1/producers/stripe-balance/`: the connected account's balance (amounts in
/// cents, as Stripe). A producer without an account has an empty balance, not an error: the
/// portal's finance page (and the load plans) read it before onboarding.
#[utoipa::path(get, path = "/api/v1/producers/stripe-balance/", tag = "producers",
    responses((status = 200, description = "`{\"account_id\", \"available\": [{\"amount\", \"currency\"}], \"pending\": [...]}`"), (status = 503, description = "Stripe failed")))]
pub async fn balance(
    State(state): State<AppState>,
    who: Producer,
) -> Result<Json<Value>, ApiError> {
    let Some((account_id, balance)) = state.checkout.connect_balance(&who.producer).await? else {
        return Ok(Json(
            json!({ "account_id": null, "available": [], "pending": [] }),
        ));
    };
    let amounts = |list: &[BalanceAmount]| -> Vec<Value> {
        list.iter()
            .map(|a| json!({ "amount": a.amount, "currency": a.currency }))
            .collect()
    };
    Ok(Json(json!({
        "account_id": account_id,
        "available": amounts(&balance.available),
        "pending": amounts(&balance.pending),
    })))
}
