//! The producer side of the URL map: `/auth/`, `/api/v1/portal/`, the producer actions under
//! `/api/v1/producers/` (Stripe Connect, check-in links), the door's `/api/v1/checkin/` and
//! `/api/v1/subscriber/create/`.
//!
//! Authorization is structural: portal handlers take the [`crate::auth::Producer`] extractor
//! (401 anonymous, 403 without a producer) and pass its id to store functions that scope every
//! query by it, so another producer's object is a 404 everywhere.

pub mod account;
pub mod checkin;
pub mod input;
pub mod orders;
pub mod page_design;
pub mod promo_codes;
pub mod shows;
pub mod stripe;
pub mod subscribers;
pub mod tiers;

use axum::{
    Router,
    http::HeaderMap,
    routing::{delete, get, post},
};
use pique_core::{
    query::{PageRequest, parse_page},
    validate::FieldErrors,
};
use pique_store::portal::{Outcome, Page};
use serde::Serialize;
use serde_json::{Value, json};

use super::both;
use crate::{ApiError, AppState, extract::QueryPairs};

/// Routes of the producer side.
pub fn router() -> Router<AppState> {
    let r = Router::new();
    // Account.
    let r = both(r, "/auth/login/", post(account::login));
    let r = both(r, "/auth/logout/", post(account::logout));
    let r = both(r, "/auth/me/", get(account::me));
    // Shows and what hangs off them.
    let r = both(
        r,
        "/api/v1/portal/shows/",
        get(shows::list).post(shows::create),
    );
    let r = both(
        r,
        "/api/v1/portal/shows/{id}/",
        get(shows::detail)
            .put(shows::replace)
            .patch(shows::update)
            .delete(shows::remove),
    );
    let r = both(
        r,
        "/api/v1/portal/shows/{id}/publish/",
        post(shows::publish),
    );
    let r = both(
        r,
        "/api/v1/portal/shows/{id}/unpublish/",
        post(shows::unpublish),
    );
    let r = both(
        r,
        "/api/v1/portal/shows/{id}/tickets/",
        get(tiers::list).post(tiers::create),
    );
    let r = both(
        r,
        "/api/v1/portal/shows/{id}/tickets/{tier}/",
        get(tiers::detail)
            .put(tiers::replace)
            .patch(tiers::update)
            .delete(tiers::remove),
    );
    let r = both(
        r,
        "/api/v1/portal/shows/{id}/promo-codes/",
        get(promo_codes::list).post(promo_codes::create),
    );
    let r = both(
        r,
        "/api/v1/portal/shows/{id}/promo-codes/{promo}/",
        get(promo_codes::detail)
            .put(promo_codes::replace)
            .patch(promo_codes::update)
            .delete(promo_codes::remove),
    );
    let r = both(
        r,
        "/api/v1/portal/shows/{id}/page-design/",
        get(page_design::get).put(page_design::put),
    );
    // Orders and attendees.
    let r = both(r, "/api/v1/portal/orders/", get(orders::list));
    let r = both(r, "/api/v1/portal/orders/export/", get(orders::export_csv));
    let r = both(r, "/api/v1/portal/orders/{id}/", get(orders::detail));
    let r = both(r, "/api/v1/portal/attendees/", get(orders::attendees));
    // Stripe Connect.
    let r = both(
        r,
        "/api/v1/producers/stripe-connect-link/",
        post(stripe::connect_link),
    );
    let r = both(r, "/api/v1/producers/stripe-balance/", get(stripe::balance));
    let r = both(r, "/api/v1/producers/stripe-status/", get(stripe::status));
    // Check-in.
    let r = both(
        r,
        "/api/v1/producers/shows/{id}/checkin-link/",
        post(checkin::create_link)
            .get(checkin::list_links)
            .delete(checkin::revoke_all),
    );
    let r = both(
        r,
        "/api/v1/producers/shows/{id}/checkin-link/{link}/",
        delete(checkin::revoke_one),
    );
    let r = both(
        r,
        "/api/v1/checkin/",
        post(checkin::scan).get(checkin::attendance),
    );
    // Marketing.
    both(r, "/api/v1/subscriber/create/", post(subscribers::create))
}

/// Turns a store outcome into the value or the matching DRF error.
pub fn outcome<T>(o: Outcome<T>) -> Result<T, ApiError> {
    match o {
        Outcome::Done(t) => Ok(t),
        Outcome::NotFound => Err(ApiError::NotFound),
        Outcome::Invalid { field, message } => Err(FieldErrors::single(field, message).into()),
        Outcome::Conflict(m) => Err(ApiError::Conflict(m, None)),
    }
}

/// The page asked for; portal lists are always paginated (default 20 rows, at most 100).
pub fn page_of(q: &QueryPairs, errors: &mut FieldErrors) -> PageRequest {
    parse_page(q.get("page").or(Some("1")), q.get("page_size"), errors).unwrap_or(PageRequest {
        number: 1,
        size: pique_core::query::DEFAULT_PAGE_SIZE,
    })
}

/// DRF's `{count, next, previous, results}` with absolute links built from the request's
/// `Host`; a page past the last (other than an empty first page) is 404 "Invalid page.".
pub fn envelope<T: Serialize>(
    headers: &HeaderMap,
    path: &str,
    q: &QueryPairs,
    page: PageRequest,
    listing: Page<T>,
) -> Result<Value, ApiError> {
    if page.number > 1 && listing.rows.is_empty() {
        return Err(ApiError::InvalidPage);
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let link = |n: u32| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &q.0 {
            if k != "page" {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("page", &n.to_string());
        format!("http://{host}{path}?{}", ser.finish())
    };
    let last = (listing.count + i64::from(page.size) - 1) / i64::from(page.size);
    Ok(json!({
        "count": listing.count,
        "next": (i64::from(page.number) < last).then(|| link(page.number + 1)),
        "previous": (page.number > 1).then(|| link(page.number - 1)),
        "results": listing.rows,
    }))
}

/// The OpenAPI paths of the producer side, merged into [`crate::openapi::document`].
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        account::login,
        account::logout,
        account::me,
        shows::list,
        shows::create,
        shows::detail,
        shows::replace,
        shows::update,
        shows::remove,
        shows::publish,
        shows::unpublish,
        tiers::list,
        tiers::create,
        tiers::detail,
        tiers::replace,
        tiers::update,
        tiers::remove,
        promo_codes::list,
        promo_codes::create,
        promo_codes::detail,
        promo_codes::replace,
        promo_codes::update,
        promo_codes::remove,
        page_design::get,
        page_design::put,
        orders::list,
        orders::export_csv,
        orders::detail,
        orders::attendees,
        stripe::connect_link,
        stripe::balance,
        stripe::status,
        checkin::create_link,
        checkin::list_links,
        checkin::revoke_all,
        checkin::revoke_one,
        checkin::scan,
        checkin::attendance,
        subscribers::create,
    ),
    tags((name = "auth"), (name = "portal"), (name = "producers"), (name = "checkin"))
)]
pub struct PortalDoc;
