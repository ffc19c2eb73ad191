//! End to end: HTTP through the gateway to a real memory gRPC server on the
//! embedded (SQLite) store. Each test gets its own database and ports.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_gateway::GatewayConfig;
use tessera_memory::embedded::EmbeddedStore;
use tessera_memory::{Limits, Memory};
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::Shutdown;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

struct Harness {
    base: String,
    http: reqwest::Client,
    shutdown: Shutdown,
    gateway: Option<JoinHandle<anyhow::Result<()>>>,
    dir: PathBuf,
}

struct Reply {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

impl Harness {
    async fn start(limits: Limits) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tessera-gateway-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = EmbeddedStore::open(&dir.join("memory.db"), limits)
            .await
            .unwrap();
        let memory = Memory::new(Arc::new(store), limits);
        let shutdown = Shutdown::new();

        let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let memory_url = format!("http://{}", grpc_listener.local_addr().unwrap());
        let grpc = GrpcServer::new(
            tessera_memory::grpc::SERVICE_NAME,
            tessera_memory::grpc::server(memory),
        );
        tokio::spawn(grpc.serve(grpc_listener, shutdown.clone()));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = GatewayConfig {
            listen_addr: listener.local_addr().unwrap(),
            memory_url,
            free_mode: true,
        };
        let router = tessera_gateway::router(&config).await.unwrap();
        let gateway = tokio::spawn(tessera_gateway::serve(listener, router, shutdown.clone()));
        Harness {
            base,
            http: reqwest::Client::new(),
            shutdown,
            gateway: Some(gateway),
            dir,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Reply { status, etag, body }
    }

    async fn get(&self, path: &str, agent: &str) -> Reply {
        self.send(Method::GET, path, &[("x-agent-id", agent)], None)
            .await
    }

    async fn post(&self, path: &str, agent: &str, body: Value) -> Reply {
        self.send(Method::POST, path, &[("x-agent-id", agent)], Some(body))
            .await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn flat_error(reply: &Reply) -> &str {
    reply.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not a flat error body: {}", reply.body))
}

#[tokio::test]
async fn agent402_set_get_list_delete() {
    let h = Harness::start(Limits::default()).await;
    let value = json!({ "b": 2, "a": [1, "x", null] });
    let set = h
        .post(
            "/api/memory",
            "0xabc",
            json!({ "key": "notes/1", "value": value, "ttlSeconds": 60 }),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["key"], "notes/1");
    assert_eq!(set.body["value"], value);
    assert_eq!(set.body["owner"], "0xabc");
    assert!(set.body["etag"].is_string() && set.body["sizeBytes"].as_u64().unwrap() > 0);
    assert!(
        (now_seconds() - 2..=now_seconds() + 1).contains(&set.body["createdAt"].as_i64().unwrap())
    );
    let expires = set.body["expiresAt"].as_i64().unwrap();
    assert!(
        (now_seconds() + 58..=now_seconds() + 61).contains(&expires),
        "{expires}"
    );

    let got = h.get("/api/memory?key=notes/1", "0xabc").await;
    assert_eq!((got.status, &got.body), (StatusCode::OK, &set.body));

    let list = h.get("/api/memory?prefix=notes/", "0xabc").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.body,
        json!({ "owner": "0xabc", "keys": ["notes/1"], "entries": [set.body], "nextCursor": null })
    );

    // Namespaces are the caller's own.
    assert_eq!(
        h.get("/api/memory?key=notes/1", "0xdef").await.status,
        StatusCode::NOT_FOUND
    );

    let stale = h
        .send(
            Method::POST,
            "/api/memory",
            &[("x-agent-id", "0xabc"), ("if-match", "\"999\"")],
            Some(json!({ "key": "notes/1", "value": 2 })),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    flat_error(&stale);
    let etag = set.body["etag"].as_str().unwrap();
    let fresh = h
        .send(
            Method::POST,
            "/api/memory",
            &[("x-agent-id", "0xabc"), ("if-match", etag)],
            Some(json!({ "key": "notes/1", "value": 2 })),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert!(fresh.body["revision"].as_u64() > set.body["revision"].as_u64());
    assert_eq!(fresh.body["expiresAt"], Value::Null);

    let deleted = h
        .post(
            "/api/memory",
            "0xabc",
            json!({ "key": "notes/1", "delete": true }),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["deleted"], true);
    assert_eq!(deleted.body["owner"], "0xabc");
    assert!(deleted.body["revision"].as_u64() > fresh.body["revision"].as_u64());
    let missing = h.get("/api/memory?key=notes/1", "0xabc").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    flat_error(&missing);
    let again = h
        .post(
            "/api/memory",
            "0xabc",
            json!({ "key": "notes/1", "delete": true }),
        )
        .await;
    assert_eq!(again.body["deleted"], false);
}

#[tokio::test]
async fn agent402_cas_is_a_lock() {
    let h = Harness::start(Limits::default()).await;
    let acquire =
        json!({ "key": "locks/import", "expected": null, "value": "agent-7", "ttlSeconds": 30 });
    let first = h.post("/api/memory/cas", "0xabc", acquire.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["swapped"], true);
    assert_eq!(first.body["value"], "agent-7");
    assert_eq!(first.body["owner"], "0xabc");
    assert!(first.body["expiresAt"].as_i64().unwrap() >= now_seconds() + 28);
    let fencing = first.body["revision"].as_u64().unwrap();

    let contended = h
        .post(
            "/api/memory/cas",
            "0xabc",
            json!({ "key": "locks/import", "value": "agent-8" }),
        )
        .await;
    assert_eq!(contended.body["swapped"], false);
    assert_eq!(contended.body["value"], "agent-7");
    assert_eq!(contended.body["revision"].as_u64().unwrap(), fencing);

    let release = h
        .post(
            "/api/memory/cas",
            "0xabc",
            json!({ "key": "locks/import", "expected": "agent-7" }),
        )
        .await;
    assert_eq!(release.body["swapped"], true);
    assert_eq!(release.body["value"], Value::Null);
    assert_eq!(release.body["expiresAt"], Value::Null);

    let reacquire = h.post("/api/memory/cas", "0xabc", acquire).await;
    assert_eq!(reacquire.body["swapped"], true);
    assert!(reacquire.body["revision"].as_u64().unwrap() > fencing);
}

#[tokio::test]
async fn agent402_incr_counts_exactly() {
    let h = Harness::start(Limits::default()).await;
    let one = h
        .post("/api/memory/incr", "0xabc", json!({ "key": "n" }))
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body["value"], 1);
    assert_eq!(one.body["owner"], "0xabc");
    assert_eq!(one.body["expiresAt"], Value::Null);
    let big = h
        .post(
            "/api/memory/incr",
            "0xabc",
            json!({ "key": "n", "by": 9_007_199_254_740_992u64 }),
        )
        .await;
    assert_eq!(big.body["value"], json!(9_007_199_254_740_993u64));
    let down = h
        .post(
            "/api/memory/incr",
            "0xabc",
            json!({ "key": "n", "by": -3, "ttlSeconds": 60 }),
        )
        .await;
    assert_eq!(down.body["value"], json!(9_007_199_254_740_990u64));
    assert!(down.body["expiresAt"].is_i64());
    let half = h
        .post(
            "/api/memory/incr",
            "0xabc",
            json!({ "key": "f", "by": 0.5 }),
        )
        .await;
    assert_eq!(half.body["value"], 0.5);

    h.post(
        "/api/memory",
        "0xabc",
        json!({ "key": "s", "value": "text" }),
    )
    .await;
    let not_a_number = h
        .post("/api/memory/incr", "0xabc", json!({ "key": "s" }))
        .await;
    assert!(
        not_a_number.status.is_client_error(),
        "{}",
        not_a_number.status
    );
    flat_error(&not_a_number);
}

#[tokio::test]
async fn service_side_validation_renders_in_the_family_body() {
    let h = Harness::start(Limits::default()).await;
    let zero_ttl = h
        .post(
            "/api/memory",
            "0xabc",
            json!({ "key": "k", "value": 1, "ttlSeconds": 0 }),
        )
        .await;
    assert_eq!(zero_ttl.status, StatusCode::BAD_REQUEST);
    assert!(flat_error(&zero_ttl).contains("ttlSeconds"));
    let bad_namespace = h
        .post(
            "/api/memory",
            "no spaces allowed",
            json!({ "key": "k", "value": 1 }),
        )
        .await;
    assert_eq!(bad_namespace.status, StatusCode::BAD_REQUEST);
    flat_error(&bad_namespace);
    assert_eq!(
        h.get("/api/memory?key=k", "0xabc").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn twos_put_get_list_delete() {
    let h = Harness::start(Limits::default()).await;
    let put = h
        .post(
            "/api/agent/memory/put",
            "pubkey-1",
            json!({ "key": "example", "value": { "n": 1 } }),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let etag = put.body["etag"].as_str().unwrap().to_string();
    assert_eq!(put.etag, Some(format!("\"{etag}\"")));
    let created = put.body["createdAt"].as_str().unwrap();
    assert!(
        created.len() == 24 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    assert_eq!(put.body["expiresAt"], Value::Null);
    assert!(put.body["sizeBytes"].is_u64() && put.body["revision"].is_u64());

    let got = h.get("/api/agent/memory/get?key=example", "pubkey-1").await;
    assert_eq!(
        (got.status, &got.body, &got.etag),
        (StatusCode::OK, &put.body, &put.etag)
    );

    let leased = h
        .post(
            "/api/agent/memory/put",
            "pubkey-1",
            json!({ "key": "lease", "value": true, "ttlSeconds": 30 }),
        )
        .await;
    assert!(leased.body["expiresAt"].as_str().unwrap().ends_with('Z'));

    let page = h.get("/api/agent/memory/list?limit=1", "pubkey-1").await;
    assert_eq!(page.body["entries"].as_array().unwrap().len(), 1);
    let cursor = page.body["nextCursor"].as_str().unwrap().to_string();
    let rest = h
        .get(
            &format!("/api/agent/memory/list?limit=1&cursor={cursor}"),
            "pubkey-1",
        )
        .await;
    assert_eq!(rest.status, StatusCode::OK, "{}", rest.body);
    assert_eq!(rest.body["entries"].as_array().unwrap().len(), 1);
    assert_ne!(
        rest.body["entries"][0]["key"],
        page.body["entries"][0]["key"]
    );

    let stale = h
        .send(
            Method::POST,
            "/api/agent/memory/put",
            &[("x-agent-id", "pubkey-1"), ("if-match", "\"12345\"")],
            Some(json!({ "key": "example", "value": 2 })),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    flat_error(&stale);

    let deleted = h
        .post(
            "/api/agent/memory/delete",
            "pubkey-1",
            json!({ "key": "example" }),
        )
        .await;
    assert_eq!(deleted.body, json!({ "key": "example", "deleted": true }));
    let again = h
        .post(
            "/api/agent/memory/delete",
            "pubkey-1",
            json!({ "key": "example" }),
        )
        .await;
    assert_eq!(
        (again.status, again.body),
        (
            StatusCode::OK,
            json!({ "key": "example", "deleted": false })
        )
    );
    let missing = h.get("/api/agent/memory/get?key=example", "pubkey-1").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    flat_error(&missing);
}

#[tokio::test]
async fn per_agent_memory_matches_the_docs() {
    let h = Harness::start(Limits::default()).await;
    let put = h
        .send(
            Method::PUT,
            "/agents/agent-a/memory/escalation_threshold",
            &[],
            Some(json!({ "value": 5 })),
        )
        .await;
    assert_eq!(
        (put.status, put.body),
        (
            StatusCode::OK,
            json!({ "key": "escalation_threshold", "value": 5 })
        )
    );
    let put = h
        .send(
            Method::PUT,
            "/agents/agent-a/memory/dir/notes",
            &[],
            Some(json!({ "value": "CLM-2026-142" })),
        )
        .await;
    assert_eq!(
        put.body,
        json!({ "key": "dir/notes", "value": "CLM-2026-142" })
    );

    let got = h
        .send(
            Method::GET,
            "/agents/agent-a/memory/escalation_threshold",
            &[],
            None,
        )
        .await;
    assert_eq!(
        got.body,
        json!({ "key": "escalation_threshold", "value": 5 })
    );
    let all = h
        .send(
            Method::GET,
            "/agents/agent-a/memory",
            &[("x-agent-id", "agent-a")],
            None,
        )
        .await;
    assert_eq!(
        all.body,
        json!({ "agent_id": "agent-a", "entries": { "escalation_threshold": 5, "dir/notes": "CLM-2026-142" } })
    );

    // One namespace behind every face.
    let via_twos = h
        .get("/api/agent/memory/get?key=dir/notes", "agent-a")
        .await;
    assert_eq!(via_twos.body["value"], "CLM-2026-142");

    let deleted = h
        .send(
            Method::DELETE,
            "/agents/agent-a/memory/escalation_threshold",
            &[],
            None,
        )
        .await;
    assert_eq!(
        (deleted.status, deleted.body),
        (StatusCode::NO_CONTENT, Value::Null)
    );
    let not_found = json!({ "error": {
        "category": "NotFound",
        "message": "Key 'escalation_threshold' not found in agent memory",
    } });
    let again = h
        .send(
            Method::DELETE,
            "/agents/agent-a/memory/escalation_threshold",
            &[],
            None,
        )
        .await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::NOT_FOUND, &not_found)
    );
    let missing = h
        .send(
            Method::GET,
            "/agents/agent-a/memory/escalation_threshold",
            &[],
            None,
        )
        .await;
    assert_eq!(
        (missing.status, &missing.body),
        (StatusCode::NOT_FOUND, &not_found)
    );

    let empty = h
        .send(Method::GET, "/agents/agent-b/memory", &[], None)
        .await;
    assert_eq!(empty.body, json!({ "agent_id": "agent-b", "entries": {} }));
}

#[tokio::test]
async fn quota_errors_are_413_in_each_family_body() {
    let limits = Limits {
        max_keys: 1,
        ..Limits::default()
    };
    let h = Harness::start(limits).await;
    let first = h
        .send(
            Method::PUT,
            "/agents/agent-a/memory/one",
            &[],
            Some(json!({ "value": 1 })),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let second = h
        .send(
            Method::PUT,
            "/agents/agent-a/memory/two",
            &[],
            Some(json!({ "value": 2 })),
        )
        .await;
    assert_eq!(second.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(second.body["error"]["category"], "QuotaExceeded");
    let second = h
        .post(
            "/api/memory",
            "agent-a",
            json!({ "key": "two", "value": 2 }),
        )
        .await;
    assert_eq!(second.status, StatusCode::PAYLOAD_TOO_LARGE);
    flat_error(&second);
}

#[tokio::test]
async fn ready_then_graceful_shutdown() {
    let mut h = Harness::start(Limits::default()).await;
    let ready = h.send(Method::GET, "/ready", &[], None).await;
    assert_eq!(
        (ready.status, ready.body),
        (StatusCode::OK, json!({ "status": "ready" }))
    );
    h.shutdown.trigger();
    let gateway = h.gateway.take().unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(10), gateway).await;
    stopped
        .expect("the gateway drains and stops")
        .unwrap()
        .unwrap();
}
