//! The OpenAPI 3 document (`/api/openapi.json`) and an offline docs page (`/api/docs/`).
//!
//! Each route module documents its handlers with `#[utoipa::path]`; this module lists them.
//! Swagger UI is vendored into the binary, so the docs work with no network.

use axum::{Json, Router, routing::get};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::{AppState, routes};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "PiqueTickets API (Rust replica)", description = "Same paths and shapes as the original Django/DRF service."),
    paths(
        routes::health::health,
        routes::public::list_shows,
        routes::public::show_detail,
        routes::public::featured_shows,
        routes::public::list_venues,
        routes::public::list_performers,
        routes::public::list_producers,
        routes::public::list_tickets,
        routes::public::search_shows,
        routes::public::active_cities,
        routes::checkout::create_checkout,
        routes::checkout::checkout_status,
        routes::checkout::success,
        routes::checkout::cancel,
        routes::checkout::validate_promo,
        routes::checkout::stripe_webhook,
    ),
    tags((name = "shows"), (name = "catalog"), (name = "health"), (name = "checkout"))
)]
pub struct ApiDoc;

/// The full document, with every area's paths merged in.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(routes::portal::PortalDoc::openapi());
    doc
}

/// `/api/openapi.json` and `/api/docs/`.
pub fn router() -> Router<AppState> {
    let doc = document();
    let json = doc.clone();
    Router::new()
        .route("/api/openapi.json", get(move || async move { Json(json) }))
        .merge(SwaggerUi::new("/api/docs").url("/api/docs/openapi.json", doc))
}
