//! Discovery through the gateway over real HTTP: `/api/find` (GET and POST)
//! ranks the catalog for a task and answers seed 002's array of tools, each
//! with its price, route, method, input schema and a ready call;
//! `/api/pricing` lists every catalog entry once, memory routes too with an
//! input schema, an example and a call naming the namespace; `POST /api/route` routes a
//! task to the cheapest healthy tools (here our catalog only: the
//! in-process discovery crawls no registry). All are free (no 402 with
//! payments on), validate their input (400 `{"error"}` naming the
//! parameter) and are rate limited as free routes.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_gateway::GatewayConfig;
use tessera_tests::harness::{in_process_backends, spawn_gateway};
use tessera_tests::paid::{send, PaidStack, Reply};

async fn free_gateway(free_per_minute: u32) -> String {
    let config = GatewayConfig {
        free_mode: true,
        free_per_minute,
        ..Default::default()
    };
    let backends = in_process_backends().await;
    spawn_gateway(config, backends).await.unwrap()
}

async fn get(base: &str, path: &str) -> Reply {
    send(Method::GET, &format!("{base}{path}"), None, &[]).await
}

fn slugs(reply: &Reply) -> Vec<String> {
    reply
        .body
        .as_array()
        .unwrap_or_else(|| panic!("an array: {}", reply.body))
        .iter()
        .map(|tool| tool["slug"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_ranks_the_catalog_for_a_task() {
    let base = free_gateway(0).await;
    let found = get(&base, "/api/find?q=sha256%20hash%20of%20text&k=3").await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    let ranked = slugs(&found);
    assert!(!ranked.is_empty() && ranked.len() <= 3, "{ranked:?}");
    assert_eq!(ranked[0], "sha256", "{ranked:?}");
    let first = &found.body[0];
    assert_eq!(first["route"], "/api/sha256");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["price"], 1000);
    assert_eq!(first["inputSchema"]["type"], "object", "{first}");
    assert!(
        first["call"].as_str().unwrap().contains("/api/sha256"),
        "{first}"
    );

    // POST with a JSON body; the default k is 5.
    let posted = send(
        Method::POST,
        &format!("{base}/api/find"),
        Some(json!({"q": "convert kilometers to miles"})),
        &[],
    )
    .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.body);
    let ranked = slugs(&posted);
    assert!(ranked.len() <= 5);
    assert_eq!(
        posted.body[0]["route"], "/api/convert/{conversion}",
        "{ranked:?}"
    );

    // Memory routes are in the catalog too, with their input and call.
    let memory = get(&base, "/api/find?q=compare%20and%20swap%20lock").await;
    let cas = memory
        .body
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .find(|tool| tool["slug"] == "memory.cas");
    let cas = cas.unwrap_or_else(|| panic!("{}", memory.body));
    assert_eq!(cas["inputSchema"]["required"], json!(["key"]), "{cas}");
    assert_eq!(cas["example"]["key"], "locks/import", "{cas}");
    assert!(
        cas["call"]
            .as_str()
            .unwrap()
            .starts_with("curl -X POST 'http://localhost:8080/api/memory/cas' -H 'X-Agent-Id: agent-1' -H 'Content-Type: application/json' -d '"),
        "{cas}"
    );

    // The same query answers the same order.
    let again = get(&base, "/api/find?q=sha256%20hash%20of%20text&k=3").await;
    assert_eq!(again.body, found.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_refuses_bad_input_naming_the_parameter() {
    let base = free_gateway(0).await;
    let long = "a".repeat(501);
    for (path, needle) in [
        ("/api/find".to_string(), "q"),
        ("/api/find?q=".to_string(), "q"),
        (format!("/api/find?q={long}"), "q"),
        ("/api/find?q=hash&k=26".to_string(), "k"),
        ("/api/find?q=hash&k=x".to_string(), "k"),
        ("/api/find?q=hash&top=3".to_string(), "top"),
    ] {
        let refused = get(&base, &path).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            refused.body
        );
        let error = refused.body["error"].as_str().unwrap();
        assert!(error.contains(needle), "{path}: {error}");
    }
    let refused = send(
        Method::POST,
        &format!("{base}/api/find"),
        Some(json!({"query": "hash"})),
        &[],
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pricing_lists_every_catalog_entry_once() {
    let base = free_gateway(0).await;
    let priced = get(&base, "/api/pricing").await;
    assert_eq!(priced.status, StatusCode::OK, "{}", priced.body);
    assert_eq!(priced.body["currency"], "USDC");
    let tools = priced.body["tools"].as_array().unwrap();
    let mut listed: Vec<&str> = tools.iter().map(|t| t["slug"].as_str().unwrap()).collect();
    let count = listed.len();
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), count, "each entry once");
    for tool in tessera_toolbox::all() {
        let entry = tools.iter().find(|t| t["slug"] == tool.slug).unwrap();
        assert_eq!(entry["price"], tool.price, "{}", tool.slug);
        assert_eq!(entry["inputSchema"]["type"], "object", "{}", tool.slug);
        assert!(entry["example"].is_object(), "{}", tool.slug);
    }
    // Memory routes too have an input schema, an example and a ready call
    // naming the caller's namespace (discovery_memory_entries.rs holds them
    // to /openapi.json and sends them).
    let mut memory = 0;
    for route in tessera_catalog::rest_routes().filter(|r| r.tool.is_none()) {
        let entry = tools.iter().find(|t| t["slug"] == route.id);
        assert!(entry.is_some(), "{} is listed", route.id);
        let entry = entry.unwrap();
        assert_eq!(entry["price"], route.price);
        assert_eq!(entry["category"], "memory", "{}", route.id);
        assert_eq!(entry["inputSchema"]["type"], "object", "{}", route.id);
        assert!(entry["example"].is_object(), "{}", route.id);
        let call = entry["call"].as_str().unwrap();
        assert!(call.starts_with("curl "), "{}: {call}", route.id);
        assert!(
            call.contains(" -H 'X-Agent-Id: agent-1'"),
            "{}: {call}",
            route.id
        );
        memory += 1;
    }
    assert_eq!(memory, 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_free_with_payments_on_and_rate_limited() {
    let stack = PaidStack::start().await;
    for (method, path, body) in [
        (Method::GET, "/api/find?q=hash", None),
        (Method::POST, "/api/find", Some(json!({"q": "hash"}))),
        (Method::GET, "/api/pricing", None),
        (Method::POST, "/api/route", Some(json!({"query": "hash"}))),
    ] {
        let reply = send(method, &stack.url(path), body, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    }
    // /health says what this gateway does.
    let health = get(&stack.gateway_url, "/health").await;
    assert_eq!(health.body["freeMode"], false);
    assert_eq!(health.body["features"]["x402"], true, "{}", health.body);
    assert_eq!(health.body["features"]["proofOfWork"], true);

    let base = free_gateway(2).await;
    for _ in 0..2 {
        assert_eq!(get(&base, "/api/find?q=hash").await.status, StatusCode::OK);
    }
    let limited = get(&base, "/api/pricing").await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert!(limited.headers.contains_key("retry-after"));
    let _: &Value = &limited.body["error"];
}

async fn post_route(base: &str, body: Value) -> Reply {
    send(Method::POST, &format!("{base}/api/route"), Some(body), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_answers_the_cheapest_healthy_tools_of_our_catalog() {
    let base = free_gateway(0).await;
    let routed = post_route(
        &base,
        json!({"query": "convert kilometers to miles", "top": 2, "include": "local"}),
    )
    .await;
    assert_eq!(routed.status, StatusCode::OK, "{}", routed.body);
    let body = &routed.body;
    assert_eq!(body["query"], "convert kilometers to miles");
    assert_eq!(body["include"], "local");
    assert_eq!(body["network"], Value::Null);
    assert_eq!(body["sellersKnown"], 0);
    assert!(
        body["neutrality"]
            .as_str()
            .unwrap()
            .contains("No seller pays for placement"),
        "{body}"
    );
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{body}");
    let first = &results[0];
    assert_eq!(first["slug"], "convert", "{body}");
    assert_eq!(first["seller"], "tessera");
    assert_eq!(first["route"], "/api/convert/{conversion}");
    assert_eq!(first["method"], "GET");
    assert_eq!(
        first["price"],
        tessera_toolbox::find("convert").unwrap().price
    );
    assert_eq!(first["untrustedContent"], false);
    assert_eq!(
        (first["healthy"].as_bool(), first["health"].as_f64()),
        (Some(true), Some(1.0))
    );
    assert_eq!(first["x402Version"], 2);
    assert_eq!(first["lastProbe"], Value::Null);
    assert_eq!(first["inputSchema"]["type"], "object");
    assert!(
        first["network"].as_str().unwrap().starts_with("eip155:"),
        "{first}"
    );
    assert!(first["score"].as_f64().unwrap() > 0.0);
    assert!(first["call"].as_str().unwrap().starts_with("curl "));
    for result in results {
        assert_eq!(result["seller"], "tessera", "{result}");
    }

    // Defaults: all, three results; a v1 network name reads as CAIP-2.
    let defaults = post_route(&base, json!({"query": "hash", "network": "base"})).await;
    assert_eq!(defaults.status, StatusCode::OK, "{}", defaults.body);
    assert_eq!(defaults.body["include"], "all");
    assert_eq!(defaults.body["network"], "eip155:8453");
    // Our catalog is paid on PAYMENT_NETWORK, eip155:8453 unless set.
    let results = defaults.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{}", defaults.body);
    assert!(results
        .iter()
        .all(|result| result["network"] == "eip155:8453"));
    // Nothing relevant: no results, not an error.
    let nothing = post_route(&base, json!({"query": "quokka"})).await;
    assert_eq!(nothing.status, StatusCode::OK);
    assert_eq!(nothing.body["results"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_refuses_bad_input_naming_the_field() {
    let base = free_gateway(0).await;
    for (body, needle) in [
        (json!({}), "query"),
        (json!({"query": ""}), "query"),
        (json!({"query": "x".repeat(501)}), "query"),
        (json!({"query": "hash", "top": 26}), "top"),
        (json!({"query": "hash", "top": -1}), "top"),
        (json!({"query": "hash", "top": "three"}), "top"),
        (json!({"query": "hash", "include": "everything"}), "include"),
        (json!({"query": "hash", "network": "mars"}), "network"),
        (json!({"query": "hash", "q": "hash"}), "`q`"),
    ] {
        let refused = post_route(&base, body.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.body
        );
        let error = refused.body["error"].as_str().unwrap();
        assert!(error.contains(needle), "{body}: {error}");
    }
    let not_json = send(
        Method::POST,
        &format!("{base}/api/route"),
        None,
        &[("content-type", "application/json".to_string())],
    )
    .await;
    assert_eq!(
        not_json.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_json.body
    );
    let got = get(&base, "/api/route?query=hash").await;
    assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED, "{}", got.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llms_txt_tells_an_agent_how_to_pay_and_find_tools() {
    let base = free_gateway(0).await;
    let response = reqwest::get(format!("{base}/llms.txt")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(text.starts_with("# Tessera"), "{text}");
    for needle in [
        "PAYMENT-SIGNATURE",
        "X-Pow-Solution",
        "Idempotency-Key",
        "GET /api/find?q=",
        "POST /api/memory/cas",
        "- sha256: POST /api/sha256 (1000 units)",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
}
