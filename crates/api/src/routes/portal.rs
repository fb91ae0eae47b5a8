//! `/auth/`, `/api/v1/portal/`, producer Stripe Connect, check-in and subscribers.
//! Filled in by the producer portal work.

use axum::Router;

use crate::AppState;

/// Routes of the producer side.
pub fn router() -> Router<AppState> {
    Router::new()
}
