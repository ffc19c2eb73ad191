//! A ready-to-run `curl` line per catalog entry, against a local gateway
//! (`make run`: the all-in-one in FREE_MODE on localhost:8080), each with
//! the entry's example input: a `{name}` of the path is filled from the
//! example's `name` field, and the other fields are the query of a `GET`
//! and the JSON body of the others (a POST tool; a memory write). A memory
//! route's call also names the caller's namespace, `X-Agent-Id: agent-1`
//! (FREE_MODE's identity; with payments on the payment names it).

use crate::memory_input::{AGENT_HEADER, EXAMPLE_AGENT};
use serde_json::{Map, Value};
use tessera_catalog::Route;
use tessera_toolbox::{Method, Tool};

/// Where the call examples send their requests: the gateway's default
/// listen address.
pub const BASE_URL: &str = "http://localhost:8080";

/// The call of `tool` with its example input.
pub fn tool_call(tool: &Tool, example: &Value) -> String {
    let mut fields = example.as_object().cloned().unwrap_or_default();
    let path = fill_path(tool.path, &mut fields);
    match tool.method {
        Method::Get => {
            let query = query_string(&fields);
            let separator = if query.is_empty() { "" } else { "?" };
            // The URL is percent-encoded: nothing in it needs shell escaping.
            format!("curl '{BASE_URL}{path}{separator}{query}'")
        }
        Method::Post => {
            let body = Value::Object(fields).to_string();
            format!(
                "curl -X POST '{BASE_URL}{path}' -H 'Content-Type: application/json' -d '{}'",
                escape_single_quotes(&body)
            )
        }
    }
}

/// The call of the memory route `route` with its example input, in the
/// namespace [`EXAMPLE_AGENT`]: on a `GET` the fields left after the path
/// are the query; on the others the JSON body, if any are left (a `DELETE
/// /agents/{id}/memory/{key}` has none).
pub fn memory_call(route: &Route, example: &Value) -> String {
    let mut fields = example.as_object().cloned().unwrap_or_default();
    let path = fill_path(route.path, &mut fields);
    let agent = format!("-H '{AGENT_HEADER}: {EXAMPLE_AGENT}'");
    match route.method {
        tessera_catalog::Method::Get => {
            let query = query_string(&fields);
            let separator = if query.is_empty() { "" } else { "?" };
            format!("curl '{BASE_URL}{path}{separator}{query}' {agent}")
        }
        method if fields.is_empty() && method == tessera_catalog::Method::Delete => {
            format!("curl -X {method} '{BASE_URL}{path}' {agent}")
        }
        method => {
            let body = Value::Object(fields).to_string();
            format!(
                "curl -X {method} '{BASE_URL}{path}' {agent} -H 'Content-Type: application/json' -d '{}'",
                escape_single_quotes(&body)
            )
        }
    }
}

/// `path` with each `{name}` segment replaced by the example's `name`
/// field (percent-encoded; a catch-all `{*name}` keeps its `/`), which then
/// leaves `fields`.
fn fill_path(path: &str, fields: &mut Map<String, Value>) -> String {
    path.split('/')
        .map(|segment| {
            let name = segment
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'));
            let catch_all = name.is_some_and(|name| name.starts_with('*'));
            match name.and_then(|name| fields.remove(name.trim_start_matches('*'))) {
                Some(value) if catch_all => plain_text(&value)
                    .split('/')
                    .map(percent_encode)
                    .collect::<Vec<_>>()
                    .join("/"),
                Some(value) => percent_encode(&plain_text(&value)),
                None => segment.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The unpaid call of an external seller's resource: its method and URL
/// (the seller answers it with its 402 quote). The URL was written by a
/// stranger, so it is quoted for the shell whatever it holds.
pub fn external_call(method: &str, url: &str) -> String {
    let url = escape_single_quotes(url);
    match method {
        "GET" => format!("curl '{url}'"),
        "POST" | "PUT" | "PATCH" => {
            format!("curl -X {method} '{url}' -H 'Content-Type: application/json' -d '{{}}'")
        }
        _ => format!("curl -X {method} '{url}'"),
    }
}

/// `name=value&...`, percent-encoded; a null field is left out.
fn query_string(fields: &Map<String, Value>) -> String {
    fields
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| {
            format!(
                "{}={}",
                percent_encode(name),
                percent_encode(&plain_text(value))
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A value as a query parameter writes it: a string as itself, anything
/// else as JSON.
fn plain_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Every byte but RFC 3986's unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `text` safe inside a single-quoted shell word.
fn escape_single_quotes(text: &str) -> String {
    text.replace('\'', r"'\''")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(slug: &str) -> &'static Tool {
        tessera_toolbox::find(slug).unwrap_or_else(|| panic!("no tool {slug}"))
    }

    #[test]
    fn a_post_tool_sends_its_example_as_the_body() {
        let call = tool_call(tool("sha256"), &json!({"text": "it's"}));
        assert_eq!(
            call,
            r#"curl -X POST 'http://localhost:8080/api/sha256' -H 'Content-Type: application/json' -d '{"text":"it'\''s"}'"#
        );
    }

    #[test]
    fn a_get_tool_fills_its_path_and_query() {
        let call = tool_call(
            tool("convert"),
            &json!({"conversion": "kilometers-to-miles", "value": 42}),
        );
        assert_eq!(
            call,
            "curl 'http://localhost:8080/api/convert/kilometers-to-miles?value=42'"
        );
        let call = tool_call(tool("slugify"), &json!({"text": "a b&c=d/é"}));
        assert_eq!(
            call,
            "curl 'http://localhost:8080/api/slugify?text=a%20b%26c%3Dd%2F%C3%A9'"
        );
        let call = tool_call(tool("ulid"), &json!({}));
        assert_eq!(call, "curl 'http://localhost:8080/api/ulid'");
    }

    #[test]
    fn an_external_call_quotes_the_url_for_the_shell() {
        assert_eq!(
            external_call("GET", "https://s.example/a?b=c"),
            "curl 'https://s.example/a?b=c'"
        );
        assert_eq!(
            external_call("POST", "https://s.example/it's"),
            r#"curl -X POST 'https://s.example/it'\''s' -H 'Content-Type: application/json' -d '{}'"#
        );
    }

    #[test]
    fn a_memory_call_sends_its_example_with_the_agent_header() {
        let call = |id, example: Value| memory_call(tessera_catalog::route(id).unwrap(), &example);
        assert_eq!(
            call(
                "memory.cas",
                json!({"key": "locks/import", "expected": null, "value": "it's"})
            ),
            r#"curl -X POST 'http://localhost:8080/api/memory/cas' -H 'X-Agent-Id: agent-1' -H 'Content-Type: application/json' -d '{"expected":null,"key":"locks/import","value":"it'\''s"}'"#
        );
        assert_eq!(
            call("memory.get", json!({"key": "a b"})),
            "curl 'http://localhost:8080/api/memory?key=a%20b' -H 'X-Agent-Id: agent-1'"
        );
        assert_eq!(
            call("memory.grants", json!({})),
            "curl 'http://localhost:8080/api/memory/grants' -H 'X-Agent-Id: agent-1'"
        );
        assert_eq!(
            call(
                "agents.memory.put",
                json!({"id": "agent-1", "key": "a/b c", "value": 1})
            ),
            r#"curl -X PUT 'http://localhost:8080/agents/agent-1/memory/a/b%20c' -H 'X-Agent-Id: agent-1' -H 'Content-Type: application/json' -d '{"value":1}'"#
        );
        assert_eq!(
            call("agents.memory.delete", json!({"id": "agent-1", "key": "notes"})),
            "curl -X DELETE 'http://localhost:8080/agents/agent-1/memory/notes' -H 'X-Agent-Id: agent-1'"
        );
    }
}
