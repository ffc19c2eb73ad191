//! The REST gateway: the agent402, 2s.io and per-agent memory APIs, each a
//! face over the same internal memory gRPC service, and the tools (agent402
//! face) over the tools gRPC service. `GET /metrics` serves
//! the process's Prometheus metrics (every request here counts as
//! `service="gateway"`, `route` = the route pattern).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = tessera_gateway::GatewayConfig::from_env()?;
//! let router = tessera_gateway::router(&config).await?;
//! let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
//! tessera_gateway::serve(listener, router, tessera_runtime::Shutdown::on_signals()).await
//! # }
//! ```

mod body;
mod config;
mod cors;
mod discovery;
mod errors;
mod extract;
mod faces;
mod grpc;
mod idempotency;
mod identity;
mod llms;
mod manifest;
mod mcp;
mod memory;
mod openapi;
mod payments;
mod pow;
mod rate_limit;
mod reliability;
pub mod routes;
mod settle_mode;
mod stats;
pub use memory::MemoryClient;
mod timestamps;
mod tools;
mod transport;
pub use discovery::DiscoveryClient;
pub use pow::PowClient;
pub use stats::{flush_call_events, CallEvents, StatsClient};
pub use tools::ToolsClient;
pub mod x402;

pub use config::{Cors, GatewayConfig, IdempotencyBackend, IdempotencyConfig};
pub use rate_limit::RateLimitStore;
pub use reliability::ReliabilityConfig;
pub use routes::DeclaredRoute;
pub use settle_mode::SettleMode;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use identity::{FreeModeGate, Gate};

use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tessera_runtime::Shutdown;
use tokio::net::TcpListener;

const NO_PAYMENT_GATE: &str =
    "no payment gate is configured: set PAYMENT_URL to the payment service (x402), or FREE_MODE=true for development";

/// The services the gateway's routes call.
#[derive(Debug, Clone)]
pub struct Backends {
    pub memory: MemoryClient,
    pub tools: ToolsClient,
    pub pow: PowClient,
    pub discovery: DiscoveryClient,
    pub stats: StatsClient,
}

impl Backends {
    /// Clients of the services at `config.memory_url`, `config.tools_url`,
    /// `config.pow_url` and `config.discovery_url`, each connected on first
    /// use.
    pub fn connect_lazy(config: &GatewayConfig) -> anyhow::Result<Self> {
        let token = config.internal_token.clone();
        Ok(Backends {
            memory: MemoryClient::connect_lazy(&config.memory_url, token.clone())?,
            tools: ToolsClient::connect_lazy(&config.tools_url, token.clone())?,
            pow: PowClient::connect_lazy(&config.pow_url, token.clone())?,
            discovery: DiscoveryClient::connect_lazy(&config.discovery_url, token.clone())?,
            stats: StatsClient::connect_lazy(&config.stats_url, token)?,
        })
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    memory: MemoryClient,
    tools: ToolsClient,
    pow: PowClient,
    discovery: DiscoveryClient,
    stats: StatsClient,
    gate: Gate,
    /// `None`: FREE_MODE, nobody pays.
    payments: Option<x402::PaymentGate>,
    started: Instant,
    reliability: Arc<reliability::Reliability>,
    free_mode: bool,
    /// What `/health` reports this gateway does.
    features: Arc<serde_json::Value>,
}

impl FromRef<AppState> for MemoryClient {
    fn from_ref(state: &AppState) -> Self {
        state.memory.clone()
    }
}

impl FromRef<AppState> for ToolsClient {
    fn from_ref(state: &AppState) -> Self {
        state.tools.clone()
    }
}

impl FromRef<AppState> for PowClient {
    fn from_ref(state: &AppState) -> Self {
        state.pow.clone()
    }
}

impl FromRef<AppState> for DiscoveryClient {
    fn from_ref(state: &AppState) -> Self {
        state.discovery.clone()
    }
}

impl FromRef<AppState> for StatsClient {
    fn from_ref(state: &AppState) -> Self {
        state.stats.clone()
    }
}

impl FromRef<AppState> for Gate {
    fn from_ref(state: &AppState) -> Self {
        state.gate.clone()
    }
}

/// The routes that are free: health, readiness, metrics, discovery, proof
/// of work's description and challenges, and a payment's state by its id.
pub const FREE_ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/api/find"),
    ("POST", "/api/find"),
    ("POST", "/api/route"),
    ("GET", "/api/pricing"),
    ("GET", "/llms.txt"),
    ("GET", "/openapi.json"),
    ("GET", "/.well-known/x402"),
    ("GET", "/api/reliability"),
    ("GET", "/api/stats"),
    ("GET", "/api/leaderboard"),
    ("GET", "/api/pow"),
    ("GET", "/api/pow/challenge"),
    ("GET", "/api/payments/{id}"),
];

/// The gateway's routes over a memory service at `config.memory_url` and a
/// tools service at `config.tools_url`, connected on first use. Every paid
/// route is paid with x402 through the payment service at
/// `config.payment_url`, unless FREE_MODE; then the payment service must
/// price every paid route, or this fails.
pub async fn router(config: &GatewayConfig) -> anyhow::Result<Router> {
    let backends = Backends::connect_lazy(config)?;
    tracing::info!(memory_url = %config.memory_url, tools_url = %config.tools_url, "services over the network");
    router_with(config, backends).await
}

/// As [`router`], over `backends` (e.g. [`MemoryClient::in_process`]).
pub async fn router_with(config: &GatewayConfig, backends: Backends) -> anyhow::Result<Router> {
    let (gate, payments) = identity_gate(config)?;
    if let Some(payments) = &payments {
        payments.check_prices().await?;
    }
    let limits = rate_limit::Surfaces::open(config).await?;
    let payments = payments.map(|gate| gate.with_wallet_limit(limits.paid_calls.clone()));
    tracing::info!(paid = payments.is_some(), "gateway routes ready");
    let reliability =
        reliability::Reliability::start(&config.reliability, &backends, payments.as_ref());
    let state = AppState {
        memory: backends.memory,
        tools: backends.tools,
        pow: backends.pow.clone(),
        discovery: backends.discovery,
        stats: backends.stats.clone(),
        gate,
        payments: payments.clone(),
        started: Instant::now(),
        reliability: Arc::new(reliability),
        free_mode: config.free_mode,
        features: Arc::new(features(config, payments.is_some())),
    };
    let guard = routes::Guard {
        pow: payments.as_ref().map(|_| backends.pow),
        payments,
        pow_calls: limits.pow_calls.clone(),
        idempotency: Some(config.idempotency.open().await?),
        call_timeout: config.request_timeout,
        events: CallEvents::from_config(config, backends.stats),
        in_progress: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_requests)),
        long_polls: Arc::new(tokio::sync::Semaphore::new(config.max_long_polls)),
    };
    let grpc_discovery = grpc::server::discovery().await?;
    Ok(assemble(state, &guard, config, &limits, grpc_discovery))
}

/// Every paid route the gateway serves: each catalog route, bound to its
/// handler, by method and path.
pub fn declared_routes() -> Vec<DeclaredRoute> {
    let guard = routes::Guard {
        payments: None,
        pow: None,
        pow_calls: None,
        idempotency: None,
        call_timeout: config::DEFAULT_REQUEST_TIMEOUT,
        events: CallEvents::off(),
        in_progress: Arc::new(tokio::sync::Semaphore::new(1)),
        long_polls: Arc::new(tokio::sync::Semaphore::new(1)),
    };
    routes::build(faces(), &guard).1
}

fn faces() -> Vec<routes::FaceRoutes> {
    vec![
        faces::agent402::routes(),
        faces::twos::routes(),
        faces::agents::routes(),
        faces::tools::routes(),
        grpc::server::routes(),
    ]
}

fn identity_gate(config: &GatewayConfig) -> anyhow::Result<(Gate, Option<x402::PaymentGate>)> {
    if config.free_mode {
        tracing::warn!(
            "FREE_MODE is on: a DEVELOPMENT mode with NO payment. Callers name their own namespace \
             with X-Agent-Id, so anyone can read and write any namespace. Never expose this."
        );
        return Ok((Arc::new(FreeModeGate), None));
    }
    let Some(payment_url) = &config.payment_url else {
        anyhow::bail!(NO_PAYMENT_GATE);
    };
    tracing::info!(%payment_url, settle_mode = config.settle_mode.as_str(), "memory routes are paid with x402");
    let payments = x402::PaymentGate::connect_lazy(
        payment_url,
        config.settle_mode,
        config.internal_token.clone(),
    )?;
    Ok((Arc::new(x402::X402Gate), Some(payments)))
}

fn assemble(
    state: AppState,
    guard: &routes::Guard,
    config: &GatewayConfig,
    limits: &rate_limit::Surfaces,
    grpc_discovery: Vec<(&'static str, axum::routing::MethodRouter<AppState>)>,
) -> Router {
    // Each paid route is refused at once (503) past its budget of calls in
    // progress (see routes::Guard); health and metrics are never refused.
    let (paid, _) = routes::build(faces(), guard);
    let mut router = Router::new();
    for (path, service) in grpc_discovery {
        router = router.route(path, limited(service, &limits.free));
    }
    let mcp_tools = state.tools.clone();
    let router = router
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route(
            "/api/find",
            limited(
                get(discovery::find_by_query).post(discovery::find_by_body),
                &limits.free,
            ),
        )
        .route("/api/route", limited(post(discovery::route), &limits.free))
        .route(
            "/api/pricing",
            limited(get(discovery::pricing), &limits.free),
        )
        .route("/llms.txt", limited(get(llms::llms_txt), &limits.free))
        .route(
            "/openapi.json",
            limited(get(openapi::document), &limits.free),
        )
        .route("/api/stats", limited(get(stats::stats), &limits.free))
        .route(
            "/api/leaderboard",
            limited(get(stats::leaderboard), &limits.free),
        )
        .route(
            "/api/reliability",
            limited(get(reliability::reliability), &limits.free),
        )
        .route(
            "/.well-known/x402",
            limited(get(manifest::manifest), &limits.free),
        )
        .route(
            "/api/payments/{id}",
            limited(get(payments::lookup), &limits.free),
        )
        .route("/api/pow", limited(get(pow::describe), &limits.free))
        .route(
            "/api/pow/challenge",
            limited(get(pow::challenge), &limits.pow_challenges),
        )
        .merge(tessera_runtime::metrics::routes())
        .merge(paid)
        .fallback(tessera_runtime::http::not_found)
        .method_not_allowed_fallback(tessera_runtime::http::method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .with_state(state);
    // MCP calls the REST routes above in process (the same gate, payment
    // and errors), so it is mounted on a router that already has them.
    let api = router.clone();
    let router = router.route_service("/mcp", mcp::service(api, mcp_tools, config));
    // grpc-web outside the metrics and the gate, so both see native gRPC
    // (its status in headers or trailers, payment-response a trailer).
    let router =
        tessera_runtime::http::traced(router, "gateway", tessera_runtime::http::Edge::Public)
            .layer(axum::middleware::from_fn(grpc::web::translate));
    match cors::layer(&config.cors_or_default()) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// `route`, rate limited per client IP when `limit` is set.
fn limited(
    route: axum::routing::MethodRouter<AppState>,
    limit: &Option<rate_limit::RateLimit>,
) -> axum::routing::MethodRouter<AppState> {
    match limit {
        Some(limit) => route.route_layer(axum::middleware::from_fn_with_state(
            limit.clone(),
            rate_limit::limit,
        )),
        None => route,
    }
}

/// Serves `router` on `listener` until `shutdown` fires, then lets in-flight
/// requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    tessera_runtime::http::serve(listener, router, shutdown, "gateway").await
}

/// The feature flags `/health` reports.
fn features(config: &GatewayConfig, paid: bool) -> serde_json::Value {
    let idempotency = match &config.idempotency.backend {
        IdempotencyBackend::InMemory => "memory",
        IdempotencyBackend::Embedded(_) => "embedded",
        IdempotencyBackend::Redis(_) => "redis",
    };
    let rate_limits = match &config.rate_limit_store {
        RateLimitStore::Local => "local",
        RateLimitStore::Redis(_) => "redis",
    };
    json!({
        "x402": paid,
        "settleBeforeExecution": paid && config.settle_mode == SettleMode::Before,
        "settleMode": if paid { config.settle_mode.as_str() } else { "none" },
        // Proof of work pays for tools only when payments are on.
        "proofOfWork": paid,
        "idempotencyStore": idempotency,
        "rateLimitStore": rate_limits,
        // Known in the all-in-one; a gateway in front of a memory service
        // of its own says "remote" (its /api/reliability shows Redis and
        // PostgreSQL when probed).
        "memoryBackend": config.memory_backend.as_deref().unwrap_or("remote"),
    })
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "freeMode": state.free_mode,
        "features": *state.features,
    }))
}

async fn ready(State(memory): State<MemoryClient>) -> Response {
    match memory.ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "memory service is not ready");
            let body = json!({ "status": "unavailable", "error": error.message });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Method;
    use tower::ServiceExt;

    async fn call(method: Method, uri: &str, body: &'static str) -> (StatusCode, String) {
        let config = GatewayConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            memory_url: "http://127.0.0.1:1".into(),
            free_mode: true,
            ..Default::default()
        };
        let request = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = router(&config)
            .await
            .unwrap()
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.trim().parse().expect("a number"))
    }

    #[tokio::test]
    async fn health_reports_version_uptime_and_features() {
        let (status, body) = call(Method::GET, "/health", "").await;
        assert_eq!(status, StatusCode::OK);
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
        assert!(health["uptimeSeconds"].is_u64());
        assert_eq!(health["freeMode"], true);
        let features = &health["features"];
        assert_eq!(features["x402"], false, "{health}");
        assert_eq!(features["proofOfWork"], false);
        assert_eq!(features["idempotencyStore"], "memory");
        assert_eq!(features["rateLimitStore"], "local");
        assert_eq!(features["memoryBackend"], "remote");
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_pattern_and_status() {
        assert_eq!(call(Method::GET, "/health", "").await.0, StatusCode::OK);
        // No X-Agent-Id: 401 before any backend call.
        let (status, _) = call(Method::POST, "/api/memory/cas", "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // A body without `value`: 400 before any backend call.
        let (status, _) = call(Method::PUT, "/agents/a1/memory/notes/today", "{}").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(Method::GET, "/no/such/route/42", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, text) = call(Method::GET, "/metrics", "").await;
        assert_eq!(status, StatusCode::OK);
        for series in [
            r#"tessera_requests_total{route="/health",service="gateway",status="200"}"#,
            r#"tessera_requests_total{route="/api/memory/cas",service="gateway",status="401"}"#,
            r#"tessera_requests_total{route="/agents/{id}/memory/{*key}",service="gateway",status="400"}"#,
            r#"tessera_requests_total{route="unmatched",service="gateway",status="404"}"#,
            r#"tessera_request_duration_seconds_count{route="/health",service="gateway"}"#,
        ] {
            assert!(sample(&text, series) >= Some(1.0), "{series} in\n{text}");
        }
        assert!(!text.contains("/no/such/route"), "{text}");
        assert!(!text.contains("notes/today"), "{text}");
    }
}
