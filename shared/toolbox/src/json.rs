//! JSON and friends: validate, format and minify JSON; JSON Pointer
//! (RFC 6901), JSONPath (RFC 9535) and JSON Schema; YAML, TOML and CSV to and
//! from JSON.
//!
//! A field holding arbitrary JSON is a [`Value`]: the gateway caps the whole
//! input at [`MAX_INPUT_BYTES`], and parsing JSON text stops at
//! serde_json's nesting limit of 128, which [`shape`] checks again for
//! values that did not come through a parser. Every text a tool writes is
//! capped at [`MAX_OUTPUT_BYTES`].

use crate::{tool, Tool, ToolError, MAX_INPUT_BYTES, MAX_TEXT};
use jsonschema::{Draft, Registry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_json_path::{JsonPath, NormalizedPath, PathElement};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "json-validate", name: "JSON validate", category: "json",
        tags: ["json", "lint", "syntax", "parse"],
        method: Post, path: "/api/json-validate",
        description: "Whether a text is valid JSON (RFC 8259); when not, the parser's message with its line and column.",
        run: json_validate, example: { "text": "{\"a\": [1, 2, }" },
    },
    tool! {
        slug: "json-format", name: "JSON format", category: "json",
        tags: ["json", "pretty-print", "beautify", "indent"],
        method: Post, path: "/api/json-format",
        description: "Pretty-prints a JSON text with the indent you choose (0 to 8 spaces, default 2), keys kept in their order.",
        run: json_format, example: { "text": "{\"b\":1,\"a\":[true,null]}", "indent": 2 },
    },
    tool! {
        slug: "json-minify", name: "JSON minify", category: "json",
        tags: ["json", "compact", "whitespace"],
        method: Post, path: "/api/json-minify",
        description: "A JSON text with all insignificant whitespace removed, keys kept in their order.",
        run: json_minify, example: { "text": "{\n  \"b\": 1,\n  \"a\": [true, null]\n}" },
    },
    tool! {
        slug: "json-pointer", name: "JSON Pointer", category: "json",
        tags: ["json", "pointer", "rfc6901", "lookup"],
        method: Post, path: "/api/json-pointer",
        description: "Resolves an RFC 6901 JSON Pointer (`/a/0/b`, or its URI fragment form `#/a/0/b`) in a JSON value: whether it was found, and the value there.",
        run: json_pointer, example: { "json": { "foo": ["bar", "baz"] }, "pointer": "/foo/0" },
    },
    tool! {
        slug: "jsonpath", name: "JSONPath", category: "json",
        tags: ["json", "jsonpath", "rfc9535", "query", "filter"],
        method: Post, path: "/api/jsonpath",
        description: "Runs an RFC 9535 JSONPath query on a JSON value: the matched values and their normalized paths (at most 10,000 matches). A query that could cost too much on the value given is refused; `match` and `search` take a literal pattern.",
        run: jsonpath,
        example: { "json": { "store": { "book": [ { "title": "Sayings of the Century", "price": 8.95 }, { "title": "Sword of Honour", "price": 12.99 } ] } }, "path": "$.store.book[?@.price < 10].title" },
    },
    tool! {
        slug: "json-schema-validate", name: "JSON Schema validate", category: "json",
        tags: ["json", "schema", "jsonschema", "validation", "2020-12"],
        method: Post, path: "/api/json-schema-validate",
        description: "Validates a JSON instance against a JSON Schema (draft from `$schema`, else 2020-12): whether it is valid, and up to 100 errors with their instance and schema paths. External `$ref`s are not fetched.",
        run: json_schema_validate,
        example: { "schema": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" }, "age": { "type": "integer", "minimum": 0 } } }, "instance": { "name": "Ada", "age": -1 } },
    },
    tool! {
        slug: "json-to-yaml", name: "JSON to YAML", category: "json",
        tags: ["json", "yaml", "convert"],
        method: Post, path: "/api/json-to-yaml",
        description: "A JSON value written as a YAML document.",
        run: json_to_yaml, example: { "json": { "name": "tessera", "ports": [80, 443], "tls": true } },
    },
    tool! {
        slug: "yaml-to-json", name: "YAML to JSON", category: "json",
        tags: ["json", "yaml", "convert"],
        method: Post, path: "/api/yaml-to-json",
        description: "A YAML document (one; anchors and aliases allowed) as a JSON value: number and boolean keys become strings, tags are dropped.",
        run: yaml_to_json, example: { "text": "name: tessera\nports:\n  - 80\n  - 443\ntls: true\n" },
    },
    tool! {
        slug: "json-to-toml", name: "JSON to TOML", category: "json",
        tags: ["json", "toml", "convert", "config"],
        method: Post, path: "/api/json-to-toml",
        description: "A JSON object written as a TOML document (TOML has no null, and its top level is a table).",
        run: json_to_toml, example: { "json": { "title": "example", "owner": { "name": "Tom" }, "ports": [8000, 8001] } },
    },
    tool! {
        slug: "toml-to-json", name: "TOML to JSON", category: "json",
        tags: ["json", "toml", "convert", "config"],
        method: Post, path: "/api/toml-to-json",
        description: "A TOML document as a JSON object (dates and times become their TOML text).",
        run: toml_to_json, example: { "text": "title = \"example\"\n\n[owner]\nname = \"Tom\"\n" },
    },
    tool! {
        slug: "csv-to-json", name: "CSV to JSON", category: "json",
        tags: ["json", "csv", "convert", "table"],
        method: Post, path: "/api/csv-to-json",
        description: "CSV rows as JSON: objects keyed by the header row (or arrays, without one), every cell a string; at most 10,000 rows.",
        run: csv_to_json, example: { "text": "name,age\nAda,36\nAlan,41\n" },
    },
    tool! {
        slug: "json-to-csv", name: "JSON to CSV", category: "json",
        tags: ["json", "csv", "convert", "table"],
        method: Post, path: "/api/json-to-csv",
        description: "An array of flat JSON objects as CSV, its header the union of their keys in the order first seen.",
        run: json_to_csv, example: { "json": [ { "name": "Ada", "age": 36 }, { "name": "Alan", "age": 41 } ] },
    },
];

/// The deepest nesting a JSON value may have (serde_json's parser limit).
const MAX_DEPTH: usize = 128;

/// The most bytes of text a tool here writes.
const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// The most matches `jsonpath` answers, and rows `csv-to-json` reads.
const MAX_RESULTS: usize = 10_000;

/// The most errors `json-schema-validate` lists.
const MAX_SCHEMA_ERRORS: usize = 100;

/// How big a JSON value is.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Every value in it, itself included.
    nodes: usize,
    /// 1 for a scalar, one more for each level of nesting.
    depth: usize,
}

/// The shape of `value`, refused (naming `field`) if it nests deeper than
/// [`MAX_DEPTH`] or is longer, as JSON text, than [`MAX_INPUT_BYTES`].
fn shape(field: &str, value: &Value) -> Result<Shape, ToolError> {
    let mut shape = Shape { nodes: 0, depth: 0 };
    let mut stack = vec![(value, 1)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(ToolError::field(
                field,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        shape.nodes += 1;
        shape.depth = shape.depth.max(depth);
        match node {
            Value::Array(items) => stack.extend(items.iter().map(|item| (item, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|item| (item, depth + 1))),
            _ => {}
        }
    }
    let length = serde_json::to_vec(value)
        .map_err(|error| ToolError::field(field, error))?
        .len();
    if length > MAX_INPUT_BYTES {
        return Err(ToolError::field(
            field,
            format!("longer than {MAX_INPUT_BYTES} bytes as JSON"),
        ));
    }
    Ok(shape)
}

/// `text`, unless longer than [`MAX_OUTPUT_BYTES`] (then `field` is blamed).
fn capped(field: &str, text: String) -> Result<String, ToolError> {
    if text.len() > MAX_OUTPUT_BYTES {
        return Err(ToolError::field(
            field,
            format!("the result would be longer than {MAX_OUTPUT_BYTES} bytes"),
        ));
    }
    Ok(text)
}

/// A JSON field's path in a [`ToolError`]: `field/a/0`.
fn field_path(field: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = field.to_string();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{key}")),
            Segment::Enum { variant } => out.push_str(&format!("/{variant}")),
            Segment::Unknown => {}
        }
    }
    out
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JsonText {
    /// The JSON text.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
}

/// Where and why a JSON text does not parse.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyntaxError {
    /// The parser's message, with its position.
    pub message: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (0 at the very end of the input).
    pub column: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Validity {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<SyntaxError>,
}

fn json_validate(input: JsonText) -> Result<Validity, ToolError> {
    Ok(match serde_json::from_str::<Value>(&input.text) {
        Ok(_) => Validity {
            valid: true,
            error: None,
        },
        Err(error) => Validity {
            valid: false,
            error: Some(SyntaxError {
                message: error.to_string(),
                line: error.line(),
                column: error.column(),
            }),
        },
    })
}

/// A JSON text parsed with its objects' keys in their order: serde_json's
/// own map sorts them (its `preserve_order` is off here), while
/// serde_norway's [`serde_norway::Value`] keeps an insertion-ordered map. A
/// key given twice is refused rather than silently dropped.
fn parse_ordered(text: &str) -> Result<serde_norway::Value, ToolError> {
    serde_json::from_str(text).map_err(|error| ToolError::field("text", error))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FormatInput {
    /// The JSON text.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// Spaces per level (default 2; 0 puts each value on its own line, unindented).
    #[schemars(range(max = 8))]
    pub indent: Option<u8>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TextOutput {
    pub text: String,
}

fn json_format(input: FormatInput) -> Result<TextOutput, ToolError> {
    let indent = usize::from(input.indent.unwrap_or(2));
    if indent > 8 {
        return Err(ToolError::field("indent", "at most 8"));
    }
    let value = parse_ordered(&input.text)?;
    let spaces = vec![b' '; indent];
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(&spaces);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .map_err(|error| ToolError::field("text", error))?;
    let text = String::from_utf8(out).map_err(|error| ToolError::field("text", error))?;
    Ok(TextOutput {
        text: capped("text", text)?,
    })
}

fn json_minify(input: JsonText) -> Result<TextOutput, ToolError> {
    let value = parse_ordered(&input.text)?;
    let text = serde_json::to_string(&value).map_err(|error| ToolError::field("text", error))?;
    Ok(TextOutput { text })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PointerInput {
    /// The JSON value to look in.
    pub json: Value,
    /// An RFC 6901 JSON Pointer: empty for the whole value, else `/`-separated
    /// reference tokens (`~0` for `~`, `~1` for `/`); or its URI fragment form,
    /// `#` then the pointer percent-encoded.
    #[schemars(length(max = 4096))]
    pub pointer: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PointerOutput {
    pub found: bool,
    /// The value found (`null` when not found).
    pub value: Option<Value>,
}

fn json_pointer(input: PointerInput) -> Result<PointerOutput, ToolError> {
    shape("json", &input.json)?;
    let pointer = match input.pointer.strip_prefix('#') {
        // RFC 6901 section 6: a URI fragment, percent-decoded as UTF-8.
        Some(fragment) => percent_encoding::percent_decode_str(fragment)
            .decode_utf8()
            .map_err(|error| ToolError::field("pointer", error))?
            .into_owned(),
        None => input.pointer,
    };
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(ToolError::field(
            "pointer",
            "a JSON Pointer is empty or starts with `/`",
        ));
    }
    // RFC 6901 section 3: `~` only in the escapes `~0` and `~1`.
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(ToolError::field(
                "pointer",
                "`~` must be followed by `0` or `1`",
            ));
        }
    }
    let value = input.json.pointer(&pointer).cloned();
    Ok(PointerOutput {
        found: value.is_some(),
        value,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JsonPathInput {
    /// The JSON value to query.
    pub json: Value,
    /// An RFC 9535 JSONPath query, such as `$.store.book[?@.price < 10].title`.
    #[schemars(length(max = 256))]
    pub path: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonPathOutput {
    pub count: usize,
    /// The matched values, in the query's order.
    pub values: Vec<Value>,
    /// Each match's normalized path (RFC 9535 section 2.7), as `values`.
    pub paths: Vec<String>,
}

/// The most node visits a query may cost, by [`QueryScan::cost`]'s bound.
const MAX_QUERY_COST: f64 = 1e7;

/// The deepest nesting of brackets a query may have: serde_json_path's
/// parser takes time exponential in the nesting of filters.
const MAX_QUERY_NESTING: usize = 6;

/// What a JSONPath query's text says about its cost, read before it is
/// parsed: serde_json_path has no limit of its own, and a few characters of
/// query can ask for a number of node visits exponential in their count.
#[derive(Debug, Default)]
struct QueryScan {
    /// The deepest nesting of `[`.
    nesting: usize,
    /// Descendant segments `..` other than a first segment.
    descendants: i32,
    /// `,` (another selector or argument) and `?` (a filter).
    branches: i32,
    /// `$` after the first: a query from the root inside a filter.
    roots: i32,
    /// The pattern of each `match` or `search`: the function, the quote of
    /// its string literal, and the literal's text as written.
    patterns: Vec<(&'static str, char, String)>,
    /// Whether some `match` or `search` takes its pattern from other than a
    /// string literal.
    computed_pattern: bool,
}

/// A `match` or `search` call being read.
struct RegexCall {
    function: &'static str,
    /// The depth of parentheses and brackets inside its argument list.
    parens: usize,
    brackets: usize,
    /// Whether its second argument (the pattern) has been reached.
    pattern: bool,
}

impl QueryScan {
    /// Reads `path`, skipping string literals (each `'…'` or `"…"`, with
    /// backslash escapes).
    fn of(path: &str) -> QueryScan {
        let mut scan = QueryScan::default();
        let (mut parens, mut brackets) = (0usize, 0usize);
        let mut calls: Vec<RegexCall> = Vec::new();
        let mut expecting: Option<&'static str> = None;
        let mut word = String::new();
        let mut segments_before = false;
        let mut chars = path.char_indices().peekable();
        while let Some((index, c)) = chars.next() {
            if let Some(function) = expecting {
                if c.is_whitespace() {
                    continue;
                }
                expecting = None;
                if c == '\'' || c == '"' {
                    let literal = Self::literal(c, &mut chars);
                    scan.patterns.push((function, c, literal));
                    continue;
                }
                scan.computed_pattern = true;
            }
            if c == '\'' || c == '"' {
                Self::literal(c, &mut chars);
                word.clear();
                segments_before = true;
                continue;
            }
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
                segments_before |= index > 0;
                continue;
            }
            let name = std::mem::take(&mut word);
            match c {
                '(' => {
                    parens += 1;
                    let function = match name.as_str() {
                        "match" => Some("match"),
                        "search" => Some("search"),
                        _ => None,
                    };
                    if let Some(function) = function {
                        calls.push(RegexCall {
                            function,
                            parens,
                            brackets,
                            pattern: false,
                        });
                    }
                }
                ')' => {
                    if calls.last().is_some_and(|call| call.parens == parens) {
                        calls.pop();
                    }
                    parens = parens.saturating_sub(1);
                }
                '[' => {
                    brackets += 1;
                    scan.nesting = scan.nesting.max(brackets);
                }
                ']' => brackets = brackets.saturating_sub(1),
                ',' => {
                    scan.branches += 1;
                    if let Some(call) = calls.last_mut() {
                        if call.parens == parens && call.brackets == brackets && !call.pattern {
                            call.pattern = true;
                            expecting = Some(call.function);
                        }
                    }
                }
                '?' => scan.branches += 1,
                '.' if chars.peek().map(|&(_, next)| next) == Some('.') => {
                    chars.next();
                    if segments_before {
                        scan.descendants += 1;
                    }
                }
                '$' if index > 0 => scan.roots += 1,
                _ => {}
            }
            if index > 0 && !c.is_whitespace() {
                segments_before = true;
            }
        }
        // A call whose pattern never came (the query then fails to parse).
        scan.computed_pattern |= expecting.is_some();
        scan
    }

    /// The text of a string literal opened by `quote`, up to its closing quote.
    fn literal(quote: char, chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> String {
        let mut text = String::new();
        while let Some((_, c)) = chars.next() {
            if c == '\\' {
                text.push(c);
                if let Some((_, next)) = chars.next() {
                    text.push(next);
                }
            } else if c == quote {
                break;
            } else {
                text.push(c);
            }
        }
        text
    }

    /// A generous bound on the node visits of running the query on a value
    /// of shape `shape`, given each regular expression's compile cost (in
    /// node visits) `patterns`. From the value's `nodes`: a descendant
    /// segment after the first multiplies by the value's depth (a node is
    /// reached once from each ancestor); each branch doubles; a `$` inside a
    /// filter multiplies by `nodes` (it runs again for every candidate); and
    /// `match` and `search` compile their pattern again for every candidate.
    fn cost(&self, shape: Shape, patterns: f64) -> f64 {
        let nodes = shape.nodes as f64;
        nodes
            * (shape.depth as f64).powi(self.descendants)
            * 2f64.powi(self.branches)
            * nodes.powi(self.roots)
            * (1.0 + patterns)
    }
}

/// What compiling a `match` or `search` pattern once costs, in node visits,
/// judged by the smallest compiled size it fits (serde_json_path compiles it
/// afresh for every candidate, without a size limit): a pattern too big to
/// fit the largest is refused.
fn pattern_cost(function: &str, quote: char, literal: &str) -> Result<f64, ToolError> {
    // The literal's value, read as the JSON string it is once a single-quoted
    // literal's `\'` and bare `"` are rewritten.
    let mut json = String::from("\"");
    let mut chars = literal.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\'') => json.push('\''),
                Some(next) => {
                    json.push('\\');
                    json.push(next);
                }
                None => json.push('\\'),
            },
            '"' if quote == '\'' => json.push_str("\\\""),
            c => json.push(c),
        }
    }
    json.push('"');
    let Ok(pattern) = serde_json::from_str::<String>(&json) else {
        // Not a valid literal: the query does not parse.
        return Ok(0.0);
    };
    // As serde_json_path builds it.
    let regex = if function == "match" {
        format!("(?R)^({pattern})$")
    } else {
        format!("(?R)({pattern})")
    };
    for (limit, cost) in [(1 << 12, 5e3), (1 << 14, 2e4), (1 << 16, 8e4)] {
        match regex::RegexBuilder::new(&regex).size_limit(limit).build() {
            Err(regex::Error::CompiledTooBig(_)) => continue,
            // An invalid pattern matches nothing, found while parsing it.
            _ => return Ok(cost),
        }
    }
    Err(ToolError::field(
        "path",
        format!("the pattern of `{function}` compiles too big; use a simpler one"),
    ))
}

/// A match's normalized path, RFC 9535 section 2.7 (serde_json_path's own
/// `Display` leaves member names unescaped).
fn normalized_path(path: &NormalizedPath<'_>) -> String {
    let mut out = String::from("$");
    for element in path.iter() {
        match element {
            PathElement::Index(index) => out.push_str(&format!("[{index}]")),
            PathElement::Name(name) => {
                out.push_str("['");
                for c in name.chars() {
                    match c {
                        '\u{8}' => out.push_str("\\b"),
                        '\u{c}' => out.push_str("\\f"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        '\'' => out.push_str("\\'"),
                        '\\' => out.push_str("\\\\"),
                        c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                        c => out.push(c),
                    }
                }
                out.push_str("']");
            }
        }
    }
    out
}

fn jsonpath(input: JsonPathInput) -> Result<JsonPathOutput, ToolError> {
    let shape = shape("json", &input.json)?;
    let scan = QueryScan::of(&input.path);
    if scan.nesting > MAX_QUERY_NESTING {
        return Err(ToolError::field(
            "path",
            format!("brackets nested deeper than {MAX_QUERY_NESTING}"),
        ));
    }
    let path = JsonPath::parse(&input.path).map_err(|error| ToolError::field("path", error))?;
    if scan.computed_pattern {
        return Err(ToolError::field(
            "path",
            "the pattern of `match` and `search` must be a string literal here",
        ));
    }
    let mut patterns = 0.0;
    for (function, quote, literal) in &scan.patterns {
        patterns += pattern_cost(function, *quote, literal)?;
    }
    if scan.cost(shape, patterns) > MAX_QUERY_COST {
        return Err(ToolError::field(
            "path",
            "this query could visit too many nodes of this value: use fewer descendant \
             segments (`..`), unions, filters or regular expressions, or a smaller value",
        ));
    }
    // Count before locating: a located match carries its whole path.
    let count = path.query(&input.json).len();
    if count > MAX_RESULTS {
        return Err(ToolError::field(
            "path",
            format!("{count} matches, more than {MAX_RESULTS}: narrow the query"),
        ));
    }
    let mut values = Vec::with_capacity(count);
    let mut paths = Vec::with_capacity(count);
    let mut bytes = 0;
    for node in path.query_located(&input.json).iter() {
        let value = node.node();
        bytes += serde_json::to_vec(value)
            .map_err(|error| ToolError::field("json", error))?
            .len();
        if bytes > MAX_OUTPUT_BYTES {
            return Err(ToolError::field(
                "path",
                format!("the matches are longer than {MAX_OUTPUT_BYTES} bytes: narrow the query"),
            ));
        }
        values.push(value.clone());
        paths.push(normalized_path(node.location()));
    }
    Ok(JsonPathOutput {
        count,
        values,
        paths,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SchemaInput {
    /// The JSON Schema (its draft from `$schema`, else 2020-12). A `$ref` must
    /// resolve inside the schema (or to a draft's meta-schema): nothing is
    /// fetched. `pattern`s are matched in linear time, so without lookaround.
    pub schema: Value,
    /// The JSON value to validate.
    pub instance: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaError {
    /// JSON Pointer to the failing part of the instance (`""` for the whole).
    pub instance_path: String,
    /// JSON Pointer to the failing keyword in the schema.
    pub schema_path: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaOutput {
    pub valid: bool,
    /// Up to 100 errors.
    pub errors: Vec<SchemaError>,
    /// Whether there were more errors than listed.
    pub truncated: bool,
}

fn json_schema_validate(input: SchemaInput) -> Result<SchemaOutput, ToolError> {
    shape("instance", &input.instance)?;
    shape("schema", &input.schema)?;
    let validator = jsonschema::options()
        // Never fetch a remote or file `$ref` (nor an unknown `$schema`).
        .offline()
        // `pattern`s in linear time, each compiled (and cached) small: a
        // schema may hold thousands.
        .with_pattern_options(
            jsonschema::PatternOptions::regex()
                .size_limit(1 << 17)
                .dfa_size_limit(1 << 16),
        )
        .build(&input.schema)
        .map_err(|error| ToolError::field("schema", error))?;
    let cost = schema_cost(&input.schema, &input.instance)?;
    if cost > MAX_SCHEMA_COST {
        return Err(ToolError::field(
            "schema",
            format!(
                "its references could make validating this instance take some {cost:.0} \
                 subschema evaluations, more than {MAX_SCHEMA_COST:.0}"
            ),
        ));
    }
    let mut errors = Vec::new();
    let mut truncated = false;
    for error in validator.iter_errors(&input.instance) {
        if errors.len() == MAX_SCHEMA_ERRORS {
            truncated = true;
            break;
        }
        errors.push(SchemaError {
            instance_path: error.instance_path().to_string(),
            schema_path: error.schema_path().to_string(),
            message: error.to_string(),
        });
    }
    Ok(SchemaOutput {
        valid: errors.is_empty(),
        errors,
        truncated,
    })
}

/// The most (weighted) subschema evaluations validating may cost, by
/// [`schema_cost`]'s bound.
const MAX_SCHEMA_COST: f64 = 1e6;

/// Where one subschema's keywords lead.
#[derive(Debug, Default)]
struct SchemaNode<'r> {
    /// Applied to the same instance: in-place applicators and references.
    same: Vec<usize>,
    /// `properties`: applied to the member of that name.
    named: Vec<(&'r str, usize)>,
    /// `prefixItems` (or an `items` array): applied to the element at that index.
    indexed: Vec<(usize, usize)>,
    /// Applied to every member or element: `items`, `patternProperties`,
    /// `propertyNames`, `contains`, `additionalItems`, `unevaluated…`.
    every: Vec<usize>,
    /// `additionalProperties`: applied to every member not in `properties`.
    others: Vec<usize>,
    /// The cost of evaluating it once: its keywords.
    weight: f64,
}

/// A schema's subschemas and where each leads, its references resolved as
/// jsonschema resolves them, to bound how many subschema evaluations
/// validating an instance takes: jsonschema evaluates a subschema once for
/// every path of references and applicators that reaches it, without
/// memoizing the error-collecting path, so a small schema whose references
/// share subschemas (an `anyOf` of two `$ref`s to the same subschema,
/// nested a few dozen times), or recurse into an instance along more than
/// one branch, takes time exponential in its size.
#[derive(Default)]
struct SchemaGraph<'r> {
    nodes: Vec<SchemaNode<'r>>,
    /// Each subschema's node, by address.
    ids: HashMap<*const Value, usize>,
}

/// A subschema to read: its node, itself, its resolver and draft.
type Queued<'r, R> = (usize, &'r Value, R, Draft);

impl<'r> SchemaGraph<'r> {
    /// The node of `value`, queued to be read if new. (The resolver is a
    /// type parameter as jsonschema does not export its name.)
    fn node<R: Clone>(
        &mut self,
        queue: &mut Vec<Queued<'r, R>>,
        value: &'r Value,
        resolver: &R,
        draft: Draft,
    ) -> usize {
        let key: *const Value = value;
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.nodes.len();
        self.nodes.push(SchemaNode::default());
        self.ids.insert(key, id);
        queue.push((id, value, resolver.clone(), draft));
        id
    }
}

fn schema_error(error: impl std::fmt::Display) -> ToolError {
    ToolError::field("schema", error)
}

/// A bound on the weighted subschema evaluations of validating `instance`
/// against `schema` (see [`evaluations`]), its references resolved with a
/// registry built as jsonschema builds one, offline. A dynamic reference
/// may take any target, whatever the dynamic scope: the same anchor in each
/// resource seen (for `$recursiveRef`, each resource root with
/// `$recursiveAnchor`).
fn schema_cost(schema: &Value, instance: &Value) -> Result<f64, ToolError> {
    let draft = Draft::default().detect(schema);
    let resource = draft.create_resource_ref(schema);
    let base = resource.id().unwrap_or("json-schema:///");
    let registry = Registry::new()
        .draft(draft)
        .add(base, resource)
        .and_then(|builder| builder.prepare())
        .map_err(schema_error)?;
    let resolver = registry.resolver(jsonschema::uri::from_str(base).map_err(schema_error)?);
    let mut graph = SchemaGraph::default();
    let mut queue = Vec::new();
    let root = graph.node(&mut queue, schema, &resolver, draft);
    // A resolver for each resource seen, by base URI.
    let mut bases = HashMap::new();
    // Each `$dynamicRef`'s node and fragment, and each `$recursiveRef`'s node.
    let mut dynamic: Vec<(usize, String)> = Vec::new();
    let mut looked_up = HashSet::new();
    loop {
        while let Some((id, value, resolver, draft)) = queue.pop() {
            let Value::Object(object) = value else {
                graph.nodes[id].weight = 1.0;
                continue;
            };
            let draft = draft.detect(value);
            let resolver = resolver
                .in_subresource(draft.create_resource_ref(value))
                .map_err(schema_error)?;
            bases
                .entry(resolver.base_uri().as_str().to_string())
                .or_insert_with(|| resolver.clone());
            let mut node = SchemaNode {
                weight: 1.0 + object.len() as f64,
                ..SchemaNode::default()
            };
            for (keyword, sub) in object {
                let mut child = |item| graph.node(&mut queue, item, &resolver, draft);
                match (keyword.as_str(), sub) {
                    ("$ref" | "$dynamicRef" | "$recursiveRef", Value::String(reference)) => {
                        let (contents, target, draft) = resolver
                            .lookup(reference)
                            .map_err(schema_error)?
                            .into_inner();
                        node.same
                            .push(graph.node(&mut queue, contents, &target, draft));
                        if keyword == "$dynamicRef" {
                            // Only an anchor, not a JSON Pointer, is looked up dynamically.
                            match reference.rsplit_once('#') {
                                Some((_, name)) if !name.is_empty() && !name.starts_with('/') => {
                                    dynamic.push((id, format!("#{name}")));
                                }
                                _ => {}
                            }
                        } else if keyword == "$recursiveRef" {
                            dynamic.push((id, "#".to_string()));
                        }
                    }
                    ("allOf" | "anyOf" | "oneOf", Value::Array(items)) => {
                        node.same.extend(items.iter().map(child));
                    }
                    ("not" | "if" | "then" | "else", _) => node.same.push(child(sub)),
                    ("dependentSchemas" | "dependencies", Value::Object(map)) => {
                        let schemas = map.values().filter(|item| !item.is_array());
                        node.same.extend(schemas.map(child));
                    }
                    ("properties", Value::Object(map)) => {
                        for (name, item) in map {
                            node.named.push((name.as_str(), child(item)));
                        }
                    }
                    ("patternProperties", Value::Object(map)) => {
                        node.every.extend(map.values().map(child));
                    }
                    ("additionalProperties", _) => node.others.push(child(sub)),
                    ("items" | "prefixItems", Value::Array(items)) => {
                        node.indexed.extend(items.iter().map(child).enumerate());
                    }
                    (
                        "items"
                        | "additionalItems"
                        | "contains"
                        | "propertyNames"
                        | "unevaluatedItems"
                        | "unevaluatedProperties",
                        _,
                    ) => node.every.push(child(sub)),
                    _ => {}
                }
            }
            graph.nodes[id] = node;
        }
        for (id, fragment) in &dynamic {
            for (uri, base) in &bases {
                if !looked_up.insert((*id, format!("{uri}{fragment}"))) {
                    continue;
                }
                let Ok(resolved) = base.lookup(fragment) else {
                    continue;
                };
                let (contents, target, draft) = resolved.into_inner();
                let recursive_anchor = contents.get("$recursiveAnchor") == Some(&Value::Bool(true));
                if fragment == "#" && !recursive_anchor {
                    continue;
                }
                let next = graph.node(&mut queue, contents, &target, draft);
                if !graph.nodes[*id].same.contains(&next) {
                    graph.nodes[*id].same.push(next);
                }
            }
        }
        if queue.is_empty() {
            break;
        }
    }
    Ok(evaluations(&graph.nodes, root, instance))
}

/// Each node's rank in an order where every edge of `same` goes to a higher
/// rank, but for the edges that close a cycle (jsonschema cuts those: it
/// does not evaluate a subschema again on the instance it is evaluating).
fn ranks(nodes: &[SchemaNode<'_>]) -> Vec<usize> {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; nodes.len()];
    let mut finished = Vec::with_capacity(nodes.len());
    for start in 0..nodes.len() {
        if state[start] != NEW {
            continue;
        }
        state[start] = OPEN;
        let mut stack = vec![(start, 0)];
        while let Some(top) = stack.last_mut() {
            let (node, edge) = *top;
            match nodes[node].same.get(edge) {
                Some(&next) => {
                    top.1 += 1;
                    if state[next] == NEW {
                        state[next] = OPEN;
                        stack.push((next, 0));
                    }
                }
                None => {
                    state[node] = DONE;
                    finished.push(node);
                    stack.pop();
                }
            }
        }
    }
    let mut rank = vec![0; nodes.len()];
    for (order, node) in finished.into_iter().rev().enumerate() {
        rank[node] = order;
    }
    rank
}

/// A bound on the weighted evaluations of `nodes[root]` on `instance`: how
/// many times each subschema may be evaluated on each instance node, summed
/// (by the path counts through the graph, an in-place edge keeping the
/// instance node and a member or element edge going to the children it
/// applies to), each times its weight. Stops once past [`MAX_SCHEMA_COST`].
fn evaluations(nodes: &[SchemaNode<'_>], root: usize, instance: &Value) -> f64 {
    let rank = ranks(nodes);
    let mut total = 0.0;
    let mut pending = vec![(instance, HashMap::from([(root, 1.0)]))];
    while let Some((value, mut counts)) = pending.pop() {
        let mut queue: BinaryHeap<Reverse<(usize, usize)>> = counts
            .keys()
            .map(|&node| Reverse((rank[node], node)))
            .collect();
        let children: Vec<(Option<&str>, &Value)> = match value {
            Value::Object(map) => map
                .iter()
                .map(|(key, item)| (Some(key.as_str()), item))
                .collect(),
            Value::Array(items) => items.iter().map(|item| (None, item)).collect(),
            _ => Vec::new(),
        };
        let mut child_counts: Vec<HashMap<usize, f64>> = vec![HashMap::new(); children.len()];
        while let Some(Reverse((_, id))) = queue.pop() {
            let count = counts.get(&id).copied().unwrap_or(0.0);
            let node = &nodes[id];
            total += count * (node.weight + children.len() as f64);
            if total > MAX_SCHEMA_COST {
                return total;
            }
            for &next in &node.same {
                if rank[next] <= rank[id] {
                    continue;
                }
                let entry = counts.entry(next).or_insert(0.0);
                if *entry == 0.0 {
                    queue.push(Reverse((rank[next], next)));
                }
                *entry += count;
            }
            for (index, ((key, _), child)) in children.iter().zip(&mut child_counts).enumerate() {
                let mut add = |next: usize| *child.entry(next).or_insert(0.0) += count;
                match key {
                    Some(key) => {
                        let mut named = false;
                        for &(name, next) in &node.named {
                            if name == *key {
                                named = true;
                                add(next);
                            }
                        }
                        if !named {
                            node.others.iter().for_each(|&next| add(next));
                        }
                    }
                    None => node
                        .indexed
                        .iter()
                        .filter(|&&(at, _)| at == index)
                        .for_each(|&(_, next)| add(next)),
                }
                node.every.iter().for_each(|&next| add(next));
            }
        }
        for ((_, child), counts) in children.into_iter().zip(child_counts) {
            if !counts.is_empty() {
                pending.push((child, counts));
            }
        }
    }
    total
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JsonValueInput {
    /// The JSON value.
    pub json: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonOutput {
    pub json: Value,
}

fn json_to_yaml(input: JsonValueInput) -> Result<TextOutput, ToolError> {
    shape("json", &input.json)?;
    let text =
        serde_norway::to_string(&input.json).map_err(|error| ToolError::field("json", error))?;
    Ok(TextOutput {
        text: capped("json", text)?,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct YamlInput {
    /// The YAML document.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
}

/// A YAML value as JSON: a key that is a number or boolean becomes its
/// text; a tag is dropped for its value; a float that JSON cannot write
/// (`.nan`, `.inf`) is refused.
fn yaml_json(value: serde_norway::Value) -> Result<Value, ToolError> {
    use serde_norway::Value as Yaml;
    Ok(match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => {
            if let Some(integer) = number.as_i64() {
                Value::from(integer)
            } else if let Some(integer) = number.as_u64() {
                Value::from(integer)
            } else {
                let float = number.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(float)
                    .map(Value::Number)
                    .ok_or_else(|| ToolError::field("text", format!("{number} has no JSON form")))?
            }
        }
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => {
            Value::Array(items.into_iter().map(yaml_json).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, item) in mapping {
                let key = match key {
                    Yaml::String(text) => text,
                    Yaml::Number(number) => number.to_string(),
                    Yaml::Bool(flag) => flag.to_string(),
                    Yaml::Null => "null".to_string(),
                    _ => {
                        return Err(ToolError::field(
                            "text",
                            "a JSON object's keys are strings: this mapping has a sequence, \
                             mapping or tagged key",
                        ))
                    }
                };
                object.insert(key, yaml_json(item)?);
            }
            Value::Object(object)
        }
        Yaml::Tagged(tagged) => yaml_json(tagged.value)?,
    })
}

fn yaml_to_json(input: YamlInput) -> Result<JsonOutput, ToolError> {
    // serde_norway caps nesting at 128 and refuses alias expansion that
    // would blow up ("billion laughs").
    let yaml: serde_norway::Value =
        serde_norway::from_str(&input.text).map_err(|error| ToolError::field("text", error))?;
    let json = yaml_json(yaml)?;
    shape("text", &json)?;
    Ok(JsonOutput { json })
}

fn json_to_toml(input: JsonValueInput) -> Result<TextOutput, ToolError> {
    shape("json", &input.json)?;
    if !input.json.is_object() {
        return Err(ToolError::field(
            "json",
            "a TOML document is a table: give a JSON object",
        ));
    }
    // TOML has no null: name the first one.
    let mut stack = vec![("json".to_string(), &input.json)];
    while let Some((path, value)) = stack.pop() {
        match value {
            Value::Null => return Err(ToolError::field(path, "TOML has no null")),
            Value::Array(items) => stack.extend(
                items
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(index, item)| (format!("{path}/{index}"), item)),
            ),
            Value::Object(map) => stack.extend(
                map.iter()
                    .rev()
                    .map(|(key, item)| (format!("{path}/{key}"), item)),
            ),
            _ => {}
        }
    }
    let mut buffer = toml::ser::Buffer::new();
    let serializer = toml::ser::Serializer::new(&mut buffer);
    serde_path_to_error::serialize(&input.json, serializer).map_err(|error| {
        let field = field_path("json", error.path());
        ToolError::field(field, error.into_inner())
    })?;
    Ok(TextOutput {
        text: capped("json", buffer.to_string())?,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TomlInput {
    /// The TOML document.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
}

/// A TOML value as JSON: a date or time becomes its TOML text; a float that
/// JSON cannot write (`nan`, `inf`) is refused. Nesting is capped.
fn toml_json(value: toml::Value, depth: usize) -> Result<Value, ToolError> {
    if depth > MAX_DEPTH {
        return Err(ToolError::field(
            "text",
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(match value {
        toml::Value::String(text) => Value::String(text),
        toml::Value::Integer(number) => Value::from(number),
        toml::Value::Float(number) => serde_json::Number::from_f64(number)
            .map(Value::Number)
            .ok_or_else(|| ToolError::field("text", format!("{number} has no JSON form")))?,
        toml::Value::Boolean(flag) => Value::Bool(flag),
        toml::Value::Datetime(datetime) => Value::String(datetime.to_string()),
        toml::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| toml_json(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(key, item)| Ok((key, toml_json(item, depth + 1)?)))
                .collect::<Result<Map<_, _>, ToolError>>()?,
        ),
    })
}

fn toml_to_json(input: TomlInput) -> Result<JsonOutput, ToolError> {
    let table: toml::Table =
        toml::from_str(&input.text).map_err(|error| ToolError::field("text", error))?;
    Ok(JsonOutput {
        json: toml_json(toml::Value::Table(table), 1)?,
    })
}

/// A CSV delimiter: one ASCII character, not a quote or line break.
fn delimiter(text: Option<&str>) -> Result<u8, ToolError> {
    match text.unwrap_or(",").as_bytes() {
        [byte] if byte.is_ascii() && !matches!(byte, b'"' | b'\n' | b'\r') => Ok(*byte),
        _ => Err(ToolError::field(
            "delimiter",
            "one ASCII character, not a quote or line break",
        )),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CsvInput {
    /// The CSV text (RFC 4180; quoted fields may hold delimiters and line breaks).
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// The field delimiter, one ASCII character (default `,`; `\t` for TSV).
    #[schemars(length(min = 1, max = 1))]
    pub delimiter: Option<String>,
    /// Whether the first row names the columns (default true): then each row
    /// is an object, else an array.
    pub header: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CsvOutput {
    /// The column names, in order (empty without a header row).
    pub columns: Vec<String>,
    /// The rows, as objects keyed by column name (or arrays of cells).
    pub rows: Vec<Value>,
}

fn csv_to_json(input: CsvInput) -> Result<CsvOutput, ToolError> {
    let header = input.header.unwrap_or(true);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter(input.delimiter.as_deref())?)
        .has_headers(header)
        .from_reader(input.text.as_bytes());
    let mut columns = Vec::new();
    if header {
        let names = reader
            .headers()
            .map_err(|error| ToolError::field("text", error))?;
        for name in names {
            if columns.iter().any(|seen| seen == name) {
                return Err(ToolError::field(
                    "text",
                    format!("the header names column `{name}` twice"),
                ));
            }
            columns.push(name.to_string());
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| ToolError::field("text", error))?;
        if rows.len() == MAX_RESULTS {
            return Err(ToolError::field(
                "text",
                format!("more than {MAX_RESULTS} rows"),
            ));
        }
        let cells = record.iter().map(|cell| Value::String(cell.to_string()));
        rows.push(if header {
            Value::Object(columns.iter().cloned().zip(cells).collect())
        } else {
            Value::Array(cells.collect())
        });
    }
    Ok(CsvOutput { columns, rows })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JsonCsvInput {
    /// An array of flat objects: each value a string, number, boolean or null.
    pub json: Value,
    /// The field delimiter, one ASCII character (default `,`).
    #[schemars(length(min = 1, max = 1))]
    pub delimiter: Option<String>,
}

fn json_to_csv(input: JsonCsvInput) -> Result<TextOutput, ToolError> {
    shape("json", &input.json)?;
    let delimiter = delimiter(input.delimiter.as_deref())?;
    let Value::Array(items) = &input.json else {
        return Err(ToolError::field("json", "an array of objects"));
    };
    let mut rows = Vec::with_capacity(items.len());
    let mut columns: Vec<&str> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Object(row) = item else {
            return Err(ToolError::field(format!("json/{index}"), "an object"));
        };
        for (key, value) in row {
            if value.is_array() || value.is_object() {
                return Err(ToolError::field(
                    format!("json/{index}/{key}"),
                    "a CSV cell holds a string, number, boolean or null",
                ));
            }
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
        rows.push(row);
    }
    if columns.is_empty() {
        return Ok(TextOutput {
            text: String::new(),
        });
    }
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(Vec::new());
    let csv_error = |error: csv::Error| ToolError::field("json", error);
    writer.write_record(&columns).map_err(csv_error)?;
    for row in rows {
        let cells = columns.iter().map(|column| match row.get(*column) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        });
        writer.write_record(cells).map_err(csv_error)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|error| ToolError::field("json", error.error()))?;
    let text = String::from_utf8(bytes).map_err(|error| ToolError::field("json", error))?;
    Ok(TextOutput {
        text: capped("json", text)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::find;
    use crate::testing::{refused, run};
    use serde_json::{json, Value};

    #[test]
    fn json_validate_answers_validity_with_position() {
        // RFC 8259 section 13's examples are valid JSON texts.
        let image = r#"{
            "Image": {
                "Width":  800, "Height": 600, "Title":  "View from 15th Floor",
                "Thumbnail": { "Url": "http://www.example.com/image/481989943", "Height": 125, "Width":  100 },
                "Animated" : false, "IDs": [116, 943, 234, 38793]
            }
        }"#;
        assert_eq!(
            run("json-validate", json!({ "text": image })),
            json!({ "valid": true })
        );
        for text in ["\"Hello world!\"", "42", "true", "[]"] {
            assert_eq!(run("json-validate", json!({ "text": text }))["valid"], true);
        }
        let bad = run("json-validate", json!({ "text": "{\n  \"a\": 1,\n}" }));
        assert_eq!(bad["valid"], false);
        assert_eq!(bad["error"]["line"], 3);
        assert_eq!(bad["error"]["column"], 1);
        assert_eq!(bad["error"]["message"], "trailing comma at line 3 column 1");
        for text in ["", "[1, 2, ]", "NaN", "{'a': 1}", "[1] [2]"] {
            assert_eq!(
                run("json-validate", json!({ "text": text }))["valid"],
                false,
                "{text}"
            );
        }
        // Deeper than serde_json's nesting limit is reported, not a crash.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let deep = run("json-validate", json!({ "text": deep }));
        assert_eq!(deep["valid"], false);
        assert_eq!(refused("json-validate", json!({ "text": 1 })), "text");
    }

    #[test]
    fn json_format_and_minify_keep_key_order() {
        let text = r#"{"b":1,"a":[true,null],"c":{},"d":"x y"}"#;
        assert_eq!(
            run("json-format", json!({ "text": text }))["text"],
            "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    null\n  ],\n  \"c\": {},\n  \"d\": \"x y\"\n}"
        );
        assert_eq!(
            run(
                "json-format",
                json!({ "text": "[1,{\"z\":0.5}]", "indent": 4 })
            )["text"],
            "[\n    1,\n    {\n        \"z\": 0.5\n    }\n]"
        );
        assert_eq!(
            run("json-format", json!({ "text": "[1,2]", "indent": 0 }))["text"],
            "[\n1,\n2\n]"
        );
        let pretty = run("json-format", json!({ "text": text }))["text"].clone();
        assert_eq!(run("json-minify", json!({ "text": pretty }))["text"], text);
        assert_eq!(
            run(
                "json-minify",
                json!({ "text": " { \"a b\" : \" c \" , \"n\": -1.5e3 } " })
            )["text"],
            r#"{"a b":" c ","n":-1500.0}"#
        );
        assert_eq!(refused("json-format", json!({ "text": "{" })), "text");
        assert_eq!(
            refused("json-format", json!({ "text": "[]", "indent": 9 })),
            "indent"
        );
        // A key given twice is refused, not silently dropped.
        assert_eq!(
            refused("json-minify", json!({ "text": r#"{"a":1,"a":2}"# })),
            "text"
        );
        assert_eq!(refused("json-minify", json!({ "text": "[1,]" })), "text");
    }

    #[test]
    fn json_pointer_matches_rfc_6901_section_5() {
        let document = json!({
            "foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3,
            "g|h": 4, "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8
        });
        let cases = [
            ("", document.clone()),
            ("/foo", json!(["bar", "baz"])),
            ("/foo/0", json!("bar")),
            ("/", json!(0)),
            ("/a~1b", json!(1)),
            ("/c%d", json!(2)),
            ("/e^f", json!(3)),
            ("/g|h", json!(4)),
            ("/i\\j", json!(5)),
            ("/k\"l", json!(6)),
            ("/ ", json!(7)),
            ("/m~0n", json!(8)),
        ];
        for (pointer, value) in cases {
            let found = run(
                "json-pointer",
                json!({ "json": document, "pointer": pointer }),
            );
            assert_eq!(found, json!({ "found": true, "value": value }), "{pointer}");
        }
        // The same, as URI fragment identifiers.
        let fragments = [
            ("#", document.clone()),
            ("#/foo", json!(["bar", "baz"])),
            ("#/foo/0", json!("bar")),
            ("#/", json!(0)),
            ("#/a~1b", json!(1)),
            ("#/c%25d", json!(2)),
            ("#/e%5Ef", json!(3)),
            ("#/g%7Ch", json!(4)),
            ("#/i%5Cj", json!(5)),
            ("#/k%22l", json!(6)),
            ("#/%20", json!(7)),
            ("#/m~0n", json!(8)),
        ];
        for (pointer, value) in fragments {
            let found = run(
                "json-pointer",
                json!({ "json": document, "pointer": pointer }),
            );
            assert_eq!(found, json!({ "found": true, "value": value }), "{pointer}");
        }
        for missing in ["/nope", "/foo/2", "/foo/-", "/foo/01", "/foo/0/x"] {
            let found = run(
                "json-pointer",
                json!({ "json": document, "pointer": missing }),
            );
            assert_eq!(found, json!({ "found": false, "value": null }), "{missing}");
        }
        for bad in ["foo", "/~2", "/a~", "#/%FF"] {
            let input = json!({ "json": document, "pointer": bad });
            assert_eq!(refused("json-pointer", input), "pointer", "{bad}");
        }
    }

    /// RFC 9535 section 1.5, Figure 1.
    fn bookstore() -> Value {
        json!({ "store": {
            "book": [
                { "category": "reference", "author": "Nigel Rees",
                  "title": "Sayings of the Century", "price": 8.95 },
                { "category": "fiction", "author": "Evelyn Waugh",
                  "title": "Sword of Honour", "price": 12.99 },
                { "category": "fiction", "author": "Herman Melville",
                  "title": "Moby Dick", "isbn": "0-553-21311-3", "price": 8.99 },
                { "category": "fiction", "author": "J. R. R. Tolkien",
                  "title": "The Lord of the Rings", "isbn": "0-395-19395-8", "price": 22.99 }
            ],
            "bicycle": { "color": "red", "price": 399 }
        }})
    }

    fn query(json: &Value, path: &str) -> Value {
        run("jsonpath", json!({ "json": json, "path": path }))
    }

    #[test]
    fn jsonpath_matches_rfc_9535_table_2() {
        let store = bookstore();
        let books = store["store"]["book"].clone();
        let authors = json!([
            "Nigel Rees",
            "Evelyn Waugh",
            "Herman Melville",
            "J. R. R. Tolkien"
        ]);
        assert_eq!(query(&store, "$.store.book[*].author")["values"], authors);
        assert_eq!(query(&store, "$..author")["values"], authors);
        // Object members come in name order here (RFC 9535 leaves it open).
        assert_eq!(
            query(&store, "$.store.*")["values"],
            json!([store["store"]["bicycle"], books])
        );
        assert_eq!(
            query(&store, "$.store..price")["values"],
            json!([399, 8.95, 12.99, 8.99, 22.99])
        );
        assert_eq!(query(&store, "$..book[2]")["values"], json!([books[2]]));
        let melville = query(&store, "$..book[2].author");
        assert_eq!(
            melville,
            json!({
                "count": 1, "values": ["Herman Melville"],
                "paths": ["$['store']['book'][2]['author']"]
            })
        );
        assert_eq!(query(&store, "$..book[2].publisher")["count"], 0);
        assert_eq!(query(&store, "$..book[-1]")["values"], json!([books[3]]));
        let first_two = json!([books[0], books[1]]);
        assert_eq!(query(&store, "$..book[0,1]")["values"], first_two);
        assert_eq!(query(&store, "$..book[:2]")["values"], first_two);
        assert_eq!(
            query(&store, "$..book[?@.isbn]")["values"],
            json!([books[2], books[3]])
        );
        assert_eq!(
            query(&store, "$..book[?@.price<10]")["values"],
            json!([books[0], books[2]])
        );
        assert_eq!(query(&store, "$..*")["count"], 27);
    }

    #[test]
    fn jsonpath_matches_rfc_9535_selector_examples() {
        // Section 2.3.1.3, name selectors.
        let names = json!({ "o": { "j j": { "k.k": 3 } }, "'": { "@": 2 } });
        assert_eq!(
            query(&names, "$.o['j j']"),
            json!({ "count": 1, "values": [{ "k.k": 3 }], "paths": ["$['o']['j j']"] })
        );
        assert_eq!(query(&names, "$.o[\"j j\"][\"k.k\"]")["values"], json!([3]));
        assert_eq!(
            query(&names, "$[\"'\"][\"@\"]"),
            json!({ "count": 1, "values": [2], "paths": ["$['\\'']['@']"] })
        );
        // Section 2.7: names in normalized paths escape `'`, `\` and controls.
        let escapes = json!({ "a\\b\u{1}\n": 1 });
        assert_eq!(
            query(&escapes, "$.*")["paths"],
            json!(["$['a\\\\b\\u0001\\n']"])
        );
        // Section 2.3.5.3, filter selectors.
        let filters = json!({
            "a": [3, 5, 1, 2, 4, 6, { "b": "j" }, { "b": "k" }, { "b": {} }, { "b": "kilo" }],
            "o": { "p": 1, "q": 2, "r": 3, "s": 5, "t": { "u": 6 } },
            "e": "f"
        });
        let kilo = query(&filters, "$.a[?@.b == 'kilo']");
        assert_eq!(kilo["values"], json!([{ "b": "kilo" }]));
        assert_eq!(kilo["paths"], json!(["$['a'][9]"]));
        assert_eq!(
            query(&filters, "$.a[?(@.b == 'kilo')]")["values"],
            kilo["values"]
        );
        assert_eq!(query(&filters, "$.a[?@>3.5]")["values"], json!([5, 4, 6]));
        assert_eq!(query(&filters, "$.a[?@.b]")["count"], 4);
        assert_eq!(
            query(&filters, "$[?@.*]")["values"],
            json!([filters["a"], filters["o"]])
        );
        assert_eq!(
            query(&filters, "$.a[?match(@.b, \"[jk]\")]")["values"],
            json!([{ "b": "j" }, { "b": "k" }])
        );
        assert_eq!(
            query(&filters, "$.a[?search(@.b, '[jk]')]")["values"],
            json!([{ "b": "j" }, { "b": "k" }, { "b": "kilo" }])
        );
        assert_eq!(query(&filters, "$.o[?@>1 && @<4]")["values"], json!([2, 3]));
        assert_eq!(
            query(&filters, "$.a[?@.b == $.x]")["values"],
            json!([3, 5, 1, 2, 4, 6])
        );
        assert_eq!(query(&filters, "$.a[?@ == @]")["count"], 10);
    }

    #[test]
    fn jsonpath_refuses_what_it_cannot_bound() {
        let store = bookstore();
        let input = |json: &Value, path: &str| json!({ "json": json, "path": path });
        assert_eq!(refused("jsonpath", input(&store, "$[")), "path");
        assert_eq!(refused("jsonpath", input(&store, "store.book")), "path");
        // serde_json_path parses nested filters in exponential time.
        let nested = format!("$[?{}@.a{}]", "@[?".repeat(30), "]".repeat(30));
        assert_eq!(refused("jsonpath", input(&store, &nested)), "path");
        // A pattern is compiled for every candidate: a literal, and small.
        let computed = "$..book[?match(@.title, @.author)]";
        assert_eq!(refused("jsonpath", input(&store, computed)), "path");
        let big = "$..book[?match(@.title, '(\\\\w{50}){50}')]";
        assert_eq!(refused("jsonpath", input(&store, big)), "path");
        // A root query inside a filter runs for every candidate.
        let flat = json!(vec![0; 10_000]);
        assert_eq!(refused("jsonpath", input(&flat, "$[?$[*]]")), "path");
        assert_eq!(refused("jsonpath", input(&flat, "$[*,*]")), "path");
        // Matches that are too many, or too long.
        let mut deep = json!(vec!["x".repeat(100); 200]);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        assert_eq!(refused("jsonpath", input(&deep, "$..*")), "path");
        assert_eq!(
            refused("jsonpath", json!({ "json": store, "path": 1 })),
            "path"
        );
    }

    /// The product schema of json-schema.org's "Creating your first schema".
    fn product_schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://example.com/product.schema.json",
            "title": "Product",
            "description": "A product from Acme's catalog",
            "type": "object",
            "properties": {
                "productId": { "description": "The unique identifier for a product", "type": "integer" },
                "productName": { "description": "Name of the product", "type": "string" },
                "price": { "description": "The price of the product", "type": "number", "exclusiveMinimum": 0 },
                "tags": {
                    "description": "Tags for the product", "type": "array",
                    "items": { "type": "string" }, "minItems": 1, "uniqueItems": true
                }
            },
            "required": ["productId", "productName", "price"]
        })
    }

    fn instance_paths(output: &Value) -> Vec<&str> {
        let mut paths: Vec<&str> = output["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| error["instancePath"].as_str().unwrap())
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn json_schema_validate_follows_the_spec_examples() {
        let validate = |schema: Value, instance: Value| {
            run(
                "json-schema-validate",
                json!({ "schema": schema, "instance": instance }),
            )
        };
        let good = json!({ "productId": 1, "productName": "A green door", "price": 12.50, "tags": ["home", "green"] });
        assert_eq!(
            validate(product_schema(), good),
            json!({ "valid": true, "errors": [], "truncated": false })
        );
        let bad = json!({ "productId": "1", "price": 0, "tags": ["a", "a"] });
        let output = validate(product_schema(), bad);
        assert_eq!(output["valid"], false);
        assert_eq!(
            instance_paths(&output),
            ["", "/price", "/productId", "/tags"]
        );
        let price = output["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|error| error["instancePath"] == "/price")
            .unwrap();
        assert_eq!(price["schemaPath"], "/properties/price/exclusiveMinimum");
        // JSON-Schema-Test-Suite, draft4/exclusiveMaximum.json: the draft
        // comes from `$schema`, where `exclusiveMaximum` is a boolean...
        let draft4 = json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "maximum": 3.0, "exclusiveMaximum": true
        });
        assert_eq!(validate(draft4.clone(), json!(2.2))["valid"], true);
        assert_eq!(validate(draft4, json!(3.0))["valid"], false);
        // ...which 2020-12, the default, refuses.
        let default =
            json!({ "schema": { "maximum": 3.0, "exclusiveMaximum": true }, "instance": 1 });
        assert_eq!(refused("json-schema-validate", default), "schema");
        // draft2020-12/ref.json: a recursive reference, and $defs.
        let tree = json!({
            "$defs": { "node": {
                "type": "object",
                "properties": { "value": { "type": "number" }, "children": { "type": "array", "items": { "$ref": "#/$defs/node" } } }
            }},
            "$ref": "#/$defs/node"
        });
        let instance = json!({ "value": 1, "children": [{ "value": 2, "children": [] }, { "value": "three" }] });
        let output = validate(tree, instance);
        assert_eq!(instance_paths(&output), ["/children/1/value"]);
        // Understanding JSON Schema, "Regular Expressions": a phone number.
        let phone = json!({ "type": "string", "pattern": "^(\\([0-9]{3}\\))?[0-9]{3}-[0-9]{4}$" });
        assert_eq!(validate(phone.clone(), json!("555-1212"))["valid"], true);
        assert_eq!(
            validate(phone.clone(), json!("(888)555-1212"))["valid"],
            true
        );
        assert_eq!(
            validate(phone.clone(), json!("(888)555-1212 ext. 532"))["valid"],
            false
        );
        assert_eq!(validate(phone, json!("(800)FLOWERS"))["valid"], false);
        // Errors past 100 are counted out.
        let many = validate(
            json!({ "items": { "type": "string" } }),
            json!(vec![1; 150]),
        );
        assert_eq!(many["errors"].as_array().unwrap().len(), 100);
        assert_eq!(many["truncated"], true);
    }

    #[test]
    fn json_schema_validate_fetches_nothing_and_bounds_its_work() {
        for reference in [
            "https://example.com/schema.json",
            "http://example.com/s#/a",
            "file:///etc/passwd",
        ] {
            let input = json!({ "schema": { "$ref": reference }, "instance": 1 });
            assert_eq!(
                refused("json-schema-validate", input),
                "schema",
                "{reference}"
            );
        }
        let unknown = json!({ "schema": { "$schema": "https://example.com/meta", "type": "string" }, "instance": 1 });
        assert_eq!(refused("json-schema-validate", unknown), "schema");
        // The meta-schemas it knows resolve offline.
        let meta = json!({
            "schema": { "$ref": "https://json-schema.org/draft/2020-12/schema" },
            "instance": { "type": 12 }
        });
        let output = run("json-schema-validate", meta);
        assert_eq!(instance_paths(&output), ["/type"]);
        // A `pattern` is compiled for linear-time matching: no lookaround.
        let lookaround = json!({ "schema": { "pattern": "(?=a)b" }, "instance": "b" });
        assert_eq!(refused("json-schema-validate", lookaround), "schema");
        // Forty `anyOf`s of two references to the next: 2^40 evaluations.
        let mut defs = serde_json::Map::new();
        for k in 0..40 {
            let next = format!("#/$defs/d{}", k + 1);
            defs.insert(
                format!("d{k}"),
                json!({ "anyOf": [{ "$ref": next }, { "$ref": next }] }),
            );
        }
        defs.insert("d40".into(), json!(false));
        let dag = json!({ "schema": { "$defs": defs, "$ref": "#/$defs/d0" }, "instance": 1 });
        assert_eq!(refused("json-schema-validate", dag), "schema");
        // A recursion down two branches at once, on a deep instance.
        let mut nested = json!("x");
        for _ in 0..40 {
            nested = json!([nested]);
        }
        let branch = json!({ "type": "array", "items": { "$ref": "#" } });
        let twice = json!({ "anyOf": [branch, branch, { "type": "integer" }] });
        let input = json!({ "schema": twice, "instance": nested });
        assert_eq!(refused("json-schema-validate", input), "schema");
        // A recursion down one branch per member is fine however deep.
        let mut tree = json!(1);
        for _ in 0..100 {
            tree = json!({ "left": tree, "right": 2 });
        }
        let binary = json!({
            "type": ["object", "integer"],
            "properties": { "left": { "$ref": "#" }, "right": { "$ref": "#" } }
        });
        let output = run(
            "json-schema-validate",
            json!({ "schema": binary, "instance": tree }),
        );
        assert_eq!(output["valid"], true);
        let missing = json!({ "instance": 1 });
        assert_eq!(
            find("json-schema-validate")
                .unwrap()
                .run(missing)
                .unwrap_err()
                .field,
            None
        );
    }

    #[test]
    fn yaml_converts_both_ways() {
        let document = json!({ "name": "tessera", "ports": [80, 443], "tls": true, "none": null, "ratio": 0.5 });
        let yaml = run("json-to-yaml", json!({ "json": document }))["text"].clone();
        assert_eq!(
            yaml,
            "name: tessera\nnone: null\nports:\n- 80\n- 443\nratio: 0.5\ntls: true\n"
        );
        assert_eq!(
            run("yaml-to-json", json!({ "text": yaml }))["json"],
            document
        );
        // YAML 1.2, examples 2.1, 2.2 and 2.10.
        let scalars = "- Mark McGwire\n- Sammy Sosa\n- Ken Griffey\n";
        assert_eq!(
            run("yaml-to-json", json!({ "text": scalars }))["json"],
            json!(["Mark McGwire", "Sammy Sosa", "Ken Griffey"])
        );
        let mapping =
            "hr:  65    # Home runs\navg: 0.278 # Batting average\nrbi: 147   # Runs Batted In\n";
        assert_eq!(
            run("yaml-to-json", json!({ "text": mapping }))["json"],
            json!({ "hr": 65, "avg": 0.278, "rbi": 147 })
        );
        let anchors = "---\nhr:\n  - Mark McGwire\n  # Following node labeled SS\n  - &SS Sammy Sosa\nrbi:\n  - *SS # Subsequent occurrence\n  - Ken Griffey\n";
        assert_eq!(
            run("yaml-to-json", json!({ "text": anchors }))["json"],
            json!({ "hr": ["Mark McGwire", "Sammy Sosa"], "rbi": ["Sammy Sosa", "Ken Griffey"] })
        );
        assert_eq!(
            run("yaml-to-json", json!({ "text": "1: one\ntrue: yes\n" }))["json"],
            json!({ "1": "one", "true": "yes" })
        );
        assert_eq!(
            refused("yaml-to-json", json!({ "text": "a: [1, 2" })),
            "text"
        );
        assert_eq!(
            refused("yaml-to-json", json!({ "text": "a: .nan" })),
            "text"
        );
        assert_eq!(
            refused("yaml-to-json", json!({ "text": "a: 1\n---\nb: 2\n" })),
            "text"
        );
        assert_eq!(
            refused("yaml-to-json", json!({ "text": "? [1]\n: x\n" })),
            "text"
        );
        // "Billion laughs": aliases expanding past serde_norway's limit.
        let mut laughs = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        for (name, previous) in ["b", "c", "d", "e", "f", "g"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f"])
        {
            let alias = format!("*{previous},").repeat(9);
            laughs.push_str(&format!(
                "{name}: &{name} [{}]\n",
                alias.trim_end_matches(',')
            ));
        }
        assert_eq!(refused("yaml-to-json", json!({ "text": laughs })), "text");
        let deep = "[".repeat(1000);
        assert_eq!(refused("yaml-to-json", json!({ "text": deep })), "text");
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!([deep]);
        }
        assert_eq!(refused("json-to-yaml", json!({ "json": deep })), "json");
    }

    #[test]
    // toml.io's example has `3.14` as data, not as an approximation of pi.
    #[allow(clippy::approx_constant)]
    fn toml_converts_both_ways() {
        // The example document of toml.io.
        let example = r#"# This is a TOML document

title = "TOML Example"

[owner]
name = "Tom Preston-Werner"
dob = 1979-05-27T07:32:00-08:00

[database]
enabled = true
ports = [ 8000, 8001, 8002 ]
data = [ ["delta", "phi"], [3.14] ]
temp_targets = { cpu = 79.5, case = 72.0 }

[servers]

[servers.alpha]
ip = "10.0.0.1"
role = "frontend"

[servers.beta]
ip = "10.0.0.2"
role = "backend"
"#;
        let json = run("toml-to-json", json!({ "text": example }))["json"].clone();
        assert_eq!(
            json,
            json!({
                "title": "TOML Example",
                "owner": { "name": "Tom Preston-Werner", "dob": "1979-05-27T07:32:00-08:00" },
                "database": {
                    "enabled": true, "ports": [8000, 8001, 8002],
                    "data": [["delta", "phi"], [3.14]],
                    "temp_targets": { "cpu": 79.5, "case": 72.0 }
                },
                "servers": {
                    "alpha": { "ip": "10.0.0.1", "role": "frontend" },
                    "beta": { "ip": "10.0.0.2", "role": "backend" }
                }
            })
        );
        let small =
            json!({ "title": "example", "owner": { "name": "Tom" }, "ports": [8000, 8001] });
        let toml = run("json-to-toml", json!({ "json": small }))["text"].clone();
        assert_eq!(
            toml,
            "ports = [8000, 8001]\ntitle = \"example\"\n\n[owner]\nname = \"Tom\"\n"
        );
        assert_eq!(run("toml-to-json", json!({ "text": toml }))["json"], small);
        // Round trip of the whole example (its date is now a string).
        let again = run("json-to-toml", json!({ "json": json }))["text"].clone();
        assert_eq!(run("toml-to-json", json!({ "text": again }))["json"], json);
        assert_eq!(refused("json-to-toml", json!({ "json": [1, 2] })), "json");
        assert_eq!(refused("json-to-toml", json!({ "json": null })), "json");
        assert_eq!(
            refused(
                "json-to-toml",
                json!({ "json": { "owner": { "name": null } } })
            ),
            "json/owner/name"
        );
        assert_eq!(refused("toml-to-json", json!({ "text": "a = " })), "text");
        assert_eq!(
            refused("toml-to-json", json!({ "text": "a = nan" })),
            "text"
        );
        assert_eq!(
            refused("toml-to-json", json!({ "text": "a = 1\na = 2" })),
            "text"
        );
        let deep = format!("a = {}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(refused("toml-to-json", json!({ "text": deep })), "text");
    }

    #[test]
    fn csv_reads_rfc_4180() {
        // RFC 4180 section 2: records, quoting, escaped quotes, line breaks.
        let plain = "aaa,bbb,ccc\r\nzzz,yyy,xxx\r\n";
        assert_eq!(
            run("csv-to-json", json!({ "text": plain, "header": false })),
            json!({ "columns": [], "rows": [["aaa", "bbb", "ccc"], ["zzz", "yyy", "xxx"]] })
        );
        let quoted = "\"aaa\",\"b\r\nbb\",\"ccc\"\r\nzzz,yyy,xxx";
        assert_eq!(
            run("csv-to-json", json!({ "text": quoted, "header": false }))["rows"],
            json!([["aaa", "b\r\nbb", "ccc"], ["zzz", "yyy", "xxx"]])
        );
        let escaped = "\"aaa\",\"b\"\"bb\",\"ccc\"";
        assert_eq!(
            run("csv-to-json", json!({ "text": escaped, "header": false }))["rows"],
            json!([["aaa", "b\"bb", "ccc"]])
        );
        let headed = "name,age\nAda,36\nAlan,41\n";
        assert_eq!(
            run("csv-to-json", json!({ "text": headed })),
            json!({
                "columns": ["name", "age"],
                "rows": [{ "name": "Ada", "age": "36" }, { "name": "Alan", "age": "41" }]
            })
        );
        let tabs = "a\tb\n1\t2\n";
        assert_eq!(
            run("csv-to-json", json!({ "text": tabs, "delimiter": "\t" }))["rows"],
            json!([{ "a": "1", "b": "2" }])
        );
        assert_eq!(
            refused("csv-to-json", json!({ "text": "a,b\n1,2,3\n" })),
            "text"
        );
        assert_eq!(
            refused("csv-to-json", json!({ "text": "a,a\n1,2\n" })),
            "text"
        );
        assert_eq!(
            refused("csv-to-json", json!({ "text": "a", "delimiter": ";;" })),
            "delimiter"
        );
        assert_eq!(
            refused("csv-to-json", json!({ "text": "a", "delimiter": "é" })),
            "delimiter"
        );
        assert_eq!(
            refused("csv-to-json", json!({ "text": "a", "delimiter": "\"" })),
            "delimiter"
        );
        let rows = "1\n".repeat(10_001);
        assert_eq!(
            refused("csv-to-json", json!({ "text": rows, "header": false })),
            "text"
        );
        let rows = "1\n".repeat(10_000);
        let output = run("csv-to-json", json!({ "text": rows, "header": false }));
        assert_eq!(output["rows"].as_array().unwrap().len(), 10_000);
    }

    #[test]
    fn csv_writes_the_union_of_keys() {
        let rows = json!([
            { "name": "Ada", "age": 36 },
            { "name": "Alan", "city": "London, UK", "member": true },
            { "note": "said \"hi\"", "age": null }
        ]);
        // Keys within an object come in name order (the input is parsed JSON).
        assert_eq!(
            run("json-to-csv", json!({ "json": rows })),
            json!({ "text": "age,name,city,member,note\n36,Ada,,,\n,Alan,\"London, UK\",true,\n,,,,\"said \"\"hi\"\"\"\n" })
        );
        assert_eq!(
            run(
                "json-to-csv",
                json!({ "json": [{ "a": 1, "b": 2.5 }], "delimiter": ";" })
            )["text"],
            "a;b\n1;2.5\n"
        );
        assert_eq!(run("json-to-csv", json!({ "json": [] }))["text"], "");
        // What it writes, csv-to-json reads back.
        let text = run("json-to-csv", json!({ "json": rows }))["text"].clone();
        let back = run("csv-to-json", json!({ "text": text }));
        assert_eq!(back["rows"][1]["city"], "London, UK");
        assert_eq!(back["rows"][2]["note"], "said \"hi\"");
        assert_eq!(
            refused("json-to-csv", json!({ "json": { "a": 1 } })),
            "json"
        );
        assert_eq!(
            refused("json-to-csv", json!({ "json": [{ "a": 1 }, 2] })),
            "json/1"
        );
        assert_eq!(
            refused("json-to-csv", json!({ "json": [{ "a": [1] }] })),
            "json/0/a"
        );
        assert_eq!(
            refused("json-to-csv", json!({ "json": [], "delimiter": "\n" })),
            "delimiter"
        );
    }
}
