//! Every tool `/mcp` lists, by name: the memory tools (paid with x402), the
//! catalog's pure-CPU tools (free, rate limited), and the meta tools over
//! both. Each listed definition carries the input schema the call is held
//! to.

use super::cpu;
use super::memory::{self, MemoryTool};
use super::meta_tools::Meta;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// What runs when a tool is called.
pub(crate) enum Kind {
    Memory(&'static MemoryTool),
    Cpu(&'static tessera_toolbox::Tool),
    Meta(Meta),
}

/// One listed tool.
pub(crate) struct Entry {
    pub definition: Tool,
    pub kind: Kind,
}

impl Entry {
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// How `find_tool` and `search_tools` describe it: name, title, what it
    /// does, how it is paid (and the default price of a paid one, in atomic
    /// units of USDC), and, in full, its input schema.
    pub fn summary(&self, with_schema: bool) -> Value {
        let definition = &self.definition;
        let mut summary = json!({
            "name": definition.name,
            "title": definition.title,
            "description": definition.description,
        });
        match &self.kind {
            Kind::Memory(tool) => {
                summary["payment"] = json!("x402");
                summary["price"] = json!(tool.route.price.to_string());
            }
            Kind::Cpu(_) | Kind::Meta(_) => summary["payment"] = json!("free"),
        }
        if with_schema {
            summary["inputSchema"] = Value::Object((*definition.input_schema).clone());
        }
        summary
    }
}

pub(crate) struct Catalog {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

/// The tools, built once.
pub(crate) fn catalog() -> &'static Catalog {
    static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::build);
    &CATALOG
}

impl Catalog {
    fn build() -> Self {
        let memory = memory::tools().iter().map(|tool| Entry {
            definition: Tool::new(
                tool.name,
                memory_description(tool),
                object(&tool.input_schema),
            )
            .with_title(capitalized(tool.route.summary))
            .with_annotations(
                ToolAnnotations::new()
                    .read_only(tool.route.method == tessera_catalog::Method::Get)
                    .open_world(false),
            ),
            kind: Kind::Memory(tool),
        });
        let cpu = cpu::tools().map(|tool| Entry {
            definition: Tool::new(
                tool.slug,
                format!(
                    "{} Free over MCP, rate limited per client.",
                    tool.description
                ),
                object(tessera_toolbox::input_schema(tool.slug).expect("every tool has a schema")),
            )
            .with_title(tool.name)
            .with_annotations(ToolAnnotations::new().read_only(true).open_world(false)),
            kind: Kind::Cpu(tool),
        });
        let meta = Meta::ALL.iter().map(|meta| Entry {
            definition: Tool::new(
                meta.name(),
                meta.description(),
                object(&meta.input_schema()),
            )
            .with_annotations(ToolAnnotations::new().read_only(meta.read_only())),
            kind: Kind::Meta(*meta),
        });
        let entries: Vec<Entry> = memory.chain(cpu).chain(meta).collect();
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(at, entry)| (entry.name().to_string(), at))
            .collect::<HashMap<_, _>>();
        assert_eq!(by_name.len(), entries.len(), "MCP tool names are unique");
        Catalog { entries, by_name }
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&at| &self.entries[at])
    }

    pub fn definitions(&self) -> Vec<Tool> {
        self.entries
            .iter()
            .map(|entry| entry.definition.clone())
            .collect()
    }

    /// The tool of a discovery result: a tool's slug, or a memory route's
    /// id; `None` for an operation with no MCP tool.
    pub fn of_discovered(&self, slug: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| match entry.kind {
            Kind::Memory(tool) => tool.route.id == slug,
            Kind::Cpu(tool) => tool.slug == slug,
            Kind::Meta(_) => false,
        })
    }
}

fn memory_description(tool: &MemoryTool) -> String {
    format!(
        "{} Paid per call with x402 (USDC, {} by default): called without a payment it answers an error \
         whose structuredContent is the x402 PaymentRequired quote; sign it and call again with the \
         PaymentPayload in _meta[\"x402/payment\"] (or the PAYMENT-SIGNATURE header). The namespace is \
         the paying wallet (in FREE_MODE, the X-Agent-Id header).",
        tool.description,
        dollars(tool.route.price)
    )
}

/// Atomic units of USDC (6 decimals) as dollars: 1200 → `$0.0012`.
fn dollars(atomic: u64) -> String {
    let fraction = format!("{:06}", atomic % 1_000_000);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("${}", atomic / 1_000_000)
    } else {
        format!("${}.{fraction}", atomic / 1_000_000)
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn object(schema: &Value) -> Arc<JsonObject> {
    match schema {
        Value::Object(object) => Arc::new(object.clone()),
        other => panic!("an input schema is an object: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_schemas_objects() {
        let definitions = catalog().definitions();
        assert_eq!(
            definitions.len(),
            memory::tools().len() + cpu::tools().count() + Meta::ALL.len()
        );
        for tool in &definitions {
            let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
            assert!(
                !tool.name.is_empty() && tool.name.len() <= 128 && tool.name.chars().all(valid),
                "{}",
                tool.name
            );
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
        }
    }

    #[test]
    fn cpu_tools_have_the_catalogs_schema() {
        let sha = catalog().get("sha256").unwrap();
        assert_eq!(
            Value::Object((*sha.definition.input_schema).clone()),
            *tessera_toolbox::input_schema("sha256").unwrap()
        );
        assert_eq!(sha.summary(false)["payment"], "free");
    }

    #[test]
    fn discovery_results_map_to_tools() {
        let catalog = catalog();
        assert_eq!(
            catalog.of_discovered("memory.cas").unwrap().name(),
            "agent.memory.cas"
        );
        assert_eq!(
            catalog.of_discovered("agent.memory.put").unwrap().name(),
            "agent.memory.put"
        );
        assert_eq!(catalog.of_discovered("sha256").unwrap().name(), "sha256");
        assert!(catalog.of_discovered("memory.grant").is_none());
    }

    #[test]
    fn prices_read_as_dollars() {
        assert_eq!(dollars(1200), "$0.0012");
        assert_eq!(dollars(2000), "$0.002");
        assert_eq!(dollars(3_000_000), "$3");
    }
}
