//! The pure-CPU tools Tessera sells. Each tool is declared once, with the
//! [`tool!`] macro, next to its code: slug, name, description, category,
//! tags, method and path, the typed input its JSON Schema is generated from
//! (schemars), the function, and an example input. The catalog, the gateway's
//! routes, the price table and the tools service all read [`all`].
//!
//! A tool is a plain function of its input: no I/O, no clock except where
//! the tool is about time, and every input bounded (each field's
//! `maxLength`/`maxItems` in its schema, and [`MAX_INPUT_BYTES`] in all), so
//! its running time is bounded too. The tools service still runs each call
//! off the async runtime and under a deadline.

mod input;
mod tool;

pub mod checksum;
pub mod encode;
pub mod evm;
pub mod hash;
pub mod ids;
pub mod json;
pub mod math;
pub mod net;
pub mod text;
pub mod time;
pub mod units;
pub mod versions;

pub use input::{query_input, Bytes, Encoding};
pub use jsonschema::Validator;
pub use tool::{invoke, schema_for_fn, Cost, Method, Tool, ToolError};

/// The price of a tool call unless its declaration says otherwise, in
/// atomic units of USDC (6 decimals): $0.001.
pub const DEFAULT_PRICE: u64 = 1000;

/// The most bytes a tool's input may have: a JSON body, or a query string.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// The longest text field any tool takes, in bytes (most take far less).
pub const MAX_TEXT: u32 = 32 * 1024;

/// Every family's tools.
static FAMILIES: &[&[Tool]] = &[
    hash::TOOLS,
    encode::TOOLS,
    ids::TOOLS,
    json::TOOLS,
    text::TOOLS,
    units::TOOLS,
    time::TOOLS,
    versions::TOOLS,
    net::TOOLS,
    math::TOOLS,
    checksum::TOOLS,
    evm::TOOLS,
];

/// Every tool, family by family.
pub fn all() -> impl Iterator<Item = &'static Tool> {
    FAMILIES.iter().flat_map(|family| family.iter())
}

/// The tool with this slug (looked up on every call: a map, built once).
pub fn find(slug: &str) -> Option<&'static Tool> {
    static BY_SLUG: std::sync::LazyLock<std::collections::HashMap<&'static str, &'static Tool>> =
        std::sync::LazyLock::new(|| all().map(|tool| (tool.slug, tool)).collect());
    BY_SLUG.get(slug).copied()
}

/// The input schema of the tool `slug`, generated once per process.
pub fn input_schema(slug: &str) -> Option<&'static serde_json::Value> {
    static SCHEMAS: std::sync::LazyLock<
        std::collections::HashMap<&'static str, serde_json::Value>,
    > = std::sync::LazyLock::new(|| {
        all()
            .map(|tool| (tool.slug, (tool.input_schema)()))
            .collect()
    });
    SCHEMAS.get(slug)
}

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
