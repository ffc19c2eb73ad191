//! The meta tools, for hosts that keep few tools in context: find a tool by
//! what it does (`search_tools`: the discovery service's ranking, through
//! `GET /api/find`), read one's input schema and price (`find_tool`), and
//! call one by name (`call_tool`, paid or limited as the tool itself).

use super::catalog::catalog;
use super::input;
use super::meta_tools::{Meta, DEFAULT_RESULTS, FIND_DEPTH};
use super::rest;
use super::results::{self, Failure};
use super::server::Connector;
use http::request::Parts;
use http::Method;
use rmcp::model::CallToolResult;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::sync::LazyLock;
use tessera_toolbox::Validator;

#[derive(Deserialize)]
struct SearchArguments {
    query: String,
    limit: Option<u64>,
}

#[derive(Deserialize)]
struct FindArguments {
    name: String,
}

#[derive(Deserialize)]
struct CallArguments {
    name: String,
    #[serde(default)]
    arguments: Map<String, Value>,
}

impl Meta {
    fn validator(self) -> &'static Validator {
        static VALIDATORS: LazyLock<Vec<Validator>> = LazyLock::new(|| {
            Meta::ALL
                .iter()
                .map(|meta| input::validator(meta.name(), &meta.input_schema()))
                .collect()
        });
        &VALIDATORS[self as usize]
    }

    pub async fn call(
        self,
        connector: &Connector,
        arguments: &Map<String, Value>,
        meta: &Map<String, Value>,
        from: &Parts,
    ) -> CallToolResult {
        let arguments = Value::Object(arguments.clone());
        if let Err(refused) = input::check(self.validator(), &arguments) {
            return refused.into_result();
        }
        let outcome = match self {
            Meta::Search => match parse(arguments) {
                Ok(arguments) => search(connector, arguments, from).await,
                Err(refused) => Err(refused),
            },
            Meta::Find => parse(arguments).and_then(find),
            Meta::Call => match parse(arguments) {
                Ok(arguments) => Ok(call(connector, arguments, meta, from).await),
                Err(refused) => Err(refused),
            },
        };
        outcome.unwrap_or_else(Failure::into_result)
    }
}

/// Arguments the schema admitted, as their struct (which is stricter
/// where JSON Schema is lenient: `3.0` is an integer to it).
fn parse<T: for<'de> Deserialize<'de>>(arguments: Value) -> Result<T, Failure> {
    serde_json::from_value(arguments).map_err(|error| {
        tessera_error::Error::from(tessera_toolbox::ToolError::input(error)).into()
    })
}

async fn search(
    connector: &Connector,
    arguments: SearchArguments,
    from: &Parts,
) -> Result<CallToolResult, Failure> {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("q", &arguments.query)
        .append_pair("k", &FIND_DEPTH.to_string())
        .finish();
    let request = rest::request(Method::GET, &format!("/api/find?{query}"), None, from);
    let answer = rest::send(connector.api(), request).await?;
    if !answer.status.is_success() {
        return Err(answer.failure());
    }
    let limit = usize::try_from(arguments.limit.unwrap_or(DEFAULT_RESULTS)).unwrap_or(usize::MAX);
    let catalog = catalog();
    let mut listed = HashSet::new();
    let tools: Vec<Value> = answer
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|found| catalog.of_discovered(found["slug"].as_str()?))
        .filter(|entry| listed.insert(entry.name().to_string()))
        .take(limit)
        .map(|entry| entry.summary(false))
        .collect();
    Ok(results::answer(
        json!({ "query": arguments.query, "tools": tools }),
    ))
}

fn find(arguments: FindArguments) -> Result<CallToolResult, Failure> {
    let entry = catalog()
        .get(&arguments.name)
        .ok_or_else(|| unknown(&arguments.name))?;
    Ok(results::answer(entry.summary(true)))
}

async fn call(
    connector: &Connector,
    arguments: CallArguments,
    meta: &Map<String, Value>,
    from: &Parts,
) -> CallToolResult {
    let Some(entry) = catalog().get(&arguments.name) else {
        return unknown(&arguments.name).into_result();
    };
    connector
        .run_tool(entry, &arguments.arguments, meta, from)
        .await
}

fn unknown(name: &str) -> Failure {
    Failure {
        reason: Some("TOOL_NOT_FOUND".into()),
        ..Failure::new(
            404,
            format!("no tool is named {name:?}: search_tools finds tools by what they do"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_held_to_the_schema_then_parsed() {
        let search = |arguments: Value| input::check(Meta::Search.validator(), &arguments);
        assert!(search(json!({ "query": "hash" })).is_ok());
        assert!(search(json!({ "query": "" })).is_err());
        assert!(search(json!({ "query": "hash", "limit": 26 })).is_err());
        assert!(search(json!({ "query": "hash", "extra": 1 })).is_err());
        // JSON Schema takes 3.0 for an integer; the struct does not, and
        // says so rather than failing the server.
        assert!(search(json!({ "query": "hash", "limit": 3.0 })).is_ok());
        let refused = parse::<SearchArguments>(json!({ "query": "hash", "limit": 3.0 }));
        assert_eq!(refused.err().map(|failure| failure.status), Some(400));
        assert!(input::check(
            Meta::Call.validator(),
            &json!({ "name": "sha256", "arguments": [] })
        )
        .is_err());
    }

    #[test]
    fn find_tool_describes_a_tool_or_says_none_is_named_so() {
        let found = find(FindArguments {
            name: "agent.memory.get".into(),
        })
        .unwrap();
        let summary = found.structured_content.unwrap();
        assert_eq!(summary["payment"], "x402");
        assert_eq!(summary["inputSchema"]["required"], json!(["key"]));
        let missing = find(FindArguments {
            name: "nope".into(),
        })
        .unwrap_err();
        assert_eq!(
            (missing.status, missing.reason.as_deref()),
            (404, Some("TOOL_NOT_FOUND"))
        );
    }
}
