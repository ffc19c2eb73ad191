//! The gateway's settings, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `GATEWAY_ADDR` | `127.0.0.1:8080` | HTTP listen address |
//! | `MEMORY_URL` | `http://127.0.0.1:50051` | the memory service (gRPC) |
//! | `TOOLS_URL` | `http://127.0.0.1:50057` | the tools service (gRPC) |
//! | `POW_URL` | `http://127.0.0.1:50054` | the pow service (gRPC): challenges, and cpu-tier calls paid with `X-Pow-Solution` |
//! | `FREE_MODE` | `false` | serve without payment, callers naming their own namespace (development only) |
//! | `PAYMENT_URL` | unset | the payment service (gRPC); required unless `FREE_MODE` |
//! | `PAYMENT_SETTLE_BEFORE_EXECUTION` | `false` | settle every payment before its call runs |
//! | `GATEWAY_REQUEST_TIMEOUT_SECONDS` | `30` | a paid route's call (not its payment) that takes longer is answered 504 and not charged |
//! | `GATEWAY_MAX_CONCURRENT_REQUESTS` | `1024` | requests in progress at once; more are answered 503 at once |
//! | `RATE_LIMIT_POW_CHALLENGES_PER_MINUTE` | `60` | proof-of-work challenges per client IP a minute (0 = no limit); past it, 429 with `Retry-After` |
//! | `TRUSTED_PROXIES` | none | comma-separated IPs/CIDRs whose `X-Forwarded-For` names the client IP |
//! | `INTERNAL_TOKEN` | unset | sent to the memory, tools and payment services (`authorization: Bearer`) |

use std::net::SocketAddr;
use std::time::Duration;
use tessera_runtime::config::{env_bool, env_or, env_string};
use tessera_runtime::grpc_auth::ServiceToken;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_MEMORY_URL: &str = "http://127.0.0.1:50051";
pub const DEFAULT_TOOLS_URL: &str = "http://127.0.0.1:50057";
pub const DEFAULT_POW_URL: &str = "http://127.0.0.1:50054";
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;
pub const DEFAULT_POW_CHALLENGES_PER_MINUTE: u32 = 60;

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
    /// `FREE_MODE`, default false: serve without payment, callers naming
    /// their own namespace. Development only.
    pub free_mode: bool,
    /// `PAYMENT_URL`: the payment service (gRPC) that makes every memory
    /// route paid with x402. Required unless `free_mode`.
    pub payment_url: Option<String>,
    /// `PAYMENT_SETTLE_BEFORE_EXECUTION`, default false: settle a payment
    /// before running the call instead of after it succeeded.
    pub settle_before: bool,
    /// `GATEWAY_REQUEST_TIMEOUT_SECONDS`, default 30.
    pub request_timeout: Duration,
    /// `GATEWAY_MAX_CONCURRENT_REQUESTS`, default 1024.
    pub max_concurrent_requests: usize,
    /// `INTERNAL_TOKEN`, default none.
    pub internal_token: ServiceToken,
    /// `RATE_LIMIT_POW_CHALLENGES_PER_MINUTE`, default 60; 0: no limit.
    pub pow_challenges_per_minute: u32,
    /// `TRUSTED_PROXIES`, default none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
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
            free_mode: false,
            payment_url: None,
            settle_before: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            internal_token: ServiceToken::none(),
            pow_challenges_per_minute: DEFAULT_POW_CHALLENGES_PER_MINUTE,
            trusted_proxies: Vec::new(),
        }
    }
}

impl GatewayConfig {
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
            free_mode: env_bool("FREE_MODE", defaults.free_mode)?,
            payment_url: Some(env_string("PAYMENT_URL", "")).filter(|url| !url.is_empty()),
            settle_before: env_bool("PAYMENT_SETTLE_BEFORE_EXECUTION", false)?,
            request_timeout: Duration::from_secs(timeout_secs),
            max_concurrent_requests,
            internal_token: ServiceToken::from_env()?,
            pow_challenges_per_minute: env_or(
                "RATE_LIMIT_POW_CHALLENGES_PER_MINUTE",
                defaults.pow_challenges_per_minute,
            )?,
            trusted_proxies: crate::rate_limit::parse_trusted_proxies(&env_string(
                "TRUSTED_PROXIES",
                "",
            ))?,
        })
    }
}
