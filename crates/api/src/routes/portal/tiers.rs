//! `/api/v1/portal/shows/{id}/tickets/`: the ticket tiers of a producer's show.

use axum::{Json, extract::State, http::StatusCode};
use pique_core::validate;
use pique_store::portal::{
    owns_show,
    tiers::{self as portal, TierData},
};
use serde_json::Value;

use super::{input, outcome};
use crate::{
    ApiError, AppState,
    auth::Producer,
    extract::{ApiJson, PathId, PathIds},
};

/// `GET /api/v1/portal/shows/{id}/tickets/`: the show's tiers with sold/held counters.
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/tickets/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "Array of tiers"), (status = 404, description = "Not this producer's show")))]
pub async fn list(
    State(state): State<AppState>,
    who: Producer,
    PathId(id): PathId,
) -> Result<Json<Vec<portal::PortalTier>>, ApiError> {
    portal::list_tiers(&state.pool, who.id(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// `POST /api/v1/portal/shows/{id}/tickets/`: a new tier.
#[utoipa::path(post, path = "/api/v1/portal/shows/{id}/tickets/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    request_body(content = Object, description = "name, quantity, price required; description, is_donation_based, max_per_order, position optional"),
    responses((status = 201, description = "The tier"), (status = 400, description = "Field errors"), (status = 404, description = "Not this producer's show")))]
pub async fn create(
    State(state): State<AppState>,
    who: Producer,
    PathId(id): PathId,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<portal::PortalTier>), ApiError> {
    // Ownership first: a stranger's show is a 404 even with a bad body.
    if !owns_show(&state.pool, who.id(), id).await? {
        return Err(ApiError::NotFound);
    }
    let data = input::tier(&validate::object(body)?, None, true)?;
    let tier = outcome(portal::create_tier(&state.pool, who.id(), who.user.id, id, &data).await?)?;
    state.cache.invalidate().await;
    Ok((StatusCode::CREATED, Json(tier)))
}

/// `GET /api/v1/portal/shows/{id}/tickets/{tier}/`.
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/tickets/{tier}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("tier" = i64, Path, description = "tier id")),
    responses((status = 200, description = "The tier"), (status = 404, description = "Not this producer's tier")))]
pub async fn detail(
    State(state): State<AppState>,
    who: Producer,
    PathIds(id, tier): PathIds,
) -> Result<Json<portal::PortalTier>, ApiError> {
    portal::get_tier(&state.pool, who.id(), id, tier)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

async fn edit(
    state: AppState,
    who: Producer,
    id: i64,
    tier: i64,
    body: Value,
    full: bool,
) -> Result<Json<portal::PortalTier>, ApiError> {
    let current = portal::get_tier(&state.pool, who.id(), id, tier)
        .await?
        .ok_or(ApiError::NotFound)?;
    let data = input::tier(
        &validate::object(body)?,
        Some(&TierData::from_tier(&current)),
        full,
    )?;
    let tier = outcome(portal::update_tier(&state.pool, who.id(), id, tier, &data).await?)?;
    state.cache.invalidate().await;
    Ok(Json(tier))
}

/// `PUT /api/v1/portal/shows/{id}/tickets/{tier}/`: the quantity can't go below sold + held.
#[utoipa::path(put, path = "/api/v1/portal/shows/{id}/tickets/{tier}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("tier" = i64, Path, description = "tier id")),
    responses((status = 200, description = "The tier"), (status = 400, description = "Field errors, or quantity below sold + held"), (status = 404, description = "Not this producer's tier")))]
pub async fn replace(
    State(state): State<AppState>,
    who: Producer,
    PathIds(id, tier): PathIds,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalTier>, ApiError> {
    edit(state, who, id, tier, body, true).await
}

/// `PATCH /api/v1/portal/shows/{id}/tickets/{tier}/`.
#[utoipa::path(patch, path = "/api/v1/portal/shows/{id}/tickets/{tier}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("tier" = i64, Path, description = "tier id")),
    responses((status = 200, description = "The tier"), (status = 400, description = "Field errors, or quantity below sold + held"), (status = 404, description = "Not this producer's tier")))]
pub async fn update(
    State(state): State<AppState>,
    who: Producer,
    PathIds(id, tier): PathIds,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalTier>, ApiError> {
    edit(state, who, id, tier, body, false).await
}

/// `DELETE /api/v1/portal/shows/{id}/tickets/{tier}/`: only a tier nobody ordered (409 else).
#[utoipa::path(delete, path = "/api/v1/portal/shows/{id}/tickets/{tier}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("tier" = i64, Path, description = "tier id")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "The tier has orders"), (status = 404, description = "Not this producer's tier")))]
pub async fn remove(
    State(state): State<AppState>,
    who: Producer,
    PathIds(id, tier): PathIds,
) -> Result<StatusCode, ApiError> {
    outcome(portal::delete_tier(&state.pool, who.id(), id, tier).await?)?;
    state.cache.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}
