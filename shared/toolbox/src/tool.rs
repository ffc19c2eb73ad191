//! A tool's declaration and the one way every tool is invoked: validate the
//! input against the tool's schema (an error names the field), deserialize
//! it into the typed input, run, serialize the output.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::sync::OnceLock;

/// How a tool takes its input over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`, the input fields as query parameters.
    Get,
    /// `POST`, the input as a JSON object body.
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// How much work a call may be, which decides where the tools service runs
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cost {
    /// Linear in the input with a small constant (a hash, an encoding, a
    /// conversion): microseconds even at the input limit, so it runs on the
    /// caller's async worker and saves the hand-off to another thread.
    Light,
    /// Anything else (parsers, regexes, diffs, schema validation, ...): on
    /// the blocking pool, bounded in concurrency and time. The default.
    Heavy,
}

/// One tool, as [`crate::tool!`] declares it.
#[derive(Clone, Copy)]
pub struct Tool {
    /// Unique, lower-case, `-`-separated: the catalog and PoW name it by this.
    pub slug: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub category: &'static str,
    pub tags: &'static [&'static str],
    /// In atomic units of USDC.
    pub price: u64,
    pub method: Method,
    /// The axum path pattern; a `{name}` segment is an input field.
    pub path: &'static str,
    pub cost: Cost,
    /// Validates and runs.
    pub invoke: fn(Value) -> Result<Value, ToolError>,
    /// The input's JSON Schema (draft 2020-12), generated from its type.
    pub input_schema: fn() -> Value,
    /// An input the tool accepts, for the catalog.
    pub example: fn() -> Value,
}

impl Tool {
    /// Runs the tool on `input` (a JSON object).
    pub fn run(&self, input: Value) -> Result<Value, ToolError> {
        (self.invoke)(input)
    }
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("slug", &self.slug)
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why a tool refused its input. Always the caller's input: a tool has no
/// other way to fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    /// The input field at fault, as a path (`text`, `items/2`), if one is.
    pub field: Option<String>,
    pub message: String,
}

impl ToolError {
    /// A refusal of field `field`.
    pub fn field(field: impl Into<String>, message: impl fmt::Display) -> Self {
        ToolError {
            field: Some(field.into()),
            message: message.to_string(),
        }
    }

    /// A refusal of the input as a whole.
    pub fn input(message: impl fmt::Display) -> Self {
        ToolError {
            field: None,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "invalid input `{field}`: {}", self.message),
            None => write!(f, "invalid input: {}", self.message),
        }
    }
}

impl std::error::Error for ToolError {}

/// A refusal is the caller's input: 400, the field in the error's details
/// (`google.rpc.ErrorInfo` metadata over gRPC).
impl From<ToolError> for tessera_error::Error {
    fn from(refused: ToolError) -> Self {
        let error = tessera_error::Error::invalid("INVALID_INPUT", refused.to_string());
        match refused.field {
            Some(field) => error.with_detail("field", field),
            None => error,
        }
    }
}

/// The JSON Schema of `I`, subschemas inlined so each schema stands alone.
pub fn schema_of<I: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<I>();
    serde_json::to_value(schema).expect("a schema serializes")
}

/// The schema of `run`'s input type.
pub fn schema_for_fn<I: JsonSchema, O>(_run: fn(I) -> Result<O, ToolError>) -> Value {
    schema_of::<I>()
}

/// Validates `input` against `I`'s schema (compiled once into `validator`),
/// then runs `run` on it.
pub fn invoke<I, O>(
    validator: &OnceLock<jsonschema::Validator>,
    input: Value,
    run: fn(I) -> Result<O, ToolError>,
) -> Result<Value, ToolError>
where
    I: DeserializeOwned + JsonSchema,
    O: Serialize,
{
    let validator = validator.get_or_init(|| {
        jsonschema::validator_for(&schema_of::<I>()).expect("a generated schema compiles")
    });
    if let Some(error) = validator.iter_errors(&input).next() {
        let path = error.instance_path().to_string();
        let field = path.trim_start_matches('/').to_string();
        let message = error.to_string();
        return Err(if field.is_empty() {
            ToolError::input(message)
        } else {
            ToolError::field(field, message)
        });
    }
    let typed: I = serde_path_to_error::deserialize(input).map_err(|error| {
        let field = error.path().to_string();
        let message = error.into_inner().to_string();
        if field == "." {
            ToolError::input(message)
        } else {
            ToolError::field(field, message)
        }
    })?;
    let output = run(typed)?;
    serde_json::to_value(output).map_err(ToolError::input)
}

/// Declares a [`Tool`]: the input type is `run`'s argument type.
///
/// ```ignore
/// tool! {
///     slug: "sha256", name: "SHA-256", category: "hash", tags: ["sha2"],
///     method: Post, path: "/api/sha256",
///     description: "SHA-256 digest of a text or bytes.",
///     run: sha256, example: { "text": "hello world" },
///     cost: Light, // optional; Heavy when left out
/// }
/// ```
#[macro_export]
macro_rules! tool {
    (
        slug: $slug:literal,
        name: $name:literal,
        category: $category:literal,
        tags: [$($tag:literal),* $(,)?],
        method: $method:ident,
        path: $path:expr,
        description: $description:literal,
        run: $run:path,
        example: $example:tt
        $(, cost: $cost:ident)? $(,)?
    ) => {
        $crate::Tool {
            slug: $slug,
            name: $name,
            description: $description,
            category: $category,
            tags: &[$($tag),*],
            price: $crate::DEFAULT_PRICE,
            method: $crate::Method::$method,
            path: $path,
            cost: $crate::tool!(@cost $($cost)?),
            invoke: |input| {
                static VALIDATOR: ::std::sync::OnceLock<$crate::Validator> =
                    ::std::sync::OnceLock::new();
                $crate::invoke(&VALIDATOR, input, $run)
            },
            input_schema: || $crate::schema_for_fn($run),
            example: || ::serde_json::json!($example),
        }
    };
    (@cost) => {
        $crate::Cost::Heavy
    };
    (@cost $cost:ident) => {
        $crate::Cost::$cost
    };
}
