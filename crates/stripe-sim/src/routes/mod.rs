//! The HTTP surface: Stripe's `/v1/*` API behind the fault-injection gate, hosted pages, and
//! the `/_sim/*` controls.

pub mod checkout;
pub mod connect;
pub mod hosted;
pub mod payments;
pub mod sim;

use axum::{
    Router,
    http::{Method, StatusCode, Uri},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};

use crate::{error::ApiError, idempotency, knobs, state::SimState};

/// Builds the simulator's router over `state`.
///
/// Background work (expiring sessions whose `expires_at` passed) is not started here; see
/// [`crate::spawn`] / [`crate::serve`], or call [`crate::start_expiry_sweeper`] yourself.
pub fn router(state: SimState) -> Router {
    let v1 = Router::new()
        .route("/v1/checkout/sessions", post(checkout::create))
        .route("/v1/checkout/sessions/{id}", get(checkout::retrieve))
        .route("/v1/checkout/sessions/{id}/expire", post(checkout::expire))
        .route(
            "/v1/checkout/sessions/{id}/line_items",
            get(checkout::line_items),
        )
        .route("/v1/refunds", post(payments::create_refund))
        .route("/v1/refunds/{id}", get(payments::retrieve_refund))
        .route(
            "/v1/payment_intents/{id}",
            get(payments::retrieve_payment_intent),
        )
        .route("/v1/accounts", post(connect::create_account))
        .route("/v1/accounts/{id}", get(connect::retrieve_account))
        .route("/v1/account", get(connect::retrieve_own_account))
        .route("/v1/account_links", post(connect::create_account_link))
        .route("/v1/balance", get(connect::balance))
        // route_layer: only matched /v1 routes, and the gate sees MatchedPath. The last layer
        // added is the outermost: the gate runs first, then idempotency (which needs the Caller).
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            knobs::v1_guard,
        ));

    Router::new()
        .merge(v1)
        .route("/pay/{id}", get(hosted::pay_page).post(hosted::pay_submit))
        .route("/connect/onboard/{account}", get(hosted::onboard))
        .route("/_sim/sessions/{id}/complete", post(sim::complete))
        .route("/_sim/sessions/{id}/expire", post(sim::expire))
        .route("/_sim/config", get(sim::get_config).post(sim::set_config))
        .route("/_sim/stats", get(sim::stats))
        .route("/_sim/webhooks", get(sim::deliveries))
        .route("/_sim/events", get(sim::events))
        .route("/_sim/reset", post(sim::reset))
        .route("/", get(index))
        .fallback(fallback)
        .with_state(state)
}

async fn index() -> &'static str {
    "stripe-sim: a local Stripe stand-in. API under /v1, controls under /_sim.\n"
}

/// Unknown `/v1` URLs get Stripe's error; anything else a plain 404.
async fn fallback(method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/v1/") {
        ApiError::unrecognized_url(method.as_str(), uri.path()).into_response()
    } else {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}
