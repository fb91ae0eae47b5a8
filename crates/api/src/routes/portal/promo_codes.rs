//! `/api/v1/portal/shows/{id}/promo-codes/`: the promo codes of a producer's show.

use axum::{Json, extract::State, http::StatusCode};
use pique_core::validate;
use pique_store::portal::{
    owns_show,
    promo_codes::{self as portal, PromoData},
};
use serde_json::Value;

use super::{input, outcome};
use crate::{
    ApiError, AppState,
    auth::Producer,
    extract::{ApiJson, PathId, PathIds},
};

/// `GET /api/v1/portal/shows/{id}/promo-codes/`.
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/promo-codes/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "Array of promo codes"), (status = 404, description = "Not this producer's show")))]
pub async fn list(
    State(state): State<AppState>,
    who: Producer,
    PathId(id): PathId,
) -> Result<Json<Vec<portal::PortalPromo>>, ApiError> {
    portal::list_promos(&state.pool, who.id(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// `POST /api/v1/portal/shows/{id}/promo-codes/`.
#[utoipa::path(post, path = "/api/v1/portal/shows/{id}/promo-codes/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    request_body(content = Object, description = "code, discount required; discount_type (percent|amount), max_uses, valid_from, valid_until, is_active optional"),
    responses((status = 201, description = "The promo code"), (status = 400, description = "Field errors (duplicate code, percent > 100...)"), (status = 404, description = "Not this producer's show")))]
pub async fn create(
    State(state): State<AppState>,
    who: Producer,
    PathId(id): PathId,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<portal::PortalPromo>), ApiError> {
    if !owns_show(&state.pool, who.id(), id).await? {
        return Err(ApiError::NotFound);
    }
    let data = input::promo(&validate::object(body)?, None, true)?;
    let promo = outcome(portal::create_promo(&state.pool, who.id(), id, &data).await?)?;
    state.cache.invalidate().await;
    Ok((StatusCode::CREATED, Json(promo)))
}

/// `GET /api/v1/portal/shows/{id}/promo-codes/{promo}/`.
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/promo-codes/{promo}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("promo" = i64, Path, description = "promo code id")),
    responses((status = 200, description = "The promo code"), (status = 404, description = "Not this producer's promo code")))]
pub async fn detail(
    State(state): State<AppState>,
    who: Producer,
    PathIds(id, promo): PathIds,
) -> Result<Json<portal::PortalPromo>, ApiError> {
    portal::get_promo(&state.pool, who.id(), id, promo)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

async fn edit(
    state: AppState,
    who: Producer,
    id: i64,
    promo: i64,
    body: Value,
    full: bool,
) -> Result<Json<portal::PortalPromo>, ApiError> {
    let current = portal::get_promo(&state.pool, who.id(), id, promo)
        .await?
        .ok_or(ApiError::NotFound)?;
    let data = input::promo(
        &validate::object(body)?,
        Some(&PromoData::from_promo(&current)),
        full,
    )?;
    let promo = outcome(portal::update_promo(&state.pool, who.id(), id, promo, &data).await?)?;
    state.cache.invalidate().await;
    Ok(Json(promo))
}

/// `PUT /api/v1/portal/shows/{id}/promo-codes/{promo}/`.
#[utoipa::path(put, path = "/api/v1/portal/shows/{id}/promo-codes/{promo}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("promo" = i64, Path, description = "promo code id")),
    responses((status = 200, description = "The promo code"), (status = 400, description = "Field errors"), (status = 404, description = "Not this producer's promo code")))]
pub async fn replace(
    State(state): State<AppState>,
    who: Producer,
    PathIds(id, promo): PathIds,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalPromo>, ApiError> {
    edit(state, who, id, promo, body, true).await
}

/// `PATCH /api/v1/portal/shows/{id}/promo-codes/{promo}/`.
#[utoipa::path(patch, path = "/api/v1/portal/shows/{id}/promo-codes/{promo}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("promo" = i64, Path, description = "promo code id")),
    responses((status = 200, description = "The promo code"), (status = 400, description = "Field errors"), (status = 404, description = "Not this producer's promo code")))]
pub async fn update(
    State(state): State<AppState>,
    who: Producer,
    PathIds(id, promo): PathIds,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalPromo>, ApiError> {
    edit(state, who, id, promo, body, false).await
}

/// `DELETE /api/v1/portal/shows/{id}/promo-codes/{promo}/`: only an unused code (409 else).
#[utoipa::path(delete, path = "/api/v1/portal/shows/{id}/promo-codes/{promo}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("promo" = i64, Path, description = "promo code id")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Used by orders"), (status = 404, description = "Not this producer's promo code")))]
pub async fn remove(
    State(state): State<AppState>,
    who: Producer,
    PathIds(id, promo): PathIds,
) -> Result<StatusCode, ApiError> {
    outcome(portal::delete_promo(&state.pool, who.id(), id, promo).await?)?;
    state.cache.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}
