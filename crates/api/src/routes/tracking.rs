//! `/email-tracking/` open pixel and click redirects, and PDF ticket downloads.
//!
//! - `GET /email-tracking/open/{token}.gif`: records an open and always answers the 1x1 GIF,
//!   even for an unknown token or a database error (a broken image in a mail client helps
//!   nobody, and the answer must not reveal which tokens exist).
//! - `GET /email-tracking/click/{token}?u=URL`: redirects (302) only to a URL the email
//!   contained (`email_messages.links`), recording the click; anything else is a 400, so the
//!   route cannot be used as an open redirect.
//! - `GET /tickets/{download_token}.pdf`: the stored ticket PDF, 404 otherwise.
//!
//! The `.gif`/`.pdf` suffixes are part of the last path segment, so the handlers take the
//! whole segment and strip the suffix themselves.

use axum::{
    Router,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use pique_store::fulfilment;
use serde::Deserialize;

use crate::{AppState, error::ApiError};

/// A transparent 1x1 GIF.
const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Routes of email tracking and ticket downloads.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/email-tracking/open/{file}", get(open))
        .route("/email-tracking/click/{token}", get(click))
        .route("/tickets/{file}", get(download))
}

/// The client's address as seen by the proxy in front of us, if any, and its user agent.
fn client(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let ip = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (ip, user_agent)
}

async fn open(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = file.strip_suffix(".gif") {
        let (ip, user_agent) = client(&headers);
        if let Err(e) =
            fulfilment::record_open(&state.pool, token, ip.as_deref(), user_agent.as_deref()).await
        {
            tracing::warn!(error = %e, "could not record an email open");
        }
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/gif")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, max-age=0"),
            ),
        ],
        PIXEL_GIF,
    )
        .into_response()
}

/// Query of the click redirect.
#[derive(Debug, Deserialize)]
struct ClickQuery {
    u: Option<String>,
}

async fn click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<ClickQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(url) = query.u.filter(|u| !u.is_empty()) else {
        return Err(ApiError::BadRequest("missing target URL".into()));
    };
    let (ip, user_agent) = client(&headers);
    if !fulfilment::record_click(
        &state.pool,
        &token,
        &url,
        ip.as_deref(),
        user_agent.as_deref(),
    )
    .await?
    {
        return Err(ApiError::BadRequest("unknown link".into()));
    }
    let location = HeaderValue::from_str(&url)
        .map_err(|_| ApiError::BadRequest("invalid target URL".into()))?;
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}

async fn download(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let token = file.strip_suffix(".pdf").ok_or(ApiError::NotFound)?;
    let pdf = fulfilment::ticket_pdf_by_token(&state.pool, token)
        .await?
        .ok_or(ApiError::NotFound)?;
    let bytes = match tokio::fs::read(&pdf.path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %pdf.path, "ticket PDF recorded but missing on disk");
            return Err(ApiError::NotFound);
        }
        Err(e) => return Err(ApiError::Internal(format!("reading ticket: {e}"))),
    };
    let disposition = HeaderValue::from_str(&format!(
        "inline; filename=\"ticket-{}.pdf\"",
        pdf.attendee_uuid
    ))
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        bytes,
    )
        .into_response())
}
