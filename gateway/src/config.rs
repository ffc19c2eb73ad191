//! The gateway's settings, from the environment.

use std::net::SocketAddr;
use tessera_runtime::config::{env_bool, env_or, env_string};

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_MEMORY_URL: &str = "http://127.0.0.1:50051";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// `GATEWAY_ADDR`, default `127.0.0.1:8080`.
    pub listen_addr: SocketAddr,
    /// `MEMORY_URL`, default `http://127.0.0.1:50051`.
    pub memory_url: String,
    /// `FREE_MODE`, default false: serve without payment, callers naming
    /// their own namespace. Development only.
    pub free_mode: bool,
    /// `PAYMENT_URL`: the payment service (gRPC) that makes every memory
    /// route paid with x402. Required unless `free_mode`.
    pub payment_url: Option<String>,
    /// `PAYMENT_SETTLE_BEFORE_EXECUTION`, default false: settle a payment
    /// before running the call instead of after it succeeded.
    pub settle_before: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen_addr: DEFAULT_LISTEN_ADDR
                .parse()
                .expect("a valid default address"),
            memory_url: DEFAULT_MEMORY_URL.to_string(),
            free_mode: false,
            payment_url: None,
            settle_before: false,
        }
    }
}

impl GatewayConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = GatewayConfig::default();
        Ok(GatewayConfig {
            listen_addr: env_or("GATEWAY_ADDR", defaults.listen_addr)?,
            memory_url: env_string("MEMORY_URL", DEFAULT_MEMORY_URL),
            free_mode: env_bool("FREE_MODE", defaults.free_mode)?,
            payment_url: Some(env_string("PAYMENT_URL", "")).filter(|url| !url.is_empty()),
            settle_before: env_bool("PAYMENT_SETTLE_BEFORE_EXECUTION", false)?,
        })
    }
}
