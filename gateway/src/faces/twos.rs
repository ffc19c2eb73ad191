//! The 2s.io memory API: `/api/agent/memory/{put,get,list,delete}`, scoped to
//! the caller's namespace. Timestamps are RFC 3339 strings; errors are
//! `{"error": "<message>"}`; get and put also send an `ETag` header.

use crate::errors::ApiError;
use crate::extract::{IfMatch, JsonBody, QueryParams};
use crate::identity::Caller;
use crate::memory::{Entry, ListParams, MemoryClient, Page, Target, WriteOptions};
use crate::routes::FaceRoutes;
use crate::timestamps::rfc3339_millis;
use axum::extract::State;
use axum::http::header::ETAG;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_error::Error;
use utoipa::{IntoParams, ToSchema};

/// This API documents a tighter key limit than the memory service's.
const MAX_KEY_CHARS: usize = 200;

pub(crate) fn routes() -> FaceRoutes {
    FaceRoutes::new(tessera_catalog::Face::TwoS)
        .handle(&["agent.memory.put"], put)
        .handle(&["agent.memory.get"], read)
        .handle(&["agent.memory.list"], list)
        .handle(&["agent.memory.delete"], delete)
}

fn check_key(key: &str) -> Result<(), Error> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_KEY_CHARS {
        return Err(Error::invalid(
            "INVALID_KEY",
            format!("key must be 1-{MAX_KEY_CHARS} characters (got {chars})"),
        ));
    }
    Ok(())
}

/// One entry, as the 2s.io face renders it (RFC 3339 timestamps).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = twos::EntryView)]
pub(crate) struct EntryView {
    key: String,
    value: Value,
    etag: String,
    revision: u64,
    size_bytes: u64,
    created_at: String,
    updated_at: String,
    expires_at: Option<String>,
}

impl From<Entry> for EntryView {
    fn from(entry: Entry) -> Self {
        EntryView {
            key: entry.key,
            value: entry.value,
            etag: entry.etag,
            revision: entry.revision,
            size_bytes: entry.size_bytes,
            created_at: rfc3339_millis(entry.created_at_ms),
            updated_at: rfc3339_millis(entry.updated_at_ms),
            expires_at: entry.expires_at_ms.map(rfc3339_millis),
        }
    }
}

/// The entry as JSON, with its etag (quoted) in the `ETag` header.
fn entry_response(entry: Entry) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", entry.etag)).ok();
    let mut response = Json(EntryView::from(entry)).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(ETAG, etag);
    }
    response
}

/// Puts `value` at `key` (1-200 characters).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = twos::PutBody)]
pub(crate) struct PutBody {
    key: String,
    /// Any JSON but null.
    #[schema(required = true)]
    value: Option<Value>,
    ttl_seconds: Option<u64>,
}

async fn put(
    State(memory): State<MemoryClient>,
    Caller(namespace): Caller,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<PutBody>,
) -> Result<Response, ApiError> {
    check_key(&body.key)?;
    let value = super::required_value(body.value)?;
    let options = WriteOptions {
        ttl_seconds: body.ttl_seconds,
        if_match,
    };
    let entry = memory
        .set(&Target::own(namespace), &body.key, &value, options)
        .await?;
    Ok(entry_response(entry))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct KeyQuery {
    /// The key to read (1-200 characters).
    key: String,
}

async fn read(
    State(memory): State<MemoryClient>,
    Caller(namespace): Caller,
    QueryParams(KeyQuery { key }): QueryParams<KeyQuery>,
) -> Result<Response, ApiError> {
    check_key(&key)?;
    match memory.get(&Target::own(namespace), &key).await? {
        Some(entry) => Ok(entry_response(entry)),
        None => Err(Error::not_found(format!("key {key:?} not found")).into()),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Lists only keys starting with this.
    prefix: String,
    /// The most entries a page lists (0: the service's default).
    limit: u32,
    /// The `nextCursor` of the previous page.
    cursor: String,
}

/// A page of the namespace.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = twos::ListView)]
pub(crate) struct ListView {
    entries: Vec<EntryView>,
    next_cursor: Option<String>,
}

impl From<Page> for ListView {
    fn from(page: Page) -> Self {
        ListView {
            entries: page.entries.into_iter().map(EntryView::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

async fn list(
    State(memory): State<MemoryClient>,
    Caller(namespace): Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ListView>, ApiError> {
    let params = ListParams {
        prefix: query.prefix,
        limit: query.limit,
        cursor: query.cursor,
    };
    Ok(Json(
        memory.list(&Target::own(namespace), params).await?.into(),
    ))
}

/// Deletes `key`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = twos::DeleteBody)]
pub(crate) struct DeleteBody {
    key: String,
}

/// Whether the key was there to delete.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = twos::DeletedView)]
pub(crate) struct DeletedView {
    key: String,
    deleted: bool,
}

async fn delete(
    State(memory): State<MemoryClient>,
    Caller(namespace): Caller,
    IfMatch(if_match): IfMatch,
    JsonBody(DeleteBody { key }): JsonBody<DeleteBody>,
) -> Result<Json<DeletedView>, ApiError> {
    check_key(&key)?;
    let deleted = memory
        .delete(&Target::own(namespace), &key, if_match)
        .await?
        .deleted;
    Ok(Json(DeletedView { key, deleted }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(expires_at_ms: Option<i64>) -> Entry {
        Entry {
            key: "example".into(),
            value: json!({ "n": 1 }),
            etag: "7".into(),
            revision: 7,
            size_bytes: 7,
            created_at_ms: 1_760_086_430_123,
            updated_at_ms: 1_760_086_431_000,
            expires_at_ms,
        }
    }

    #[test]
    fn entries_render_with_iso_timestamps() {
        let view = serde_json::to_value(EntryView::from(entry(None))).unwrap();
        assert_eq!(
            view,
            json!({
                "key": "example", "value": { "n": 1 }, "etag": "7", "revision": 7, "sizeBytes": 7,
                "createdAt": "2025-10-10T08:53:50.123Z", "updatedAt": "2025-10-10T08:53:51.000Z",
                "expiresAt": null,
            })
        );
        let view = serde_json::to_value(EntryView::from(entry(Some(1_760_086_490_000)))).unwrap();
        assert_eq!(view["expiresAt"], "2025-10-10T08:54:50.000Z");
    }

    #[test]
    fn the_etag_header_is_quoted() {
        let response = entry_response(entry(None));
        assert_eq!(response.headers()[ETAG], "\"7\"");
    }

    #[test]
    fn keys_are_1_to_200_characters() {
        assert!(check_key("k").is_ok());
        assert!(check_key(&"é".repeat(200)).is_ok());
        assert_eq!(check_key(&"k".repeat(201)).unwrap_err().http_status(), 400);
        assert_eq!(check_key("").unwrap_err().http_status(), 400);
    }

    #[test]
    fn an_empty_list_has_a_null_cursor() {
        let view = serde_json::to_value(ListView::from(Page {
            entries: vec![],
            next_cursor: None,
        }))
        .unwrap();
        assert_eq!(view, json!({ "entries": [], "nextCursor": null }));
    }
}
