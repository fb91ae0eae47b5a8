//! `/api/v1/portal/shows/...`: a producer's shows (draft -> publish, soft delete), their ticket
//! tiers, promo codes and page design.
//!
//! Every write invalidates the public read cache: publishing, a price change or a new tier
//! must show on `/api/v1/shows/` at once, not after the TTL.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use pique_core::query::FieldErrors;
use pique_store::portal::{self, Outcome, PromoData, ShowData, ShowListFilters, TierData};
use serde_json::Value;

use super::{choice_filter, datetime_filter, envelope, input, page_of, path_id, text_filter};
use crate::{ApiError, AppState, auth::Producer, extract::ApiJson, extract::QueryPairs};

/// Turns a store outcome into the value or the matching DRF error.
pub fn outcome<T>(o: Outcome<T>) -> Result<T, ApiError> {
    match o {
        Outcome::Done(t) => Ok(t),
        Outcome::NotFound => Err(ApiError::NotFound),
        Outcome::Invalid { field, message } => Err(FieldErrors::single(field, message).into()),
        Outcome::Conflict(m) => Err(ApiError::Conflict(m, None)),
    }
}

/// 400 unless venue `id` exists (DRF's message for a dangling primary key).
async fn check_venue(state: &AppState, id: i64) -> Result<(), ApiError> {
    if portal::venue_exists(&state.pool, id).await? {
        Ok(())
    } else {
        Err(FieldErrors::single(
            "venue",
            format!("Invalid pk \"{id}\" - object does not exist."),
        )
        .into())
    }
}

/// `GET /api/v1/portal/shows/`: the producer's shows, paginated, by start time.
#[utoipa::path(get, path = "/api/v1/portal/shows/", tag = "portal",
    params(
        ("status" = Option<String>, Query, description = "draft, published or deleted (default: drafts and published)"),
        ("search" = Option<String>, Query, description = "title contains, case-insensitive"),
        ("start_time__gt" = Option<String>, Query, description = "ISO 8601"),
        ("start_time__lt" = Option<String>, Query, description = "ISO 8601"),
        ("page" = Option<u32>, Query, description = "page number"),
        ("page_size" = Option<u32>, Query, description = "rows per page, at most 100"),
    ),
    responses((status = 200, description = "DRF page of shows"), (status = 401, description = "No token"), (status = 403, description = "Not a producer")))]
pub async fn list(
    State(state): State<AppState>,
    who: Producer,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let mut errors = FieldErrors::default();
    let filters = ShowListFilters {
        status: choice_filter(
            &q,
            "status",
            &["draft", "published", "deleted"],
            &mut errors,
        ),
        search: text_filter(&q, "search", &mut errors),
        start_time_gt: datetime_filter(&q, "start_time__gt", &mut errors),
        start_time_lt: datetime_filter(&q, "start_time__lt", &mut errors),
    };
    let page = page_of(&q, &mut errors);
    errors.into_result(())?;
    let listing = portal::list_shows(&state.pool, who.id(), &filters, page).await?;
    Ok(Json(envelope(
        &headers,
        "/api/v1/portal/shows/",
        &q,
        page,
        listing,
    )?))
}

/// `POST /api/v1/portal/shows/`: a new draft; the slug comes from the title unless given.
#[utoipa::path(post, path = "/api/v1/portal/shows/", tag = "portal",
    request_body(content = Object, description = "title, start_time, venue required; description, door_time, end_time, time_zone, age_restriction, images, refund_policy, slug optional"),
    responses((status = 201, description = "The draft show"), (status = 400, description = "Field errors")))]
pub async fn create(
    State(state): State<AppState>,
    who: Producer,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<portal::PortalShow>), ApiError> {
    let data = input::show(&input::object(body)?, None, true)?;
    check_venue(&state, data.venue).await?;
    let show = outcome(portal::create_show(&state.pool, who.id(), who.user.id, &data).await?)?;
    state.cache.invalidate().await;
    Ok((StatusCode::CREATED, Json(show)))
}

/// `GET /api/v1/portal/shows/{id}/`.
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "The show"), (status = 404, description = "Not this producer's show")))]
pub async fn detail(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
) -> Result<Json<portal::PortalShow>, ApiError> {
    let id = path_id(&id)?;
    portal::get_show(&state.pool, who.id(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

async fn edit(
    state: AppState,
    who: Producer,
    id: String,
    body: Value,
    full: bool,
) -> Result<Json<portal::PortalShow>, ApiError> {
    let id = path_id(&id)?;
    let current = portal::get_show(&state.pool, who.id(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let data: ShowData = input::show(
        &input::object(body)?,
        Some(&ShowData::from_show(&current)),
        full,
    )?;
    if data.venue != current.venue {
        check_venue(&state, data.venue).await?;
    }
    let show = outcome(portal::update_show(&state.pool, who.id(), id, &data).await?)?;
    state.cache.invalidate().await;
    Ok(Json(show))
}

/// `PUT /api/v1/portal/shows/{id}/`: full update (required fields must be sent).
#[utoipa::path(put, path = "/api/v1/portal/shows/{id}/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "The show"), (status = 400, description = "Field errors"), (status = 404, description = "Not this producer's show")))]
pub async fn replace(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalShow>, ApiError> {
    edit(state, who, id, body, true).await
}

/// `PATCH /api/v1/portal/shows/{id}/`: partial update.
#[utoipa::path(patch, path = "/api/v1/portal/shows/{id}/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "The show"), (status = 400, description = "Field errors"), (status = 404, description = "Not this producer's show")))]
pub async fn update(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalShow>, ApiError> {
    edit(state, who, id, body, false).await
}

/// `DELETE /api/v1/portal/shows/{id}/`: soft delete (the row stays, with `deleted_at`).
#[utoipa::path(delete, path = "/api/v1/portal/shows/{id}/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not this producer's show")))]
pub async fn remove(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id)?;
    if !portal::soft_delete_show(&state.pool, who.id(), id).await? {
        return Err(ApiError::NotFound);
    }
    state.cache.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_published(
    state: AppState,
    who: Producer,
    id: String,
    published: bool,
) -> Result<Json<portal::PortalShow>, ApiError> {
    let id = path_id(&id)?;
    let show = outcome(portal::set_published(&state.pool, who.id(), id, published).await?)?;
    state.cache.invalidate().await;
    Ok(Json(show))
}

/// `POST /api/v1/portal/shows/{id}/publish/`: needs at least one ticket tier.
#[utoipa::path(post, path = "/api/v1/portal/shows/{id}/publish/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "The published show"), (status = 400, description = "No ticket tier yet"), (status = 404, description = "Not this producer's show")))]
pub async fn publish(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
) -> Result<Json<portal::PortalShow>, ApiError> {
    set_published(state, who, id, true).await
}

/// `POST /api/v1/portal/shows/{id}/unpublish/`: back to draft.
#[utoipa::path(post, path = "/api/v1/portal/shows/{id}/unpublish/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "The show, now a draft"), (status = 404, description = "Not this producer's show")))]
pub async fn unpublish(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
) -> Result<Json<portal::PortalShow>, ApiError> {
    set_published(state, who, id, false).await
}

// ------------------------------------------------------------------------------------ tiers

/// `GET /api/v1/portal/shows/{id}/tickets/`: the show's tiers with sold/held counters.
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/tickets/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "Array of tiers"), (status = 404, description = "Not this producer's show")))]
pub async fn list_tiers(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
) -> Result<Json<Vec<portal::PortalTier>>, ApiError> {
    let id = path_id(&id)?;
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
pub async fn create_tier(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<portal::PortalTier>), ApiError> {
    let id = path_id(&id)?;
    // Ownership first: a stranger's show is a 404 even with a bad body.
    if !portal::owns_show(&state.pool, who.id(), id).await? {
        return Err(ApiError::NotFound);
    }
    let data = input::tier(&input::object(body)?, None, true)?;
    let tier = outcome(portal::create_tier(&state.pool, who.id(), who.user.id, id, &data).await?)?;
    state.cache.invalidate().await;
    Ok((StatusCode::CREATED, Json(tier)))
}

/// `GET /api/v1/portal/shows/{id}/tickets/{tier}/`.
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/tickets/{tier}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("tier" = i64, Path, description = "tier id")),
    responses((status = 200, description = "The tier"), (status = 404, description = "Not this producer's tier")))]
pub async fn tier_detail(
    State(state): State<AppState>,
    who: Producer,
    Path((id, tier)): Path<(String, String)>,
) -> Result<Json<portal::PortalTier>, ApiError> {
    let (id, tier) = (path_id(&id)?, path_id(&tier)?);
    portal::get_tier(&state.pool, who.id(), id, tier)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

async fn edit_tier(
    state: AppState,
    who: Producer,
    id: String,
    tier: String,
    body: Value,
    full: bool,
) -> Result<Json<portal::PortalTier>, ApiError> {
    let (id, tier) = (path_id(&id)?, path_id(&tier)?);
    let current = portal::get_tier(&state.pool, who.id(), id, tier)
        .await?
        .ok_or(ApiError::NotFound)?;
    let data = input::tier(
        &input::object(body)?,
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
pub async fn replace_tier(
    State(state): State<AppState>,
    who: Producer,
    Path((id, tier)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalTier>, ApiError> {
    edit_tier(state, who, id, tier, body, true).await
}

/// `PATCH /api/v1/portal/shows/{id}/tickets/{tier}/`.
#[utoipa::path(patch, path = "/api/v1/portal/shows/{id}/tickets/{tier}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("tier" = i64, Path, description = "tier id")),
    responses((status = 200, description = "The tier"), (status = 400, description = "Field errors, or quantity below sold + held"), (status = 404, description = "Not this producer's tier")))]
pub async fn update_tier(
    State(state): State<AppState>,
    who: Producer,
    Path((id, tier)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalTier>, ApiError> {
    edit_tier(state, who, id, tier, body, false).await
}

/// `DELETE /api/v1/portal/shows/{id}/tickets/{tier}/`: only a tier nobody ordered (409 else).
#[utoipa::path(delete, path = "/api/v1/portal/shows/{id}/tickets/{tier}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("tier" = i64, Path, description = "tier id")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "The tier has orders"), (status = 404, description = "Not this producer's tier")))]
pub async fn delete_tier(
    State(state): State<AppState>,
    who: Producer,
    Path((id, tier)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (id, tier) = (path_id(&id)?, path_id(&tier)?);
    outcome(portal::delete_tier(&state.pool, who.id(), id, tier).await?)?;
    state.cache.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------------------------ promo codes

/// `GET /api/v1/portal/shows/{id}/promo-codes/`.
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/promo-codes/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "Array of promo codes"), (status = 404, description = "Not this producer's show")))]
pub async fn list_promos(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
) -> Result<Json<Vec<portal::PortalPromo>>, ApiError> {
    let id = path_id(&id)?;
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
pub async fn create_promo(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<portal::PortalPromo>), ApiError> {
    let id = path_id(&id)?;
    if !portal::owns_show(&state.pool, who.id(), id).await? {
        return Err(ApiError::NotFound);
    }
    let data = input::promo(&input::object(body)?, None, true)?;
    let promo = outcome(portal::create_promo(&state.pool, who.id(), id, &data).await?)?;
    state.cache.invalidate().await;
    Ok((StatusCode::CREATED, Json(promo)))
}

/// `GET /api/v1/portal/shows/{id}/promo-codes/{promo}/`.
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/promo-codes/{promo}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("promo" = i64, Path, description = "promo code id")),
    responses((status = 200, description = "The promo code"), (status = 404, description = "Not this producer's promo code")))]
pub async fn promo_detail(
    State(state): State<AppState>,
    who: Producer,
    Path((id, promo)): Path<(String, String)>,
) -> Result<Json<portal::PortalPromo>, ApiError> {
    let (id, promo) = (path_id(&id)?, path_id(&promo)?);
    portal::get_promo(&state.pool, who.id(), id, promo)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

async fn edit_promo(
    state: AppState,
    who: Producer,
    id: String,
    promo: String,
    body: Value,
    full: bool,
) -> Result<Json<portal::PortalPromo>, ApiError> {
    let (id, promo) = (path_id(&id)?, path_id(&promo)?);
    let current = portal::get_promo(&state.pool, who.id(), id, promo)
        .await?
        .ok_or(ApiError::NotFound)?;
    let data = input::promo(
        &input::object(body)?,
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
pub async fn replace_promo(
    State(state): State<AppState>,
    who: Producer,
    Path((id, promo)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalPromo>, ApiError> {
    edit_promo(state, who, id, promo, body, true).await
}

/// `PATCH /api/v1/portal/shows/{id}/promo-codes/{promo}/`.
#[utoipa::path(patch, path = "/api/v1/portal/shows/{id}/promo-codes/{promo}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("promo" = i64, Path, description = "promo code id")),
    responses((status = 200, description = "The promo code"), (status = 400, description = "Field errors"), (status = 404, description = "Not this producer's promo code")))]
pub async fn update_promo(
    State(state): State<AppState>,
    who: Producer,
    Path((id, promo)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalPromo>, ApiError> {
    edit_promo(state, who, id, promo, body, false).await
}

/// `DELETE /api/v1/portal/shows/{id}/promo-codes/{promo}/`: only an unused code (409 else).
#[utoipa::path(delete, path = "/api/v1/portal/shows/{id}/promo-codes/{promo}/", tag = "portal",
    params(("id" = i64, Path, description = "show id"), ("promo" = i64, Path, description = "promo code id")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Used by orders"), (status = 404, description = "Not this producer's promo code")))]
pub async fn delete_promo(
    State(state): State<AppState>,
    who: Producer,
    Path((id, promo)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (id, promo) = (path_id(&id)?, path_id(&promo)?);
    outcome(portal::delete_promo(&state.pool, who.id(), id, promo).await?)?;
    state.cache.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------------------------ page design

/// `GET /api/v1/portal/shows/{id}/page-design/` (defaults if never saved).
#[utoipa::path(get, path = "/api/v1/portal/shows/{id}/page-design/", tag = "portal",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "`{show, primary_color, secondary_color, background_image}`"), (status = 404, description = "Not this producer's show")))]
pub async fn get_design(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
) -> Result<Json<portal::PortalPageDesign>, ApiError> {
    let id = path_id(&id)?;
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
pub async fn put_design(
    State(state): State<AppState>,
    who: Producer,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<portal::PortalPageDesign>, ApiError> {
    let id = path_id(&id)?;
    if !portal::owns_show(&state.pool, who.id(), id).await? {
        return Err(ApiError::NotFound);
    }
    let d = input::design(&input::object(body)?)?;
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
