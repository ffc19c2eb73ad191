//! The meta tools, as declared: `search_tools`, `find_tool` and
//! `call_tool` over the catalog (what they do is in `meta.rs`).

use serde_json::{json, Value};

/// How many results `search_tools` asks `/api/find` for (its most): some
/// rank operations that have no MCP tool, which are left out.
pub(crate) const FIND_DEPTH: u32 = 25;
pub(crate) const DEFAULT_RESULTS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meta {
    Search,
    Find,
    Call,
}

impl Meta {
    pub const ALL: [Meta; 3] = [Meta::Search, Meta::Find, Meta::Call];

    pub fn name(self) -> &'static str {
        match self {
            Meta::Search => "search_tools",
            Meta::Find => "find_tool",
            Meta::Call => "call_tool",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Meta::Search => "Find tools by what you need done (e.g. \"hash a string\", \"lock shared by agents\"): the best matches, each with its name, what it does and how it is paid.",
            Meta::Find => "Describe one tool by name: what it does, its input schema, and how it is paid (x402 and its default price in atomic units of USDC, or free).",
            Meta::Call => "Call any tool by name with its arguments, as calling it directly would (a paid tool takes its payment in this call's _meta[\"x402/payment\"]).",
        }
    }

    pub fn read_only(self) -> bool {
        self != Meta::Call
    }

    pub fn input_schema(self) -> Value {
        match self {
            Meta::Search => json!({
                "type": "object",
                "properties": {
                    "query": { "type": "string", "minLength": 1, "maxLength": 500, "description": "What the tool should do" },
                    "limit": { "type": "integer", "minimum": 1, "maximum": FIND_DEPTH, "description": "The most tools to answer (default 5)" },
                },
                "required": ["query"],
                "additionalProperties": false,
            }),
            Meta::Find => json!({
                "type": "object",
                "properties": { "name": { "type": "string", "minLength": 1, "description": "The tool's name" } },
                "required": ["name"],
                "additionalProperties": false,
            }),
            Meta::Call => json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "minLength": 1, "description": "The tool's name" },
                    "arguments": { "type": "object", "description": "The tool's arguments, as its input schema says" },
                },
                "required": ["name"],
                "additionalProperties": false,
            }),
        }
    }
}
