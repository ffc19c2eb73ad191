//! The MCP connector's settings, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `MCP_MAX_PER_MIN` | `20` | free (pure-CPU) tool calls over MCP per client IP a minute (0 = no limit); past it, a tool error with the retry time |
//! | `MCP_MAX_PER_HOUR` | `120` | the same, an hour (0 = no limit) |
//! | `MCP_ALLOWED_HOSTS` | any | comma-separated `Host` names (or `host:port`) `/mcp` answers; any other is refused 403 (DNS-rebinding protection). Unset: any host, as the REST routes beside it |
//!
//! The limits are counted where `RATE_LIMIT_STORE` says (this process, or
//! Redis shared by every replica), and the client IP is read as for every
//! per-IP limit (`TRUSTED_PROXIES`). Paid (memory) tools are limited as their
//! REST routes are, per paying wallet.

use tessera_runtime::config::{env_or, env_string};

pub const DEFAULT_MAX_PER_MINUTE: u32 = 20;
pub const DEFAULT_MAX_PER_HOUR: u32 = 120;

/// `MCP_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpConfig {
    /// `MCP_MAX_PER_MIN`, default 20; 0: no limit.
    pub max_per_minute: u32,
    /// `MCP_MAX_PER_HOUR`, default 120; 0: no limit.
    pub max_per_hour: u32,
    /// `MCP_ALLOWED_HOSTS`; empty: any host.
    pub allowed_hosts: Vec<String>,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            max_per_minute: DEFAULT_MAX_PER_MINUTE,
            max_per_hour: DEFAULT_MAX_PER_HOUR,
            allowed_hosts: Vec::new(),
        }
    }
}

impl McpConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = McpConfig::default();
        Ok(McpConfig {
            max_per_minute: env_or("MCP_MAX_PER_MIN", defaults.max_per_minute)?,
            max_per_hour: env_or("MCP_MAX_PER_HOUR", defaults.max_per_hour)?,
            allowed_hosts: parse_hosts(&env_string("MCP_ALLOWED_HOSTS", "")),
        })
    }
}

fn parse_hosts(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_a_comma_separated_list() {
        assert!(parse_hosts("").is_empty());
        assert_eq!(
            parse_hosts(" mcp.example , localhost:8080,"),
            vec!["mcp.example".to_string(), "localhost:8080".to_string()]
        );
    }
}
