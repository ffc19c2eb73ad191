//! What each memory route takes, declared once for discovery: its input as
//! a JSON Schema (2020-12) and an example input, as a tool's declaration in
//! the toolbox gives them.
//!
//! The input is one object, the way a tool's is: a `{name}` of the path is
//! a (required) property; on a `GET` route every other property is a query
//! parameter, on the others a field of the JSON body (a `DELETE` of the
//! per-agent face has no body: only its path). Headers (`X-Agent-Id`,
//! `If-Match`, `Idempotency-Key`) are not part of it. Two routes serving one
//! method and path told apart by the query (`GET /api/memory`) have a schema
//! each: `memory.get` requires `key` and names only what a read uses;
//! `memory.list` has no `key`.
//!
//! The truth is the gateway's request structs (`gateway/src/faces`, their
//! `ToSchema` / `IntoParams` derives, documented in `/openapi.json`); this
//! crate cannot see them, so `tests/tests/discovery_memory_entries.rs`
//! holds each schema to the document (the same properties, required ones,
//! types and enums) and sends each example through a FREE_MODE gateway:
//! run in the catalog's order on one namespace (`X-Agent-Id: agent-1`),
//! every example is answered 2xx (a read finds what an earlier example
//! wrote: `memory.set` writes `notes`, `agent.memory.put` writes
//! `greeting`).

use serde_json::{json, Map, Value};

/// The header naming the caller's memory namespace in FREE_MODE.
pub const AGENT_HEADER: &str = "X-Agent-Id";

/// The namespace the examples act on (and, on `/agents/{id}/...`, the
/// path's agent: a caller may only reach its own).
pub const EXAMPLE_AGENT: &str = "agent-1";

/// A memory route's input schema and an example of it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryInput {
    pub schema: Value,
    pub example: Value,
}

/// The input of the memory route `id` (a catalog id, e.g. `memory.cas`);
/// `None` for an id that is not a REST memory route.
pub fn input(id: &str) -> Option<MemoryInput> {
    let (title, properties, required, example) = match id {
        // agent402: /api/memory
        "memory.set" => {
            let mut schema = object(
                "Sets `key` to `value`, or deletes it with `\"delete\": true`",
                json!({
                    "key": key(MAX_KEY_CHARS),
                    "value": any_but_null("The value, any JSON but null; required unless `delete`"),
                    "ttlSeconds": ttl(),
                    "delete": {"type": "boolean", "description": "Delete the key instead (default false)"},
                    "owner": owner_body("Another namespace to write, with its owner's `readwrite` grant"),
                }),
                &["key"],
            );
            schema["anyOf"] = json!([
                {"required": ["value"]},
                {"properties": {"delete": {"const": true}}, "required": ["delete"]},
            ]);
            return Some(MemoryInput {
                schema,
                example: json!({"key": "notes", "value": {"text": "hello"}}),
            });
        }
        "memory.get" => (
            "Reads one key",
            json!({
                "key": query_string("The key to read"),
                "owner": query_string("Another namespace to read, with its owner's `read` grant"),
            }),
            &["key"][..],
            json!({"key": "notes"}),
        ),
        "memory.list" => (
            "Lists the keys of the namespace, a page at a time",
            json!({
                "prefix": query_string("Lists only keys starting with this"),
                "limit": limit(),
                "cursor": query_string("The `nextCursor` of the previous page"),
                "owner": query_string("Another namespace to list, with its owner's `read` grant"),
            }),
            &[][..],
            json!({"prefix": "no", "limit": 10}),
        ),
        "memory.cas" => (
            "Compare and swap: sets `value` if the current value is `expected`",
            json!({
                "key": key(MAX_KEY_CHARS),
                "expected": {"description": "The value the key must hold; null or omitted: the key must be absent"},
                "value": {"description": "The value to set on a match; null or omitted: delete on a match"},
                "ttlSeconds": ttl(),
                "owner": owner_body("Another namespace, with its owner's `readwrite` grant"),
            }),
            &["key"][..],
            json!({"key": "locks/import", "expected": null, "value": EXAMPLE_AGENT, "ttlSeconds": 60}),
        ),
        "memory.incr" => (
            "Adds `by` (default 1) to a numeric value (absent counts as 0)",
            json!({
                "key": key(MAX_KEY_CHARS),
                "by": {"type": ["number", "null"], "description": "How much to add (default 1; may be negative or fractional)"},
                "ttlSeconds": ttl(),
                "owner": owner_body("Another namespace, with its owner's `readwrite` grant"),
            }),
            &["key"][..],
            json!({"key": "visits", "by": 1}),
        ),
        "memory.grant" => (
            "Lets `grantee` read (`read`) or also write (`readwrite`) the caller's namespace",
            json!({
                "grantee": {"type": "string", "minLength": 1, "description": "The namespace let in (with payments on, a wallet address)"},
                "mode": {"type": "string", "enum": ["read", "readwrite"], "description": "`read`: get and list; `readwrite`: everything"},
                "ttlSeconds": ttl(),
            }),
            &["grantee", "mode"][..],
            json!({"grantee": "agent-2", "mode": "read", "ttlSeconds": 3600}),
        ),
        "memory.revoke" => (
            "Revokes the grant to `grantee`",
            json!({
                "grantee": {"type": "string", "minLength": 1, "description": "The namespace whose grant ends"},
            }),
            &["grantee"][..],
            json!({"grantee": "agent-2"}),
        ),
        "memory.grants" => (
            "Lists the caller's active grants (no input)",
            json!({}),
            &[][..],
            json!({}),
        ),
        "memory.watch" => (
            "Waits for the first change to `key` (after `sinceRevision`) or under `prefix` (after `sinceCursor`); 204 when none comes within `timeoutSeconds`",
            json!({
                "key": query_string("The key to watch"),
                "prefix": query_string("Watch every key starting with this instead"),
                "sinceRevision": {"type": "integer", "minimum": 0, "description": "Watching a key: answer its first change after this revision (0: its current state, if it was ever written)"},
                "sinceCursor": query_string("Answer the first change after the event with this `cursor` (or the `X-Watch-Cursor` of a quiet answer)"),
                "timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 50, "description": "How long to wait, 1 to 50 s (default 25); then 204"},
                "owner": query_string("Another namespace to watch, with its owner's `read` grant"),
            }),
            &[][..],
            json!({"key": "notes", "timeoutSeconds": 5}),
        ),
        // 2s.io: /api/agent/memory
        "agent.memory.put" => (
            "Puts `value` at `key`",
            json!({
                "key": key(TWOS_MAX_KEY_CHARS),
                "value": any_but_null("The value, any JSON but null"),
                "ttlSeconds": ttl(),
            }),
            &["key", "value"][..],
            json!({"key": "greeting", "value": "hello"}),
        ),
        "agent.memory.get" => (
            "Reads one key",
            json!({"key": {"type": "string", "minLength": 1, "maxLength": TWOS_MAX_KEY_CHARS, "description": "The key to read"}}),
            &["key"][..],
            json!({"key": "greeting"}),
        ),
        "agent.memory.list" => (
            "Lists the keys of the namespace, a page at a time",
            json!({
                "prefix": query_string("Lists only keys starting with this"),
                "limit": limit(),
                "cursor": query_string("The `nextCursor` of the previous page"),
            }),
            &[][..],
            json!({"prefix": "gr", "limit": 10}),
        ),
        "agent.memory.delete" => (
            "Deletes `key`",
            json!({"key": key(TWOS_MAX_KEY_CHARS)}),
            &["key"][..],
            json!({"key": "greeting"}),
        ),
        // per-agent: /agents/{id}/memory
        "agents.memory.list" => (
            "Lists every key of the agent's namespace with its value",
            json!({"id": agent_id()}),
            &["id"][..],
            json!({"id": EXAMPLE_AGENT}),
        ),
        "agents.memory.get" => (
            "Reads one key",
            json!({"id": agent_id(), "key": path_key()}),
            &["id", "key"][..],
            json!({"id": EXAMPLE_AGENT, "key": "notes"}),
        ),
        "agents.memory.put" => (
            "Writes one key: `value` is the JSON body's only field",
            json!({
                "id": agent_id(),
                "key": path_key(),
                "value": any_but_null("The value, any JSON but null"),
            }),
            &["id", "key", "value"][..],
            json!({"id": EXAMPLE_AGENT, "key": "notes", "value": {"text": "hello again"}}),
        ),
        "agents.memory.delete" => (
            "Deletes one key",
            json!({"id": agent_id(), "key": path_key()}),
            &["id", "key"][..],
            json!({"id": EXAMPLE_AGENT, "key": "notes"}),
        ),
        _ => return None,
    };
    Some(MemoryInput {
        schema: object(title, properties, required),
        example,
    })
}

/// The memory service's longest key, in characters.
const MAX_KEY_CHARS: u64 = 256;
/// The 2s.io face's tighter limit.
const TWOS_MAX_KEY_CHARS: u64 = 200;
/// The longest TTL, in seconds (a year).
const MAX_TTL_SECONDS: u64 = 31_536_000;

fn object(description: &str, properties: Value, required: &[&str]) -> Value {
    let mut schema = Map::new();
    schema.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    schema.insert("type".into(), json!("object"));
    schema.insert("description".into(), json!(description));
    schema.insert("properties".into(), properties);
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    schema.insert("additionalProperties".into(), json!(false));
    Value::Object(schema)
}

fn key(max: u64) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "description": "The key"})
}

fn path_key() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "description": "The key: the rest of the path, `/` included"})
}

fn agent_id() -> Value {
    json!({"type": "string", "minLength": 1, "description": "The agent: its memory namespace, which must be the caller's (X-Agent-Id in FREE_MODE, the paying wallet with payments on)"})
}

fn any_but_null(description: &str) -> Value {
    json!({"not": {"type": "null"}, "description": description})
}

fn ttl() -> Value {
    json!({"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TTL_SECONDS, "description": "Expire the key this many seconds from now (none: never)"})
}

fn owner_body(description: &str) -> Value {
    json!({"type": ["string", "null"], "description": description})
}

fn query_string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn limit() -> Value {
    json!({"type": "integer", "minimum": 0, "description": "The most entries a page lists (0: the service's default)"})
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_catalog::Tier;

    fn memory_routes() -> impl Iterator<Item = &'static tessera_catalog::Route> {
        tessera_catalog::rest_routes().filter(|route| route.tier == Tier::Wallet)
    }

    #[test]
    fn every_rest_memory_route_declares_its_input_and_nothing_else_does() {
        assert_eq!(memory_routes().count(), 17);
        for route in memory_routes() {
            let input = input(route.id).unwrap_or_else(|| panic!("{} declares no input", route.id));
            assert_eq!(input.schema["type"], "object", "{}", route.id);
            assert!(input.example.is_object(), "{}", route.id);
        }
        for route in tessera_catalog::routes() {
            if route.tool.is_some() || !route.face.is_rest() {
                assert!(input(route.id).is_none(), "{}", route.id);
            }
        }
    }

    #[test]
    fn each_example_is_valid_for_its_schema() {
        for route in memory_routes() {
            let MemoryInput { schema, example } = input(route.id).unwrap();
            let validator = tessera_toolbox::Validator::new(&schema).unwrap_or_else(|error| {
                panic!("{}: the schema does not compile: {error}", route.id)
            });
            let errors: Vec<String> = validator
                .iter_errors(&example)
                .map(|error| format!("{error} at {}", error.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {example} {errors:?}", route.id);
        }
    }

    #[test]
    fn the_schemas_refuse_what_the_routes_refuse() {
        let valid = |id: &str, instance: Value| {
            tessera_toolbox::Validator::new(&input(id).unwrap().schema)
                .unwrap()
                .is_valid(&instance)
        };
        // A write needs a value unless it deletes.
        assert!(!valid("memory.set", json!({"key": "a"})));
        assert!(valid("memory.set", json!({"key": "a", "delete": true})));
        assert!(!valid("memory.set", json!({"key": "a", "value": null})));
        // The listing has no `key` (with one, the request is a read).
        assert!(!valid("memory.list", json!({"key": "a"})));
        assert!(!valid("memory.get", json!({})));
        assert!(!valid(
            "memory.grant",
            json!({"grantee": "b", "mode": "write"})
        ));
        assert!(!valid("agents.memory.put", json!({"id": "a", "key": "k"})));
        assert!(!valid(
            "agent.memory.put",
            json!({"key": "k".repeat(201), "value": 1})
        ));
    }

    #[test]
    fn path_parameters_are_required_properties() {
        for route in memory_routes() {
            let schema = input(route.id).unwrap().schema;
            for name in route
                .path
                .split('/')
                .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
                .map(|name| name.trim_start_matches('*'))
            {
                assert!(
                    schema["properties"][name].is_object(),
                    "{} {name}",
                    route.id
                );
                assert!(
                    schema["required"]
                        .as_array()
                        .is_some_and(|required| required.contains(&json!(name))),
                    "{} {name}",
                    route.id
                );
            }
        }
    }
}
