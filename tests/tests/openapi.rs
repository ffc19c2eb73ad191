//! `GET /openapi.json` over real HTTP: an OpenAPI 3.1 document that the
//! OpenAPI validator (`tests/chain/validate-openapi.mjs`,
//! @seriousme/openapi-schema-validator) accepts, that a broken copy fails,
//! whose tool inputs are the toolbox's schemas, whose response schemas the
//! gateway's live answers match, and whose `x-price` is what a 402 quotes
//! when payments are on.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Output;
use tessera_tests::chain::chain_dir;
use tessera_tests::harness::spawn_free_gateway;
use tessera_tests::paid::{decode, send, PaidStack, Reply};

/// The document `base` serves, checked to be JSON served as JSON.
async fn fetch_document(base: &str) -> Value {
    let response = reqwest::get(format!("{base}/openapi.json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE].to_str().unwrap(),
        "application/json"
    );
    response.json().await.expect("the document is JSON")
}

/// Runs the OpenAPI validator on `document`, written to a file of its own.
fn validate(name: &str, document: &Value) -> Output {
    let script = chain_dir().join("validate-openapi.mjs");
    let package = chain_dir().join("node_modules/@seriousme/openapi-schema-validator");
    assert!(
        package.exists(),
        "the OpenAPI validator is missing at {}: run npm ci --prefix tests/chain",
        package.display()
    );
    let file = temp_file(name);
    std::fs::write(&file, serde_json::to_vec(document).unwrap()).unwrap();
    let output = std::process::Command::new("node")
        .arg(&script)
        .arg(&file)
        .output()
        .expect("node runs");
    let _ = std::fs::remove_file(&file);
    output
}

fn temp_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "tessera-openapi-{}-{name}.json",
        std::process::id()
    ))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The operation `method path` (an OpenAPI path template).
fn operation<'a>(document: &'a Value, method: &str, path: &str) -> &'a Value {
    let operation = &document["paths"][path][method.to_ascii_lowercase()];
    assert!(operation.is_object(), "{method} {path} is not documented");
    operation
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_valid_openapi_3_1() {
    let base = spawn_free_gateway().await;
    let document = fetch_document(&base).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "Tessera");

    let output = validate("served", &document);
    assert!(
        output.status.success(),
        "the validator refused the document:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert_eq!(text(&output.stdout).trim(), "valid: OpenAPI 3.1");

    // Built once: the same bytes every time.
    let again = fetch_document(&base).await;
    assert_eq!(again, document);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_refuses_broken_copies() {
    let base = spawn_free_gateway().await;
    let document = fetch_document(&base).await;

    let mut no_info = document.clone();
    no_info.as_object_mut().unwrap().remove("info");
    let mut unknown_field = document.clone();
    unknown_field["paths"]["/api/sha256"]["post"]["priceInUsd"] = json!(0.001);
    let mut dangling = document.clone();
    dangling["paths"]["/health"]["get"]["responses"]["200"] =
        json!({ "$ref": "#/components/responses/NoSuchResponse" });
    let mut path_parameter_optional = document.clone();
    path_parameter_optional["paths"]["/api/convert/{conversion}"]["get"]["parameters"][0]
        ["required"] = json!(false);

    for (name, broken, needle) in [
        ("no-info", no_info, "info"),
        ("unknown-field", unknown_field, "priceInUsd"),
        ("dangling-ref", dangling, "NoSuchResponse"),
        (
            "optional-path-parameter",
            path_parameter_optional,
            "required",
        ),
    ] {
        let output = validate(name, &broken);
        assert_eq!(output.status.code(), Some(1), "{name} passed validation");
        let errors = text(&output.stderr);
        assert!(errors.contains(needle), "{name}: {errors}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tools_input_is_its_toolbox_schema() {
    let base = spawn_free_gateway().await;
    let document = fetch_document(&base).await;

    let sha256 = operation(&document, "POST", "/api/sha256");
    assert_eq!(
        &sha256["requestBody"]["content"]["application/json"]["schema"],
        tessera_toolbox::input_schema("sha256").unwrap()
    );
    assert_eq!(sha256["x-price"]["routeId"], "tools.sha256");
    assert_eq!(
        sha256["x-price"]["amount"],
        tessera_catalog::route("tools.sha256")
            .unwrap()
            .price
            .to_string()
    );
    assert_eq!(sha256["x-payment"], json!(["x402", "pow"]));

    let convert = operation(&document, "GET", "/api/convert/{conversion}");
    let schema = tessera_toolbox::input_schema("convert").unwrap();
    for parameter in convert["parameters"].as_array().unwrap() {
        let name = parameter["name"].as_str().unwrap();
        if parameter["in"] != "header" {
            assert_eq!(parameter["schema"], schema["properties"][name], "{name}");
        }
    }
}

/// The schema of `operation`'s `status` answer, standing alone: with the
/// document's components beside it, so its references resolve.
fn response_schema(document: &Value, operation: &Value, status: u16) -> Value {
    let mut response = &operation["responses"][status.to_string()];
    if let Some(reference) = response["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/responses/");
        response = &document["components"]["responses"][name];
    }
    let mut schema = response["content"]["application/json"]["schema"].clone();
    assert!(
        schema.is_object(),
        "no JSON schema for {status} of {}",
        operation["operationId"]
    );
    schema["components"] = strict(document["components"].clone());
    schema
}

/// `components` with the faces' structs (`agent402.*`, `twos.*`,
/// `agents.*`) closed to other properties: an answer of another struct
/// must not pass for this one.
fn strict(mut components: Value) -> Value {
    for (name, schema) in components["schemas"].as_object_mut().unwrap() {
        if name.contains('.') && schema["properties"].is_object() {
            schema["additionalProperties"] = json!(false);
        }
    }
    components
}

/// Asserts `reply` is `status` and its body matches the document's schema
/// for it.
fn assert_documented(document: &Value, method: &str, path: &str, reply: &Reply, status: u16) {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{method} {path}: {}",
        reply.body
    );
    let operation = operation(document, method, path);
    let schema = response_schema(document, operation, status);
    let validator = tessera_toolbox::Validator::new(&schema)
        .unwrap_or_else(|error| panic!("{method} {path} {status}: the schema compiles: {error}"));
    let errors: Vec<String> = validator
        .iter_errors(&reply.body)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {} does not match {}: {errors:?}",
        reply.body,
        schema["$ref"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_answers_match_their_documented_schemas() {
    let base = spawn_free_gateway().await;
    let document = fetch_document(&base).await;
    let agent = [("x-agent-id", "agent-openapi".to_string())];
    // (method, documented path, path and query sent, body, status)
    let calls: Vec<(&str, &str, &str, Option<Value>, u16)> = vec![
        (
            "POST",
            "/api/memory",
            "/api/memory",
            Some(json!({"key": "notes", "value": {"n": 1}, "ttlSeconds": 60})),
            200,
        ),
        ("GET", "/api/memory", "/api/memory?key=notes", None, 200),
        ("GET", "/api/memory", "/api/memory?prefix=no", None, 200),
        ("GET", "/api/memory", "/api/memory?key=missing", None, 404),
        (
            "POST",
            "/api/memory",
            "/api/memory",
            Some(json!({"key": "notes", "delete": true})),
            200,
        ),
        (
            "POST",
            "/api/memory",
            "/api/memory",
            Some(json!({"value": 1})),
            400,
        ),
        (
            "POST",
            "/api/memory/cas",
            "/api/memory/cas",
            Some(json!({"key": "lock", "expected": null, "value": "a"})),
            200,
        ),
        (
            "POST",
            "/api/memory/incr",
            "/api/memory/incr",
            Some(json!({"key": "n", "by": 2})),
            200,
        ),
        (
            "POST",
            "/api/memory/grant",
            "/api/memory/grant",
            Some(json!({"grantee": "agent-b", "mode": "read"})),
            200,
        ),
        ("GET", "/api/memory/grants", "/api/memory/grants", None, 200),
        (
            "POST",
            "/api/memory/revoke",
            "/api/memory/revoke",
            Some(json!({"grantee": "agent-b"})),
            200,
        ),
        (
            "POST",
            "/api/agent/memory/put",
            "/api/agent/memory/put",
            Some(json!({"key": "k", "value": [1, 2]})),
            200,
        ),
        (
            "GET",
            "/api/agent/memory/get",
            "/api/agent/memory/get?key=k",
            None,
            200,
        ),
        (
            "GET",
            "/api/agent/memory/list",
            "/api/agent/memory/list",
            None,
            200,
        ),
        (
            "POST",
            "/api/agent/memory/delete",
            "/api/agent/memory/delete",
            Some(json!({"key": "k"})),
            200,
        ),
        (
            "PUT",
            "/agents/{id}/memory/{key}",
            "/agents/agent-openapi/memory/a/b",
            Some(json!({"value": true})),
            200,
        ),
        (
            "GET",
            "/agents/{id}/memory/{key}",
            "/agents/agent-openapi/memory/a/b",
            None,
            200,
        ),
        (
            "GET",
            "/agents/{id}/memory",
            "/agents/agent-openapi/memory",
            None,
            200,
        ),
        (
            "GET",
            "/agents/{id}/memory/{key}",
            "/agents/someone-else/memory/a",
            None,
            403,
        ),
        (
            "GET",
            "/agents/{id}/memory/{key}",
            "/agents/agent-openapi/memory/nope",
            None,
            404,
        ),
        (
            "POST",
            "/api/sha256",
            "/api/sha256",
            Some(json!({"text": "hello"})),
            200,
        ),
        (
            "POST",
            "/api/sha256",
            "/api/sha256",
            Some(json!({"text": 5})),
            400,
        ),
        (
            "GET",
            "/api/convert/{conversion}",
            "/api/convert/km-to-mi?value=42",
            None,
            200,
        ),
        ("GET", "/health", "/health", None, 200),
        ("GET", "/ready", "/ready", None, 200),
        ("GET", "/api/find", "/api/find?q=hash&k=2", None, 200),
        (
            "POST",
            "/api/find",
            "/api/find",
            Some(json!({"q": "lock"})),
            200,
        ),
        ("GET", "/api/pricing", "/api/pricing", None, 200),
        ("GET", "/api/pow", "/api/pow", None, 200),
        (
            "GET",
            "/api/pow/challenge",
            "/api/pow/challenge?slug=sha256",
            None,
            200,
        ),
        ("GET", "/api/pow/challenge", "/api/pow/challenge", None, 400),
        ("GET", "/openapi.json", "/openapi.json", None, 200),
        (
            "GET",
            "/api/payments/{id}",
            "/api/payments/pay_00000000000000000000000000000000",
            None,
            404,
        ),
    ];
    for (method, path, sent, body, status) in calls {
        let method_of = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = send(method_of, &format!("{base}{sent}"), body, &agent).await;
        assert_documented(&document, method, path, &reply, status);
    }
    let deleted = send(
        Method::DELETE,
        &format!("{base}/agents/agent-openapi/memory/a/b"),
        None,
        &agent,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let operation = operation(&document, "DELETE", "/agents/{id}/memory/{key}");
    assert!(operation["responses"]["204"].is_object());

    // The free routes other sessions add, when they are served.
    if document["paths"]["/api/route"]["post"].is_object() {
        let body = json!({"query": "sha256 hash", "top": 2, "include": "local"});
        let reply = send(Method::POST, &format!("{base}/api/route"), Some(body), &[]).await;
        assert_documented(&document, "POST", "/api/route", &reply, 200);
    }
    for path in [
        "/.well-known/x402",
        "/api/reliability",
        "/api/stats",
        "/api/leaderboard",
    ] {
        if document["paths"][path]["get"].is_object() {
            let reply = send(Method::GET, &format!("{base}{path}"), None, &[]).await;
            assert_documented(&document, "GET", path, &reply, 200);
        }
    }
}

/// A concrete path for a template: every parameter a plausible value.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "agent-openapi")
        .replace("{key}", "notes")
        .replace("{conversion}", "km-to-mi")
}

/// `x-price` of `operation` for a request without a query: the price
/// object, or the variant for a query that names nothing.
fn price_without_query(operation: &Value) -> &Value {
    match &operation["x-price"] {
        Value::Array(variants) => variants
            .iter()
            .find(|variant| variant["when"].as_str().unwrap().contains("lacks"))
            .expect("a variant for a request without the query parameter"),
        price => price,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_payments_on_every_paid_operation_quotes_its_documented_price() {
    let stack = PaidStack::start().await;
    let document = fetch_document(&stack.gateway_url).await;
    let mut quoted = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation["x-free"] == true {
                continue;
            }
            let method = method.to_ascii_uppercase();
            let url = stack.url(&concrete(path));
            let reply = send(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &url,
                None,
                &[],
            )
            .await;
            assert_documented(&document, &method, path, &reply, 402);
            let quote = decode(&reply.headers["payment-required"]);
            assert_eq!(quote, reply.body, "{method} {path}: header and body differ");
            let price = price_without_query(operation);
            assert_eq!(
                quote["accepts"][0]["amount"], price["amount"],
                "{method} {path}: the quote is not the documented price"
            );
            let description = quote["resource"]["description"].as_str().unwrap();
            let route_id = price["routeId"].as_str().unwrap();
            assert!(
                description.contains(route_id),
                "{method} {path}: quoted for {description}, documented {route_id}"
            );
            quoted += 1;
        }
    }
    let rest = tessera_gateway::declared_routes()
        .into_iter()
        .filter(|declared| declared.face.is_rest())
        .count();
    assert_eq!(quoted, rest);
    assert_eq!(
        fetch_document(&stack.gateway_url).await,
        document,
        "free, and the same with payments on"
    );
}
