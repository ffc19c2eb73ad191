//! The agent402.tools memory API: `/api/memory`, `/api/memory/cas` and
//! `/api/memory/incr`, scoped to the caller's namespace (the paying wallet),
//! and its grants: `/api/memory/grant`, `/api/memory/revoke`,
//! `/api/memory/grants`. The `owner` body field (query parameter on `GET
//! /api/memory`) names another namespace to act on; the memory service
//! allows it only with that owner's active grant to the caller (`read` for
//! get and list, `readwrite` for writes) and otherwise answers 403 having
//! read and written nothing. Timestamps are unix seconds; errors are
//! `{"error": "<message>"}`.

use crate::errors::ApiError;
use crate::extract::{IfMatch, JsonBody, QueryParams};
use crate::identity::Caller;
use crate::memory::{
    ChangeKind, Deleted, Entry, Grant, GrantMode, ListParams, MemoryClient, Page, Target,
    WatchParams, Watched, WriteOptions,
};
use crate::routes::{FaceRoutes, PaidRoute, MAX_POLL_SECONDS};
use crate::timestamps::unix_seconds;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use tessera_error::Error;
use utoipa::{IntoParams, ToSchema};

pub(crate) fn routes() -> FaceRoutes {
    FaceRoutes::new(tessera_catalog::Face::Agent402)
        .handle(&["memory.get", "memory.list"], read)
        .handle(&["memory.set"], write)
        .handle(&["memory.cas"], compare_and_swap)
        .handle(&["memory.incr"], increment)
        .handle(&["memory.grant"], grant)
        .handle(&["memory.revoke"], revoke)
        .handle(&["memory.grants"], list_grants)
        .handle(&["memory.watch"], watch)
}

/// One entry, as the agent402 face renders it (timestamps in unix seconds).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::EntryView)]
pub(crate) struct EntryView {
    key: String,
    value: Value,
    etag: String,
    revision: u64,
    size_bytes: u64,
    created_at: i64,
    updated_at: i64,
    expires_at: Option<i64>,
    owner: String,
}

impl EntryView {
    fn new(entry: Entry, owner: &str) -> Self {
        EntryView {
            key: entry.key,
            value: entry.value,
            etag: entry.etag,
            revision: entry.revision,
            size_bytes: entry.size_bytes,
            created_at: unix_seconds(entry.created_at_ms),
            updated_at: unix_seconds(entry.updated_at_ms),
            expires_at: entry.expires_at_ms.map(unix_seconds),
            owner: owner.to_string(),
        }
    }
}

/// Who acts on which namespace: the caller on its own, or on `owner`'s when
/// that names another (an empty `owner` is none). Whether the caller may is
/// the memory service's decision: it needs the owner's grant.
fn target(Caller(caller): Caller, owner: Option<String>) -> Target {
    let namespace = owner
        .filter(|owner| !owner.is_empty())
        .unwrap_or_else(|| caller.clone());
    Target { caller, namespace }
}

// GET /api/memory

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadQuery {
    /// Reads this one key (`memory.get`); without it, lists the namespace (`memory.list`).
    key: Option<String>,
    /// Lists only keys starting with this.
    #[serde(default)]
    prefix: String,
    /// The most entries a page lists (0: the service's default).
    #[serde(default)]
    limit: u32,
    /// The `nextCursor` of the previous page.
    #[serde(default)]
    cursor: String,
    /// Another namespace to read, with its owner's `read` grant.
    owner: Option<String>,
}

/// A page of the namespace.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::ListView)]
pub(crate) struct ListView {
    owner: String,
    keys: Vec<String>,
    entries: Vec<EntryView>,
    next_cursor: Option<String>,
}

impl ListView {
    fn new(page: Page, owner: String) -> Self {
        let entries: Vec<EntryView> = page
            .entries
            .into_iter()
            .map(|e| EntryView::new(e, &owner))
            .collect();
        ListView {
            keys: entries.iter().map(|e| e.key.clone()).collect(),
            entries,
            next_cursor: page.next_cursor,
            owner,
        }
    }
}

/// `?key=` reads one entry (`memory.get`); without it, lists the namespace
/// (`memory.list`). Which of the two the request is was decided, and paid
/// for, by the route gate; the handler does that one.
async fn read(
    State(memory): State<MemoryClient>,
    Extension(PaidRoute(route)): Extension<PaidRoute>,
    caller: Caller,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<Response, ApiError> {
    let target = target(caller, query.owner);
    if route.id == "memory.get" {
        let key = query.key.unwrap_or_default();
        let entry = memory
            .get(&target, &key)
            .await?
            .ok_or_else(|| not_found(&key))?;
        return Ok(Json(EntryView::new(entry, &target.namespace)).into_response());
    }
    let params = ListParams {
        prefix: query.prefix,
        limit: query.limit,
        cursor: query.cursor,
    };
    let page = memory.list(&target, params).await?;
    Ok(Json(ListView::new(page, target.namespace)).into_response())
}

fn not_found(key: &str) -> Error {
    Error::not_found(format!("key {key:?} not found"))
}

// POST /api/memory

/// Sets `key` to `value`, or deletes it with `"delete": true`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::WriteBody)]
pub(crate) struct WriteBody {
    key: String,
    /// Any JSON but null; required unless `delete`.
    value: Option<Value>,
    ttl_seconds: Option<u64>,
    #[serde(default)]
    delete: bool,
    owner: Option<String>,
}

/// The outcome of a delete.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = agent402::DeletedView)]
pub(crate) struct DeletedView {
    key: String,
    deleted: bool,
    revision: u64,
    owner: String,
}

/// Sets a key, or deletes it with `"delete": true`; `If-Match` guards either.
async fn write(
    State(memory): State<MemoryClient>,
    caller: Caller,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<WriteBody>,
) -> Result<Response, ApiError> {
    let target = target(caller, body.owner);
    if body.delete {
        let Deleted { deleted, revision } = memory.delete(&target, &body.key, if_match).await?;
        return Ok(Json(DeletedView {
            key: body.key,
            deleted,
            revision,
            owner: target.namespace,
        })
        .into_response());
    }
    let value = super::required_value(body.value)?;
    let options = WriteOptions {
        ttl_seconds: body.ttl_seconds,
        if_match,
    };
    let entry = memory.set(&target, &body.key, &value, options).await?;
    Ok(Json(EntryView::new(entry, &target.namespace)).into_response())
}

// POST /api/memory/cas

/// Compare and swap: sets `value` if the current value is `expected`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::CasBody)]
pub(crate) struct CasBody {
    key: String,
    /// Null or omitted: the key must be absent.
    expected: Option<Value>,
    /// Null or omitted: delete on match.
    value: Option<Value>,
    ttl_seconds: Option<u64>,
    owner: Option<String>,
}

/// The outcome of a compare and swap.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::CasView)]
pub(crate) struct CasView {
    key: String,
    swapped: bool,
    /// The value after the call; null when the key is absent.
    value: Value,
    owner: String,
    expires_at: Option<i64>,
    revision: u64,
}

async fn compare_and_swap(
    State(memory): State<MemoryClient>,
    caller: Caller,
    JsonBody(body): JsonBody<CasBody>,
) -> Result<Json<CasView>, ApiError> {
    let target = target(caller, body.owner);
    let outcome = memory
        .compare_and_swap(
            &target,
            &body.key,
            body.expected.as_ref(),
            body.value.as_ref(),
            body.ttl_seconds,
        )
        .await?;
    let (value, expires_at_ms) = match outcome.current {
        Some(entry) => (entry.value, entry.expires_at_ms),
        None => (Value::Null, None),
    };
    Ok(Json(CasView {
        key: body.key,
        swapped: outcome.swapped,
        value,
        owner: target.namespace,
        expires_at: expires_at_ms.map(unix_seconds),
        revision: outcome.revision,
    }))
}

// POST /api/memory/incr

/// Adds `by` (default 1) to a numeric value (absent counts as 0).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::IncrBody)]
pub(crate) struct IncrBody {
    key: String,
    #[schema(value_type = Option<f64>)]
    by: Option<Number>,
    ttl_seconds: Option<u64>,
    owner: Option<String>,
}

/// The counter after the increment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::IncrView)]
pub(crate) struct IncrView {
    key: String,
    value: Value,
    revision: u64,
    expires_at: Option<i64>,
    owner: String,
}

async fn increment(
    State(memory): State<MemoryClient>,
    caller: Caller,
    JsonBody(body): JsonBody<IncrBody>,
) -> Result<Json<IncrView>, ApiError> {
    let target = target(caller, body.owner);
    let by = body.by.unwrap_or_else(|| Number::from(1));
    let entry = memory
        .increment(&target, &body.key, &by, body.ttl_seconds)
        .await?;
    Ok(Json(IncrView {
        key: entry.key,
        value: entry.value,
        revision: entry.revision,
        expires_at: entry.expires_at_ms.map(unix_seconds),
        owner: target.namespace,
    }))
}

// POST /api/memory/grant

/// Lets `grantee` read (`read`) or also write (`readwrite`) the caller's namespace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::GrantBody)]
pub(crate) struct GrantBody {
    grantee: String,
    #[schema(schema_with = grant_mode)]
    mode: GrantMode,
    ttl_seconds: Option<u64>,
}

/// A grant as given.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::GrantView)]
pub(crate) struct GrantView {
    owner: String,
    grantee: String,
    #[schema(schema_with = grant_mode)]
    mode: GrantMode,
    expires_at: Option<i64>,
}

impl From<Grant> for GrantView {
    fn from(grant: Grant) -> Self {
        GrantView {
            owner: grant.owner,
            grantee: grant.grantee,
            mode: grant.mode,
            expires_at: grant.expires_at_ms.map(unix_seconds),
        }
    }
}

/// Lets `grantee` into the caller's namespace; granting again replaces the
/// mode and expiry.
async fn grant(
    State(memory): State<MemoryClient>,
    Caller(owner): Caller,
    JsonBody(body): JsonBody<GrantBody>,
) -> Result<Json<GrantView>, ApiError> {
    let grant = memory
        .grant(&owner, &body.grantee, body.mode, body.ttl_seconds)
        .await?;
    Ok(Json(grant.into()))
}

// POST /api/memory/revoke

/// Revokes the grant to `grantee`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = agent402::RevokeBody)]
pub(crate) struct RevokeBody {
    grantee: String,
}

/// Whether a grant was revoked.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = agent402::RevokeView)]
pub(crate) struct RevokeView {
    owner: String,
    grantee: String,
    revoked: bool,
}

async fn revoke(
    State(memory): State<MemoryClient>,
    Caller(owner): Caller,
    JsonBody(RevokeBody { grantee }): JsonBody<RevokeBody>,
) -> Result<Json<RevokeView>, ApiError> {
    let revoked = memory.revoke(&owner, &grantee).await?;
    Ok(Json(RevokeView {
        owner,
        grantee,
        revoked,
    }))
}

// GET /api/memory/grants

/// One active grant.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::GrantItem)]
pub(crate) struct GrantItem {
    grantee: String,
    #[schema(schema_with = grant_mode)]
    mode: GrantMode,
    /// Always true: expired grants are not listed.
    active: bool,
    expires_at: Option<i64>,
}

/// The caller's active grants.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = agent402::GrantsView)]
pub(crate) struct GrantsView {
    owner: String,
    grants: Vec<GrantItem>,
}

/// The caller's active grants, ordered by grantee; expired ones are omitted.
async fn list_grants(
    State(memory): State<MemoryClient>,
    Caller(owner): Caller,
) -> Result<Json<GrantsView>, ApiError> {
    let grants = memory
        .list_grants(&owner)
        .await?
        .into_iter()
        .map(|grant| GrantItem {
            grantee: grant.grantee,
            mode: grant.mode,
            active: true,
            expires_at: grant.expires_at_ms.map(unix_seconds),
        })
        .collect();
    Ok(Json(GrantsView { owner, grants }))
}

/// A grant's mode in the OpenAPI document, as `crate::memory::GrantMode`
/// spells it.
fn grant_mode() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("`read`: get and list; `readwrite`: everything"))
        .enum_values(Some(["read", "readwrite"]))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse_json;
    use serde_json::json;

    fn entry() -> Entry {
        Entry {
            key: "locks/import".into(),
            value: json!("agent-7"),
            etag: "4".into(),
            revision: 4,
            size_bytes: 9,
            created_at_ms: 1_760_086_400_500,
            updated_at_ms: 1_760_086_400_900,
            expires_at_ms: Some(1_760_086_430_000),
        }
    }

    #[test]
    fn entries_render_with_unix_seconds_and_owner() {
        let view = serde_json::to_value(EntryView::new(entry(), "0xabc")).unwrap();
        assert_eq!(
            view,
            json!({
                "key": "locks/import", "value": "agent-7", "etag": "4", "revision": 4,
                "sizeBytes": 9, "createdAt": 1_760_086_400, "updatedAt": 1_760_086_400,
                "expiresAt": 1_760_086_430, "owner": "0xabc",
            })
        );
    }

    #[test]
    fn lists_carry_keys_entries_and_a_null_cursor() {
        let page = Page {
            entries: vec![entry()],
            next_cursor: None,
        };
        let view = serde_json::to_value(ListView::new(page, "0xabc".into())).unwrap();
        assert_eq!(view["keys"], json!(["locks/import"]));
        assert_eq!(view["entries"][0]["owner"], "0xabc");
        assert_eq!(view["nextCursor"], Value::Null);
        assert_eq!(view["owner"], "0xabc");
    }

    #[test]
    fn cas_null_and_omitted_mean_the_same() {
        let omitted: CasBody = parse_json(br#"{"key":"k"}"#).unwrap();
        let nulls: CasBody = parse_json(br#"{"key":"k","expected":null,"value":null}"#).unwrap();
        assert_eq!((omitted.expected, omitted.value), (None, None));
        assert_eq!((nulls.expected, nulls.value), (None, None));
        let acquire: CasBody =
            parse_json(br#"{"key":"k","expected":null,"value":"agent-7","ttlSeconds":30}"#)
                .unwrap();
        assert_eq!(acquire.value, Some(json!("agent-7")));
        assert_eq!(acquire.ttl_seconds, Some(30));
    }

    #[test]
    fn incr_by_must_be_a_number() {
        let body: IncrBody = parse_json(br#"{"key":"n","by":-3}"#).unwrap();
        assert_eq!(body.by.unwrap().to_string(), "-3");
        let body: IncrBody = parse_json(br#"{"key":"n","by":0.5}"#).unwrap();
        assert_eq!(body.by.unwrap().to_string(), "0.5");
        let error = parse_json::<IncrBody>(br#"{"key":"n","by":"2"}"#).unwrap_err();
        assert!(error.message.contains("by:"), "{}", error.message);
    }

    #[test]
    fn write_bodies_reject_wrong_types() {
        for raw in [
            r#"{"key":1,"value":1}"#,
            r#"{"key":"k","value":1,"ttlSeconds":-5}"#,
            r#"{"key":"k","delete":"yes"}"#,
            r#"{"value":1}"#,
        ] {
            assert_eq!(
                parse_json::<WriteBody>(raw.as_bytes())
                    .unwrap_err()
                    .http_status(),
                400,
                "{raw}"
            );
        }
    }

    #[test]
    fn owner_names_the_namespace_and_the_caller_stays_the_caller() {
        let caller = || Caller("0xabc".into());
        assert_eq!(target(caller(), None), Target::own("0xabc"));
        assert_eq!(target(caller(), Some(String::new())), Target::own("0xabc"));
        assert_eq!(target(caller(), Some("0xabc".into())), Target::own("0xabc"));
        assert_eq!(
            target(caller(), Some("0xdef".into())),
            Target {
                caller: "0xabc".into(),
                namespace: "0xdef".into()
            }
        );
    }

    #[test]
    fn grant_bodies_need_a_grantee_and_a_known_mode() {
        let body: GrantBody =
            parse_json(br#"{"grantee":"0xdef","mode":"readwrite","ttlSeconds":60}"#).unwrap();
        assert_eq!(
            (body.grantee.as_str(), body.mode, body.ttl_seconds),
            ("0xdef", GrantMode::Readwrite, Some(60))
        );
        let body: GrantBody = parse_json(br#"{"grantee":"0xdef","mode":"read"}"#).unwrap();
        assert_eq!((body.mode, body.ttl_seconds), (GrantMode::Read, None));
        for (raw, needle) in [
            (r#"{"mode":"read"}"#, "grantee"),
            (r#"{"grantee":"0xdef"}"#, "mode"),
            (r#"{"grantee":"0xdef","mode":"write"}"#, "mode"),
            (r#"{"grantee":"0xdef","mode":"READ"}"#, "mode"),
            (
                r#"{"grantee":"0xdef","mode":"read","ttlSeconds":-1}"#,
                "ttlSeconds",
            ),
        ] {
            let error = parse_json::<GrantBody>(raw.as_bytes()).unwrap_err();
            assert_eq!(error.http_status(), 400, "{raw}");
            assert!(error.message.contains(needle), "{raw}: {}", error.message);
        }
    }

    #[test]
    fn grants_render_with_unix_seconds_and_null_expiry() {
        let grant = Grant {
            owner: "0xabc".into(),
            grantee: "0xdef".into(),
            mode: GrantMode::Readwrite,
            expires_at_ms: Some(1_760_086_400_999),
        };
        assert_eq!(
            serde_json::to_value(GrantView::from(grant.clone())).unwrap(),
            json!({ "owner": "0xabc", "grantee": "0xdef", "mode": "readwrite", "expiresAt": 1_760_086_400 })
        );
        let forever = Grant {
            mode: GrantMode::Read,
            expires_at_ms: None,
            ..grant
        };
        assert_eq!(
            serde_json::to_value(GrantView::from(forever)).unwrap()["expiresAt"],
            Value::Null
        );
    }
}

// GET /api/memory/watch

/// The header a quiet long poll names its position in.
pub(crate) const WATCH_CURSOR_HEADER: &str = "x-watch-cursor";

/// What to wait for: `key`, or every key under `prefix` (neither: every key).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WatchQuery {
    /// The key to watch.
    #[serde(default)]
    key: String,
    /// Watch every key starting with this instead.
    #[serde(default)]
    prefix: String,
    /// Watching a key: answer its first change after this revision (0: its
    /// current state, if it was ever written).
    #[serde(default)]
    since_revision: u64,
    /// Answer the first change after the event with this `cursor` (or the
    /// `X-Watch-Cursor` of a quiet answer): pass it on every poll of a prefix.
    #[serde(default)]
    since_cursor: String,
    /// How long to wait, 1 to 50 s (default 25); then 204.
    timeout_seconds: Option<u32>,
    /// Another namespace to watch, with its owner's `read` grant.
    owner: Option<String>,
}

const DEFAULT_POLL_SECONDS: u32 = 25;

/// The first change after the position asked for.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = agent402::WatchView)]
pub(crate) struct WatchView {
    /// `put`, `delete`, `expire`, or `resync` (the position is lost: read
    /// the current state, then poll from `cursor`).
    #[schema(value_type = String)]
    kind: ChangeKind,
    key: String,
    /// The key's revision after the change (an expiry keeps the revision
    /// that expired).
    revision: u64,
    /// The new value, on `put`.
    value: Option<Value>,
    etag: Option<String>,
    expires_at: Option<i64>,
    /// Pass as `sinceCursor` to wait for the next change.
    cursor: String,
    /// The log no longer held every change since: this is the state now.
    compacted: bool,
    owner: String,
}

/// Waits for the first change to a key (after `sinceRevision`) or under a
/// prefix (after `sinceCursor`): 200 with the change, or 204 with
/// `X-Watch-Cursor` when none came within `timeoutSeconds`.
async fn watch(
    State(memory): State<MemoryClient>,
    caller: Caller,
    QueryParams(query): QueryParams<WatchQuery>,
) -> Result<Response, ApiError> {
    let timeout_seconds = match query.timeout_seconds {
        None => DEFAULT_POLL_SECONDS,
        Some(seconds @ 1..=MAX_POLL_SECONDS) => seconds,
        Some(seconds) => {
            return Err(Error::invalid(
                "INVALID_WATCH_TIMEOUT",
                format!("timeoutSeconds is {seconds}; it must be 1 to {MAX_POLL_SECONDS}"),
            )
            .into())
        }
    };
    let target = target(caller, query.owner);
    let params = WatchParams {
        key: query.key,
        prefix: query.prefix,
        since_revision: query.since_revision,
        since_cursor: query.since_cursor,
        timeout_seconds,
    };
    match memory.watch_first(&target, params).await? {
        Watched::Change(change) => {
            let entry = change.entry;
            Ok(Json(WatchView {
                kind: change.kind,
                key: change.key,
                revision: change.revision,
                etag: entry.as_ref().map(|e| e.etag.clone()),
                expires_at: entry
                    .as_ref()
                    .and_then(|e| e.expires_at_ms)
                    .map(unix_seconds),
                value: entry.map(|e| e.value),
                cursor: change.cursor,
                compacted: change.compacted,
                owner: target.namespace,
            })
            .into_response())
        }
        Watched::Quiet { cursor } => {
            let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
            if let Ok(value) = axum::http::HeaderValue::from_str(&cursor) {
                response.headers_mut().insert(WATCH_CURSOR_HEADER, value);
            }
            Ok(response)
        }
    }
}
