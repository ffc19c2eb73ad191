//! What can be discovered: one [`Entry`] per paid route of the catalog, in
//! the catalog's order (memory's routes, then every tool), built once.
//!
//! A tool's entry carries its toolbox declaration (name, description,
//! category, tags, input schema, example input). A memory route's name is
//! its summary, its description the catalog's, its category `memory`, its
//! tags the words of its id and summary, and its input schema and example
//! are declared in [`crate::memory_input`] (held to the gateway's
//! `/openapi.json` by a test). Every entry's `call` is a ready `curl` line
//! with the example ([`call`]); a memory route's names the namespace with
//! `X-Agent-Id`.

use crate::call;
use crate::index::Document;
use crate::memory_input::{self, MemoryInput};
use crate::tokens;
use serde::Serialize;
use serde_json::Value;
use std::sync::LazyLock;
use tessera_catalog::Route;
use tessera_toolbox::Tool;

/// The category of every memory route.
pub const MEMORY_CATEGORY: &str = "memory";

/// One discoverable operation, as `/api/find` and `/api/pricing` answer it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The tool's slug, or the memory route's id (`memory.cas`).
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    /// Default price in atomic units of USDC (6 decimals: 1000 = $0.001).
    pub price: u64,
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The path pattern the gateway serves it on; `{name}` is a parameter.
    pub route: &'static str,
    /// The input's JSON Schema: a JSON object whose properties are the
    /// path's `{name}`s and the query (GET) or the JSON body's fields.
    pub input_schema: Value,
    /// An input it accepts.
    pub example: Value,
    /// A `curl` line calling it with the example on a local gateway.
    pub call: String,
}

impl Entry {
    /// The entry of `tool`, sold on `route`.
    pub fn of_tool(tool: &Tool, route: &Route) -> Entry {
        let example = (tool.example)();
        let input_schema = tessera_toolbox::input_schema(tool.slug)
            .cloned()
            .unwrap_or_else(|| (tool.input_schema)());
        Entry {
            slug: tool.slug.to_string(),
            name: tool.name.to_string(),
            description: tool.description.to_string(),
            category: tool.category.to_string(),
            tags: tool.tags.iter().map(|tag| tag.to_string()).collect(),
            price: route.price,
            method: route.method.as_str(),
            route: route.path,
            call: call::tool_call(tool, &example),
            input_schema,
            example,
        }
    }

    /// The entry of a memory route, with the input
    /// [`memory_input::input`] declares for it (none: null schema and
    /// example, which a test forbids).
    pub fn of_memory_route(route: &Route) -> Entry {
        let mut tags = tokens::words(route.id);
        for word in tokens::words(route.summary) {
            if !tags.contains(&word) {
                tags.push(word);
            }
        }
        let MemoryInput { schema, example } =
            memory_input::input(route.id).unwrap_or(MemoryInput {
                schema: Value::Null,
                example: Value::Null,
            });
        Entry {
            slug: route.id.to_string(),
            name: capitalized(route.summary),
            description: route.description(),
            category: MEMORY_CATEGORY.to_string(),
            tags,
            price: route.price,
            method: route.method.as_str(),
            route: route.path,
            call: call::memory_call(route, &example),
            input_schema: schema,
            example,
        }
    }

    /// What the find index reads of this entry.
    pub fn document(&self) -> Document {
        Document {
            slug: self.slug.clone(),
            name: self.name.clone(),
            category: self.category.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// Every entry, in the catalog's order.
pub fn entries() -> &'static [Entry] {
    static ENTRIES: LazyLock<Vec<Entry>> = LazyLock::new(|| {
        tessera_catalog::rest_routes()
            .map(|route| match route.tool.and_then(tessera_toolbox::find) {
                Some(tool) => Entry::of_tool(tool, route),
                None => Entry::of_memory_route(route),
            })
            .collect()
    });
    &ENTRIES
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use tessera_catalog::Tier;

    #[test]
    fn every_tool_and_every_memory_route_once_in_catalog_order() {
        let slugs: Vec<&str> = entries().iter().map(|entry| entry.slug.as_str()).collect();
        let expected: Vec<&str> = tessera_catalog::rest_routes()
            .map(|route| route.tool.unwrap_or(route.id))
            .collect();
        assert_eq!(slugs, expected);
        assert_eq!(
            slugs.iter().collect::<HashSet<_>>().len(),
            slugs.len(),
            "a slug twice"
        );
        let memory = tessera_catalog::rest_routes()
            .filter(|route| route.tier == Tier::Wallet)
            .count();
        assert!(memory > 0);
        assert_eq!(entries().len(), tessera_toolbox::all().count() + memory);
    }

    #[test]
    fn a_tool_entry_carries_its_declaration() {
        let entry = entries().iter().find(|e| e.slug == "convert").unwrap();
        let tool = tessera_toolbox::find("convert").unwrap();
        assert_eq!(entry.name, tool.name);
        assert_eq!(entry.category, "units");
        assert_eq!(entry.price, tool.price);
        assert_eq!(
            (entry.method, entry.route),
            ("GET", "/api/convert/{conversion}")
        );
        assert_eq!(
            &entry.input_schema,
            tessera_toolbox::input_schema("convert").unwrap()
        );
        assert_eq!(entry.example, (tool.example)());
        assert!(entry.tags.iter().any(|tag| tag == "length"));
        assert_eq!(
            entry.call,
            "curl 'http://localhost:8080/api/convert/kilometers-to-miles?value=42'"
        );
    }

    #[test]
    fn a_memory_entry_is_named_by_its_summary() {
        let entry = entries().iter().find(|e| e.slug == "memory.cas").unwrap();
        assert_eq!(entry.name, "Compare and swap one key");
        assert_eq!(
            entry.description,
            "Tessera memory.cas: compare and swap one key (POST /api/memory/cas)"
        );
        assert_eq!(entry.category, MEMORY_CATEGORY);
        assert_eq!(entry.tags, ["memory", "cas", "compare", "swap", "key"]);
        assert_eq!((entry.price, entry.method), (1000, "POST"));
        assert_eq!(entry.route, "/api/memory/cas");
        let declared = memory_input::input("memory.cas").unwrap();
        assert_eq!(entry.input_schema, declared.schema);
        assert_eq!(entry.example, declared.example);
        assert_eq!(
            entry.call,
            r#"curl -X POST 'http://localhost:8080/api/memory/cas' -H 'X-Agent-Id: agent-1' -H 'Content-Type: application/json' -d '{"expected":null,"key":"locks/import","ttlSeconds":60,"value":"agent-1"}'"#
        );
    }

    #[test]
    fn every_memory_entry_has_a_schema_an_example_and_a_call_naming_the_agent() {
        let memory: Vec<&Entry> = entries()
            .iter()
            .filter(|entry| entry.category == MEMORY_CATEGORY)
            .collect();
        assert_eq!(memory.len(), 17);
        for entry in memory {
            assert_eq!(entry.input_schema["type"], "object", "{}", entry.slug);
            assert!(entry.example.is_object(), "{}", entry.slug);
            assert!(
                entry.call.contains(" -H 'X-Agent-Id: agent-1'"),
                "{}: {}",
                entry.slug,
                entry.call
            );
            // Every path parameter is filled.
            let url = entry.call.split(" -H ").next().unwrap();
            assert!(!url.contains('{'), "{}: {url}", entry.slug);
        }
    }

    #[test]
    fn an_entry_serializes_in_camel_case() {
        let entry = entries().iter().find(|e| e.slug == "sha256").unwrap();
        let json = serde_json::to_value(entry).unwrap();
        let keys: HashSet<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let expected: HashSet<&str> = [
            "slug",
            "name",
            "description",
            "category",
            "tags",
            "price",
            "method",
            "route",
            "inputSchema",
            "example",
            "call",
        ]
        .into_iter()
        .collect();
        assert_eq!(keys, expected);
        assert_eq!(json["price"], 1000);
        assert_eq!(json["inputSchema"]["type"], "object");
        assert_eq!(json["example"], serde_json::json!({"text": "hello world"}));
    }
}
