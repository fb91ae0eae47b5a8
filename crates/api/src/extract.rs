//! Extractors whose rejections are DRF-shaped JSON instead of axum's plain text.

use axum::{
    extract::{FromRequest, FromRequestParts, RawPathParams, Request, rejection::JsonRejection},
    http::request::Parts,
};
use pique_core::validate::{FieldErrors, param};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ApiError;

/// The id of a path such as `/api/v1/portal/shows/{id}/`: a positive integer, else the
/// object cannot exist and the answer is 404, as with Django's `<int:pk>`.
pub struct PathId(pub i64);

/// The two ids of a path such as `/api/v1/portal/shows/{id}/tickets/{tier}/`, in order.
pub struct PathIds(pub i64, pub i64);

/// Every capture of the matched route as a positive integer.
async fn path_ids<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Vec<i64>, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::NotFound)?;
    params
        .iter()
        .map(|(_, raw)| pique_core::query::path_id(raw).ok_or(ApiError::NotFound))
        .collect()
}

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match path_ids(parts, state).await?[..] {
            [id] => Ok(PathId(id)),
            ref other => Err(ApiError::Internal(format!(
                "PathId on a route with {} captures",
                other.len()
            ))),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match path_ids(parts, state).await?[..] {
            [a, b] => Ok(PathIds(a, b)),
            ref other => Err(ApiError::Internal(format!(
                "PathIds on a route with {} captures",
                other.len()
            ))),
        }
    }
}

/// A body that may be empty (the original's portal posts nothing to some endpoints): an
/// empty object then, else the JSON object sent.
pub fn optional_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("JSON parse error - {e}")))?;
    Ok(pique_core::validate::object(value)?)
}

/// `Json<T>` that answers malformed bodies with
/// `400 {"detail": "JSON parse error - ..."}` as DRF's parser does.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::BadRequest(
                "Unsupported media type: send the body as application/json.".into(),
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::BadRequest(format!(
                "JSON parse error - {}",
                e.body_text()
            ))),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::BadRequest(e.body_text())),
            Err(other) => Err(ApiError::BadRequest(other.body_text())),
        }
    }
}

/// The raw query string as ordered pairs, percent-decoded, never rejecting.
///
/// Filters are validated by `pique_core::query` so that errors name the parameter.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(url_pairs(query)))
    }
}

impl QueryPairs {
    /// Borrowed view for the core parsers.
    pub fn as_refs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The last value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Filter `key` as a related object's id (see [`param::id`]).
    pub fn id(&self, key: &str, errors: &mut FieldErrors) -> Option<i64> {
        param::id(key, self.get(key), errors)
    }

    /// Filter `key` as a date-time (see [`param::datetime`]).
    pub fn datetime(
        &self,
        key: &str,
        errors: &mut FieldErrors,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        param::datetime(key, self.get(key), errors)
    }

    /// Filter `key` as one of `T`'s values (see [`param::choice`]).
    pub fn choice<T: std::str::FromStr>(&self, key: &str, errors: &mut FieldErrors) -> Option<T> {
        param::choice(key, self.get(key), errors)
    }

    /// Filter `key` as text of at most 200 characters (see [`param::text`]).
    pub fn text(&self, key: &str, errors: &mut FieldErrors) -> Option<String> {
        param::text(key, self.get(key), MAX_FILTER_TEXT, errors)
    }

    /// Filter `key` as a boolean (see [`param::boolean`]).
    pub fn boolean(&self, key: &str, errors: &mut FieldErrors) -> Option<bool> {
        param::boolean(key, self.get(key), errors)
    }
}

/// Longest text filter accepted.
const MAX_FILTER_TEXT: usize = 200;

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; invalid
/// escapes are kept literally.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_pairs() {
        let p =
            url_pairs("start_time__gt=2025-01-01T00%3A00%3A00%2B02%3A00&q=jazz+night&x&bad=%zz%4");
        assert_eq!(
            p[0],
            ("start_time__gt".into(), "2025-01-01T00:00:00+02:00".into())
        );
        assert_eq!(p[1], ("q".into(), "jazz night".into()));
        assert_eq!(p[2], ("x".into(), "".into()));
        assert_eq!(p[3], ("bad".into(), "%zz%4".into()));
    }
}
