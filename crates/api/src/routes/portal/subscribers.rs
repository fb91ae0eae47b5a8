//! `POST /api/v1/subscriber/create/`: the marketing site's mailing-list sign-up.

use axum::{Json, extract::State, http::StatusCode};
use pique_store::subscribers::{self, Subscriber};
use serde_json::Value;

use crate::{ApiError, AppState, extract::ApiJson};
use pique_core::validate::{self, Fields};

/// `{email, name?, source?}`: 201 with the subscriber the first time, 200 with the same body
/// after (case-insensitive on the email), so a double submit is harmless.
#[utoipa::path(post, path = "/api/v1/subscriber/create/", tag = "catalog",
    request_body(content = Object, description = "`{\"email\": \"a@b.co\", \"name\": \"optional\", \"source\": \"optional\"}`"),
    responses(
        (status = 201, description = "Subscribed: `{id, email, name, source, created_at}`"),
        (status = 200, description = "Already subscribed: the same body"),
        (status = 400, description = "`{\"email\": [\"Enter a valid email address.\"]}`"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Subscriber>), ApiError> {
    let obj = validate::object(body)?;
    let mut f = Fields::new(&obj);
    let read = f.email("email");
    let email = f.required("email", read);
    let name = f.string("name", 150, true).flatten().unwrap_or_default();
    let source = f
        .string("source", 50, true)
        .flatten()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "website".into());
    f.finish()?;
    let email = email.ok_or_else(|| ApiError::BadRequest(validate::msg::INVALID_EMAIL.into()))?;
    let (subscriber, created) = subscribers::subscribe(&state.pool, &email, &name, &source).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(subscriber)))
}
