//! The gateway's memory client sends `INTERNAL_TOKEN`: a memory service that
//! requires the token serves a gateway configured with it, and refuses one
//! without it or with another (which answers 500 and is not ready, never a
//! 401 the caller could act on).

use serde_json::{json, Value};
use tessera_gateway::GatewayConfig;
use tessera_memory::Limits;
use tessera_runtime::grpc_auth::{ServiceToken, ENV};
use tessera_runtime::Shutdown;
use tessera_tests::harness::{embedded_memory, MemoryServer};

const TOKEN: &str = "gateway-internal-s3cret";

/// A FREE_MODE gateway over `memory` sending `token`.
async fn gateway(memory: &MemoryServer, token: &str, shutdown: &Shutdown) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = tessera_gateway::router(&GatewayConfig {
        listen_addr: listener.local_addr().unwrap(),
        memory_url: memory.url(),
        free_mode: true,
        internal_token: ServiceToken::new(token).unwrap(),
        ..GatewayConfig::default()
    })
    .await
    .unwrap();
    tokio::spawn(tessera_gateway::serve(listener, router, shutdown.clone()));
    url
}

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("X-Agent-Id", "agent-1");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_sends_the_internal_token() {
    let memory = MemoryServer::start_with_token(
        embedded_memory(Limits::default()).await,
        ServiceToken::new(TOKEN).unwrap(),
    )
    .await;
    let shutdown = Shutdown::new();
    let with_token = gateway(&memory, TOKEN, &shutdown).await;
    let without_token = gateway(&memory, "", &shutdown).await;
    let wrong_token = gateway(&memory, "gateway-internal-s3crex", &shutdown).await;

    let set = json!({ "key": "k", "value": 1 });
    let (status, body) = call(
        reqwest::Method::POST,
        format!("{with_token}/api/memory"),
        Some(set.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        reqwest::Method::GET,
        format!("{with_token}/api/memory?key=k"),
        None,
    )
    .await;
    assert_eq!((status, &body["value"]), (200, &json!(1)), "{body}");
    let (status, _) = call(reqwest::Method::GET, format!("{with_token}/ready"), None).await;
    assert_eq!(status, 200);

    for refused in [&without_token, &wrong_token] {
        let (status, body) = call(
            reqwest::Method::POST,
            format!("{refused}/api/memory"),
            Some(json!({ "key": "k", "value": 2 })),
        )
        .await;
        assert_eq!(status, 500, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains(ENV)),
            "the error names the setting: {body}"
        );
        let (status, _) = call(reqwest::Method::GET, format!("{refused}/ready"), None).await;
        assert_eq!(status, 503, "not ready without the right token");
    }
    let (_, body) = call(
        reqwest::Method::GET,
        format!("{with_token}/api/memory?key=k"),
        None,
    )
    .await;
    assert_eq!(body["value"], 1, "the refused write changed nothing");

    shutdown.trigger();
    memory.stop().await;
}
