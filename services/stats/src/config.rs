//! Stats service configuration, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `STATS_GRPC_ADDR` | `127.0.0.1:50056` | gRPC listen address (standalone binary) |
//! | `STATS_STORE` | `embedded` | where the counts live: `embedded` (SQLite, one process) or `postgres` (shared by replicas) |
//! | `STATS_EMBEDDED_PATH` | `data/tessera-stats.db` | the SQLite file of `STATS_STORE=embedded` |
//! | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/test` | the PostgreSQL of `STATS_STORE=postgres` |
//! | `STATS_RPC_URL` | `PAYMENT_RPC_URL` if set, else none | the chain's JSON-RPC endpoint for the seller leaderboard; none: no leaderboard |
//! | `STATS_ASSET` | `PAYMENT_ASSET`, else USDC of the network | the EIP-3009 token whose x402 payments (`transferWithAuthorization` transfers) are indexed |
//! | `STATS_NETWORK` | `PAYMENT_NETWORK`, else `eip155:8453` | network of the asset: CAIP-2 or a v1 name (`base-sepolia`), as the payment service takes it; kept as CAIP-2 |
//! | `STATS_FROM_BLOCK` | `0` | the first block indexed, e.g. the token's deployment block on a long chain (a checkpoint already stored wins) |
//! | `STATS_BLOCK_RANGE` | `2000` | blocks per `eth_getLogs` at most, 1 to 100000 |
//! | `STATS_CONFIRMATIONS` | `5` | blocks below the head left unindexed (see below); `0` for a chain mined on demand (anvil) |
//! | `STATS_INDEX_SECONDS` | `15` | how often the indexer looks for new blocks |
//!
//! A counted range is never read again, so a block must be final before it
//! is counted, for two reasons: a reorg near the head replaces its
//! payments, and a load-balanced RPC's nodes lag one another by a block or
//! two, so the node answering `eth_getLogs` may not have a block the one
//! answering `eth_blockNumber` had, and answers for it with no logs. Five
//! blocks (10 s on Base) is well past both.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tessera_runtime::config::{env_or, env_string};
use tessera_x402::Network;

/// Listen address of the standalone binary when `STATS_GRPC_ADDR` is unset.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50056";
pub const DEFAULT_EMBEDDED_PATH: &str = "data/tessera-stats.db";
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const DEFAULT_NETWORK: &str = "eip155:8453";
pub const DEFAULT_BLOCK_RANGE: u64 = 2000;
/// Blocks below the head left unindexed when `STATS_CONFIRMATIONS` is unset.
pub const DEFAULT_CONFIRMATIONS: u64 = 5;
pub const MAX_BLOCK_RANGE: u64 = 100_000;
pub const DEFAULT_INDEX_EVERY: Duration = Duration::from_secs(15);

/// USDC by network, the asset when neither `STATS_ASSET` nor
/// `PAYMENT_ASSET` names one.
const USDC: &[(&str, &str)] = &[
    ("eip155:8453", "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"),
    ("eip155:84532", "0x036cbd53842c5426634e7929541ec2318f3dcf7e"),
];

/// Where the call counts and the leaderboard live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// A SQLite file (the embedded default, one process).
    Embedded { path: PathBuf },
    /// PostgreSQL at this URL, shared by every replica. A `search_path`
    /// given in the URL (`?options=-c%20search_path%3D...`) is honoured.
    Postgres { url: String },
}

/// The chain the seller leaderboard is indexed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    pub rpc_url: String,
    /// The token, 0x-prefixed, lowercase.
    pub asset: String,
    /// CAIP-2, e.g. `eip155:8453`.
    pub network: String,
    pub from_block: u64,
    /// Blocks per `eth_getLogs` at most (at least 1).
    pub block_range: u64,
    pub confirmations: u64,
    pub index_every: Duration,
}

impl ChainConfig {
    /// Indexing `asset` on `network` through `rpc_url` from block 0, with
    /// the defaults for the rest ([`DEFAULT_CONFIRMATIONS`] included: a
    /// chain mined on demand, as in tests, sets `confirmations: 0`).
    pub fn new(rpc_url: &str, asset: &str, network: &str) -> Self {
        ChainConfig {
            rpc_url: rpc_url.to_string(),
            asset: asset.to_ascii_lowercase(),
            network: network.to_string(),
            from_block: 0,
            block_range: DEFAULT_BLOCK_RANGE,
            confirmations: DEFAULT_CONFIRMATIONS,
            index_every: DEFAULT_INDEX_EVERY,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StatsConfig {
    pub listen_addr: SocketAddr,
    pub store: Store,
    /// None: no chain is configured, the leaderboard is empty.
    pub chain: Option<ChainConfig>,
}

impl StatsConfig {
    /// An embedded store at `path`, no chain.
    pub fn embedded(path: impl Into<PathBuf>) -> Self {
        StatsConfig {
            listen_addr: DEFAULT_ADDR.parse().expect("a valid default address"),
            store: Store::Embedded { path: path.into() },
            chain: None,
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let store = match env_string("STATS_STORE", "embedded").as_str() {
            "embedded" => Store::Embedded {
                path: env_string("STATS_EMBEDDED_PATH", DEFAULT_EMBEDDED_PATH).into(),
            },
            "postgres" => Store::Postgres {
                url: env_string("DATABASE_URL", DEFAULT_DATABASE_URL),
            },
            other => anyhow::bail!("STATS_STORE={other:?}: expected \"embedded\" or \"postgres\""),
        };
        Ok(StatsConfig {
            listen_addr: env_or("STATS_GRPC_ADDR", DEFAULT_ADDR.parse()?)?,
            store,
            chain: chain_from_env()?,
        })
    }
}

fn chain_from_env() -> anyhow::Result<Option<ChainConfig>> {
    let rpc_url = env_string("STATS_RPC_URL", &env_string("PAYMENT_RPC_URL", ""));
    if rpc_url.is_empty() {
        return Ok(None);
    }
    let named = env_string(
        "STATS_NETWORK",
        &env_string("PAYMENT_NETWORK", DEFAULT_NETWORK),
    );
    // Whatever the payment service takes (CAIP-2 or a v1 name), kept as CAIP-2.
    let network = Network::parse(&named)
        .with_context(|| format!("STATS_NETWORK={named:?} is not an eip155 network (e.g. base)"))?
        .caip2();
    let known_usdc = USDC
        .iter()
        .find(|(known, _)| *known == network)
        .map_or("", |(_, address)| *address);
    let asset = env_string("STATS_ASSET", &env_string("PAYMENT_ASSET", known_usdc));
    anyhow::ensure!(
        is_address(&asset),
        "STATS_ASSET must be the token's 0x address (no USDC default for {network})"
    );
    let block_range: u64 = env_or("STATS_BLOCK_RANGE", DEFAULT_BLOCK_RANGE)?;
    anyhow::ensure!(
        (1..=MAX_BLOCK_RANGE).contains(&block_range),
        "STATS_BLOCK_RANGE must be 1 to {MAX_BLOCK_RANGE}, not {block_range}"
    );
    let index_seconds: u64 = env_or("STATS_INDEX_SECONDS", DEFAULT_INDEX_EVERY.as_secs())?;
    anyhow::ensure!(index_seconds > 0, "STATS_INDEX_SECONDS must be at least 1");
    Ok(Some(ChainConfig {
        from_block: env_or("STATS_FROM_BLOCK", 0)?,
        block_range,
        confirmations: env_or("STATS_CONFIRMATIONS", DEFAULT_CONFIRMATIONS)?,
        index_every: Duration::from_secs(index_seconds),
        ..ChainConfig::new(&rpc_url, &asset, &network)
    }))
}

fn is_address(text: &str) -> bool {
    text.len() == 42
        && text.starts_with("0x")
        && text[2..].bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_forty_hex_digits() {
        assert!(is_address("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"));
        assert!(!is_address("833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"));
        assert!(!is_address("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA0291"));
        assert!(!is_address("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA0291g"));
    }

    /// The one test here that sets the environment (tests of a binary
    /// share it).
    #[test]
    fn the_leaderboard_follows_the_payment_settings_unless_told_otherwise() {
        let vars = [
            "STATS_STORE",
            "STATS_RPC_URL",
            "STATS_ASSET",
            "STATS_NETWORK",
            "STATS_BLOCK_RANGE",
            "STATS_CONFIRMATIONS",
            "PAYMENT_RPC_URL",
            "PAYMENT_ASSET",
            "PAYMENT_NETWORK",
        ];
        for var in vars {
            std::env::remove_var(var);
        }
        let config = StatsConfig::from_env().unwrap();
        assert_eq!(config.chain, None, "no RPC: no leaderboard");
        assert_eq!(
            config.store,
            Store::Embedded {
                path: DEFAULT_EMBEDDED_PATH.into()
            }
        );

        std::env::set_var("PAYMENT_RPC_URL", "http://127.0.0.1:8545");
        // The payment service's v1 name, kept as CAIP-2.
        std::env::set_var("PAYMENT_NETWORK", "base-sepolia");
        let chain = StatsConfig::from_env().unwrap().chain.unwrap();
        assert_eq!(chain.rpc_url, "http://127.0.0.1:8545");
        assert_eq!(chain.network, "eip155:84532");
        assert_eq!(chain.asset, USDC[1].1, "USDC of the network");
        assert_eq!(chain.index_every, DEFAULT_INDEX_EVERY);
        assert_eq!(
            chain.confirmations, 5,
            "a reorg margin unless told otherwise"
        );

        std::env::set_var("STATS_RPC_URL", "http://10.0.0.1:8545");
        std::env::set_var("STATS_ASSET", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913");
        std::env::set_var("STATS_BLOCK_RANGE", "5");
        let chain = StatsConfig::from_env().unwrap().chain.unwrap();
        assert_eq!(chain.rpc_url, "http://10.0.0.1:8545");
        assert_eq!(chain.asset, USDC[0].1);
        assert_eq!(chain.block_range, 5);
        std::env::set_var("STATS_CONFIRMATIONS", "0");
        assert_eq!(
            StatsConfig::from_env()
                .unwrap()
                .chain
                .unwrap()
                .confirmations,
            0
        );

        for (named, caip2) in [("base", "eip155:8453"), ("eip155:84532", "eip155:84532")] {
            std::env::set_var("STATS_NETWORK", named);
            assert_eq!(
                StatsConfig::from_env().unwrap().chain.unwrap().network,
                caip2
            );
        }
        for refused in [
            "mars",
            "eip155:01",
            "eip155:",
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        ] {
            std::env::set_var("STATS_NETWORK", refused);
            assert!(StatsConfig::from_env().is_err(), "{refused}");
        }
        std::env::remove_var("STATS_NETWORK");

        std::env::set_var("STATS_BLOCK_RANGE", "0");
        assert!(StatsConfig::from_env().is_err());
        std::env::set_var("STATS_BLOCK_RANGE", "5");
        std::env::set_var("STATS_ASSET", "usdc");
        assert!(StatsConfig::from_env().is_err());
        std::env::set_var("STATS_STORE", "redis");
        assert!(StatsConfig::from_env().is_err());
        for var in vars {
            std::env::remove_var(var);
        }
    }

    #[test]
    fn a_chain_config_lowercases_its_asset() {
        let chain = ChainConfig::new(
            "http://127.0.0.1:8545",
            "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            "eip155:8453",
        );
        assert_eq!(chain.asset, USDC[0].1);
        assert_eq!(chain.block_range, DEFAULT_BLOCK_RANGE);
        assert_eq!(chain.confirmations, DEFAULT_CONFIRMATIONS);
    }
}
