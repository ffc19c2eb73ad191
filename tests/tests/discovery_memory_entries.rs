//! The memory routes' discovery entries (`/api/pricing`, `/api/find`) held
//! to the gateway that serves them. Discovery declares each memory route's
//! input schema and example itself (`services/discovery/src/memory_input.rs`:
//! it cannot see the gateway's request structs); these tests tie the
//! declarations to the truth so they cannot drift:
//!
//! - each schema has the properties, required properties, types and enums
//!   that `/openapi.json` documents for the route's operation (its path and
//!   query parameters, or its JSON body, generated from the faces'
//!   `IntoParams` / `ToSchema` structs), the path's `{name}`s included;
//! - each example is valid for its own schema and, sent through a
//!   FREE_MODE gateway with `X-Agent-Id` in the catalog's order (reads find
//!   what earlier examples wrote), is answered 2xx;
//! - each entry's `call`, run as pasted by `sh` and `curl` against a fresh
//!   FREE_MODE gateway in the same order, is answered 2xx and leaves the
//!   namespace as the examples do.

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use tessera_catalog::{Route, When};
use tessera_tests::harness::spawn_free_gateway;

/// The namespace the examples name.
const AGENT: &str = "agent-1";

/// Where the calls send their requests (`make run`'s gateway).
const CALL_BASE: &str = "http://localhost:8080";

/// Parameters the operation documents that a route serving it ignores: a
/// read of one key (`GET /api/memory?key=`) does not page. Each must be
/// documented (a stale entry fails).
const IGNORED: &[(&str, &[&str])] = &[("memory.get", &["prefix", "limit", "cursor"])];

async fn get_json(url: &str) -> Value {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.json().await.unwrap()
}

/// The memory routes, in the catalog's order.
fn memory_routes() -> Vec<&'static Route> {
    tessera_catalog::rest_routes()
        .filter(|route| route.tool.is_none())
        .collect()
}

/// The memory entries `/api/pricing` lists, in the catalog's order, with
/// their routes.
async fn memory_entries(base: &str) -> Vec<(&'static Route, Value)> {
    let priced = get_json(&format!("{base}/api/pricing")).await;
    let tools = priced["tools"].as_array().unwrap();
    let routes = memory_routes();
    assert_eq!(routes.len(), 17);
    routes
        .into_iter()
        .map(|route| {
            let entry = tools
                .iter()
                .find(|tool| tool["slug"] == route.id)
                .unwrap_or_else(|| panic!("{} is not listed", route.id));
            (route, entry.clone())
        })
        .collect()
}

/// The `{name}`s of an axum path pattern (`{*key}` is `key`).
fn path_names(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_start_matches('*'))
        .collect()
}

/// Where a documented input property comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Path,
    Query,
    Body,
}

/// The input `/openapi.json` documents for `route`: its path and query
/// parameters and its JSON body's fields, each with its schema and source;
/// and which are required.
struct Documented {
    properties: BTreeMap<String, (Value, Source)>,
    required: BTreeSet<String>,
}

fn documented(document: &Value, route: &Route) -> Documented {
    let template = route.path.replace("{*", "{");
    let method = route.method.as_str().to_ascii_lowercase();
    let operation = &document["paths"][&template][&method];
    assert!(
        operation.is_object(),
        "{} {template} is not documented",
        route.id
    );
    let mut properties = BTreeMap::new();
    let mut required = BTreeSet::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let source = match parameter["in"].as_str() {
            Some("path") => Source::Path,
            Some("query") => Source::Query,
            _ => continue,
        };
        let name = parameter["name"].as_str().unwrap().to_string();
        if parameter["required"] == true {
            required.insert(name.clone());
        }
        properties.insert(name, (parameter["schema"].clone(), source));
    }
    if let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema") {
        let schema = match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("{}: {reference}", route.id));
                document["components"]["schemas"][name].clone()
            }
            None => schema.clone(),
        };
        assert_eq!(schema["type"], "object", "{}: {schema}", route.id);
        for (name, property) in schema["properties"].as_object().unwrap() {
            let previous = properties.insert(name.clone(), (property.clone(), Source::Body));
            assert!(previous.is_none(), "{}: {name} twice", route.id);
        }
        for name in schema["required"].as_array().into_iter().flatten() {
            required.insert(name.as_str().unwrap().to_string());
        }
    }
    // Routes told apart by the query: the one with the parameter needs it,
    // the one without has none.
    match route.when {
        When::Always => {}
        When::QueryHas(name) => {
            assert!(properties.contains_key(name), "{}: {name}", route.id);
            required.insert(name.to_string());
        }
        When::QueryLacks(name) => {
            properties.remove(name);
            required.remove(name);
        }
    }
    for (id, names) in IGNORED {
        if *id == route.id {
            for name in *names {
                assert!(
                    properties.remove(*name).is_some(),
                    "{id}: {name} is not documented"
                );
                required.remove(*name);
            }
        }
    }
    Documented {
        properties,
        required,
    }
}

/// A schema's `type`, as a set (none: any type).
fn types(schema: &Value) -> BTreeSet<String> {
    match &schema["type"] {
        Value::String(name) => [name.clone()].into(),
        Value::Array(names) => names
            .iter()
            .map(|name| name.as_str().unwrap().to_string())
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn names(schema: &Value, field: &str) -> BTreeSet<String> {
    match &schema[field] {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().unwrap().to_string())
            .collect(),
        _ => BTreeSet::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_memory_schema_is_the_input_the_document_describes() {
    let base = spawn_free_gateway().await;
    let document = get_json(&format!("{base}/openapi.json")).await;
    for (route, entry) in memory_entries(&base).await {
        let id = route.id;
        let declared = &entry["inputSchema"];
        assert_eq!(declared["type"], "object", "{id}: {declared}");
        let truth = documented(&document, route);
        assert_eq!(
            names(declared, "properties"),
            truth.properties.keys().cloned().collect::<BTreeSet<_>>(),
            "{id}: the declared properties are not the documented ones"
        );
        assert_eq!(
            names(declared, "required"),
            truth.required,
            "{id}: the declared required properties are not the documented ones"
        );
        let path = path_names(route.path);
        for (name, (schema, source)) in &truth.properties {
            let property = &declared["properties"][name];
            assert_eq!(
                types(property),
                types(schema),
                "{id}.{name}: declared {property}, documented {schema}"
            );
            assert_eq!(
                property["enum"], schema["enum"],
                "{id}.{name}: declared {property}, documented {schema}"
            );
            // The call puts a property where the route takes it: the
            // path's names in the path, the rest in the query of a GET and
            // in the body of the others.
            let expected = if path.contains(&name.as_str()) {
                Source::Path
            } else if route.method == tessera_catalog::Method::Get {
                Source::Query
            } else {
                Source::Body
            };
            assert_eq!(*source, expected, "{id}.{name}");
        }
    }
}

/// `route`'s request for `example`, built here from the route and the
/// example independently of the entry's `call`.
fn request(base: &str, route: &Route, example: &Value) -> reqwest::RequestBuilder {
    let mut fields: Map<String, Value> = example.as_object().unwrap().clone();
    let text = |value: Value| match value {
        Value::String(text) => text,
        other => other.to_string(),
    };
    let path: Vec<String> = route
        .path
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let value = fields
                        .remove(name.trim_start_matches('*'))
                        .unwrap_or_else(|| panic!("{}: the example has no {name}", route.id));
                    text(value)
                        .split('/')
                        .map(|piece| form_urlencoded::byte_serialize(piece.as_bytes()).collect())
                        .collect::<Vec<String>>()
                        .join("/")
                }
                None => segment.to_string(),
            },
        )
        .collect();
    let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}{}", path.join("/")))
        .header("X-Agent-Id", AGENT);
    if route.method == tessera_catalog::Method::Get {
        let query: Vec<(String, String)> = fields
            .into_iter()
            .map(|(name, value)| (name, text(value)))
            .collect();
        request = request.query(&query);
    } else if !fields.is_empty() {
        request = request.json(&Value::Object(fields));
    }
    request
}

/// The JSON `base` answers a GET of `path` with, sent as the examples'
/// agent.
async fn get_as_agent(base: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("X-Agent-Id", AGENT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// What the namespace holds: each key and value (by key) and the grants.
async fn namespace(base: &str) -> (Value, Value) {
    let mut listed = get_as_agent(base, "/api/memory").await;
    let mut entries: Vec<Value> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| json!({"key": entry["key"], "value": entry["value"]}))
        .collect();
    entries.sort_by_key(|entry| entry["key"].to_string());
    listed = Value::Array(entries);
    let grants = get_as_agent(base, "/api/memory/grants").await;
    (listed, grants["grants"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_memory_example_is_valid_and_answered_2xx() {
    let base = spawn_free_gateway().await;
    for (route, entry) in memory_entries(&base).await {
        let id = route.id;
        let (schema, example) = (&entry["inputSchema"], &entry["example"]);
        assert!(example.is_object(), "{id}: {example}");
        let validator = tessera_toolbox::Validator::new(schema)
            .unwrap_or_else(|error| panic!("{id}: the schema does not compile: {error}"));
        let errors: Vec<String> = validator
            .iter_errors(example)
            .map(|error| format!("{error} at {}", error.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{id}: {example} is not valid: {errors:?}"
        );

        let response = request(&base, route, example).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(status.is_success(), "{id} {example}: {status} {body}");
    }
    let (entries, grants) = namespace(&base).await;
    // What the examples leave: the set, CAS and incr keys (the per-agent
    // face deleted `notes`, 2s.io `greeting`), no grant (revoked).
    assert_eq!(
        entries,
        json!([
            {"key": "locks/import", "value": AGENT},
            {"key": "visits", "value": 1},
        ]),
    );
    assert_eq!(grants, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_memory_call_works_as_pasted() {
    let reference = spawn_free_gateway().await;
    let base = spawn_free_gateway().await;
    for (route, entry) in memory_entries(&base).await {
        let id = route.id;
        let call = entry["call"].as_str().unwrap();
        assert!(call.starts_with("curl "), "{id}: {call}");
        assert!(call.contains(&format!(" '{CALL_BASE}/")), "{id}: {call}");
        assert!(call.contains(" -H 'X-Agent-Id: agent-1'"), "{id}: {call}");
        let has_body = call.contains(" -d '");
        assert_eq!(
            call.contains(" -H 'Content-Type: application/json'"),
            has_body,
            "{id}: {call}"
        );
        let pasted = call.replacen(CALL_BASE, &base, 1);
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{pasted} -s -o /dev/null -w '%{{http_code}}'"))
            .output()
            .expect("sh and curl run");
        let status = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success() && status.starts_with('2'),
            "{id}: `{call}` answered {status:?} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The same example sent by the test, on a gateway of its own.
        let sent = request(&reference, route, &entry["example"])
            .send()
            .await
            .unwrap();
        assert!(sent.status().is_success(), "{id}: {}", sent.status());
    }
    // The calls carry the examples: both namespaces end the same.
    assert_eq!(namespace(&base).await, namespace(&reference).await);
}
