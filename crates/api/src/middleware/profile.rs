//! The architecture profile in front of the handlers.
//!
//! Under a profile with a Gunicorn model, every request goes through [`Model`] (see
//! [`super::gunicorn`]); under `rust` nothing is installed. Either way `/metrics` says which
//! profile the server runs: `pique_profile_info{profile="django-railway",model="gunicorn
//! gthread 1x2"} 1`, which load reports pick up.

use axum::{Router, extract::Request, middleware::Next};
use pique_core::Profile;

use super::gunicorn::Model;

/// Wraps `router` in `profile`'s model, if it has one, and publishes the profile's name.
pub fn apply(router: Router, profile: &Profile) -> Router {
    metrics::gauge!(
        "pique_profile_info",
        "profile" => profile.name.clone(),
        "model" => profile.model_summary()
    )
    .set(1.0);
    match Model::new(profile) {
        Some(model) => router.layer(axum::middleware::from_fn(
            move |request: Request, next: Next| model.clone().handle(request, next),
        )),
        None => router,
    }
}
