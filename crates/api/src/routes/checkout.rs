//! The tickets app: `/checkout/`, `/success/`, `/cancel/`, `/validate-promo/`,
//! `/stripe/webhook/`, `/checkout/status/{id}/`. Filled in by the checkout work.

use axum::Router;

use crate::AppState;

/// Routes of the money path.
pub fn router() -> Router<AppState> {
    Router::new()
}
