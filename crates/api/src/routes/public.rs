//! The public read API under `/api/v1/`: shows, featured shows, venues, performers,
//! producers, ticket tiers, search and active cities.
//!
//! Reads go through the cache as serialised bytes, so a hit costs no serialisation. Seat
//! availability is the exception: it is always read live, because a cached "available" is
//! exactly the display/checkout mismatch the original suffered from.

use std::future::Future;

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use pique_core::{
    model::{
        ActiveCity, FeaturedShow, Paginated, Performer, ProducerPublic, ShowDetail, ShowSummary,
        TicketTier, Venue,
    },
    query::{self, PageRequest},
    search,
    validate::{FieldErrors, msg},
};
use pique_store::{StoreError, cache::CacheSource, catalog};
use serde::Serialize;

use crate::{ApiError, AppState, extract::QueryPairs};

/// Most results `/api/v1/search/` returns.
pub const SEARCH_LIMIT: i64 = 50;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    let r = Router::new();
    let r = super::both(r, "/api/v1/shows/", get(list_shows));
    let r = super::both(r, "/api/v1/shows/{id}/", get(show_detail));
    let r = super::both(r, "/api/v1/featured-shows/", get(featured_shows));
    let r = super::both(r, "/api/v1/venues/", get(list_venues));
    let r = super::both(r, "/api/v1/performers/", get(list_performers));
    let r = super::both(r, "/api/v1/producers/", get(list_producers));
    let r = super::both(r, "/api/v1/tickets/", get(list_tickets));
    let r = super::both(r, "/api/v1/search/", get(search_shows));
    super::both(r, "/api/v1/active-cities/", get(active_cities))
}

/// Published, not deleted shows by start time: a bare JSON array, or DRF's paginated
/// envelope when `page` or `page_size` is given.
#[utoipa::path(get, path = "/api/v1/shows/", tag = "shows",
    params(
        ("start_time__gt" = Option<String>, Query, description = "ISO 8601 date-time; shows starting after it"),
        ("start_time__lt" = Option<String>, Query, description = "ISO 8601 date-time; shows starting before it"),
        ("slug" = Option<String>, Query, description = "exact slug"),
        ("city" = Option<String>, Query, description = "venue city, case-insensitive"),
        ("producer" = Option<i64>, Query, description = "producer id"),
        ("venue" = Option<i64>, Query, description = "venue id"),
        ("page" = Option<u32>, Query, description = "page number; switches to the paginated envelope"),
        ("page_size" = Option<u32>, Query, description = "rows per page, at most 100"),
    ),
    responses((status = 200, body = [ShowSummary]), (status = 400, description = "invalid filter")))]
pub async fn list_shows(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let filters = query::parse_show_filters(q.as_refs())?;
    let key = format!("shows:{}", filters.cache_key());
    let pool = state.pool.clone();
    match filters.page {
        None => {
            cached(&state, &key, async move {
                Ok(catalog::list_shows(&pool, &filters).await?.rows)
            })
            .await
        }
        Some(page) => {
            let base = self_url(&headers, "/api/v1/shows/", &q);
            let key = format!("{key}|{}", base.0);
            cached(&state, &key, async move {
                let listing = catalog::list_shows(&pool, &filters).await?;
                paginate(listing, page, &base)
            })
            .await
        }
    }
}

/// One public show with its ticket tiers (live availability), venue, performers and page design.
///
/// The show itself comes from the cache, serialised without tiers; the tiers are read live
/// (one indexed query, shared by the concurrent requests of the same show that arrived
/// before it started: see `pique_store::coalesce`) and spliced into those bytes. Nothing is
/// parsed or serialised again per request, and availability is exact as of the request.
#[utoipa::path(get, path = "/api/v1/shows/{id}/", tag = "shows",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, body = ShowDetail), (status = 400, description = "id is not a positive integer"),
               (status = 404, description = "no such public show")))]
pub async fn show_detail(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    let pool = state.pool.clone();
    let key = format!("show:{id}");
    let (without_tickets, source) = state
        .cache
        .get_or_load(&key, || async move {
            let detail = catalog::show_without_tiers(&pool, id)
                .await?
                .ok_or(ApiError::NotFound)?;
            to_bytes(&detail)
        })
        .await?;
    let tickets = state.live_tiers.json(id).await?;
    let body = ShowDetail::splice_tickets(&without_tickets, &tickets)
        .ok_or_else(|| ApiError::Internal(format!("cached show {id} has no tickets array")))?;
    Ok(json_response(Bytes::from(body), Some(source)))
}

/// Currently featured shows, by position.
#[utoipa::path(get, path = "/api/v1/featured-shows/", tag = "shows",
    responses((status = 200, body = [FeaturedShow])))]
pub async fn featured_shows(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pool = state.pool.clone();
    cached(&state, "featured", async move {
        Ok(catalog::featured_shows(&pool).await?)
    })
    .await
}

/// Every venue by name (paginated with `page`).
#[utoipa::path(get, path = "/api/v1/venues/", tag = "catalog",
    params(("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query)),
    responses((status = 200, body = [Venue])))]
pub async fn list_venues(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    listing(
        &state,
        &headers,
        &q,
        "venues",
        "/api/v1/venues/",
        |pool, page| async move { catalog::list_venues(&pool, page).await },
    )
    .await
}

/// Every performer by name (paginated with `page`).
#[utoipa::path(get, path = "/api/v1/performers/", tag = "catalog",
    params(("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query)),
    responses((status = 200, body = [Performer])))]
pub async fn list_performers(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    listing(
        &state,
        &headers,
        &q,
        "performers",
        "/api/v1/performers/",
        |pool, page| async move { catalog::list_performers(&pool, page).await },
    )
    .await
}

/// Producers' public profiles (paginated with `page`).
#[utoipa::path(get, path = "/api/v1/producers/", tag = "catalog",
    params(("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query)),
    responses((status = 200, body = [ProducerPublic])))]
pub async fn list_producers(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    listing(
        &state,
        &headers,
        &q,
        "producers",
        "/api/v1/producers/",
        |pool, page| async move { catalog::list_producers(&pool, page).await },
    )
    .await
}

/// Ticket tiers of public shows with live availability; `?show=` narrows to one show.
/// Never cached: availability changes with every checkout.
#[utoipa::path(get, path = "/api/v1/tickets/", tag = "shows",
    params(("show" = Option<i64>, Query, description = "show id"), ("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query)),
    responses((status = 200, body = [TicketTier]), (status = 400, description = "invalid show id")))]
pub async fn list_tickets(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::default();
    let show = q.id("show", &mut errors);
    let page = query::parse_page(q.get("page"), q.get("page_size"), &mut errors);
    errors.into_result(())?;
    let listing = catalog::list_tiers(&state.pool, show, page).await?;
    let bytes = match page {
        None => to_bytes(&listing.rows)?,
        Some(p) => to_bytes(&paginate(
            listing,
            p,
            &self_url(&headers, "/api/v1/tickets/", &q),
        )?)?,
    };
    Ok(json_response(bytes, None))
}

/// Public shows whose title, description, venue or performers match every word of `q`
/// (prefix match), by start time, at most 50.
#[utoipa::path(get, path = "/api/v1/search/", tag = "shows",
    params(("q" = String, Query, description = "search words")),
    responses((status = 200, body = [ShowSummary]), (status = 400, description = "q missing or too long")))]
pub async fn search_shows(
    State(state): State<AppState>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let text = q.get("q").or_else(|| q.get("search")).unwrap_or("").trim();
    if text.is_empty() {
        return Err(FieldErrors::single("q", msg::REQUIRED).into());
    }
    if text.chars().count() > query::MAX_SEARCH_LEN {
        return Err(FieldErrors::single("q", msg::max_length(query::MAX_SEARCH_LEN)).into());
    }
    let Some(tsquery) = search::prefix_tsquery(text) else {
        return Ok(json_response(Bytes::from_static(b"[]"), None));
    };
    let pool = state.pool.clone();
    let key = format!("search:{tsquery}");
    cached(&state, &key, async move {
        Ok(catalog::search_shows(&pool, &tsquery, SEARCH_LIMIT).await?)
    })
    .await
}

/// Cities with upcoming public shows, busiest first.
#[utoipa::path(get, path = "/api/v1/active-cities/", tag = "catalog",
    responses((status = 200, body = [ActiveCity])))]
pub async fn active_cities(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pool = state.pool.clone();
    cached(&state, "cities", async move {
        Ok(catalog::active_cities(&pool).await?)
    })
    .await
}

/// A list endpoint with optional pagination, cached.
async fn listing<T, F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    q: &QueryPairs,
    name: &str,
    path: &str,
    load: F,
) -> Result<Response, ApiError>
where
    T: Serialize + Send,
    F: FnOnce(pique_store::PgPool, Option<PageRequest>) -> Fut,
    Fut: Future<Output = Result<catalog::Listing<T>, StoreError>>,
{
    let mut errors = FieldErrors::default();
    let page = query::parse_page(q.get("page"), q.get("page_size"), &mut errors);
    errors.into_result(())?;
    let pool = state.pool.clone();
    match page {
        None => cached(state, name, async move { Ok(load(pool, None).await?.rows) }).await,
        Some(p) => {
            let base = self_url(headers, path, q);
            let key = format!("{name}:{}x{}|{}", p.number, p.size, base.0);
            cached(state, &key, async move {
                paginate(load(pool, Some(p)).await?, p, &base)
            })
            .await
        }
    }
}

/// Serves `key` from the cache or from `load`.
async fn cached<T, Fut>(state: &AppState, key: &str, load: Fut) -> Result<Response, ApiError>
where
    T: Serialize,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let (bytes, source) = state
        .cache
        .get_or_load(key, || async move { to_bytes(&load.await?) })
        .await?;
    Ok(json_response(bytes, Some(source)))
}

fn to_bytes<T: Serialize>(value: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// A JSON response; `x-cache` tells where it came from (useful to people and to tests).
fn json_response(bytes: Bytes, source: Option<CacheSource>) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(source) = source {
        let v = match source {
            CacheSource::Local => "hit-local",
            CacheSource::Redis => "hit-redis",
            CacheSource::Miss => "miss",
        };
        headers.insert("x-cache", HeaderValue::from_static(v));
    }
    response
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    query::path_id(raw).ok_or_else(|| {
        ApiError::BadRequest(format!("Invalid id {raw:?}: expected a positive integer."))
    })
}

/// The absolute URL of this list and its query without `page`, to build `next`/`previous`.
struct SelfUrl(String);

fn self_url(headers: &HeaderMap, path: &str, q: &QueryPairs) -> SelfUrl {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in q.0.iter().filter(|(k, _)| k != "page") {
        ser.append_pair(k, v);
    }
    SelfUrl(format!("http://{host}{path}?{}", ser.finish()))
}

/// DRF's envelope; a page past the last one (other than an empty first page) is a 404.
fn paginate<T>(
    listing: catalog::Listing<T>,
    page: PageRequest,
    base: &SelfUrl,
) -> Result<Paginated<T>, ApiError> {
    let count = listing.count.unwrap_or(listing.rows.len() as i64);
    if page.number > 1 && listing.rows.is_empty() {
        return Err(ApiError::InvalidPage);
    }
    let sep = if base.0.ends_with('?') { "" } else { "&" };
    let link = |n: u32| format!("{}{sep}page={n}", base.0);
    let last = (count + i64::from(page.size) - 1) / i64::from(page.size);
    Ok(Paginated {
        count,
        next: (i64::from(page.number) < last).then(|| link(page.number + 1)),
        previous: (page.number > 1).then(|| link(page.number - 1)),
        results: listing.rows,
    })
}
