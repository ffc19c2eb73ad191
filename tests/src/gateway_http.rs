//! End to end over HTTP: the gateway, in process, in front of a real memory
//! gRPC server, written once and run against every backend
//! (`tests/gateway_http_embedded.rs`, `tests/gateway_http_redis_postgres.rs`).
//! Every agent id is fresh per case and per run, so the backends can be
//! shared servers that outlive the tests.

use crate::harness::{unique_namespace, MemoryServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_gateway::GatewayConfig;
use tessera_memory::{Limits, Memory};
use tessera_runtime::grpc_auth::ServiceToken;
use tessera_runtime::Shutdown;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Generates one `#[tokio::test]` per case for a backend factory
/// `async fn(Limits) -> Memory`.
#[macro_export]
macro_rules! gateway_http_suite {
    ($factory:path) => {
        $crate::gateway_http_suite!($factory, start);
    };
    ($factory:path, $start:ident) => {
        $crate::gateway_http_suite!(@cases $factory, $start;
            agent402_set_get_list_delete,
            agent402_cas_is_a_lock,
            agent402_incr_counts_exactly,
            service_side_validation_renders_in_the_family_body,
            twos_put_get_list_delete,
            per_agent_memory_matches_the_docs,
            quota_errors_are_413_in_each_family_body,
            ready_then_graceful_shutdown,
            agent402_grant_revoke_and_list_shapes,
            agent402_owner_needs_a_grant_on_every_route,
            per_agent_and_twos_faces_ignore_grants,
        );
    };
    (@cases $factory:path, $start:ident; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let memory = $factory($crate::gateway_http::limits_for(stringify!($case))).await;
                let harness = $crate::gateway_http::GatewayHarness::$start(memory).await;
                $crate::gateway_http::$case(harness).await;
            }
        )*
    };
}

/// A one-key quota for the quota case, the defaults elsewhere.
pub fn limits_for(case: &str) -> Limits {
    match case {
        "quota_errors_are_413_in_each_family_body" => Limits {
            max_keys: 1,
            ..Limits::default()
        },
        _ => Limits::default(),
    }
}

/// A memory server for a backend and, in front of it, the gateway (in free
/// mode) on a free port. Both stop when it drops.
pub struct GatewayHarness {
    base: String,
    http: reqwest::Client,
    shutdown: Shutdown,
    gateway: Option<JoinHandle<anyhow::Result<()>>>,
    /// The memory server the gateway calls over the network, if it does.
    _memory: Option<MemoryServer>,
}

/// What came back: status, `ETag` header, and the JSON body (`Null` when
/// empty).
pub struct Reply {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub body: Value,
}

impl GatewayHarness {
    /// The gateway calling a memory server over gRPC on a loopback port.
    pub async fn start(memory: Memory) -> Self {
        let server = MemoryServer::start(memory).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen_addr = listener.local_addr().unwrap();
        let config = GatewayConfig {
            listen_addr,
            memory_url: server.url(),
            free_mode: true,
            ..Default::default()
        };
        let backends = tessera_gateway::Backends {
            memory: tessera_gateway::MemoryClient::connect_lazy(
                &config.memory_url,
                ServiceToken::none(),
            )
            .unwrap(),
            tools: crate::harness::tools_in_process(),
            pow: crate::harness::pow_client(crate::harness::pow_service(16).await),
            discovery: crate::harness::discovery_in_process(),
            stats: crate::harness::stats_in_process().await,
        };
        let router = tessera_gateway::router_with(&config, backends)
            .await
            .unwrap();
        Self::serve(listener, router, Some(server))
    }

    /// The gateway calling the memory service in process, as the
    /// all-in-one does.
    pub async fn start_in_process(memory: Memory) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = GatewayConfig {
            listen_addr: listener.local_addr().unwrap(),
            free_mode: true,
            ..Default::default()
        };
        let backends = tessera_gateway::Backends {
            memory: tessera_gateway::MemoryClient::in_process(
                tessera_memory::grpc::server(memory),
                ServiceToken::none(),
            ),
            tools: crate::harness::tools_in_process(),
            pow: crate::harness::pow_client(crate::harness::pow_service(16).await),
            discovery: crate::harness::discovery_in_process(),
            stats: crate::harness::stats_in_process().await,
        };
        let router = tessera_gateway::router_with(&config, backends)
            .await
            .unwrap();
        Self::serve(listener, router, None)
    }

    fn serve(listener: TcpListener, router: axum::Router, memory: Option<MemoryServer>) -> Self {
        let listen_addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let gateway = tokio::spawn(tessera_gateway::serve(listener, router, shutdown.clone()));
        GatewayHarness {
            base: format!("http://{listen_addr}"),
            http: reqwest::Client::new(),
            shutdown,
            gateway: Some(gateway),
            _memory: memory,
        }
    }

    /// The gateway's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Tells the gateway to stop accepting and drain.
    pub fn trigger_shutdown(&self) {
        self.shutdown.trigger();
    }

    /// The gateway's serving task, once.
    pub fn take_gateway(&mut self) -> JoinHandle<anyhow::Result<()>> {
        self.gateway
            .take()
            .expect("the gateway task was already taken")
    }

    pub async fn send(
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

    /// GET as `agent` (the `X-Agent-Id` header).
    pub async fn get(&self, path: &str, agent: &str) -> Reply {
        self.send(Method::GET, path, &[("x-agent-id", agent)], None)
            .await
    }

    /// POST a JSON body as `agent` (the `X-Agent-Id` header).
    pub async fn post(&self, path: &str, agent: &str, body: Value) -> Reply {
        self.send(Method::POST, path, &[("x-agent-id", agent)], Some(body))
            .await
    }
}

impl Drop for GatewayHarness {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A fresh agent id (and so memory namespace).
fn agent(label: &str) -> String {
    unique_namespace(&format!("gw-{label}"))
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

pub async fn agent402_set_get_list_delete(h: GatewayHarness) {
    let owner = agent("a402-owner");
    let other = agent("a402-other");
    let value = json!({ "b": 2, "a": [1, "x", null] });
    let set = h
        .post(
            "/api/memory",
            &owner,
            json!({ "key": "notes/1", "value": value, "ttlSeconds": 60 }),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["key"], "notes/1");
    assert_eq!(set.body["value"], value);
    assert_eq!(set.body["owner"], owner.as_str());
    assert!(set.body["etag"].is_string() && set.body["sizeBytes"].as_u64().unwrap() > 0);
    assert!(
        (now_seconds() - 2..=now_seconds() + 1).contains(&set.body["createdAt"].as_i64().unwrap())
    );
    let expires = set.body["expiresAt"].as_i64().unwrap();
    assert!(
        (now_seconds() + 58..=now_seconds() + 61).contains(&expires),
        "{expires}"
    );

    let got = h.get("/api/memory?key=notes/1", &owner).await;
    assert_eq!((got.status, &got.body), (StatusCode::OK, &set.body));

    let list = h.get("/api/memory?prefix=notes/", &owner).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.body,
        json!({ "owner": owner, "keys": ["notes/1"], "entries": [set.body], "nextCursor": null })
    );

    // Namespaces are the caller's own.
    assert_eq!(
        h.get("/api/memory?key=notes/1", &other).await.status,
        StatusCode::NOT_FOUND
    );

    let stale = h
        .send(
            Method::POST,
            "/api/memory",
            &[("x-agent-id", &owner), ("if-match", "\"999\"")],
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
            &[("x-agent-id", &owner), ("if-match", etag)],
            Some(json!({ "key": "notes/1", "value": 2 })),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert!(fresh.body["revision"].as_u64() > set.body["revision"].as_u64());
    assert_eq!(fresh.body["expiresAt"], Value::Null);

    let deleted = h
        .post(
            "/api/memory",
            &owner,
            json!({ "key": "notes/1", "delete": true }),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["deleted"], true);
    assert_eq!(deleted.body["owner"], owner.as_str());
    assert!(deleted.body["revision"].as_u64() > fresh.body["revision"].as_u64());
    let missing = h.get("/api/memory?key=notes/1", &owner).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    flat_error(&missing);
    let again = h
        .post(
            "/api/memory",
            &owner,
            json!({ "key": "notes/1", "delete": true }),
        )
        .await;
    assert_eq!(again.body["deleted"], false);
}

pub async fn agent402_cas_is_a_lock(h: GatewayHarness) {
    let owner = agent("a402-cas");
    let acquire =
        json!({ "key": "locks/import", "expected": null, "value": "agent-7", "ttlSeconds": 30 });
    let first = h.post("/api/memory/cas", &owner, acquire.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["swapped"], true);
    assert_eq!(first.body["value"], "agent-7");
    assert_eq!(first.body["owner"], owner.as_str());
    assert!(first.body["expiresAt"].as_i64().unwrap() >= now_seconds() + 28);
    let fencing = first.body["revision"].as_u64().unwrap();

    let contended = h
        .post(
            "/api/memory/cas",
            &owner,
            json!({ "key": "locks/import", "value": "agent-8" }),
        )
        .await;
    assert_eq!(contended.body["swapped"], false);
    assert_eq!(contended.body["value"], "agent-7");
    assert_eq!(contended.body["revision"].as_u64().unwrap(), fencing);

    let release = h
        .post(
            "/api/memory/cas",
            &owner,
            json!({ "key": "locks/import", "expected": "agent-7" }),
        )
        .await;
    assert_eq!(release.body["swapped"], true);
    assert_eq!(release.body["value"], Value::Null);
    assert_eq!(release.body["expiresAt"], Value::Null);

    let reacquire = h.post("/api/memory/cas", &owner, acquire).await;
    assert_eq!(reacquire.body["swapped"], true);
    assert!(reacquire.body["revision"].as_u64().unwrap() > fencing);
}

pub async fn agent402_incr_counts_exactly(h: GatewayHarness) {
    let owner = agent("a402-incr");
    let one = h
        .post("/api/memory/incr", &owner, json!({ "key": "n" }))
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body["value"], 1);
    assert_eq!(one.body["owner"], owner.as_str());
    assert_eq!(one.body["expiresAt"], Value::Null);
    let big = h
        .post(
            "/api/memory/incr",
            &owner,
            json!({ "key": "n", "by": 9_007_199_254_740_992u64 }),
        )
        .await;
    assert_eq!(big.body["value"], json!(9_007_199_254_740_993u64));
    let down = h
        .post(
            "/api/memory/incr",
            &owner,
            json!({ "key": "n", "by": -3, "ttlSeconds": 60 }),
        )
        .await;
    assert_eq!(down.body["value"], json!(9_007_199_254_740_990u64));
    assert!(down.body["expiresAt"].is_i64());
    let half = h
        .post("/api/memory/incr", &owner, json!({ "key": "f", "by": 0.5 }))
        .await;
    assert_eq!(half.body["value"], 0.5);

    h.post(
        "/api/memory",
        &owner,
        json!({ "key": "s", "value": "text" }),
    )
    .await;
    let not_a_number = h
        .post("/api/memory/incr", &owner, json!({ "key": "s" }))
        .await;
    assert!(
        not_a_number.status.is_client_error(),
        "{}",
        not_a_number.status
    );
    flat_error(&not_a_number);
}

pub async fn service_side_validation_renders_in_the_family_body(h: GatewayHarness) {
    let owner = agent("validation");
    let zero_ttl = h
        .post(
            "/api/memory",
            &owner,
            json!({ "key": "k", "value": 1, "ttlSeconds": 0 }),
        )
        .await;
    assert_eq!(zero_ttl.status, StatusCode::BAD_REQUEST);
    assert!(flat_error(&zero_ttl).contains("ttlSeconds"));
    // Not a valid namespace, so it never names one anything could land in.
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
        h.get("/api/memory?key=k", &owner).await.status,
        StatusCode::NOT_FOUND
    );
}

pub async fn twos_put_get_list_delete(h: GatewayHarness) {
    let owner = agent("twos");
    let put = h
        .post(
            "/api/agent/memory/put",
            &owner,
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

    let got = h.get("/api/agent/memory/get?key=example", &owner).await;
    assert_eq!(
        (got.status, &got.body, &got.etag),
        (StatusCode::OK, &put.body, &put.etag)
    );

    let leased = h
        .post(
            "/api/agent/memory/put",
            &owner,
            json!({ "key": "lease", "value": true, "ttlSeconds": 30 }),
        )
        .await;
    assert!(leased.body["expiresAt"].as_str().unwrap().ends_with('Z'));

    let page = h.get("/api/agent/memory/list?limit=1", &owner).await;
    assert_eq!(page.body["entries"].as_array().unwrap().len(), 1);
    let cursor = page.body["nextCursor"].as_str().unwrap().to_string();
    let rest = h
        .get(
            &format!("/api/agent/memory/list?limit=1&cursor={cursor}"),
            &owner,
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
            &[("x-agent-id", &owner), ("if-match", "\"12345\"")],
            Some(json!({ "key": "example", "value": 2 })),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    flat_error(&stale);

    let deleted = h
        .post(
            "/api/agent/memory/delete",
            &owner,
            json!({ "key": "example" }),
        )
        .await;
    assert_eq!(deleted.body, json!({ "key": "example", "deleted": true }));
    let again = h
        .post(
            "/api/agent/memory/delete",
            &owner,
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
    let missing = h.get("/api/agent/memory/get?key=example", &owner).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    flat_error(&missing);
}

pub async fn per_agent_memory_matches_the_docs(h: GatewayHarness) {
    let a = agent("agents-a");
    let b = agent("agents-b");
    let put = h
        .send(
            Method::PUT,
            &format!("/agents/{a}/memory/escalation_threshold"),
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
            &format!("/agents/{a}/memory/dir/notes"),
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
            &format!("/agents/{a}/memory/escalation_threshold"),
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
            &format!("/agents/{a}/memory"),
            &[("x-agent-id", &a)],
            None,
        )
        .await;
    assert_eq!(
        all.body,
        json!({ "agent_id": a, "entries": { "escalation_threshold": 5, "dir/notes": "CLM-2026-142" } })
    );

    // One namespace behind every face.
    let via_twos = h.get("/api/agent/memory/get?key=dir/notes", &a).await;
    assert_eq!(via_twos.body["value"], "CLM-2026-142");

    let deleted = h
        .send(
            Method::DELETE,
            &format!("/agents/{a}/memory/escalation_threshold"),
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
            &format!("/agents/{a}/memory/escalation_threshold"),
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
            &format!("/agents/{a}/memory/escalation_threshold"),
            &[],
            None,
        )
        .await;
    assert_eq!(
        (missing.status, &missing.body),
        (StatusCode::NOT_FOUND, &not_found)
    );

    let empty = h
        .send(Method::GET, &format!("/agents/{b}/memory"), &[], None)
        .await;
    assert_eq!(empty.body, json!({ "agent_id": b, "entries": {} }));
}

pub async fn quota_errors_are_413_in_each_family_body(h: GatewayHarness) {
    let a = agent("quota");
    let first = h
        .send(
            Method::PUT,
            &format!("/agents/{a}/memory/one"),
            &[],
            Some(json!({ "value": 1 })),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let second = h
        .send(
            Method::PUT,
            &format!("/agents/{a}/memory/two"),
            &[],
            Some(json!({ "value": 2 })),
        )
        .await;
    assert_eq!(second.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(second.body["error"]["category"], "QuotaExceeded");
    let second = h
        .post("/api/memory", &a, json!({ "key": "two", "value": 2 }))
        .await;
    assert_eq!(second.status, StatusCode::PAYLOAD_TOO_LARGE);
    flat_error(&second);
}

pub async fn ready_then_graceful_shutdown(mut h: GatewayHarness) {
    let ready = h.send(Method::GET, "/ready", &[], None).await;
    assert_eq!(
        (ready.status, ready.body),
        (StatusCode::OK, json!({ "status": "ready" }))
    );
    h.trigger_shutdown();
    let gateway = h.take_gateway();
    let stopped = tokio::time::timeout(Duration::from_secs(10), gateway).await;
    stopped
        .expect("the gateway drains and stops")
        .unwrap()
        .unwrap();
}

/// The object's keys, sorted: a shape check that catches extra fields.
fn keys_of(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

pub async fn agent402_grant_revoke_and_list_shapes(h: GatewayHarness) {
    let owner = agent("grant-owner");
    // Fresh ids sort by label, so the listing's order is known.
    let (reader, writer) = (agent("grant-b-reader"), agent("grant-c-writer"));

    let granted = h
        .post(
            "/api/memory/grant",
            &owner,
            json!({ "grantee": writer, "mode": "readwrite", "ttlSeconds": 60 }),
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    assert_eq!(
        keys_of(&granted.body),
        ["expiresAt", "grantee", "mode", "owner"]
    );
    assert_eq!(granted.body["owner"], owner.as_str());
    assert_eq!(granted.body["grantee"], writer.as_str());
    assert_eq!(granted.body["mode"], "readwrite");
    let expires = granted.body["expiresAt"].as_i64().unwrap();
    assert!(
        (now_seconds() + 58..=now_seconds() + 61).contains(&expires),
        "{expires}"
    );

    let forever = h
        .post(
            "/api/memory/grant",
            &owner,
            json!({ "grantee": reader, "mode": "read" }),
        )
        .await;
    assert_eq!(
        (forever.status, &forever.body),
        (
            StatusCode::OK,
            &json!({ "owner": owner, "grantee": reader, "mode": "read", "expiresAt": null })
        )
    );

    let listed = h.get("/api/memory/grants", &owner).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.body,
        json!({ "owner": owner, "grants": [
            { "grantee": reader, "mode": "read", "active": true, "expiresAt": null },
            { "grantee": writer, "mode": "readwrite", "active": true, "expiresAt": expires },
        ] })
    );
    // A grantee's list holds what it gives, not what it got.
    assert_eq!(
        h.get("/api/memory/grants", &writer).await.body,
        json!({ "owner": writer, "grants": [] })
    );

    // Granting again replaces mode and expiry.
    let replaced = h
        .post(
            "/api/memory/grant",
            &owner,
            json!({ "grantee": writer, "mode": "read" }),
        )
        .await;
    assert_eq!(replaced.body["mode"], "read");
    assert_eq!(replaced.body["expiresAt"], Value::Null);
    let listed = h.get("/api/memory/grants", &owner).await;
    assert_eq!(
        listed.body["grants"][1],
        json!({ "grantee": writer, "mode": "read", "active": true, "expiresAt": null })
    );

    let revoked = h
        .post("/api/memory/revoke", &owner, json!({ "grantee": writer }))
        .await;
    assert_eq!(
        (revoked.status, &revoked.body),
        (
            StatusCode::OK,
            &json!({ "owner": owner, "grantee": writer, "revoked": true })
        )
    );
    let again = h
        .post("/api/memory/revoke", &owner, json!({ "grantee": writer }))
        .await;
    assert_eq!(
        again.body,
        json!({ "owner": owner, "grantee": writer, "revoked": false })
    );
    assert_eq!(
        h.get("/api/memory/grants", &owner).await.body["grants"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Refusals are 400 in the flat body.
    for body in [
        json!({ "grantee": owner, "mode": "read" }),
        json!({ "grantee": "not a namespace", "mode": "read" }),
        json!({ "grantee": reader, "mode": "write" }),
        json!({ "grantee": reader, "mode": "read", "ttlSeconds": 0 }),
    ] {
        let refused = h.post("/api/memory/grant", &owner, body.clone()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(keys_of(&refused.body), ["error"], "{body}");
        flat_error(&refused);
    }
    let self_grant = h
        .post(
            "/api/memory/grant",
            &owner,
            json!({ "grantee": owner, "mode": "readwrite" }),
        )
        .await;
    assert!(flat_error(&self_grant).contains("itself"));
    // Nothing above changed the reader's grant.
    assert_eq!(
        h.get("/api/memory/grants", &owner).await.body["grants"][0]["mode"],
        "read"
    );
}

/// Every agent402 memory route, as `caller` on `owner`'s namespace.
async fn owner_calls(h: &GatewayHarness, caller: &str, owner: &str) -> Vec<(&'static str, Reply)> {
    vec![
        (
            "get",
            h.get(&format!("/api/memory?key=k&owner={owner}"), caller)
                .await,
        ),
        (
            "list",
            h.get(&format!("/api/memory?owner={owner}"), caller).await,
        ),
        (
            "set",
            h.post(
                "/api/memory",
                caller,
                json!({ "key": "k", "value": 2, "owner": owner }),
            )
            .await,
        ),
        (
            "set new",
            h.post(
                "/api/memory",
                caller,
                json!({ "key": "new", "value": 2, "owner": owner }),
            )
            .await,
        ),
        (
            "cas",
            h.post(
                "/api/memory/cas",
                caller,
                json!({ "key": "k", "expected": 1, "value": 3, "owner": owner }),
            )
            .await,
        ),
        (
            "incr",
            h.post(
                "/api/memory/incr",
                caller,
                json!({ "key": "n", "by": 10, "owner": owner }),
            )
            .await,
        ),
        (
            "delete",
            h.post(
                "/api/memory",
                caller,
                json!({ "key": "k", "delete": true, "owner": owner }),
            )
            .await,
        ),
    ]
}

fn assert_forbidden(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "{what}: {}",
        reply.body
    );
    assert_eq!(keys_of(&reply.body), ["error"], "{what}");
    assert!(
        flat_error(reply).contains("grant"),
        "{what}: {}",
        reply.body
    );
}

/// `owner`'s namespace as seeded: k = 1, n = 5, nothing else.
async fn assert_owner_untouched(h: &GatewayHarness, owner: &str) {
    let list = h.get("/api/memory", owner).await;
    let mut found: Vec<(String, Value)> = list.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["key"].as_str().unwrap().to_string(), e["value"].clone()))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        [("k".to_string(), json!(1)), ("n".to_string(), json!(5))]
    );
}

pub async fn agent402_owner_needs_a_grant_on_every_route(h: GatewayHarness) {
    let owner = agent("own-owner");
    let caller = agent("own-caller");
    h.post("/api/memory", &owner, json!({ "key": "k", "value": 1 }))
        .await;
    h.post("/api/memory/incr", &owner, json!({ "key": "n", "by": 5 }))
        .await;

    // No grant: every route is 403 and nothing is read or written.
    for (what, reply) in owner_calls(&h, &caller, &owner).await {
        assert_forbidden(&reply, what);
    }
    assert_owner_untouched(&h, &owner).await;
    assert_eq!(
        h.get("/api/memory", &caller).await.body["keys"],
        json!([]),
        "nothing landed in the caller's own namespace"
    );

    // A read grant: get and list, with the owner's namespace as `owner`.
    h.post(
        "/api/memory/grant",
        &owner,
        json!({ "grantee": caller, "mode": "read" }),
    )
    .await;
    for (what, reply) in owner_calls(&h, &caller, &owner).await {
        match what {
            "get" => {
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                assert_eq!(
                    (&reply.body["value"], &reply.body["owner"]),
                    (&json!(1), &json!(owner))
                );
            }
            "list" => {
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                assert_eq!(reply.body["owner"], owner.as_str());
                assert_eq!(reply.body["entries"].as_array().unwrap().len(), 2);
                assert!(reply.body["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|e| e["owner"] == owner.as_str()));
            }
            _ => assert_forbidden(&reply, what),
        }
    }
    assert_owner_untouched(&h, &owner).await;

    // A readwrite grant: everything, each answer naming the owner.
    h.post(
        "/api/memory/grant",
        &owner,
        json!({ "grantee": caller, "mode": "readwrite" }),
    )
    .await;
    let replies = owner_calls(&h, &caller, &owner).await;
    for (what, reply) in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.body);
        assert_eq!(reply.body["owner"], owner.as_str(), "{what}");
    }
    let by_name = |name: &str| &replies.iter().find(|(w, _)| *w == name).unwrap().1.body;
    assert_eq!(by_name("set")["value"], 2);
    assert_eq!(by_name("cas")["swapped"], false, "k was 2 by then");
    assert_eq!(by_name("incr")["value"], 15);
    assert_eq!(by_name("delete")["deleted"], true);
    let seen = h.get("/api/memory", &owner).await;
    let mut keys: Vec<&str> = seen.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["n", "new"], "the owner sees the grantee's writes");
    assert_eq!(
        h.get("/api/memory", &caller).await.body["keys"],
        json!([]),
        "and the caller's own namespace stays empty"
    );

    // `owner` naming the caller itself needs nothing.
    let own = h
        .post(
            "/api/memory",
            &caller,
            json!({ "key": "mine", "value": true, "owner": caller }),
        )
        .await;
    assert_eq!(
        (own.status, &own.body["owner"]),
        (StatusCode::OK, &json!(caller))
    );

    // Revoked: back to 403, nothing read or written.
    h.post("/api/memory/revoke", &owner, json!({ "grantee": caller }))
        .await;
    h.post("/api/memory", &owner, json!({ "key": "k", "value": 1 }))
        .await;
    h.post("/api/memory", &owner, json!({ "key": "n", "value": 5 }))
        .await;
    h.post(
        "/api/memory",
        &owner,
        json!({ "key": "new", "delete": true }),
    )
    .await;
    for (what, reply) in owner_calls(&h, &caller, &owner).await {
        assert_forbidden(&reply, what);
    }
    assert_owner_untouched(&h, &owner).await;
}

pub async fn per_agent_and_twos_faces_ignore_grants(h: GatewayHarness) {
    let (a, b) = (agent("face-a"), agent("face-b"));
    h.post("/api/memory", &b, json!({ "key": "k", "value": "b's" }))
        .await;
    let granted = h
        .post(
            "/api/memory/grant",
            &b,
            json!({ "grantee": a, "mode": "readwrite" }),
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK);
    // The grant works where grants apply ...
    assert_eq!(
        h.get(&format!("/api/memory?key=k&owner={b}"), &a)
            .await
            .body["value"],
        "b's"
    );
    // ... and never on the per-agent face.
    let violation = json!({ "error": {
        "category": "MemoryViolation",
        "message": "Cross-agent memory access denied",
        "details": { "caller": a, "scope_owner": b },
    } });
    for (method, path, body) in [
        (Method::GET, format!("/agents/{b}/memory/k"), None),
        (Method::GET, format!("/agents/{b}/memory"), None),
        (
            Method::PUT,
            format!("/agents/{b}/memory/k"),
            Some(json!({ "value": 1 })),
        ),
        (Method::DELETE, format!("/agents/{b}/memory/k"), None),
    ] {
        let reply = h
            .send(method.clone(), &path, &[("x-agent-id", &a)], body)
            .await;
        assert_eq!(
            (reply.status, &reply.body),
            (StatusCode::FORBIDDEN, &violation),
            "{method} {path}"
        );
    }
    // The 2s.io face has no owner parameter: it stays in the caller's own.
    let twos = h
        .get(&format!("/api/agent/memory/get?key=k&owner={b}"), &a)
        .await;
    assert_eq!(twos.status, StatusCode::NOT_FOUND);
    let put = h
        .post(
            "/api/agent/memory/put",
            &a,
            json!({ "key": "k", "value": "a's", "owner": b }),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    let untouched = h.get("/api/memory?key=k", &b).await;
    assert_eq!(untouched.body["value"], "b's");
    assert_eq!(untouched.body["revision"], 1);
}
