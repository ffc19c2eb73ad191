//! The HTTP surface that needs no memory backend: identity, input checks,
//! limits, error bodies and routing. The backend URL points at a closed port.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tessera_gateway::GatewayConfig;
use tower::ServiceExt;

fn config(free_mode: bool) -> GatewayConfig {
    GatewayConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        memory_url: "http://127.0.0.1:1".into(),
        free_mode,
        ..Default::default()
    }
}

async fn app() -> Router {
    tessera_gateway::router(&config(true)).await.unwrap()
}

struct Reply {
    status: StatusCode,
    body: Value,
}

async fn call(method: Method, uri: &str, agent: Option<&str>, body: impl Into<Body>) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(agent) = agent {
        request = request.header("x-agent-id", agent);
    }
    let response = app()
        .await
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    Reply { status, body }
}

fn message(reply: &Reply) -> &str {
    reply.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not a flat error body: {}", reply.body))
}

#[tokio::test]
async fn without_free_mode_there_is_no_gateway() {
    let error = tessera_gateway::router(&config(false)).await.unwrap_err();
    assert!(
        error.to_string().contains("no payment gate is configured"),
        "{error}"
    );
    assert!(error.to_string().contains("FREE_MODE=true"), "{error}");
}

#[tokio::test]
async fn health_reports_free_mode() {
    let reply = call(Method::GET, "/health", None, Body::empty()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "ok");
    assert_eq!(reply.body["freeMode"], true);
    assert!(reply.body["uptimeSeconds"].is_u64());
}

#[tokio::test]
async fn ready_is_503_while_memory_is_down() {
    let reply = call(Method::GET, "/ready", None, Body::empty()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["status"], "unavailable");
}

#[tokio::test]
async fn a_down_backend_is_503_in_each_family_body() {
    let reply = call(Method::GET, "/api/memory?key=k", Some("a"), Body::empty()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    message(&reply);
    let reply = call(Method::GET, "/agents/a/memory/k", None, Body::empty()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["error"]["category"], "Unavailable");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let reply = call(Method::GET, "/nope", None, Body::empty()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, json!({ "error": "not found" }));
    let reply = call(Method::DELETE, "/api/memory/cas", Some("a"), Body::empty()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.body, json!({ "error": "method not allowed" }));
}

#[tokio::test]
async fn a_missing_agent_id_is_401_naming_the_header() {
    for (method, uri) in [
        (Method::GET, "/api/memory?key=k"),
        (Method::POST, "/api/memory/cas"),
        (Method::GET, "/api/agent/memory/get?key=k"),
        (Method::POST, "/api/agent/memory/put"),
    ] {
        let reply = call(method, uri, None, r#"{"key":"k","value":1}"#).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(message(&reply).contains("X-Agent-Id"), "{uri}");
    }
}

#[tokio::test]
async fn bad_bodies_are_400_in_each_family_body() {
    for (method, uri, body) in [
        (Method::POST, "/api/memory", "{not json"),
        (Method::POST, "/api/memory", r#"{"key":5,"value":1}"#),
        (
            Method::POST,
            "/api/memory",
            r#"{"key":"k","value":1,"ttlSeconds":-1}"#,
        ),
        (Method::POST, "/api/memory", r#"{"key":"k"}"#),
        (Method::POST, "/api/memory", r#"{"value":1}"#),
        (Method::POST, "/api/memory/incr", r#"{"key":"k","by":"2"}"#),
        (Method::POST, "/api/memory/cas", r#"{"key":["k"]}"#),
        (
            Method::POST,
            "/api/agent/memory/put",
            r#"{"key":"k","value":null}"#,
        ),
        (Method::POST, "/api/agent/memory/delete", "{}"),
    ] {
        let reply = call(method, uri, Some("a"), body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri} {body}");
        message(&reply);
    }
    let reply = call(Method::PUT, "/agents/a/memory/k", None, r#"{"valu":5}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["category"], "InvalidInput");
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let reply = call(
        Method::GET,
        "/api/memory?limit=many",
        Some("a"),
        Body::empty(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = call(
        Method::GET,
        "/api/agent/memory/get",
        Some("a"),
        Body::empty(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(message(&reply).contains("key"));
}

#[tokio::test]
async fn twos_keys_are_at_most_200_characters() {
    let body = json!({ "key": "k".repeat(201), "value": 1 }).to_string();
    let reply = call(Method::POST, "/api/agent/memory/put", Some("a"), body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(message(&reply).contains("200"));
}

#[tokio::test]
async fn oversized_bodies_are_413_in_each_family_body() {
    let big = json!({ "key": "k", "value": "x".repeat(1024 * 1024) }).to_string();
    let reply = call(Method::POST, "/api/memory", Some("a"), big.clone()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    message(&reply);
    let reply = call(Method::PUT, "/agents/a/memory/k", None, big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["error"]["category"], "QuotaExceeded");
}

#[tokio::test]
async fn cross_agent_access_is_a_memory_violation() {
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let reply = call(
            method.clone(),
            "/agents/agent-b/memory/k",
            Some("agent-a"),
            r#"{"value":1}"#,
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method}");
        assert_eq!(
            reply.body,
            json!({ "error": {
                "category": "MemoryViolation",
                "message": "Cross-agent memory access denied",
                "details": { "caller": "agent-a", "scope_owner": "agent-b" },
            } })
        );
    }
    let reply = call(
        Method::GET,
        "/agents/agent-b/memory",
        Some("agent-a"),
        Body::empty(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn grant_routes_check_identity_and_bodies_before_the_backend() {
    for (method, uri) in [
        (Method::POST, "/api/memory/grant"),
        (Method::POST, "/api/memory/revoke"),
        (Method::GET, "/api/memory/grants"),
    ] {
        let reply = call(method, uri, None, r#"{"grantee":"0xb","mode":"read"}"#).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(message(&reply).contains("X-Agent-Id"), "{uri}");
    }
    for (uri, body) in [
        ("/api/memory/grant", r#"{"mode":"read"}"#),
        ("/api/memory/grant", r#"{"grantee":"0xb"}"#),
        ("/api/memory/grant", r#"{"grantee":"0xb","mode":"write"}"#),
        (
            "/api/memory/grant",
            r#"{"grantee":"0xb","mode":"read","ttlSeconds":"60"}"#,
        ),
        ("/api/memory/revoke", "{}"),
        ("/api/memory/revoke", r#"{"grantee":7}"#),
    ] {
        let reply = call(Method::POST, uri, Some("0xa"), body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri} {body}");
        message(&reply);
    }
    let reply = call(Method::GET, "/api/memory/grant", Some("0xa"), Body::empty()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn agent402_owner_is_decided_by_the_memory_service() {
    // The gateway forwards `owner` and lets the memory service decide; with
    // the service down that is a 503, never a silent fall-back to the
    // caller's own namespace.
    let body = r#"{"key":"k","expected":null,"value":1,"owner":"0xother"}"#;
    let reply = call(Method::POST, "/api/memory/cas", Some("0xme"), body).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    message(&reply);
}

/// A client that sends its headers, then its body a little later (as
/// grpc-web transports and streaming uploads do), gets the refusal the
/// headers alone decide, on a connection that stays open for its next call.
#[tokio::test]
async fn a_refusal_waits_for_the_body_and_keeps_the_connection() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tessera_runtime::Shutdown::new();
    tokio::spawn(tessera_gateway::serve(
        listener,
        app().await,
        shutdown.clone(),
    ));

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let body = r#"{"key":"k","value":1}"#;
    for _ in 0..2 {
        let head = format!(
            "POST /api/memory HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        writer.write_all(head.as_bytes()).await.unwrap();
        writer.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        // The body still goes through: nothing was answered and closed yet.
        writer.write_all(body.as_bytes()).await.unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).await.unwrap();
        assert!(status.starts_with("HTTP/1.1 401"), "{status:?}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            let line = line.trim_end().to_ascii_lowercase();
            assert_ne!(line, "connection: close", "the connection must stay open");
            if let Some(value) = line.strip_prefix("content-length: ") {
                length = value.parse().unwrap();
            }
            if line.is_empty() {
                break;
            }
        }
        let mut answer = vec![0; length];
        reader.read_exact(&mut answer).await.unwrap();
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert!(
            answer["error"].as_str().unwrap().contains("X-Agent-Id"),
            "{answer}"
        );
    }
    shutdown.trigger();
}

/// Native gRPC over HTTP/1.1 cannot carry its trailers (the status, the
/// settlement): it is refused before it is quoted, served or charged.
#[tokio::test]
async fn grpc_over_http1_is_refused_before_anything_runs() {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/tessera.memory.v1.MemoryService/Get")
        .header("content-type", "application/grpc")
        .header("x-agent-id", "agent-1")
        .body(Body::from(vec![0u8, 0, 0, 0, 0]))
        .unwrap();
    let response = app().await.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let status = tonic::Status::from_header_map(response.headers()).expect("a gRPC status");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        tessera_error::Error::from_status(&status).reason,
        "GRPC_NEEDS_HTTP2"
    );
}
