//! `/api/v1/portal/shows/`: a producer's shows (draft -> publish, soft delete).
//!
//! Every write invalidates the public read cache (here and in the tier, promo code and page
//! design modules): publishing, a price change or a new tier must show on `/api/v1/shows/`
//! at once, not after the TTL.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use pique_core::{
    ShowStatus,
    validate::{self, FieldErrors},
};
use pique_store::portal::shows::{self as portal, ShowData, ShowListFilters};
use serde_json::Value;

use super::{envelope, input, outcome, page_of};
use crate::{
    ApiError, AppState,
    auth::Producer,
    extract::{ApiJson, PathId, QueryPairs},
};

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
        status: q.choice::<ShowStatus>("status", &mut errors),
        search: q.text("search", &mut errors),
        start_time_gt: q.datetime("start_time__gt", &mut errors),
        start_time_lt: q.datetime("start_time__lt", &mut errors),
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
    let data = input::show(&validate::object(body)?, None, true)?;
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
    PathId(id): PathId,
) -> Result<Json<portal::PortalShow>, ApiError> {
    portal::get_show(&state.pool, who.id(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

async fn edit(
    state: AppState,
    who: Producer,
    id: i64,
    body: Value,
    full: bool,
) -> Result<Json<portal::PortalShow>, ApiError> {
    let current = portal::get_show(&state.pool, who.id(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let data: ShowData = input::show(
        &validate::object(body)?,
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
    PathId(id): PathId,
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
    PathId(id): PathId,
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
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    if !portal::soft_delete_show(&state.pool, who.id(), id).await? {
        return Err(ApiError::NotFound);
    }
    state.cache.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_published(
    state: AppState,
    who: Producer,
    id: i64,
    published: bool,
) -> Result<Json<portal::PortalShow>, ApiError> {
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
    PathId(id): PathId,
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
    PathId(id): PathId,
) -> Result<Json<portal::PortalShow>, ApiError> {
    set_published(state, who, id, false).await
}
