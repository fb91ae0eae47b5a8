//! Stripe Connect for producers: onboarding link, onboarding status and balance, through
//! async-stripe against the configured `STRIPE_API_BASE` (stripe-sim locally, real Stripe
//! with a test key otherwise; only the base URL and key differ).

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use axum::{Json, body::Bytes, extract::State};
use serde_json::{Value, json};
use stripe::{Client, ClientBuilder, StripeError, StripeRequest};
use stripe_connect::{
    account::{CreateAccount, CreateAccountType, RetrieveAccount},
    account_link::{CreateAccountLink, CreateAccountLinkType},
};
use stripe_core::balance::RetrieveForMyAccountBalance;

use super::input::{self, Fields};
use crate::{ApiError, AppState, auth::Producer};

/// Per-attempt timeout of Connect calls: a hung Stripe must not hold a portal request for
/// the 65 s server timeout.
const STRIPE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client per (base URL, key), built once. Building one sets up a TLS connector, which is
/// too slow to repeat on every `stripe-balance` call of the load plans; tests run several
/// apps with different stripe-sim URLs in one process, hence a map rather than one client.
fn client(state: &AppState) -> Result<Client, ApiError> {
    static CLIENTS: OnceLock<Mutex<HashMap<(String, String), Client>>> = OnceLock::new();
    let key = (
        state.config.stripe_api_base.clone(),
        state.config.stripe_secret_key.clone(),
    );
    let map = CLIENTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(c) = map.get(&key) {
        return Ok(c.clone());
    }
    let c = ClientBuilder::new(key.1.clone())
        .url(key.0.clone())
        .timeout(STRIPE_TIMEOUT)
        .build()
        .map_err(|e| ApiError::Internal(format!("stripe client: {e}")))?;
    map.insert(key, c.clone());
    Ok(c)
}

/// Stripe failures as 503: the portal cannot do its job, and retrying later may help.
fn stripe_error(e: StripeError) -> ApiError {
    tracing::warn!(error = %e, "stripe connect call failed");
    let detail = match &e {
        StripeError::Stripe(err, status) => {
            format!(
                "Stripe refused the request ({status}): {}",
                err.message.as_deref().unwrap_or("no message")
            )
        }
        _ => "Stripe is not answering; try again shortly.".to_string(),
    };
    ApiError::Unavailable(detail)
}

/// An http(s) URL from the body, or the default.
fn url_field(f: &mut Fields<'_>, key: &str, default: String) -> Option<String> {
    match f.string(key, 2_000, false)? {
        None => Some(default),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Some(u),
        Some(_) => {
            f.errors.add(key, "Enter a valid URL.");
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
    let obj = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("JSON parse error - {e}")))?;
        input::object(v)?
    };
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
    let client = client(&state)?;
    let account_id = match &who.producer.stripe_account_id {
        Some(id) => id.clone(),
        None => {
            let mut metadata = HashMap::new();
            metadata.insert("producer_id".to_string(), who.producer.id.to_string());
            let mut create = CreateAccount::new()
                .type_(CreateAccountType::Express)
                .metadata(metadata);
            if !who.user.email.is_empty() {
                create = create.email(who.user.email.clone());
            }
            let account = create.send(&client).await.map_err(stripe_error)?;
            // If another request stored an account first, use that one.
            pique_store::portal::set_stripe_account(
                &state.pool,
                who.producer.id,
                account.id.as_str(),
            )
            .await?
        }
    };
    let link = CreateAccountLink::new(
        account_id.as_str(),
        CreateAccountLinkType::AccountOnboarding,
    )
    .return_url(return_url)
    .refresh_url(refresh_url)
    .send(&client)
    .await
    .map_err(stripe_error)?;
    Ok(Json(
        json!({ "url": link.url, "account_id": account_id, "expires_at": link.expires_at }),
    ))
}

/// `GET /api/v1/producers/stripe-status/`: onboarding state, read from Stripe and recorded.
#[utoipa::path(get, path = "/api/v1/producers/stripe-status/", tag = "producers",
    responses((status = 200, description = "`{\"account_id\", \"charges_enabled\", \"details_submitted\", \"payouts_enabled\", \"onboarding_complete\"}`"), (status = 503, description = "Stripe failed")))]
pub async fn status(State(state): State<AppState>, who: Producer) -> Result<Json<Value>, ApiError> {
    let Some(account_id) = who.producer.stripe_account_id.clone() else {
        return Ok(Json(json!({
            "account_id": null, "charges_enabled": false, "details_submitted": false,
            "payouts_enabled": false, "onboarding_complete": false,
        })));
    };
    let client = client(&state)?;
    let account = RetrieveAccount::new(account_id.as_str())
        .send(&client)
        .await
        .map_err(stripe_error)?;
    let charges = account.charges_enabled.unwrap_or(false);
    let details = account.details_submitted.unwrap_or(false);
    let complete = charges && details;
    if complete != who.producer.stripe_onboarding_complete {
        pique_store::portal::set_onboarding_complete(&state.pool, who.producer.id, complete)
            .await?;
    }
    Ok(Json(json!({
        "account_id": account_id,
        "charges_enabled": charges,
        "details_submitted": details,
        "payouts_enabled": account.payouts_enabled.unwrap_or(false),
        "onboarding_complete": complete,
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
    let Some(account_id) = who.producer.stripe_account_id.clone() else {
        return Ok(Json(
            json!({ "account_id": null, "available": [], "pending": [] }),
        ));
    };
    let client = client(&state)?;
    let balance = RetrieveForMyAccountBalance::new()
        .customize()
        .account_id(stripe::AccountId::from(account_id.as_str()))
        .send(&client)
        .await
        .map_err(stripe_error)?;
    let amounts = |list: &[stripe_core::BalanceAmount]| -> Vec<Value> {
        list.iter()
            .map(|a| json!({ "amount": a.amount, "currency": a.currency.to_string() }))
            .collect()
    };
    Ok(Json(json!({
        "account_id": account_id,
        "available": amounts(&balance.available),
        "pending": amounts(&balance.pending),
    })))
}
