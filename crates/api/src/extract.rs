//! Extractors whose rejections are DRF-shaped JSON instead of axum's plain text.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use crate::ApiError;

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
}

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
