//! The per-agent memory API: `/agents/{id}/memory[/{key}]`. The path's agent
//! is the namespace; errors are `{"error": {"category", "message", "details"}}`.
//! Cross-agent access is never possible here: a caller that is not `{id}` is
//! a `MemoryViolation` even when `{id}` granted it access (grants are used
//! through the agent402 face's `owner`).

use crate::errors::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::identity::AgentScope;
use crate::memory::{ListParams, MemoryClient, Target, WriteOptions};
use crate::routes::FaceRoutes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_error::Error;
use utoipa::{IntoParams, ToSchema};

const PAGE_SIZE: u32 = 1000;
/// The most entries `GET /agents/{id}/memory` returns.
const MAX_LISTED: usize = 10_000;

/// Keys are a catch-all path segment (`{*key}`), so they may contain `/`
/// unescaped.
pub(crate) fn routes() -> FaceRoutes {
    FaceRoutes::new(tessera_catalog::Face::Agents)
        .handle(&["agents.memory.list"], list_all)
        .handle(&["agents.memory.get"], read)
        .handle(&["agents.memory.put"], write)
        .handle(&["agents.memory.delete"], remove)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct KeyPath {
    /// The key: the rest of the path, `/` included.
    key: String,
}

/// One key and its value.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = agents::KeyValue)]
pub(crate) struct KeyValue {
    key: String,
    value: Value,
}

fn not_found(key: &str) -> Error {
    Error::not_found(format!("Key '{key}' not found in agent memory"))
}

/// Every key of the agent's namespace (at most 10,000) and its value.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = agents::MemoryView)]
pub(crate) struct MemoryView {
    agent_id: String,
    #[schema(value_type = Object)]
    entries: Map<String, Value>,
}

async fn list_all(
    State(memory): State<MemoryClient>,
    AgentScope(agent): AgentScope,
) -> Result<Json<MemoryView>, ApiError> {
    let target = Target::own(agent);
    let mut entries = Map::new();
    let mut cursor = String::new();
    loop {
        let params = ListParams {
            prefix: String::new(),
            limit: PAGE_SIZE,
            cursor,
        };
        let page = memory.list(&target, params).await?;
        let room = MAX_LISTED - entries.len();
        entries.extend(
            page.entries
                .into_iter()
                .take(room)
                .map(|e| (e.key, e.value)),
        );
        match page.next_cursor {
            Some(next) if entries.len() < MAX_LISTED => cursor = next,
            _ => break,
        }
    }
    Ok(Json(MemoryView {
        agent_id: target.namespace,
        entries,
    }))
}

async fn read(
    State(memory): State<MemoryClient>,
    AgentScope(agent): AgentScope,
    PathParams(KeyPath { key }): PathParams<KeyPath>,
) -> Result<Json<KeyValue>, ApiError> {
    let entry = memory
        .get(&Target::own(agent), &key)
        .await?
        .ok_or_else(|| not_found(&key))?;
    Ok(Json(KeyValue {
        key,
        value: entry.value,
    }))
}

/// The value to store (any JSON but null).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = agents::ValueBody)]
pub(crate) struct ValueBody {
    /// Any JSON but null.
    #[schema(required = true)]
    value: Option<Value>,
}

async fn write(
    State(memory): State<MemoryClient>,
    AgentScope(agent): AgentScope,
    PathParams(KeyPath { key }): PathParams<KeyPath>,
    JsonBody(body): JsonBody<ValueBody>,
) -> Result<Json<KeyValue>, ApiError> {
    let value = super::required_value(body.value)?;
    let entry = memory
        .set(&Target::own(agent), &key, &value, WriteOptions::default())
        .await?;
    Ok(Json(KeyValue {
        key,
        value: entry.value,
    }))
}

async fn remove(
    State(memory): State<MemoryClient>,
    AgentScope(agent): AgentScope,
    PathParams(KeyPath { key }): PathParams<KeyPath>,
) -> Result<StatusCode, ApiError> {
    if memory
        .delete(&Target::own(agent), &key, None)
        .await?
        .deleted
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&key).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::Family;
    use crate::extract::parse_json;
    use serde_json::json;

    #[test]
    fn the_not_found_message_matches_the_docs() {
        let body = Family::Agents.body(&not_found("nonexistent"));
        assert_eq!(
            body,
            json!({ "error": { "category": "NotFound", "message": "Key 'nonexistent' not found in agent memory" } })
        );
    }

    #[test]
    fn a_put_body_needs_a_value() {
        let body: ValueBody = parse_json(br#"{"value": 5}"#).unwrap();
        assert_eq!(body.value, Some(json!(5)));
        let body: ValueBody = parse_json(b"{}").unwrap();
        assert!(super::super::required_value(body.value).is_err());
        assert!(parse_json::<ValueBody>(b"[").is_err());
    }

    #[test]
    fn the_listing_is_an_object_of_values() {
        let mut entries = Map::new();
        entries.insert("claims_processed_count".into(), json!(142));
        let view = MemoryView {
            agent_id: "550e8400".into(),
            entries,
        };
        assert_eq!(
            serde_json::to_value(view).unwrap(),
            json!({ "agent_id": "550e8400", "entries": { "claims_processed_count": 142 } })
        );
    }
}
