//! Discovery through the REST gateway over HTTP/1.1: `GET /api/find` over a
//! synthetic catalog of 10,000 tools, and `POST /api/route` over our catalog
//! plus 1,000 synthetic sellers (as crawled: each healthy, quoting its own
//! price). Each runs at the run's concurrency (throughput, compared with
//! `GET /health` on the same kind of gateway) and with one client (the
//! latency a lone agent sees; issue 9 asks p99 ≤ 2 ms for find).
//! Queries are drawn from the same vocabulary as the catalog, a different
//! one per call, so no answer is served from a warm single path.

use super::driver::{run_case, Outcome};
use super::Settings;
use anyhow::ensure;
use serde_json::{json, Value};
use std::sync::Arc;
use tessera_discovery::{Discovery, Entry, Listing};
use tessera_gateway::GatewayConfig;
use tessera_runtime::Shutdown;

/// Tools in the synthetic catalog.
pub const CATALOG_TOOLS: usize = 10_000;
/// Sellers the router ranks besides our catalog.
pub const SELLERS: usize = 1_000;

/// Words tools are described with: 24 actions × 40 objects × 20 qualities.
const ACTIONS: &[&str] = &[
    "convert",
    "hash",
    "encode",
    "decode",
    "parse",
    "validate",
    "format",
    "compress",
    "extract",
    "translate",
    "summarize",
    "resize",
    "render",
    "sign",
    "verify",
    "count",
    "sort",
    "merge",
    "split",
    "search",
    "classify",
    "scrape",
    "screenshot",
    "transcribe",
];
const OBJECTS: &[&str] = &[
    "json",
    "yaml",
    "csv",
    "pdf",
    "image",
    "text",
    "html",
    "markdown",
    "audio",
    "video",
    "url",
    "email",
    "address",
    "invoice",
    "receipt",
    "table",
    "chart",
    "map",
    "calendar",
    "timezone",
    "currency",
    "unit",
    "token",
    "wallet",
    "transaction",
    "block",
    "contract",
    "domain",
    "certificate",
    "password",
    "uuid",
    "date",
    "number",
    "color",
    "font",
    "file",
    "archive",
    "webpage",
    "document",
    "spreadsheet",
];
const QUALITIES: &[&str] = &[
    "fast",
    "accurate",
    "cheap",
    "batch",
    "streaming",
    "secure",
    "multilingual",
    "lossless",
    "structured",
    "verified",
    "realtime",
    "bulk",
    "minimal",
    "detailed",
    "robust",
    "typed",
    "compact",
    "private",
    "cached",
    "open",
];

/// A deterministic pick from `words` for index `i` and salt `salt`.
fn pick(words: &[&'static str], i: usize, salt: usize) -> &'static str {
    let mixed = (i as u64 ^ (salt as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    words[(mixed >> 33) as usize % words.len()]
}

/// Tool `i` of the synthetic catalog.
fn entry(i: usize) -> Entry {
    let (action, object, quality) = (
        pick(ACTIONS, i, 1),
        pick(OBJECTS, i, 2),
        pick(QUALITIES, i, 3),
    );
    let slug = format!("{action}-{object}-{i}");
    Entry {
        name: format!("{quality} {action} {object}"),
        description: format!(
            "A {quality} tool to {action} a {object} and {} the {} ({} results).",
            pick(ACTIONS, i, 4),
            pick(OBJECTS, i, 5),
            pick(QUALITIES, i, 6)
        ),
        category: pick(OBJECTS, i, 7).to_string(),
        tags: vec![action.to_string(), object.to_string(), quality.to_string()],
        price: 100 + (i as u64 * 37) % 5_000,
        method: "POST",
        route: "/api/synthetic",
        input_schema: json!({"type": "object"}),
        example: json!({}),
        call: format!("curl -X POST localhost:8080/api/synthetic -d '{{\"tool\":\"{slug}\"}}'"),
        slug,
    }
}

/// Seller `i` of the synthetic market.
fn listing(i: usize) -> Listing {
    let (action, object, quality) = (
        pick(ACTIONS, i, 11),
        pick(OBJECTS, i, 12),
        pick(QUALITIES, i, 13),
    );
    let accepts = vec![tessera_x402::Requirements {
        scheme: "exact".into(),
        network: "eip155:8453".into(),
        amount: (500 + (i * 53) % 20_000).to_string(),
        asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913".into(),
        pay_to: format!("0x{:040x}", i + 1),
        max_timeout_seconds: 60,
        extra: None,
    }];
    Listing::new(
        &format!("https://seller-{}.example/api/{action}-{object}", i % 250),
        &format!("{quality} {action} {object}"),
        &format!("{action} any {object}, {quality}, by seller {}", i % 250),
        accepts,
    )
}

/// A query of 3 words drawn from the vocabulary, for call `call` of `client`.
fn query(client: usize, call: u64) -> String {
    let i = client * 1_000_003 + call as usize;
    format!(
        "{} {} {}",
        pick(ACTIONS, i, 21),
        pick(OBJECTS, i, 22),
        pick(QUALITIES, i, 23)
    )
}

struct Shared {
    http: reqwest::Client,
    find_url: String,
    route_url: String,
}

/// Two gateways, one over each synthetic discovery service.
pub struct DiscoveryHttp {
    shutdown: Shutdown,
    shared: Arc<Shared>,
}

async fn gateway(discovery: Discovery, shutdown: &Shutdown) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = GatewayConfig {
        listen_addr: addr,
        free_mode: true,
        // Measured, not rate limited.
        free_per_minute: 0,
        ..Default::default()
    };
    let mut backends = tessera_tests::harness::in_process_backends().await;
    backends.discovery = tessera_gateway::DiscoveryClient::direct(discovery);
    let router = tessera_gateway::router_with(&config, backends).await?;
    tokio::spawn(tessera_gateway::serve(listener, router, shutdown.clone()));
    Ok(format!("http://{addr}"))
}

impl DiscoveryHttp {
    pub async fn setup(settings: &Settings) -> anyhow::Result<Self> {
        let shutdown = Shutdown::new();
        let catalog = Discovery::with_entries((0..CATALOG_TOOLS).map(entry).collect());
        let market = Discovery::with_listings((0..SELLERS).map(listing).collect());
        let find_base = gateway(catalog, &shutdown).await?;
        let route_base = gateway(market, &shutdown).await?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(settings.concurrency)
            .build()?;
        Ok(DiscoveryHttp {
            shutdown,
            shared: Arc::new(Shared {
                http,
                find_url: format!("{find_base}/api/find"),
                route_url: format!("{route_base}/api/route"),
            }),
        })
    }

    /// `GET /api/find?q=<3 words>&k=5` from `clients` clients.
    pub async fn find(&self, name: &str, settings: &Settings, clients: usize) -> Outcome {
        let shared = self.shared.clone();
        run_case(name, clients, settings.seconds, move |client, call| {
            let shared = shared.clone();
            async move {
                let response = shared
                    .http
                    .get(&shared.find_url)
                    .query(&[("q", query(client, call).as_str()), ("k", "5")])
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "find: {}",
                    response.status()
                );
                let found: Value = response.json().await?;
                ensure!(
                    found.as_array().is_some_and(|tools| !tools.is_empty()),
                    "find found nothing"
                );
                Ok(())
            }
        })
        .await
    }

    /// `POST /api/route {query, top: 3}` from `clients` clients.
    pub async fn route(&self, name: &str, settings: &Settings, clients: usize) -> Outcome {
        let shared = self.shared.clone();
        run_case(name, clients, settings.seconds, move |client, call| {
            let shared = shared.clone();
            async move {
                let body = json!({ "query": query(client, call), "top": 3 });
                let response = shared
                    .http
                    .post(&shared.route_url)
                    .json(&body)
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "route: {}",
                    response.status()
                );
                let routed: Value = response.json().await?;
                ensure!(
                    routed["results"].as_array().is_some_and(|r| !r.is_empty()),
                    "route found nothing: {routed}"
                );
                Ok(())
            }
        })
        .await
    }

    pub fn stop(self) {
        self.shutdown.trigger();
    }
}
