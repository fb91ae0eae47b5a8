//! One module per URL area of the original's URL map.

pub mod checkout;
pub mod health;
pub mod portal;
pub mod public;
pub mod tracking;

use axum::{Router, routing::MethodRouter};

use crate::AppState;

/// Registers `path` both with and without its trailing slash, as Django with
/// `APPEND_SLASH` effectively accepts both (clients of the original use the slash).
pub fn both(
    router: Router<AppState>,
    path: &str,
    method: MethodRouter<AppState>,
) -> Router<AppState> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() || trimmed == path {
        return router.route(path, method);
    }
    router.route(trimmed, method.clone()).route(path, method)
}
