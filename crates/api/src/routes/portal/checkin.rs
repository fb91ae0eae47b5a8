//! Check-in: producers make per-show links (`/api/v1/producers/shows/{id}/checkin-link/`);
//! the door's app, holding only the link's token, admits attendees by the UUID in their QR
//! code (`POST /api/v1/checkin/`) and reads the attendance (`GET /api/v1/checkin/?token=`).

use axum::{Json, body::Bytes, extract::State, http::StatusCode};
use chrono::{Duration, Utc};
use pique_core::validate::{self, FieldErrors, Fields, msg};
use pique_store::checkin::{self, Admission, CheckinLink};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    auth::Producer,
    extract::{ApiJson, PathId, PathIds, QueryPairs, optional_object},
};

/// Link lifetime when the body does not say.
pub const DEFAULT_LINK_HOURS: i64 = 24;
/// Longest lifetime a link may be given (30 days).
pub const MAX_LINK_HOURS: i64 = 24 * 30;
/// The door's message for a token that admits nobody.
pub const BAD_LINK: &str = "Invalid or expired check-in link.";

fn link_json(state: &AppState, l: &CheckinLink) -> Value {
    json!({
        "id": l.id,
        "show": l.show,
        "token": l.token,
        "url": format!("{}/checkin/?token={}", state.config.public_url, l.token),
        "expires_at": l.expires_at,
        "revoked_at": l.revoked_at,
        "active": l.revoked_at.is_none() && l.expires_at > Utc::now(),
        "created_at": l.created_at,
    })
}

/// `POST /api/v1/producers/shows/{id}/checkin-link/` `{expires_in_hours?}` or `{expires_at?}`.
#[utoipa::path(post, path = "/api/v1/producers/shows/{id}/checkin-link/", tag = "checkin",
    params(("id" = i64, Path, description = "show id")),
    request_body(content = Object, description = "optional `expires_in_hours` (1-720, default 24) or `expires_at` (ISO 8601, future, within 30 days)"),
    responses((status = 201, description = "`{\"id\", \"url\", \"token\", \"expires_at\", ...}`"), (status = 400, description = "Bad expiry"), (status = 404, description = "Not this producer's show")))]
pub async fn create_link(
    State(state): State<AppState>,
    who: Producer,
    PathId(id): PathId,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let obj = optional_object(&body)?;
    let mut f = Fields::new(&obj);
    let hours = f.int("expires_in_hours", 1, MAX_LINK_HOURS);
    let at = f.datetime("expires_at");
    let now = Utc::now();
    let expires_at = match (hours, at) {
        (Some(Some(_)), Some(Some(Some(_)))) => {
            f.errors.add(
                "non_field_errors",
                "Give expires_in_hours or expires_at, not both.",
            );
            None
        }
        (_, Some(Some(Some(t)))) if t <= now => {
            f.errors.add("expires_at", "Must be in the future.");
            None
        }
        (_, Some(Some(Some(t)))) if t > now + Duration::hours(MAX_LINK_HOURS) => {
            f.errors.add(
                "expires_at",
                format!("Must be within {MAX_LINK_HOURS} hours."),
            );
            None
        }
        (_, Some(Some(Some(t)))) => Some(t),
        (Some(Some(h)), _) => Some(now + Duration::hours(h)),
        _ => Some(now + Duration::hours(DEFAULT_LINK_HOURS)),
    };
    f.finish()?;
    let expires_at = expires_at.ok_or_else(|| ApiError::BadRequest("Invalid expiry.".into()))?;
    let link = checkin::create_link(&state.pool, who.id(), id, who.user.id, expires_at)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(link_json(&state, &link))))
}

/// `GET /api/v1/producers/shows/{id}/checkin-link/`: the show's links, newest first.
#[utoipa::path(get, path = "/api/v1/producers/shows/{id}/checkin-link/", tag = "checkin",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "Array of links"), (status = 404, description = "Not this producer's show")))]
pub async fn list_links(
    State(state): State<AppState>,
    who: Producer,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let links = checkin::list_links(&state.pool, who.id(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(Value::Array(
        links.iter().map(|l| link_json(&state, l)).collect(),
    )))
}

/// `DELETE /api/v1/producers/shows/{id}/checkin-link/`: revokes every active link of the show.
#[utoipa::path(delete, path = "/api/v1/producers/shows/{id}/checkin-link/", tag = "checkin",
    params(("id" = i64, Path, description = "show id")),
    responses((status = 200, description = "`{\"revoked\": n}`"), (status = 404, description = "Not this producer's show")))]
pub async fn revoke_all(
    State(state): State<AppState>,
    who: Producer,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let n = checkin::revoke(&state.pool, who.id(), id, None)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(json!({ "revoked": n })))
}

/// `DELETE /api/v1/producers/shows/{id}/checkin-link/{link}/`: revokes one link.
#[utoipa::path(delete, path = "/api/v1/producers/shows/{id}/checkin-link/{link}/", tag = "checkin",
    params(("id" = i64, Path, description = "show id"), ("link" = i64, Path, description = "link id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "Not this producer's link")))]
pub async fn revoke_one(
    State(state): State<AppState>,
    who: Producer,
    PathIds(id, link): PathIds,
) -> Result<StatusCode, ApiError> {
    checkin::revoke(&state.pool, who.id(), id, Some(link))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The show a token admits to, or 403.
async fn show_for(state: &AppState, token: Option<&str>) -> Result<i64, ApiError> {
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(FieldErrors::single("token", msg::REQUIRED).into());
    };
    // Tokens are 40 hex characters: anything else is refused without a query.
    if token.len() != 40 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::Forbidden(BAD_LINK.into()));
    }
    checkin::show_for_token(&state.pool, token)
        .await?
        .ok_or_else(|| ApiError::Forbidden(BAD_LINK.into()))
}

/// `POST /api/v1/checkin/ {token, code}`: admits the attendee whose QR code is `code`, once.
#[utoipa::path(post, path = "/api/v1/checkin/", tag = "checkin",
    request_body(content = Object, description = "`{\"token\": \"<link token>\", \"code\": \"<attendee uuid>\"}`"),
    responses(
        (status = 200, description = "`{\"detail\": \"Checked in.\", \"checked_in_at\", \"attendee\"}`"),
        (status = 400, description = "Missing token or malformed code"),
        (status = 403, description = "Link invalid/expired/revoked, or a ticket of another show or a refunded order"),
        (status = 404, description = "No ticket with this code"),
        (status = 409, description = "`{\"detail\": \"Already checked in.\", \"checked_in_at\"}`"),
    ))]
pub async fn scan(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let obj = validate::object(body)?;
    let token = obj.get("token").and_then(Value::as_str);
    let show_id = show_for(&state, token).await?;
    let code = match obj.get("code") {
        None | Some(Value::Null) => return Err(FieldErrors::single("code", msg::REQUIRED).into()),
        Some(Value::String(s)) => {
            Uuid::parse_str(s.trim()).map_err(|_| FieldErrors::single("code", msg::NOT_UUID))?
        }
        Some(_) => return Err(FieldErrors::single("code", msg::NOT_UUID).into()),
    };
    match checkin::admit(&state.pool, show_id, code).await? {
        Admission::Admitted(a) => {
            metrics::counter!("pique_checkins_total", "result" => "admitted").increment(1);
            Ok(Json(
                json!({ "detail": "Checked in.", "checked_in_at": a.checked_in_at, "attendee": a }),
            ))
        }
        Admission::AlreadyCheckedIn(a) => {
            metrics::counter!("pique_checkins_total", "result" => "repeat").increment(1);
            Err(ApiError::Conflict(
                "Already checked in.".into(),
                Some(json!({ "checked_in_at": a.checked_in_at, "attendee": a })),
            ))
        }
        Admission::Unknown => Err(ApiError::NotFound),
        Admission::OtherShow => Err(ApiError::Forbidden(
            "This ticket is for another show.".into(),
        )),
        Admission::NotValid => Err(ApiError::Forbidden(
            "This ticket is no longer valid (its order is not paid).".into(),
        )),
    }
}

/// `GET /api/v1/checkin/?token=`: the show's attendance (counts and attendees).
#[utoipa::path(get, path = "/api/v1/checkin/", tag = "checkin",
    params(("token" = String, Query, description = "the check-in link's token")),
    responses((status = 200, description = "`{\"show\", \"total\", \"checked_in\", \"remaining\", \"attendees\"}`"), (status = 403, description = "Link invalid, expired or revoked")))]
pub async fn attendance(
    State(state): State<AppState>,
    q: QueryPairs,
) -> Result<Json<checkin::Attendance>, ApiError> {
    let show_id = show_for(&state, q.get("token")).await?;
    checkin::attendance(&state.pool, show_id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}
