//! `/api/v1/portal/shows/{id}/page-design/`: the checkout page design of a producer's show.

use axum::{Json, extract::State};
use pique_core::validate;
use pique_store::portal::{owns_show, page_design as portal};
use serde_json::Value;

use super::input;
use crate::{
    ApiError, AppState,
    auth::Producer,
    extract::{ApiJson, PathId},
};

/// `GET /api/v1/portal/shows/{id}/page-design/` (defaults if never saved).
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/page-design/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "`{show, primary_color, secondary_color, background_image}`"), (status = 404, description = "Not this producer's show")))]
pub async fn get(
    State(state): State<AppState>,
    who: Producer,
    PathId(id): PathId,
) -> Result<Json<portal::PortalPageDesign>, ApiError> {
    portal::get_page_design(&state.pool, who.id(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// `PUT /api/v1/portal/shows/{id}/page-design/`: replaces the design (absent colours reset to
/// the defaults).
#[utoipa::path(put, path = "/api/v1/portal/shows/{id}/page-design/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    request_body(content = Object, description = "primary_color, secondary_color (#rgb or #rrggbb), background_image (URL or null)"),
    responses((status = 200, description = "The design"), (status = 400, description = "Field errors"), (status = 404, description = "Not this producer's show")))]
pub async fn put(
    State(state): State<AppState>,
    who: Producer,
    PathId(id): PathId,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalPageDesign>, ApiError> {
    if !owns_show(&state.pool, who.id(), id).await? {
        return Err(ApiError::NotFound);
    }
    let d = input::design(&validate::object(body)?)?;
    let design = portal::put_page_design(
        &state.pool,
        who.id(),
        id,
        &d.primary_color,
        &d.secondary_color,
        d.background_image.as_deref(),
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    state.cache.invalidate().await;
    Ok(Json(design))
}
