//! The memory tools: the 2s.io operations under their 2s.io names, and
//! agent402's compare-and-swap and counters under the same prefix. Each is
//! one REST route of the catalog, takes that route's body (or query) as its
//! arguments, with the route's own types as its input schema, and runs as
//! an in-process call to the route: paid with x402 as the route is, in the
//! caller's namespace (the payer; in FREE_MODE, `X-Agent-Id`).

use super::input;
use super::payment;
use super::rest;
use super::results::{self, Failure};
use crate::faces::{agent402, twos};
use axum::Router;
use http::request::Parts;
use http::{Method, StatusCode};
use rmcp::model::CallToolResult;
use serde_json::{json, Map, Value};
use std::sync::LazyLock;
use tessera_catalog::Route;
use tessera_toolbox::Validator;
use utoipa::openapi::Required;
use utoipa::{IntoParams, PartialSchema};

/// One memory tool.
pub(crate) struct MemoryTool {
    pub name: &'static str,
    /// The catalog route it runs (and is priced as).
    pub route: &'static Route,
    pub description: &'static str,
    pub input_schema: Value,
    validator: Validator,
}

/// How a memory tool is declared: name, route id, what it does, its input.
struct Declared {
    name: &'static str,
    route_id: &'static str,
    description: &'static str,
    input_schema: fn() -> Value,
}

const DECLARED: &[Declared] = &[
    Declared {
        name: "agent.memory.get",
        route_id: "agent.memory.get",
        description: "Read one key of your memory namespace: its value, etag, revision and expiry.",
        input_schema: query_schema::<twos::KeyQuery>,
    },
    Declared {
        name: "agent.memory.put",
        route_id: "agent.memory.put",
        description: "Write any JSON value (not null) at a key of your memory namespace, optionally expiring after ttlSeconds.",
        input_schema: body_schema::<twos::PutBody>,
    },
    Declared {
        name: "agent.memory.list",
        route_id: "agent.memory.list",
        description: "List the entries of your memory namespace, optionally those whose key starts with prefix, a page at a time (pass nextCursor back as cursor).",
        input_schema: query_schema::<twos::ListQuery>,
    },
    Declared {
        name: "agent.memory.delete",
        route_id: "agent.memory.delete",
        description: "Delete one key of your memory namespace; says whether it was there.",
        input_schema: body_schema::<twos::DeleteBody>,
    },
    Declared {
        name: "agent.memory.cas",
        route_id: "memory.cas",
        description: "Compare and swap one key: set value only if the current value equals expected (expected null or omitted: only if the key is absent; value null or omitted: delete on match). A lock or a lease with ttlSeconds.",
        input_schema: body_schema::<agent402::CasBody>,
    },
    Declared {
        name: "agent.memory.incr",
        route_id: "memory.incr",
        description: "Add by (default 1) to a numeric counter and answer the new value; an absent key counts as 0.",
        input_schema: body_schema::<agent402::IncrBody>,
    },
];

/// Every memory tool.
pub(crate) fn tools() -> &'static [MemoryTool] {
    static TOOLS: LazyLock<Vec<MemoryTool>> = LazyLock::new(|| {
        DECLARED
            .iter()
            .map(|declared| {
                let route = tessera_catalog::route(declared.route_id)
                    .unwrap_or_else(|| panic!("the catalog has no route {}", declared.route_id));
                let input_schema = (declared.input_schema)();
                let validator = input::validator(declared.name, &input_schema);
                MemoryTool {
                    name: declared.name,
                    route,
                    description: declared.description,
                    input_schema,
                    validator,
                }
            })
            .collect()
    });
    &TOOLS
}

/// A JSON body's schema: the body type's own.
fn body_schema<T: PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).expect("a schema serializes")
}

/// A query's schema: an object with a property per query parameter.
fn query_schema<T: IntoParams>() -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for parameter in T::into_params(|| None) {
        let mut schema = serde_json::to_value(&parameter.schema).expect("a schema serializes");
        if let (Some(description), Some(schema)) = (&parameter.description, schema.as_object_mut())
        {
            schema.insert("description".into(), Value::from(description.as_str()));
        }
        if matches!(parameter.required, Required::True) {
            required.push(Value::from(parameter.name.as_str()));
        }
        properties.insert(parameter.name, schema);
    }
    json!({ "type": "object", "properties": properties, "required": required })
}

impl MemoryTool {
    /// Runs the tool on `arguments`, as the MCP request `from` and with
    /// the call's `_meta`, through `api`.
    pub async fn call(
        &self,
        api: &Router,
        arguments: &Map<String, Value>,
        meta: &Map<String, Value>,
        from: &Parts,
    ) -> CallToolResult {
        match self.try_call(api, arguments, meta, from).await {
            Ok(result) => result,
            Err(failure) => failure.into_result(),
        }
    }

    async fn try_call(
        &self,
        api: &Router,
        arguments: &Map<String, Value>,
        meta: &Map<String, Value>,
        from: &Parts,
    ) -> Result<CallToolResult, Failure> {
        let arguments = Value::Object(arguments.clone());
        // A call that cannot run is refused before it is quoted.
        input::check(&self.validator, &arguments)?;
        let mut request = match self.route.method {
            tessera_catalog::Method::Get => {
                let uri = format!("{}?{}", self.route.path, query_of(&arguments));
                rest::request(Method::GET, &uri, None, from)
            }
            _ => rest::request(Method::POST, self.route.path, Some(&arguments), from),
        };
        if let Some(header) = payment::header_of(meta)? {
            payment::replace_payment(request.headers_mut(), header);
        }
        let answer = rest::send(api, request).await?;
        match answer.status {
            StatusCode::PAYMENT_REQUIRED => Ok(payment::payment_required(answer.body)),
            status if status.is_success() => {
                Ok(results::answer(answer.body).with_meta(payment::settlement(&answer.headers)))
            }
            _ => Err(answer.failure()),
        }
    }
}

/// Validated arguments as a query string: each scalar as its text.
fn query_of(arguments: &Value) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in arguments.as_object().into_iter().flatten() {
        match value {
            Value::Null => {}
            Value::String(text) => {
                query.append_pair(name, text);
            }
            other => {
                query.append_pair(name, &other.to_string());
            }
        }
    }
    query.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> &'static MemoryTool {
        tools().iter().find(|tool| tool.name == name).unwrap()
    }

    #[test]
    fn each_tool_runs_its_catalog_route() {
        let routes: Vec<(&str, &str, &str)> = tools()
            .iter()
            .map(|tool| (tool.name, tool.route.method.as_str(), tool.route.path))
            .collect();
        assert_eq!(
            routes,
            vec![
                ("agent.memory.get", "GET", "/api/agent/memory/get"),
                ("agent.memory.put", "POST", "/api/agent/memory/put"),
                ("agent.memory.list", "GET", "/api/agent/memory/list"),
                ("agent.memory.delete", "POST", "/api/agent/memory/delete"),
                ("agent.memory.cas", "POST", "/api/memory/cas"),
                ("agent.memory.incr", "POST", "/api/memory/incr"),
            ]
        );
    }

    #[test]
    fn schemas_are_the_routes_bodies_and_queries() {
        let get = &tool("agent.memory.get").input_schema;
        assert_eq!(get["type"], "object");
        assert_eq!(get["properties"]["key"]["type"], "string");
        assert_eq!(get["required"], json!(["key"]));
        let list = &tool("agent.memory.list").input_schema;
        assert_eq!(list["required"], json!([]));
        for name in ["prefix", "limit", "cursor"] {
            assert!(list["properties"][name].is_object(), "{name}: {list}");
        }
        let put = &tool("agent.memory.put").input_schema;
        assert_eq!(put["type"], "object");
        for name in ["key", "value", "ttlSeconds"] {
            assert!(put["properties"][name].is_object(), "{name}: {put}");
        }
        let cas = &tool("agent.memory.cas").input_schema;
        assert!(cas["properties"]["expected"].is_object(), "{cas}");
        let incr = &tool("agent.memory.incr").input_schema;
        assert!(incr["properties"]["by"].is_object(), "{incr}");
    }

    #[test]
    fn the_schemas_admit_the_routes_inputs_only() {
        let check = |name: &str, arguments: Value| input::check(&tool(name).validator, &arguments);
        assert!(check("agent.memory.get", json!({ "key": 5 })).is_err());
        assert!(check("agent.memory.put", json!({ "value": 1 })).is_err());
        assert!(check(
            "agent.memory.put",
            json!({ "key": "k", "value": { "any": ["json"] }, "ttlSeconds": 60 })
        )
        .is_ok());
        assert!(check("agent.memory.list", json!({})).is_ok());
        assert!(check("agent.memory.list", json!({ "limit": "ten" })).is_err());
        assert!(check(
            "agent.memory.cas",
            json!({ "key": "lock", "value": "me", "ttlSeconds": 30 })
        )
        .is_ok());
        assert!(check("agent.memory.incr", json!({ "key": "n", "by": 2.5 })).is_ok());
    }

    #[test]
    fn query_arguments_are_their_text() {
        let query = query_of(&json!({ "prefix": "a b&c", "limit": 10, "cursor": null }));
        assert_eq!(query, "limit=10&prefix=a+b%26c");
    }
}
