//! A ready-to-run `curl` line per catalog entry, against a local gateway:
//! a POST tool with its example as the JSON body, a GET tool with its
//! example in the path (`{name}` segments) and the query, a memory route
//! with its method and path.

use serde_json::{Map, Value};
use tessera_catalog::{Route, When};
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

/// The call of a memory route: its method and path, a `{name}` segment
/// written `<name>`, and the query parameter that tells it from a sibling.
pub fn route_call(route: &Route) -> String {
    let path = placeholder_path(route.path);
    let query = match route.when {
        When::QueryHas(name) => format!("?{name}=<{name}>"),
        When::Always | When::QueryLacks(_) => String::new(),
    };
    let url = format!("{BASE_URL}{path}{query}");
    match route.method {
        tessera_catalog::Method::Get => format!("curl '{url}'"),
        method => format!("curl -X {method} '{url}'"),
    }
}

/// `path` with each `{name}` segment replaced by the example's `name`
/// field (percent-encoded), which then leaves `fields`.
fn fill_path(path: &str, fields: &mut Map<String, Value>) -> String {
    path.split('/')
        .map(|segment| {
            let name = segment
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
                .map(|name| name.trim_start_matches('*'));
            match name.and_then(|name| fields.remove(name)) {
                Some(value) => percent_encode(&plain_text(&value)),
                None => segment.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `path` with each `{name}` (or `{*name}`) segment written `<name>`.
fn placeholder_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            match segment
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
            {
                Some(name) => format!("<{}>", name.trim_start_matches('*')),
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
    fn a_memory_route_shows_its_method_path_and_telling_query() {
        let call = |id| route_call(tessera_catalog::route(id).unwrap());
        assert_eq!(
            call("memory.cas"),
            "curl -X POST 'http://localhost:8080/api/memory/cas'"
        );
        assert_eq!(
            call("memory.get"),
            "curl 'http://localhost:8080/api/memory?key=<key>'"
        );
        assert_eq!(
            call("memory.list"),
            "curl 'http://localhost:8080/api/memory'"
        );
        assert_eq!(
            call("agents.memory.put"),
            "curl -X PUT 'http://localhost:8080/agents/<id>/memory/<key>'"
        );
    }
}
