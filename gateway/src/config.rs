//! The gateway's settings, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `GATEWAY_ADDR` | `127.0.0.1:8080` | HTTP listen address |
//! | `MEMORY_URL` | `http://127.0.0.1:50051` | the memory service (gRPC) |
//! | `TOOLS_URL` | `http://127.0.0.1:50057` | the tools service (gRPC) |
//! | `DISCOVERY_URL` | `http://127.0.0.1:50055` | the discovery service (gRPC): `/api/find`, `/api/pricing` |
//! | `STATS_URL` | `http://127.0.0.1:50056` | the stats service (gRPC): call events, `/api/stats`, `/api/leaderboard` |
//! | `STATS_EVENTS` | `true` | send one event per call to the stats service (never blocking or failing the call) |
//! | `STATS_QUEUE_CAPACITY` | `10000` | call events waiting at most; past it they are dropped (`tessera_stats_events_dropped_total`) |
//! | `STATS_BATCH_SIZE` | `500` | call events per `RecordCalls` at most, 1 to 1000 |
//! | `STATS_FLUSH_MILLIS` | `250` | a batch is sent at most this long after its first event |
//! | `POW_URL` | `http://127.0.0.1:50054` | the pow service (gRPC): challenges, and cpu-tier calls paid with `X-Pow-Solution` |
//! | `FREE_MODE` | `false` | serve without payment, callers naming their own namespace (development only) |
//! | `PAYMENT_URL` | unset | the payment service (gRPC); required unless `FREE_MODE` |
//! | `PAYMENT_SETTLE_MODE` | `async` | when a paid call is settled (see [`SettleMode`]): `async` after the call, answering at once with a pending `PAYMENT-RESPONSE` while the payment service settles in the background (the payer's exposure bound is always on); `sync` after the call, answering once the transfer is mined; `before` before the call runs. A debtor is settled before in every mode |
//! | `PAYMENT_SETTLE_BEFORE_EXECUTION` | `false` | the older spelling of `PAYMENT_SETTLE_MODE=before`; set beside a `PAYMENT_SETTLE_MODE` that disagrees, the gateway does not start |
//! | `GATEWAY_REQUEST_TIMEOUT_SECONDS` | `30` | a paid route's call (not its payment) that takes longer is answered 504 and not charged |
//! | `GATEWAY_MAX_CONCURRENT_REQUESTS` | `1024` | requests in progress at once; more are answered 503 at once |
//! | `GATEWAY_MAX_LONG_POLLS` | `256` | long polls (`GET /api/memory/watch`) waiting at once, a budget apart from the one above; more are answered 503 at once |
//! | `RATE_LIMIT_STORE` | `local` | where rate-limit cells live: `local` (each replica counts alone) or `redis` (`REDIS_URL`, one budget shared by every replica) |
//! | `RATE_LIMIT_POW_CHALLENGES_PER_MINUTE` | `60` | proof-of-work challenges per client IP a minute (0 = no limit); past it, 429 with `Retry-After` |
//! | `RATE_LIMIT_POW_CALLS_PER_MINUTE` | `120` | tool calls paid with proof of work per client IP a minute (0 = no limit) |
//! | `RATE_LIMIT_FREE_PER_MINUTE` | `300` | requests to the free discovery routes (`GET /api/pow`) per client IP a minute (0 = no limit) |
//! | `RATE_LIMIT_PAID_CALLS_PER_MINUTE` | `6000` | x402-paid calls per paying wallet a minute (0 = no limit); a call past it is not charged |
//! | `TRUSTED_PROXIES` | none | comma-separated IPs/CIDRs whose `X-Forwarded-For` names the client IP |
//! | `IDEMPOTENCY_STORE` | `embedded` | where `Idempotency-Key` entries live: `embedded` (SQLite, one process), `redis` (shared by every replica), or `memory` (this process, lost on restart) |
//! | `IDEMPOTENCY_EMBEDDED_PATH` | `data/tessera-idempotency.db` | the SQLite file of `IDEMPOTENCY_STORE=embedded` |
//! | `REDIS_URL` | `redis://127.0.0.1:6379` | the Redis of `IDEMPOTENCY_STORE=redis` |
//! | `IDEMPOTENCY_TTL_SECONDS` | `86400` | how long a kept response is replayed |
//! | `IDEMPOTENCY_LEASE_SECONDS` | `120` | how long a call in flight holds its key; a gateway that dies mid-call frees it after this |
//! | `IDEMPOTENCY_WAIT_SECONDS` | `10` | how long a duplicate waits for the call in flight before a 409 |
//! | `IDEMPOTENCY_MAX_RESPONSE_BYTES` | `1048576` | larger responses are not kept (a retry runs again) |
//! | `IDEMPOTENCY_MAX_ENTRIES` | `100000` | the embedded store's bound (the entries nearest expiry go first) |
//! | `CORS_ALLOWED_ORIGINS` | `*` when paid, none in FREE_MODE | browser origins allowed to call (REST, grpc-web, MCP), comma-separated; `*` any origin (no credentials are ever allowed), empty: no CORS headers at all |
//! | `MCP_*` | see `mcp/config.rs` | the MCP connector at `/mcp` |
//! | `RELIABILITY_*` | see `reliability.rs` | what `/api/reliability` probes, and how often |
//! | `INTERNAL_TOKEN` | unset | sent to the memory, tools and payment services (`authorization: Bearer`) |

use crate::settle_mode::SettleMode;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tessera_runtime::config::{env_bool, env_or, env_string};
use tessera_runtime::grpc_auth::ServiceToken;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_MEMORY_URL: &str = "http://127.0.0.1:50051";
pub const DEFAULT_TOOLS_URL: &str = "http://127.0.0.1:50057";
pub const DEFAULT_POW_URL: &str = "http://127.0.0.1:50054";
pub const DEFAULT_DISCOVERY_URL: &str = "http://127.0.0.1:50055";
pub const DEFAULT_STATS_URL: &str = "http://127.0.0.1:50056";
pub const DEFAULT_STATS_QUEUE_CAPACITY: usize = 10_000;
pub const DEFAULT_STATS_BATCH_SIZE: usize = 500;
/// The stats service's bound on one `RecordCalls`.
pub const MAX_STATS_BATCH_SIZE: usize = 1000;
pub const DEFAULT_STATS_FLUSH: Duration = Duration::from_millis(250);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;
pub const DEFAULT_MAX_LONG_POLLS: usize = 256;
pub const DEFAULT_POW_CHALLENGES_PER_MINUTE: u32 = 60;
pub const DEFAULT_POW_CALLS_PER_MINUTE: u32 = 120;
pub const DEFAULT_FREE_PER_MINUTE: u32 = 300;
pub const DEFAULT_PAID_CALLS_PER_MINUTE: u32 = 6000;

/// Where Idempotency-Key entries live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBackend {
    /// This process only, lost on restart (tests).
    InMemory,
    /// A SQLite file (the embedded default, one process).
    Embedded(PathBuf),
    /// Redis at this URL, shared by every replica.
    Redis(String),
}

#[derive(Debug, Clone)]
pub struct IdempotencyConfig {
    pub backend: IdempotencyBackend,
    pub ttl: Duration,
    pub lease: Duration,
    pub wait: Duration,
    pub max_response_bytes: usize,
    pub max_entries: u64,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            backend: IdempotencyBackend::InMemory,
            ttl: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(120),
            wait: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
            max_entries: 100_000,
        }
    }
}

impl IdempotencyConfig {
    fn from_env() -> anyhow::Result<Self> {
        let defaults = IdempotencyConfig::default();
        let backend = match env_string("IDEMPOTENCY_STORE", "embedded").as_str() {
            "embedded" => IdempotencyBackend::Embedded(
                env_string("IDEMPOTENCY_EMBEDDED_PATH", "data/tessera-idempotency.db").into(),
            ),
            "redis" => IdempotencyBackend::Redis(env_string("REDIS_URL", "redis://127.0.0.1:6379")),
            "memory" => IdempotencyBackend::InMemory,
            other => anyhow::bail!(
                "IDEMPOTENCY_STORE={other:?}: expected \"embedded\", \"redis\" or \"memory\""
            ),
        };
        let seconds = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            let value: u64 = env_or(name, default.as_secs())?;
            anyhow::ensure!(value > 0, "{name} must be at least 1");
            Ok(Duration::from_secs(value))
        };
        Ok(IdempotencyConfig {
            backend,
            ttl: seconds("IDEMPOTENCY_TTL_SECONDS", defaults.ttl)?,
            lease: seconds("IDEMPOTENCY_LEASE_SECONDS", defaults.lease)?,
            wait: seconds("IDEMPOTENCY_WAIT_SECONDS", defaults.wait)?,
            max_response_bytes: env_or(
                "IDEMPOTENCY_MAX_RESPONSE_BYTES",
                defaults.max_response_bytes,
            )?,
            max_entries: env_or("IDEMPOTENCY_MAX_ENTRIES", defaults.max_entries)?,
        })
    }

    /// Opens the store.
    pub async fn open(&self) -> anyhow::Result<crate::idempotency::Idempotency> {
        let limits = tessera_idempotency::Limits {
            ttl: self.ttl,
            lease: self.lease,
            max_entries: self.max_entries,
        };
        let store = match &self.backend {
            IdempotencyBackend::InMemory => {
                tessera_idempotency::IdempotencyStore::in_memory(limits).await
            }
            IdempotencyBackend::Embedded(path) => {
                tessera_idempotency::IdempotencyStore::sqlite(path, limits).await
            }
            IdempotencyBackend::Redis(url) => {
                tessera_idempotency::IdempotencyStore::redis(url, limits).await
            }
        }
        .map_err(|e| anyhow::anyhow!("the Idempotency-Key store ({:?}): {e:#}", self.backend))?;
        Ok(crate::idempotency::Idempotency {
            store,
            wait: self.wait,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

/// Which browser origins may call the gateway (REST and grpc-web).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers: browsers on other origins cannot call.
    Off,
    /// `*`: any origin (payments authenticate, never cookies).
    AnyOrigin,
    /// Exactly these origins (`https://app.example`).
    Origins(Vec<http::HeaderValue>),
}

impl Cors {
    /// `*`, empty, or comma-separated origins (scheme://host[:port]).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Cors::Off);
        }
        if text == "*" {
            return Ok(Cors::AnyOrigin);
        }
        let origins = text
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(|origin| {
                let uri: http::Uri = origin
                    .parse()
                    .map_err(|e| anyhow::anyhow!("CORS_ALLOWED_ORIGINS: {origin:?} is not an origin: {e}"))?;
                anyhow::ensure!(
                    uri.scheme().is_some()
                        && uri.authority().is_some()
                        && uri.path_and_query().is_none_or(|pq| pq.as_str() == "/" && !origin.ends_with('/')),
                    "CORS_ALLOWED_ORIGINS: {origin:?} is not an origin (scheme://host[:port], no path)"
                );
                Ok(http::HeaderValue::from_str(origin)?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Cors::Origins(origins))
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `GATEWAY_ADDR`, default `127.0.0.1:8080`.
    pub listen_addr: SocketAddr,
    /// `MEMORY_URL`, default `http://127.0.0.1:50051`.
    pub memory_url: String,
    /// `TOOLS_URL`, default `http://127.0.0.1:50057`.
    pub tools_url: String,
    /// `POW_URL`, default `http://127.0.0.1:50054`.
    pub pow_url: String,
    /// `DISCOVERY_URL`, default `http://127.0.0.1:50055`.
    pub discovery_url: String,
    /// `STATS_URL`, default `http://127.0.0.1:50056`.
    pub stats_url: String,
    /// `STATS_EVENTS`, default true: one event per call to the stats service.
    pub stats_events: bool,
    /// `STATS_QUEUE_CAPACITY`, default 10000.
    pub stats_queue_capacity: usize,
    /// `STATS_BATCH_SIZE`, default 500 (1 to 1000).
    pub stats_batch_size: usize,
    /// `STATS_FLUSH_MILLIS`, default 250 ms.
    pub stats_flush: Duration,
    /// `FREE_MODE`, default false: serve without payment, callers naming
    /// their own namespace. Development only.
    pub free_mode: bool,
    /// `PAYMENT_URL`: the payment service (gRPC) that makes every memory
    /// route paid with x402. Required unless `free_mode`.
    pub payment_url: Option<String>,
    /// `PAYMENT_SETTLE_MODE` (or `PAYMENT_SETTLE_BEFORE_EXECUTION`),
    /// default sync: when a paid call is settled.
    pub settle_mode: SettleMode,
    /// `GATEWAY_REQUEST_TIMEOUT_SECONDS`, default 30.
    pub request_timeout: Duration,
    /// `GATEWAY_MAX_CONCURRENT_REQUESTS`, default 1024.
    pub max_concurrent_requests: usize,
    /// `GATEWAY_MAX_LONG_POLLS`, default 256.
    pub max_long_polls: usize,
    /// `INTERNAL_TOKEN`, default none.
    pub internal_token: ServiceToken,
    /// `RATE_LIMIT_STORE`, default local.
    pub rate_limit_store: crate::rate_limit::RateLimitStore,
    /// `RATE_LIMIT_POW_CHALLENGES_PER_MINUTE`, default 60; 0: no limit.
    pub pow_challenges_per_minute: u32,
    /// `RATE_LIMIT_POW_CALLS_PER_MINUTE`, default 120; 0: no limit.
    pub pow_calls_per_minute: u32,
    /// `RATE_LIMIT_FREE_PER_MINUTE`, default 300; 0: no limit.
    pub free_per_minute: u32,
    /// `RATE_LIMIT_PAID_CALLS_PER_MINUTE` (per wallet), default 6000; 0: no limit.
    pub paid_calls_per_minute: u32,
    /// `TRUSTED_PROXIES`, default none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `IDEMPOTENCY_*`; the default keeps entries in this process's memory.
    pub idempotency: IdempotencyConfig,
    /// `RELIABILITY_*`: what `/api/reliability` probes.
    pub reliability: crate::reliability::ReliabilityConfig,
    /// `CORS_ALLOWED_ORIGINS`; `None` (unset): any origin when payments are
    /// on, none in FREE_MODE (where any web page could otherwise use a
    /// developer's local memory with a made-up `X-Agent-Id`).
    pub cors: Option<Cors>,
    /// `MCP_*`: the MCP connector at `/mcp`.
    pub mcp: crate::mcp::McpConfig,
    /// What the memory service stores in (`embedded`, `redis-postgres`),
    /// for `/health`; set by the all-in-one, which knows. `None`: a memory
    /// service elsewhere.
    pub memory_backend: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen_addr: DEFAULT_LISTEN_ADDR
                .parse()
                .expect("a valid default address"),
            memory_url: DEFAULT_MEMORY_URL.to_string(),
            tools_url: DEFAULT_TOOLS_URL.to_string(),
            pow_url: DEFAULT_POW_URL.to_string(),
            discovery_url: DEFAULT_DISCOVERY_URL.to_string(),
            stats_url: DEFAULT_STATS_URL.to_string(),
            stats_events: true,
            stats_queue_capacity: DEFAULT_STATS_QUEUE_CAPACITY,
            stats_batch_size: DEFAULT_STATS_BATCH_SIZE,
            stats_flush: DEFAULT_STATS_FLUSH,
            free_mode: false,
            payment_url: None,
            settle_mode: SettleMode::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_long_polls: DEFAULT_MAX_LONG_POLLS,
            internal_token: ServiceToken::none(),
            rate_limit_store: crate::rate_limit::RateLimitStore::Local,
            pow_challenges_per_minute: DEFAULT_POW_CHALLENGES_PER_MINUTE,
            pow_calls_per_minute: DEFAULT_POW_CALLS_PER_MINUTE,
            free_per_minute: DEFAULT_FREE_PER_MINUTE,
            paid_calls_per_minute: DEFAULT_PAID_CALLS_PER_MINUTE,
            trusted_proxies: Vec::new(),
            idempotency: IdempotencyConfig::default(),
            reliability: crate::reliability::ReliabilityConfig::default(),
            cors: None,
            mcp: crate::mcp::McpConfig::default(),
            memory_backend: None,
        }
    }
}

impl GatewayConfig {
    /// The CORS policy in force: the configured one, else any origin when
    /// payments are on and none in FREE_MODE.
    pub fn cors_or_default(&self) -> Cors {
        match (&self.cors, self.free_mode) {
            (Some(cors), _) => cors.clone(),
            (None, true) => Cors::Off,
            (None, false) => Cors::AnyOrigin,
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = GatewayConfig::default();
        let timeout_secs: u64 = env_or(
            "GATEWAY_REQUEST_TIMEOUT_SECONDS",
            defaults.request_timeout.as_secs(),
        )?;
        anyhow::ensure!(
            timeout_secs > 0,
            "GATEWAY_REQUEST_TIMEOUT_SECONDS must be at least 1"
        );
        let max_concurrent_requests = env_or(
            "GATEWAY_MAX_CONCURRENT_REQUESTS",
            defaults.max_concurrent_requests,
        )?;
        anyhow::ensure!(
            max_concurrent_requests > 0,
            "GATEWAY_MAX_CONCURRENT_REQUESTS must be at least 1"
        );
        Ok(GatewayConfig {
            listen_addr: env_or("GATEWAY_ADDR", defaults.listen_addr)?,
            memory_url: env_string("MEMORY_URL", DEFAULT_MEMORY_URL),
            tools_url: env_string("TOOLS_URL", DEFAULT_TOOLS_URL),
            pow_url: env_string("POW_URL", DEFAULT_POW_URL),
            discovery_url: env_string("DISCOVERY_URL", DEFAULT_DISCOVERY_URL),
            stats_url: env_string("STATS_URL", DEFAULT_STATS_URL),
            stats_events: env_bool("STATS_EVENTS", defaults.stats_events)?,
            stats_queue_capacity: {
                let capacity = env_or("STATS_QUEUE_CAPACITY", defaults.stats_queue_capacity)?;
                anyhow::ensure!(capacity > 0, "STATS_QUEUE_CAPACITY must be at least 1");
                capacity
            },
            stats_batch_size: {
                let size = env_or("STATS_BATCH_SIZE", defaults.stats_batch_size)?;
                anyhow::ensure!(
                    (1..=MAX_STATS_BATCH_SIZE).contains(&size),
                    "STATS_BATCH_SIZE must be 1 to {MAX_STATS_BATCH_SIZE}, not {size}"
                );
                size
            },
            stats_flush: {
                let millis: u64 = env_or("STATS_FLUSH_MILLIS", 250)?;
                anyhow::ensure!(millis > 0, "STATS_FLUSH_MILLIS must be at least 1");
                Duration::from_millis(millis)
            },
            free_mode: env_bool("FREE_MODE", defaults.free_mode)?,
            payment_url: Some(env_string("PAYMENT_URL", "")).filter(|url| !url.is_empty()),
            settle_mode: crate::settle_mode::from_env()?,
            request_timeout: Duration::from_secs(timeout_secs),
            max_concurrent_requests,
            max_long_polls: {
                let polls = env_or("GATEWAY_MAX_LONG_POLLS", defaults.max_long_polls)?;
                anyhow::ensure!(polls > 0, "GATEWAY_MAX_LONG_POLLS must be at least 1");
                polls
            },
            internal_token: ServiceToken::from_env()?,
            rate_limit_store: match env_string("RATE_LIMIT_STORE", "local").as_str() {
                "local" => crate::rate_limit::RateLimitStore::Local,
                "redis" => crate::rate_limit::RateLimitStore::Redis(env_string(
                    "REDIS_URL",
                    "redis://127.0.0.1:6379",
                )),
                other => {
                    anyhow::bail!("RATE_LIMIT_STORE={other:?}: expected \"local\" or \"redis\"")
                }
            },
            pow_challenges_per_minute: env_or(
                "RATE_LIMIT_POW_CHALLENGES_PER_MINUTE",
                defaults.pow_challenges_per_minute,
            )?,
            pow_calls_per_minute: env_or(
                "RATE_LIMIT_POW_CALLS_PER_MINUTE",
                defaults.pow_calls_per_minute,
            )?,
            free_per_minute: env_or("RATE_LIMIT_FREE_PER_MINUTE", defaults.free_per_minute)?,
            paid_calls_per_minute: env_or(
                "RATE_LIMIT_PAID_CALLS_PER_MINUTE",
                defaults.paid_calls_per_minute,
            )?,
            trusted_proxies: crate::rate_limit::parse_trusted_proxies(&env_string(
                "TRUSTED_PROXIES",
                "",
            ))?,
            idempotency: IdempotencyConfig::from_env()?,
            reliability: crate::reliability::ReliabilityConfig::from_env()?,
            cors: match std::env::var("CORS_ALLOWED_ORIGINS") {
                Ok(origins) => Some(Cors::parse(&origins)?),
                Err(_) => None,
            },
            mcp: crate::mcp::McpConfig::from_env()?,
            memory_backend: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_cors_is_any_origin_when_paid_and_none_in_free_mode() {
        let paid = GatewayConfig::default();
        assert_eq!(paid.cors_or_default(), Cors::AnyOrigin);
        let free = GatewayConfig {
            free_mode: true,
            ..Default::default()
        };
        assert_eq!(free.cors_or_default(), Cors::Off);
        let chosen = GatewayConfig {
            cors: Some(Cors::AnyOrigin),
            ..free
        };
        assert_eq!(chosen.cors_or_default(), Cors::AnyOrigin);
    }

    #[test]
    fn cors_origins_parse_or_are_refused() {
        assert_eq!(Cors::parse("").unwrap(), Cors::Off);
        assert_eq!(Cors::parse(" * ").unwrap(), Cors::AnyOrigin);
        assert_eq!(
            Cors::parse("https://app.example, http://localhost:3000").unwrap(),
            Cors::Origins(vec![
                http::HeaderValue::from_static("https://app.example"),
                http::HeaderValue::from_static("http://localhost:3000"),
            ])
        );
        for bad in [
            "app.example",
            "https://app.example/path",
            "https://app.example/",
            "not an origin",
        ] {
            assert!(Cors::parse(bad).is_err(), "{bad}");
        }
    }
}
