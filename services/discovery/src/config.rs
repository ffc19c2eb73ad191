//! Discovery service configuration, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DISCOVERY_GRPC_ADDR` | `127.0.0.1:50055` | gRPC listen address (standalone binary) |
//! | `DISCOVERY_REGISTRIES` | empty | Bazaar-style registries to crawl, comma-separated base URLs (`GET {base}/discovery/resources` is read). Empty: no crawling, `Route` answers our catalog only |
//! | `DISCOVERY_STORE` | `embedded` | where crawled sellers are kept: `embedded` (SQLite, one process) or `postgres` |
//! | `DISCOVERY_EMBEDDED_PATH` | `data/tessera-discovery.db` | the SQLite file of `embedded` |
//! | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/test` | the PostgreSQL of `postgres` |
//! | `DISCOVERY_CRAWL_SECONDS` | `600` | pause between two crawls (each reads every registry and probes every seller not backing off) |
//! | `DISCOVERY_PROBE_CONCURRENCY` | `8` | probes in flight at once |
//! | `DISCOVERY_PROBE_TIMEOUT_MS` | `5000` | how long one probe (connect, answer and quote) may take |
//! | `DISCOVERY_HEALTH_WINDOW` | `10` | probes kept per seller; health is the share of them that were OK |
//! | `DISCOVERY_BACKOFF_SECONDS` | `30` | the first pause of an origin whose probe failed; doubled per further failure |
//! | `DISCOVERY_BACKOFF_MAX_SECONDS` | `3600` | the longest such pause |
//! | `DISCOVERY_MAX_LISTINGS` | `10000` | listings read from one registry per crawl at most |
//! | `DISCOVERY_ALLOW_PRIVATE` | `false` | whether sellers on loopback, private, link-local or unspecified addresses may be probed (tests; never in production: a listing's URL is chosen by whoever listed it) |
//! | `PAYMENT_NETWORK` | `eip155:8453` | the network our own catalog is paid on (the payment service's variable), shown on our candidates and matched by `Route`'s `network` |
//! | `PAYMENT_ASSET`, `PAYMENT_PAY_TO` | empty | the asset and address our catalog is paid with, shown when set (the 402 of a call says them anyway) |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tessera_runtime::config::{env_bool, env_or, env_string};
use tessera_x402::Network;

/// The network our catalog is paid on when `PAYMENT_NETWORK` is unset (the
/// payment service's default).
pub const DEFAULT_OWN_NETWORK: &str = "eip155:8453";

/// Where crawled sellers are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite at this path (created when missing).
    Embedded { path: PathBuf },
    /// PostgreSQL at this URL (tables are created when missing).
    Postgres { url: String },
}

/// How our own catalog is paid: what its candidates say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnOffer {
    /// CAIP-2.
    pub network: String,
    /// Token address; empty when not configured.
    pub asset: String,
    /// Paid address; empty when not configured.
    pub pay_to: String,
}

impl Default for OwnOffer {
    fn default() -> Self {
        OwnOffer {
            network: DEFAULT_OWN_NETWORK.to_string(),
            asset: String::new(),
            pay_to: String::new(),
        }
    }
}

impl OwnOffer {
    /// From `PAYMENT_NETWORK`, `PAYMENT_ASSET` and `PAYMENT_PAY_TO`. Never
    /// fails: a network that does not parse is logged and the default kept
    /// (the payment service, which reads the same variable, refuses to
    /// start on it).
    pub fn from_env() -> OwnOffer {
        let raw = env_string("PAYMENT_NETWORK", DEFAULT_OWN_NETWORK);
        let network = match Network::parse(&raw) {
            Some(network) => network.caip2(),
            None => {
                tracing::warn!(network = %raw, "PAYMENT_NETWORK does not parse; discovery shows {DEFAULT_OWN_NETWORK}");
                DEFAULT_OWN_NETWORK.to_string()
            }
        };
        OwnOffer {
            network,
            asset: env_string("PAYMENT_ASSET", ""),
            pay_to: env_string("PAYMENT_PAY_TO", ""),
        }
    }
}

/// Everything the discovery service reads from the environment.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    pub listen_addr: SocketAddr,
    /// Registry base URLs, without a trailing `/`.
    pub registries: Vec<String>,
    pub store: StoreConfig,
    pub crawl_every: Duration,
    pub probe_concurrency: usize,
    pub probe_timeout: Duration,
    pub health_window: usize,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub max_listings: usize,
    pub allow_private: bool,
    pub own: OwnOffer,
}

impl DiscoveryConfig {
    /// The defaults of the table above, crawling `registries` and keeping
    /// sellers in `store`.
    pub fn new(registries: Vec<String>, store: StoreConfig) -> DiscoveryConfig {
        DiscoveryConfig {
            listen_addr: crate::DEFAULT_ADDR
                .parse()
                .expect("a valid default address"),
            registries: registries
                .into_iter()
                .map(|url| url.trim().trim_end_matches('/').to_string())
                .collect(),
            store,
            crawl_every: Duration::from_secs(600),
            probe_concurrency: 8,
            probe_timeout: Duration::from_millis(5000),
            health_window: 10,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
            max_listings: 10_000,
            allow_private: false,
            own: OwnOffer::default(),
        }
    }

    pub fn from_env() -> anyhow::Result<DiscoveryConfig> {
        let registries: Vec<String> = env_string("DISCOVERY_REGISTRIES", "")
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(String::from)
            .collect();
        for registry in &registries {
            anyhow::ensure!(
                registry.starts_with("http://") || registry.starts_with("https://"),
                "DISCOVERY_REGISTRIES: {registry:?} is not an http(s) URL"
            );
        }
        let store = match env_string("DISCOVERY_STORE", "embedded").as_str() {
            "embedded" => StoreConfig::Embedded {
                path: env_string("DISCOVERY_EMBEDDED_PATH", "data/tessera-discovery.db").into(),
            },
            "postgres" => StoreConfig::Postgres {
                url: env_string("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
            },
            other => {
                anyhow::bail!("DISCOVERY_STORE={other:?}: expected \"embedded\" or \"postgres\"")
            }
        };
        let mut config = DiscoveryConfig::new(registries, store);
        config.listen_addr = env_or(crate::ADDR_ENV, config.listen_addr)?;
        config.crawl_every = Duration::from_secs(at_least_1("DISCOVERY_CRAWL_SECONDS", 600)?);
        config.probe_concurrency = at_least_1("DISCOVERY_PROBE_CONCURRENCY", 8)? as usize;
        config.probe_timeout =
            Duration::from_millis(at_least_1("DISCOVERY_PROBE_TIMEOUT_MS", 5000)?);
        config.health_window = at_least_1("DISCOVERY_HEALTH_WINDOW", 10)? as usize;
        config.backoff_base = Duration::from_secs(at_least_1("DISCOVERY_BACKOFF_SECONDS", 30)?);
        config.backoff_max =
            Duration::from_secs(at_least_1("DISCOVERY_BACKOFF_MAX_SECONDS", 3600)?);
        anyhow::ensure!(
            config.backoff_max >= config.backoff_base,
            "DISCOVERY_BACKOFF_MAX_SECONDS must be at least DISCOVERY_BACKOFF_SECONDS"
        );
        config.max_listings = at_least_1("DISCOVERY_MAX_LISTINGS", 10_000)? as usize;
        config.allow_private = env_bool("DISCOVERY_ALLOW_PRIVATE", false)?;
        config.own = OwnOffer::from_env();
        Ok(config)
    }
}

fn at_least_1(name: &str, default: u64) -> anyhow::Result<u64> {
    let value: u64 = env_or(name, default)?;
    anyhow::ensure!(value >= 1, "{name} must be at least 1");
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_lose_their_trailing_slash() {
        let config = DiscoveryConfig::new(
            vec!["http://a.example/ ".into(), "https://b.example".into()],
            StoreConfig::Embedded {
                path: "x.db".into(),
            },
        );
        assert_eq!(config.registries, ["http://a.example", "https://b.example"]);
        assert_eq!(config.crawl_every, Duration::from_secs(600));
        assert_eq!(config.health_window, 10);
        assert!(!config.allow_private);
    }
}
