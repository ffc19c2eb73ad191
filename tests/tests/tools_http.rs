//! The tools through the REST gateway (free mode, the tools service in
//! process as in the all-in-one): every catalog tool answers its example
//! input at its route, and bad input, unknown routes and wrong methods get
//! seed 002's statuses with an `{"error": "..."}` body.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_memory::Limits;
use tessera_tests::gateway_http::{GatewayHarness, Reply};
use tessera_tests::harness::embedded_memory;

async fn gateway() -> GatewayHarness {
    GatewayHarness::start_in_process(embedded_memory(Limits::default()).await).await
}

async fn post(gateway: &GatewayHarness, path: &str, body: Value) -> Reply {
    gateway.send(Method::POST, path, &[], Some(body)).await
}

async fn get(gateway: &GatewayHarness, path: &str) -> Reply {
    gateway.send(Method::GET, path, &[], None).await
}

/// The path and query a GET tool's example input calls: path parameters
/// (`{name}` segments) from the input's fields, the rest as the query.
fn get_request(path: &str, input: &Value) -> String {
    let mut fields = input.as_object().cloned().unwrap_or_default();
    let mut resolved = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        resolved.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                let value = fields
                    .remove(name)
                    .expect("a path parameter in the example");
                resolved.push_str(value.as_str().expect("a text path parameter"));
            }
            None => resolved.push_str(segment),
        }
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        let text = match value {
            Value::String(text) => text,
            other => other.to_string(),
        };
        query.append_pair(&name, &text);
    }
    format!("{resolved}?{}", query.finish())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_answers_its_example_at_its_route() {
    let gateway = gateway().await;
    let tools: Vec<_> = tessera_catalog::routes()
        .iter()
        .filter(|route| route.tool.is_some())
        .collect();
    assert!(tools.len() >= 60, "only {} tools", tools.len());
    for route in tools {
        let tool = tessera_toolbox::find(route.tool.unwrap()).unwrap();
        let example = (tool.example)();
        let reply = match route.method {
            tessera_catalog::Method::Get => get(&gateway, &get_request(route.path, &example)).await,
            _ => post(&gateway, route.path, example.clone()).await,
        };
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{} {}: {}",
            route.method,
            route.path,
            reply.body
        );
        // The same as the tool answers in process, where it is deterministic.
        if !["uuid", "ulid", "age"].contains(&tool.slug) && !tool.slug.contains("now") {
            assert_eq!(reply.body, tool.run(example).unwrap(), "{}", tool.slug);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_examples_work_as_written() {
    let gateway = gateway().await;
    // POST /api/hash {"text":"hello world"}
    let hash = post(&gateway, "/api/hash", json!({"text": "hello world"})).await;
    assert_eq!(hash.status, StatusCode::OK, "{}", hash.body);
    assert_eq!(
        hash.body["hex"],
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    // GET /api/convert/kilometers-to-miles?value=42
    let miles = get(&gateway, "/api/convert/kilometers-to-miles?value=42").await;
    assert_eq!(miles.status, StatusCode::OK, "{}", miles.body);
    let result = miles.body["result"].as_f64().unwrap();
    assert!((result - 26.097_590_073_968_1).abs() < 1e-9, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_documented_status_and_body() {
    let gateway = gateway().await;
    let error_of = |reply: &Reply| reply.body["error"].as_str().unwrap_or_default().to_string();

    // A missing field, a wrong type, an unknown field: 400 naming it.
    let missing = post(&gateway, "/api/sha256", json!({})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&missing).contains("text"), "{}", missing.body);
    let wrong = post(&gateway, "/api/sha256", json!({"text": 5})).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&wrong).contains("`text`"), "{}", wrong.body);
    let unknown = post(&gateway, "/api/sha256", json!({"text": "a", "txet": 1})).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&unknown).contains("txet"), "{}", unknown.body);
    // A query value that is not the field's type.
    let not_a_number = get(&gateway, "/api/convert/kilometers-to-miles?value=far").await;
    assert_eq!(not_a_number.status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&not_a_number).contains("value"),
        "{}",
        not_a_number.body
    );
    let twice = get(&gateway, "/api/convert/kilometers-to-miles?value=1&value=2").await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{}", twice.body);

    // Not JSON, not an object, too large.
    let http = reqwest::Client::new();
    for (body, needle) in [
        ("{", "not JSON"),
        ("[1,2]", "object"),
        ("\"text\"", "object"),
    ] {
        let response = http
            .post(format!("{}/api/sha256", gateway.url()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let reply: Value = response.json().await.unwrap();
        assert!(
            reply["error"].as_str().unwrap().contains(needle),
            "{body}: {reply}"
        );
    }
    let huge = json!({ "text": "x".repeat(tessera_toolbox::MAX_INPUT_BYTES) });
    let too_large = post(&gateway, "/api/sha256", huge).await;
    assert_eq!(too_large.status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&too_large).contains("at most"),
        "{}",
        too_large.body
    );

    // No such tool: 404; a tool's route with another method: 405.
    let nothing = post(&gateway, "/api/no-such-tool", json!({})).await;
    assert_eq!(nothing.status, StatusCode::NOT_FOUND);
    assert!(nothing.body["error"].is_string(), "{}", nothing.body);
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD] {
        let reply = gateway.send(method.clone(), "/api/sha256", &[], None).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}
