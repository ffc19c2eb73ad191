//! Extractors that fail with an [`ApiError`] (rendered in the family's body)
//! instead of axum's plain-text rejections.

use crate::errors::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use tessera_error::{Error, ErrorKind};

/// Largest request body accepted (`DefaultBodyLimit`); larger is a 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON request body. Unlike `axum::Json` it does not insist on a
/// `Content-Type`, and its errors name the offending field.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        Ok(JsonBody(parse_json(&bytes)?))
    }
}

/// Parses a whole body as `T`; the error names the path of a bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let invalid = |e: &dyn std::fmt::Display| {
        Error::invalid("INVALID_BODY", format!("invalid JSON body: {e}"))
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| invalid(&e))?;
    deserializer.end().map_err(|e| invalid(&e))?;
    Ok(value)
}

fn body_error(rejection: BytesRejection) -> ApiError {
    let error = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::new(
            ErrorKind::QuotaExceeded,
            "BODY_TOO_LARGE",
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    } else {
        Error::invalid("INVALID_BODY", rejection.body_text())
    };
    ApiError(error)
}

/// Query-string parameters.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(ApiError(Error::invalid(
                "INVALID_QUERY",
                rejection.body_text(),
            ))),
        }
    }
}

/// Path parameters.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParams(value)),
            Err(rejection) => Err(ApiError(Error::invalid(
                "INVALID_PATH",
                rejection.body_text(),
            ))),
        }
    }
}

/// The `If-Match` header, passed to the memory service as is (it accepts a
/// bare, quoted or weak etag).
#[derive(Debug, Default)]
pub struct IfMatch(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(raw) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let value = raw
            .to_str()
            .map_err(|_| Error::invalid("INVALID_ETAG", "If-Match must be a visible ASCII etag"))?;
        Ok(IfMatch(Some(value.trim().to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        key: String,
        ttl_seconds: Option<u64>,
    }

    fn error_of(raw: &str) -> Error {
        parse_json::<Body>(raw.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_good_body_parses() {
        let body: Body = parse_json(br#"{"key":"a","ttlSeconds":30,"extra":1}"#).unwrap();
        assert_eq!(body.key, "a");
        assert_eq!(body.ttl_seconds, Some(30));
    }

    #[test]
    fn bad_bodies_are_invalid_input_naming_the_field() {
        for (raw, needle) in [
            (r#"{"key":5}"#, "key: invalid type"),
            (r#"{"key":"a","ttlSeconds":-1}"#, "ttlSeconds"),
            (r#"{"key":"a","ttlSeconds":1.5}"#, "ttlSeconds"),
            (r#"{"key":"a","ttlSeconds":"30"}"#, "ttlSeconds"),
            (r#"{"value":1}"#, "missing field `key`"),
            (r#"{"key":"a""#, "EOF"),
            (r#"{"key":"a"} trailing"#, "trailing characters"),
            ("", "EOF"),
        ] {
            let error = error_of(raw);
            assert_eq!(error.kind, ErrorKind::InvalidArgument, "{raw}");
            assert!(error.message.contains(needle), "{raw}: {}", error.message);
        }
    }
}
