//! `GET /api/reliability`: per dependency (Redis, PostgreSQL, the x402
//! facilitator, the chain RPC) and per service (memory, payment, tools,
//! pow, discovery, stats), its state, last probe, latency, since when it has
//! been up and its availability over the last 100 probes, as this gateway
//! has seen them. A background task probes everything every
//! `RELIABILITY_PROBE_SECONDS`; the route only reads what was seen, so it
//! answers at once even when a dependency hangs.
//!
//! Who asks whom: the gateway pings each service with a cheap call through
//! the same client its routes use (in the all-in-one, in process). Redis and
//! PostgreSQL are asked directly (a fresh connection each probe) at the URLs
//! configured here; the facilitator and the chain RPC are asked by the
//! payment service (`ProbeDependency`), the only service that talks to them
//! (a NetworkPolicy keeps the gateway away from the facilitator). What this
//! deployment does not use is `not_configured`, never probed.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `RELIABILITY_REDIS_URL` | unset | the Redis to probe (`PING`); unset: not configured |
//! | `RELIABILITY_DATABASE_URL` | unset | the PostgreSQL to probe (`SELECT 1`); unset: not configured |
//! | `RELIABILITY_PROBE_SECONDS` | `15` | how often everything is probed |
//! | `RELIABILITY_PROBE_TIMEOUT_MS` | `2000` | a probe with no answer by then counts as down |

use crate::x402::PaymentGate;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tessera_probe::{Board, Check, Snapshot, State as Seen};
use tessera_runtime::config::{env_or, env_string};

/// What to probe and how often.
#[derive(Debug, Clone)]
pub struct ReliabilityConfig {
    pub redis_url: Option<String>,
    pub database_url: Option<String>,
    pub every: Duration,
    pub timeout: Duration,
}

impl Default for ReliabilityConfig {
    fn default() -> Self {
        ReliabilityConfig {
            redis_url: None,
            database_url: None,
            every: Duration::from_secs(15),
            timeout: Duration::from_millis(2000),
        }
    }
}

impl ReliabilityConfig {
    pub(crate) fn from_env() -> anyhow::Result<Self> {
        let defaults = ReliabilityConfig::default();
        let url = |name: &str| Some(env_string(name, "")).filter(|url| !url.is_empty());
        let every: u64 = env_or("RELIABILITY_PROBE_SECONDS", defaults.every.as_secs())?;
        anyhow::ensure!(every > 0, "RELIABILITY_PROBE_SECONDS must be at least 1");
        let timeout: u64 = env_or(
            "RELIABILITY_PROBE_TIMEOUT_MS",
            defaults.timeout.as_millis() as u64,
        )?;
        anyhow::ensure!(
            timeout > 0,
            "RELIABILITY_PROBE_TIMEOUT_MS must be at least 1"
        );
        Ok(ReliabilityConfig {
            redis_url: url("RELIABILITY_REDIS_URL"),
            database_url: url("RELIABILITY_DATABASE_URL"),
            every: Duration::from_secs(every),
            timeout: Duration::from_millis(timeout),
        })
    }
}

/// What the probes last saw, as Prometheus gauges:
/// `tessera_dependency_up{dependency, kind}` (1 up, 0 down; absent until
/// probed, and for what this deployment does not use) and
/// `tessera_dependency_probe_seconds{dependency, kind}`, the last probe's
/// latency.
struct Exported {
    up: prometheus::IntGaugeVec,
    latency: prometheus::GaugeVec,
}

static EXPORTED: std::sync::LazyLock<Exported> = std::sync::LazyLock::new(|| {
    Exported {
    up: tessera_runtime::metrics::register(
        prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "tessera_dependency_up",
                "Whether the gateway's last probe of a dependency or service succeeded (1) or failed (0).",
            ),
            &["dependency", "kind"],
        )
        .expect("a valid gauge"),
    ),
    latency: tessera_runtime::metrics::register(
        prometheus::GaugeVec::new(
            prometheus::Opts::new(
                "tessera_dependency_probe_seconds",
                "How long the gateway's last probe of a dependency or service took.",
            ),
            &["dependency", "kind"],
        )
        .expect("a valid gauge"),
    ),
}
});

/// Sets the gauges from what `board` has seen.
fn export(board: &Board) {
    for (entry, seen) in board.snapshot() {
        let labels = [entry.name.as_str(), entry.kind];
        let up = match seen.state {
            Seen::Up => 1,
            Seen::Down => 0,
            Seen::Unknown | Seen::NotConfigured => continue,
        };
        EXPORTED.up.with_label_values(&labels).set(up);
        if let Some(latency_ms) = seen.latency_ms {
            EXPORTED
                .latency
                .with_label_values(&labels)
                .set(latency_ms / 1000.0);
        }
    }
}

/// The probes of this gateway's dependencies and services.
pub(crate) struct Reliability {
    board: Arc<Board>,
    every: Duration,
}

impl Reliability {
    /// Starts probing (now, then every `config.every`) until dropped.
    pub(crate) fn start(
        config: &ReliabilityConfig,
        backends: &crate::Backends,
        payments: Option<&PaymentGate>,
    ) -> Reliability {
        let board = Board::new()
            .with(
                "redis",
                "dependency",
                "redis",
                config
                    .redis_url
                    .as_deref()
                    .map_or(Check::NotConfigured, Check::redis),
            )
            .with(
                "postgresql",
                "dependency",
                "postgresql",
                config
                    .database_url
                    .clone()
                    .map_or(Check::NotConfigured, Check::Postgres),
            )
            .with(
                "facilitator",
                "dependency",
                "payment",
                payment_probe(payments, "facilitator"),
            )
            .with(
                "chain_rpc",
                "dependency",
                "payment",
                payment_probe(payments, "chain_rpc"),
            )
            .with(
                "memory",
                "service",
                "grpc",
                pinged(backends.memory.clone(), |memory| async move {
                    memory.ping().await
                }),
            )
            .with(
                "payment",
                "service",
                "grpc",
                match payments {
                    Some(payments) => pinged(payments.clone(), |payments| async move {
                        payments.list_prices().await.map(|_| ())
                    }),
                    None => Check::NotConfigured,
                },
            )
            .with(
                "tools",
                "service",
                "grpc",
                pinged(
                    backends.tools.clone(),
                    |tools| async move { tools.ping().await },
                ),
            )
            .with(
                "pow",
                "service",
                "grpc",
                pinged(backends.pow.clone(), |pow| async move { pow.ping().await }),
            )
            .with(
                "discovery",
                "service",
                "grpc",
                pinged(backends.discovery.clone(), |discovery| async move {
                    discovery.ping().await
                }),
            )
            .with(
                "stats",
                "service",
                "grpc",
                pinged(
                    backends.stats.clone(),
                    |stats| async move { stats.ping().await },
                ),
            );
        let board = Arc::new(board);
        board.spawn(config.every, config.timeout, export);
        Reliability {
            board,
            every: config.every,
        }
    }

    /// The report `GET /api/reliability` answers.
    pub(crate) fn report(&self, uptime: Duration) -> Value {
        let seen = self.board.snapshot();
        let degraded = seen
            .iter()
            .any(|(_, snapshot)| snapshot.state == Seen::Down);
        let of_kind = |kind: &str| -> Vec<Value> {
            seen.iter()
                .filter(|(entry, _)| entry.kind == kind)
                .map(|(entry, snapshot)| render(&entry.name, entry.via, snapshot))
                .collect()
        };
        json!({
            "status": if degraded { "degraded" } else { "ok" },
            "probeEverySeconds": self.every.as_secs(),
            "availabilityWindow": tessera_probe::WINDOW,
            "gateway": {
                "version": env!("CARGO_PKG_VERSION"),
                "uptimeSeconds": uptime.as_secs(),
            },
            "dependencies": of_kind("dependency"),
            "services": of_kind("service"),
        })
    }
}

/// A check that `ping`s (a clone of) `client`, failing with its message.
fn pinged<C, F, Fut>(client: C, ping: F) -> Check
where
    C: Clone + Send + Sync + 'static,
    F: Fn(C) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), tessera_error::Error>> + Send + 'static,
{
    Check::custom(move || {
        let pinging = ping(client.clone());
        async move { pinging.await.map_err(|error| error.message) }
    })
}

/// Asks the payment service to probe its dependency `name`.
fn payment_probe(payments: Option<&PaymentGate>, name: &'static str) -> Check {
    let Some(payments) = payments.cloned() else {
        return Check::NotConfigured;
    };
    Check::custom(move || {
        let payments = payments.clone();
        async move {
            match payments.probe_dependency(name).await {
                Ok(probed) if probed.up => Ok(()),
                Ok(probed) => Err(probed.error),
                Err(error) => Err(format!("the payment service: {}", error.message)),
            }
        }
    })
}

fn render(name: &str, via: &str, seen: &Snapshot) -> Value {
    let at = |ms: Option<i64>| ms.map(crate::timestamps::rfc3339_millis);
    json!({
        "name": name,
        "via": via,
        "state": seen.state.as_str(),
        "lastProbe": at(seen.last_probe_ms),
        "latencyMs": seen.latency_ms.map(|ms| (ms * 1000.0).round() / 1000.0),
        "error": seen.error,
        "upSince": at(seen.up_since_ms),
        "availability": seen.availability,
        "probes": seen.probes,
    })
}

/// `GET /api/reliability`.
pub(crate) async fn reliability(State(state): State<AppState>) -> Json<Value> {
    Json(state.reliability.report(state.started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_url() -> String {
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    #[tokio::test]
    async fn probes_are_exported_as_gauges() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let board = Board::new()
            .with(
                "gauge-up",
                "dependency",
                "redis",
                Check::redis(&redis_url()),
            )
            .with(
                "gauge-down",
                "dependency",
                "redis",
                Check::redis(&format!("redis://127.0.0.1:{closed_port}")),
            )
            .with("gauge-unused", "dependency", "redis", Check::NotConfigured);
        board.probe_all(Duration::from_secs(2)).await;
        export(&board);
        let text = tessera_runtime::metrics::render();
        let value = |series: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
                .map(|value| value.trim().to_string())
        };
        assert_eq!(
            value(r#"tessera_dependency_up{dependency="gauge-up",kind="dependency"}"#).as_deref(),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            value(r#"tessera_dependency_up{dependency="gauge-down",kind="dependency"}"#).as_deref(),
            Some("0"),
            "{text}"
        );
        assert!(!text.contains("gauge-unused"), "{text}");
        assert!(
            value(r#"tessera_dependency_probe_seconds{dependency="gauge-up",kind="dependency"}"#)
                .is_some(),
            "{text}"
        );
    }
}
