//! Tools service configuration, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TOOLS_GRPC_ADDR` | `127.0.0.1:50057` | gRPC listen address (standalone binary) |
//! | `TOOLS_MAX_CONCURRENT` | 2 × CPUs | tool runs at once; more wait for a slot within their deadline |
//! | `TOOLS_DEADLINE_MS` | `2000` | a run (waiting included) not done by then is answered DEADLINE_EXCEEDED |
//! | `INTERNAL_TOKEN` | unset | when set, every gRPC call but health needs it |

use std::net::SocketAddr;
use std::time::Duration;
use tessera_runtime::config::env_or;

pub const DEFAULT_ADDR: &str = "127.0.0.1:50057";
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(2000);

#[derive(Debug, Clone)]
pub struct ToolsConfig {
    pub listen_addr: SocketAddr,
    pub max_concurrent: usize,
    pub deadline: Duration,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            listen_addr: DEFAULT_ADDR.parse().expect("a valid default address"),
            max_concurrent: default_concurrency(),
            deadline: DEFAULT_DEADLINE,
        }
    }
}

fn default_concurrency() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl ToolsConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = ToolsConfig::default();
        let max_concurrent = env_or("TOOLS_MAX_CONCURRENT", defaults.max_concurrent)?;
        anyhow::ensure!(
            max_concurrent > 0,
            "TOOLS_MAX_CONCURRENT must be at least 1"
        );
        let deadline_ms: u64 = env_or("TOOLS_DEADLINE_MS", defaults.deadline.as_millis() as u64)?;
        anyhow::ensure!(deadline_ms > 0, "TOOLS_DEADLINE_MS must be at least 1");
        Ok(ToolsConfig {
            listen_addr: env_or("TOOLS_GRPC_ADDR", defaults.listen_addr)?,
            max_concurrent,
            deadline: Duration::from_millis(deadline_ms),
        })
    }
}
