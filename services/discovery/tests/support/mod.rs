//! Real parts on loopback for the router's tests: a Bazaar-style registry
//! that pages its items, x402 sellers that behave well or badly, and a
//! store on SQLite (a temporary file) or PostgreSQL (a schema of its own,
//! so tests run in parallel).

#![allow(dead_code)]

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_discovery::StoreConfig;

/// USDC on Base, as sellers quote it.
pub const ASSET: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// How a fake seller answers an unpaid call.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 402 with a v2 `PAYMENT-REQUIRED` header quoting `amount` on
    /// `network` (CAIP-2); the body `{}`.
    V2 { network: &'static str, amount: u64 },
    /// 402 with a v1 JSON body quoting `amount` on `network` (a v1 name).
    V1 { network: &'static str, amount: u64 },
    /// A good v2 quote, but only after `delay`.
    Slow { delay: Duration, amount: u64 },
    /// 200 with the goods, unpaid.
    Free,
    /// 402 with a header that is not base64 JSON and an HTML body.
    Garbled,
}

/// A seller on its own origin; any path is a resource.
#[derive(Clone)]
pub struct FakeSeller {
    pub origin: String,
    hits: Arc<AtomicUsize>,
    up: Arc<AtomicBool>,
}

#[derive(Clone)]
struct SellerState {
    behaviour: Behaviour,
    hits: Arc<AtomicUsize>,
    up: Arc<AtomicBool>,
}

impl FakeSeller {
    pub async fn start(behaviour: Behaviour) -> FakeSeller {
        let hits = Arc::new(AtomicUsize::new(0));
        let up = Arc::new(AtomicBool::new(true));
        let state = SellerState {
            behaviour,
            hits: hits.clone(),
            up: up.clone(),
        };
        let router = Router::new().fallback(answer).with_state(state);
        FakeSeller {
            origin: serve(router).await,
            hits,
            up,
        }
    }

    /// The URL of `path` on this seller.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Unpaid calls received.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Down: every call answers 503 until [`FakeSeller::set_up`].
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

fn requirement(network: &str, amount: u64, resource: &str, v1: bool) -> Value {
    let mut requirement = json!({
        "scheme": "exact",
        "network": network,
        // The network's own USDC, so the price is one the router compares.
        "asset": tessera_x402::Network::parse(network)
            .and_then(|network| network.usdc())
            .unwrap_or(ASSET),
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USD Coin", "version": "2"},
    });
    if v1 {
        requirement["maxAmountRequired"] = amount.to_string().into();
        requirement["resource"] = resource.into();
        requirement["description"] = "a resource".into();
    } else {
        requirement["amount"] = amount.to_string().into();
    }
    requirement
}

fn v2_quote(network: &str, amount: u64, resource: &str) -> Response {
    let required = json!({
        "x402Version": 2,
        "error": "PAYMENT-SIGNATURE header is required",
        "resource": {"url": resource},
        "accepts": [requirement(network, amount, resource, false)],
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        "PAYMENT-REQUIRED",
        HeaderValue::from_str(&tessera_x402::encode_header(&required)).unwrap(),
    );
    (StatusCode::PAYMENT_REQUIRED, headers, "{}").into_response()
}

async fn answer(State(state): State<SellerState>, uri: axum::http::Uri) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    if !state.up.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let resource = uri.to_string();
    match state.behaviour {
        Behaviour::V2 { network, amount } => v2_quote(network, amount, &resource),
        Behaviour::V1 { network, amount } => {
            let body = json!({
                "x402Version": 1,
                "error": "X-PAYMENT header is required",
                "accepts": [requirement(network, amount, &resource, true)],
            });
            (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response()
        }
        Behaviour::Slow { delay, amount } => {
            tokio::time::sleep(delay).await;
            v2_quote("eip155:8453", amount, &resource)
        }
        Behaviour::Free => (StatusCode::OK, "sunny, 21 degrees").into_response(),
        Behaviour::Garbled => {
            let mut headers = HeaderMap::new();
            headers.insert(
                "PAYMENT-REQUIRED",
                HeaderValue::from_static("%%not-base64%%"),
            );
            (
                StatusCode::PAYMENT_REQUIRED,
                headers,
                "<html>please pay</html>",
            )
                .into_response()
        }
    }
}

/// A registry item for `resource` in the v2 shape, `lastUpdated` a number.
pub fn v2_item(resource: &str, name: &str, description: &str, network: &str, amount: u64) -> Value {
    json!({
        "resource": resource,
        "type": "http",
        "x402Version": 2,
        "accepts": [requirement(network, amount, resource, false)],
        "lastUpdated": 1_750_000_000,
        "metadata": {"name": name, "description": description, "category": "weather",
                     "provider": "Example Corp"},
    })
}

/// A registry item for `resource` in the v1 shape, `lastUpdated` an ISO
/// string.
pub fn v1_item(resource: &str, name: &str, description: &str, network: &str, amount: u64) -> Value {
    let mut accept = requirement(network, amount, resource, true);
    accept["description"] = description.into();
    json!({
        "resource": resource,
        "type": "http",
        "x402Version": 1,
        "accepts": [accept],
        "lastUpdated": "2025-06-15T08:30:00.000Z",
        "metadata": {"serviceName": name, "category": "weather"},
    })
}

#[derive(Clone)]
struct RegistryState {
    items: Arc<Mutex<Vec<Value>>>,
    page_size: usize,
    up: Arc<AtomicBool>,
    pages: Arc<AtomicU64>,
}

/// A Bazaar-style registry answering at most `page_size` items a page,
/// whatever `limit` asks, with `pagination.total`.
#[derive(Clone)]
pub struct FakeRegistry {
    pub url: String,
    items: Arc<Mutex<Vec<Value>>>,
    up: Arc<AtomicBool>,
    pages: Arc<AtomicU64>,
}

impl FakeRegistry {
    pub async fn start(items: Vec<Value>, page_size: usize) -> FakeRegistry {
        let state = RegistryState {
            items: Arc::new(Mutex::new(items)),
            page_size,
            up: Arc::new(AtomicBool::new(true)),
            pages: Arc::new(AtomicU64::new(0)),
        };
        let router = Router::new()
            .route("/discovery/resources", get(page))
            .with_state(state.clone());
        FakeRegistry {
            url: serve(router).await,
            items: state.items,
            up: state.up,
            pages: state.pages,
        }
    }

    /// Pages served so far.
    pub fn pages(&self) -> u64 {
        self.pages.load(Ordering::SeqCst)
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    /// Stops listing the items whose resource is `resource`.
    pub fn delist(&self, resource: &str) {
        self.items
            .lock()
            .unwrap()
            .retain(|item| item["resource"] != resource);
    }
}

async fn page(
    State(state): State<RegistryState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if !state.up.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    assert_eq!(params.get("type").map(String::as_str), Some("http"));
    state.pages.fetch_add(1, Ordering::SeqCst);
    let number = |name: &str, default: usize| {
        params
            .get(name)
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let limit = number("limit", 20).min(state.page_size);
    let offset = number("offset", 0);
    let items = state.items.lock().unwrap().clone();
    let page: Vec<Value> = items.iter().skip(offset).take(limit).cloned().collect();
    axum::Json(json!({
        "x402Version": 2,
        "items": page,
        "pagination": {"limit": limit, "offset": offset, "total": items.len()},
    }))
    .into_response()
}

/// Where a test keeps its sellers.
pub struct TestStore {
    pub config: StoreConfig,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Schema { admin_url: String, schema: String },
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

impl TestStore {
    /// A SQLite file of its own under the temporary directory.
    pub fn sqlite() -> TestStore {
        let path = std::env::temp_dir().join(format!("tessera-discovery-{}.db", unique_name()));
        TestStore {
            config: StoreConfig::Embedded { path: path.clone() },
            cleanup: Cleanup::File(path),
        }
    }

    /// A PostgreSQL schema of its own (first on the connection's
    /// `search_path`), dropped afterwards.
    pub async fn postgres() -> TestStore {
        let admin_url = database_url();
        let schema = format!("discovery_test_{}", unique_name());
        let pool = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{schema}");
        TestStore {
            config: StoreConfig::Postgres { url },
            cleanup: Cleanup::Schema { admin_url, schema },
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = path.clone().into_os_string();
                    name.push(suffix);
                    let _ = std::fs::remove_file(name);
                }
            }
            Cleanup::Schema { admin_url, schema } => {
                let (admin_url, schema) = (admin_url.clone(), schema.clone());
                // Dropped inside a runtime: drop the schema from a thread
                // of its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        if let Ok(pool) = sqlx::PgPool::connect(&admin_url).await {
                            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                                .execute(&pool)
                                .await;
                            pool.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}
