//! The REST gateway over HTTP/1.1: an in-process gateway (free mode, the
//! caller's namespace from `X-Agent-Id`) calling the memory service in
//! process as the all-in-one does (no loopback hop), called through one
//! pooled keep-alive reqwest client. Idempotency-Key entries are kept in
//! Redis, as gateway replicas share them.

use super::driver::{run_shared, Outcome};
use super::memory_grpc::{ClientKeys, MemoryGrpc};
use super::Settings;
use anyhow::{ensure, Context};
use reqwest::header::CONTENT_TYPE;
use reqwest::Response;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tessera_gateway::GatewayConfig;
use tessera_runtime::Shutdown;
use tessera_tests::harness::unique_namespace;

/// One client's requests, built once.
struct ClientRequests {
    get_url: String,
    /// The same read on the gateway that sends call events.
    get_url_counted: String,
    acquire: Vec<u8>,
    release: Vec<u8>,
    increment: Vec<u8>,
}

struct Shared {
    http: reqwest::Client,
    base: String,
    namespace: String,
    health_url: String,
    tool_url: String,
    tool_body: Vec<u8>,
    cas_url: String,
    incr_url: String,
    clients: Vec<ClientRequests>,
}

pub struct GatewayHttp {
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    counted_task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Where the counted gateway's stats live, dropped at the end.
    stats_schema: (sqlx::PgPool, String),
    shared: Arc<Shared>,
}

/// A free-mode gateway over `memory` on `listener`; call events to `stats`
/// when it is given, none otherwise.
async fn spawn_gateway(
    settings: &Settings,
    memory: &MemoryGrpc,
    listener: tokio::net::TcpListener,
    stats: Option<tessera_gateway::StatsClient>,
    shutdown: &Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let config = GatewayConfig {
        listen_addr: listener.local_addr()?,
        free_mode: true,
        idempotency: tessera_gateway::IdempotencyConfig {
            backend: tessera_gateway::IdempotencyBackend::Redis(settings.redis_url.clone()),
            // The run's entries leave the shared Redis soon after it.
            ttl: std::time::Duration::from_secs(300),
            ..Default::default()
        },
        stats_events: stats.is_some(),
        ..Default::default()
    };
    let stats = match stats {
        Some(stats) => stats,
        None => tessera_tests::harness::stats_in_process().await,
    };
    let backends = tessera_gateway::Backends {
        memory: memory.in_process_client(),
        tools: tessera_tests::harness::tools_in_process(),
        pow: tessera_tests::harness::pow_client(tessera_tests::harness::pow_service(16).await),
        discovery: tessera_tests::harness::discovery_in_process(),
        stats,
    };
    let router = tessera_gateway::router_with(&config, backends).await?;
    Ok(tokio::spawn(tessera_gateway::serve(
        listener,
        router,
        shutdown.clone(),
    )))
}

#[derive(Deserialize)]
struct CasView {
    swapped: bool,
}

impl GatewayHttp {
    pub async fn setup(settings: &Settings, memory: &MemoryGrpc) -> anyhow::Result<Self> {
        let shutdown = Shutdown::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = spawn_gateway(settings, memory, listener, None, &shutdown).await?;
        // Call events to a stats service of this process on PostgreSQL, as a
        // deployment keeps them, in a schema of the run's own (dropped at
        // the end, so the shared database keeps no bench counts).
        let stats_schema = format!("bench_stats_{:016x}", rand::random::<u64>());
        let admin = sqlx::PgPool::connect(&settings.database_url).await?;
        sqlx::query(&format!("CREATE SCHEMA {stats_schema}"))
            .execute(&admin)
            .await?;
        let separator = if settings.database_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let stats_url = format!(
            "{}{separator}options=-c%20search_path%3D{stats_schema}",
            settings.database_url
        );
        let stats_store = tessera_stats::StatsStore::postgres(&stats_url).await?;
        let stats =
            tessera_gateway::StatsClient::direct(tessera_stats::Stats::new(stats_store, None));
        let counted = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let counted_addr = counted.local_addr()?;
        let counted_task = spawn_gateway(settings, memory, counted, Some(stats), &shutdown).await?;

        let namespace = unique_namespace("bench-http");
        memory.seed(&namespace).await?;
        let base = format!("http://{addr}");
        let clients = ClientKeys::all(settings.concurrency)
            .into_iter()
            .map(|keys| ClientRequests {
                get_url: format!("{base}/api/memory?key={}", keys.get),
                get_url_counted: format!("http://{counted_addr}/api/memory?key={}", keys.get),
                acquire: body(
                    json!({ "key": keys.lock, "expected": null, "value": holder(&keys) }),
                ),
                release: body(
                    json!({ "key": keys.lock, "expected": holder(&keys), "value": null }),
                ),
                increment: body(json!({ "key": keys.counter, "by": 1 })),
            })
            .collect();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(settings.concurrency)
            .build()?;
        Ok(GatewayHttp {
            shutdown,
            task,
            counted_task,
            stats_schema: (admin, stats_schema),
            shared: Arc::new(Shared {
                http,
                namespace,
                health_url: format!("{base}/health"),
                base: base.clone(),
                tool_url: format!("{base}/api/sha256"),
                tool_body: body(json!({ "text": "x".repeat(1024) })),
                cas_url: format!("{base}/api/memory/cas"),
                incr_url: format!("{base}/api/memory/incr"),
                clients,
            }),
        })
    }

    /// The free-mode gateway's base URL (REST, gRPC and MCP on one port).
    pub fn base_url(&self) -> &str {
        &self.shared.base
    }

    /// The namespace whose keys the rows read and write (`X-Agent-Id`).
    pub fn namespace(&self) -> &str {
        &self.shared.namespace
    }

    /// `GET /health` on the same gateway and client: a route that calls
    /// no service, so the most any REST call could reach here.
    pub async fn health(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(name, settings, &self.shared, |shared, _, _| async move {
            success(shared.http.get(&shared.health_url).send().await?).await?;
            Ok(())
        })
        .await
    }

    pub async fn get(&self, name: &str, settings: &Settings) -> Outcome {
        self.read(name, settings, false).await
    }

    /// The same read on a gateway that sends a call event per request.
    pub async fn get_counted(&self, name: &str, settings: &Settings) -> Outcome {
        self.read(name, settings, true).await
    }

    /// The read without and with call events, in alternating one-second
    /// slices (`settings.seconds` of each, at least 10: the difference
    /// sought is a few percent, the drift of this machine more), so that a
    /// machine whose speed drifts during the run weighs on both alike:
    /// (off, on).
    ///
    /// Throughput on this shared machine drifts by more than the few
    /// percent sought, so the process's CPU time per call is measured too
    /// (it does not grow when the host takes the cores away): the
    /// returned note compares the two.
    pub async fn get_paired(
        &self,
        name: &str,
        settings: &Settings,
    ) -> (Outcome, Outcome, Option<String>) {
        let slice = Settings {
            seconds: 1,
            cases: Vec::new(),
            redis_url: settings.redis_url.clone(),
            database_url: settings.database_url.clone(),
            ..*settings
        };
        let mut off = Outcome::empty(std::time::Duration::ZERO);
        let mut on = Outcome::empty(std::time::Duration::ZERO);
        let (mut off_cpu, mut on_cpu) = (0u64, 0u64);
        for _ in 0..settings.seconds.max(10) {
            let before = cpu_ticks();
            off.absorb(self.read(name, &slice, false).await);
            let between = cpu_ticks();
            on.absorb(self.read(name, &slice, true).await);
            // The last batch leaves within a flush interval: on its side.
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            let after = cpu_ticks();
            off_cpu += between.saturating_sub(before);
            on_cpu += after.saturating_sub(between);
        }
        // Each slice also runs 1 s of warm-up not in the counts: the ratio
        // of CPU per counted call is what compares.
        let per_call =
            |ticks: u64, outcome: &Outcome| ticks as f64 * 10_000.0 / outcome.ops().max(1) as f64;
        let note = (off_cpu > 0 && on_cpu > 0).then(|| {
            let (off_us, on_us) = (per_call(off_cpu, &off), per_call(on_cpu, &on));
            format!(
                "stats events: this process's CPU per GET /api/memory (client, gateway, memory service; \
                 warm-up included) {off_us:.1} µs with events off, {on_us:.1} µs on: \
                 {:.3}× the CPU, i.e. {:.2} of the throughput at equal CPU",
                on_us / off_us,
                off_us / on_us
            )
        });
        (off, on, note)
    }

    async fn read(&self, name: &str, settings: &Settings, counted: bool) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            move |shared, client, _| async move {
                let requests = &shared.clients[client];
                let url = if counted {
                    &requests.get_url_counted
                } else {
                    &requests.get_url
                };
                let request = shared.http.get(url);
                let response = request
                    .header("x-agent-id", &shared.namespace)
                    .send()
                    .await?;
                success(response).await?;
                Ok(())
            },
        )
        .await
    }

    /// The tools service through the gateway: SHA-256 of 1 KiB of text.
    pub async fn tool(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(name, settings, &self.shared, |shared, _, _| async move {
            let body = success(shared.post(&shared.tool_url, &shared.tool_body).await?).await?;
            ensure!(body.as_ref().len() > 64, "a digest reply");
            Ok(())
        })
        .await
    }

    /// The same tool call with a new Idempotency-Key each time: a claim,
    /// the call, and its response kept.
    pub async fn tool_fresh_key(&self, name: &str, settings: &Settings) -> Outcome {
        let run = unique_namespace("bench-idem");
        run_shared(name, settings, &self.shared, move |shared, client, call| {
            let key = format!("{run}-{client}-{call}");
            async move {
                let response = shared
                    .post_keyed(&shared.tool_url, &shared.tool_body, &key)
                    .await?;
                ensure!(
                    response.headers().get("x-idempotent-replay").is_none(),
                    "a fresh call"
                );
                success(response).await?;
                Ok(())
            }
        })
        .await
    }

    /// The same tool call under each client's one Idempotency-Key: after the
    /// first, every call is a replay of the kept response.
    pub async fn tool_replayed(&self, name: &str, settings: &Settings) -> Outcome {
        let run = unique_namespace("bench-replay");
        run_shared(name, settings, &self.shared, move |shared, client, call| {
            let key = format!("{run}-{client}");
            async move {
                let response = shared
                    .post_keyed(&shared.tool_url, &shared.tool_body, &key)
                    .await?;
                let replayed = response.headers().get("x-idempotent-replay").is_some();
                ensure!(replayed || call == 0, "call {call} was not a replay");
                success(response).await?;
                Ok(())
            }
        })
        .await
    }

    /// Lock acquire and release pairs on the client's own key, as over gRPC.
    pub async fn compare_and_swap(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, call| async move {
                let requests = &shared.clients[client];
                let body = if call.is_multiple_of(2) {
                    &requests.acquire
                } else {
                    &requests.release
                };
                let body = success(shared.post(&shared.cas_url, body).await?).await?;
                let view: CasView = serde_json::from_slice(body.as_ref()).context("CAS reply")?;
                ensure!(view.swapped, "CAS did not swap");
                Ok(())
            },
        )
        .await
    }

    pub async fn increment(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, _| async move {
                let body = &shared.clients[client].increment;
                success(shared.post(&shared.incr_url, body).await?).await?;
                Ok(())
            },
        )
        .await
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        self.counted_task.await??;
        let (admin, schema) = self.stats_schema;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await?;
        self.task.await?
    }
}

impl Shared {
    async fn post_keyed(&self, url: &str, body: &[u8], key: &str) -> reqwest::Result<Response> {
        self.http
            .post(url)
            .header("x-agent-id", &self.namespace)
            .header("idempotency-key", key)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
    }

    async fn post(&self, url: &str, body: &[u8]) -> reqwest::Result<Response> {
        self.http
            .post(url)
            .header("x-agent-id", &self.namespace)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
    }
}

fn holder(keys: &ClientKeys) -> serde_json::Value {
    serde_json::from_str(&keys.holder).expect("the holder is JSON")
}

fn body(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&value).expect("a JSON value serializes")
}

/// The body of a 2xx reply, read to the end so the connection is reused; a
/// failure names the status and the gateway's error.
async fn success(response: Response) -> anyhow::Result<impl AsRef<[u8]>> {
    let status = response.status();
    let body = response.bytes().await?;
    ensure!(
        status.is_success(),
        "HTTP {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

/// This process's user + system CPU time so far, in clock ticks (10 ms on
/// Linux), from `/proc/self/stat`; 0 where that cannot be read.
fn cpu_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13
    // after the state (field 3).
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}
