//! Payment service configuration, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PAYMENT_GRPC_ADDR` | `127.0.0.1:50052` | gRPC listen address |
//! | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/test` | the ledger |
//! | `PAYMENT_DATABASE_POOL_SIZE` | `16` | the ledger's PostgreSQL connections, at least 1 (each with `lock_timeout` 5s and `idle_in_transaction_session_timeout` 30s); a call waits at most 5 s for one |
//! | `FACILITATOR_URL` | `http://127.0.0.1:8402` | any x402 facilitator (`/verify`, `/settle`) |
//! | `FACILITATOR_API_KEY` | unset | sent as `Authorization: Bearer <key>` on `/verify` and `/settle` (one of the facilitator's `FACILITATOR_API_KEYS`). Never logged |
//! | `PAYMENT_PAY_TO` | (required) | the address that is paid |
//! | `PAYMENT_NETWORK` | `eip155:8453` | CAIP-2 network of the asset |
//! | `PAYMENT_ASSET` | USDC of the network | EIP-3009 token address |
//! | `PAYMENT_ASSET_NAME` / `PAYMENT_ASSET_VERSION` | the network's USDC domain | EIP-712 domain of the token |
//! | `PAYMENT_MAX_TIMEOUT_SECONDS` | `60` | how long a signed payment may take |
//! | `PAYMENT_PRICES` | the catalog | overrides, `route=atomic,route=atomic` |
//! | `PAYMENT_SETTLE_TIMEOUT_SECONDS` | `45` | a settle slower than this becomes pending (above the facilitator's receipt timeout) |
//! | `PAYMENT_SETTLE_LEASE_SECONDS` | `10` | how long a `settling` payment stays its settler's without a heartbeat (renewed every third of it while the settlement runs); a payment whose settler stopped is retried once its lease ran out, at least 1 |
//! | `PAYMENT_RETRY_SECONDS` | `5` | how often pending settlements are retried, and the settler looks for queued ones besides being woken by each queued here |
//! | `PAYMENT_SETTLE_CONCURRENCY` | `600` | queued (deferred) settlements the settler runs at once, at least 1; at least the facilitator's batch size, or batches cannot fill; at most what the facilitator settles in a settle timeout, which the back-pressure's cold start assumes ([`crate::backlog`]). 600: a key's 4 batches of 100 in flight, and the next 200 waiting to fill the following ones; times the facilitator's keys when it has several (in the bench, two keys at 1,200 settled 506 items a block, one key at 600 371) |
//! | `PAYMENT_BALANCE_MAX_AGE_MS` | `1000` | for a call settled later (`settle_later`), how old a payer's balance read may be (one `balanceOf` per payer per this; see `balances`). `0` reads it for every call |
//! | `PAYMENT_RPC_URL` | `http://127.0.0.1:8545` | the network's JSON-RPC endpoint: payer balances (the exposure bound) and contract-wallet signatures |
//! | `PAYMENT_RPC_TIMEOUT_SECONDS` | `10` | how long one JSON-RPC request may take |

use crate::catalog::Catalog;
use anyhow::Context;
use std::net::SocketAddr;
use std::time::Duration;
use tessera_runtime::config::{env_or, env_string};
use tessera_x402::Network;

/// USDC by chain: (chain id, address, EIP-712 name, version).
const USDC: &[(u64, &str, &str, &str)] = &[
    (
        8453,
        "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "USD Coin",
        "2",
    ),
    (
        84532,
        "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "USDC",
        "2",
    ),
];

pub const DEFAULT_SETTLE_CONCURRENCY: usize = 600;

/// Short beside an authorization's validity (a client signs for
/// `PAYMENT_MAX_TIMEOUT_SECONDS`, and at least the settle timeout must be
/// left), so a payment whose settler died is settled again in time.
pub const DEFAULT_SETTLE_LEASE: Duration = Duration::from_secs(10);
/// `PAYMENT_RETRY_SECONDS`.
pub const DEFAULT_RETRY_EVERY: Duration = Duration::from_secs(5);
/// `PAYMENT_DATABASE_POOL_SIZE`.
pub const DEFAULT_DATABASE_POOL_SIZE: u32 = 16;

#[derive(Debug, Clone)]
pub struct Asset {
    pub network: Network,
    pub address: String,
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone)]
pub struct PaymentConfig {
    pub listen_addr: SocketAddr,
    pub database_url: String,
    /// `PAYMENT_DATABASE_POOL_SIZE`: the ledger's connections.
    pub database_pool_size: u32,
    pub facilitator_url: String,
    /// `FACILITATOR_API_KEY`; `Debug` shows `Secret(***)`.
    pub facilitator_api_key: Option<tessera_runtime::config::Secret>,
    pub pay_to: String,
    pub asset: Asset,
    pub max_timeout_seconds: u64,
    pub catalog: Catalog,
    pub settle_timeout: Duration,
    /// `PAYMENT_SETTLE_LEASE_SECONDS`: how long a settlement's claim lasts
    /// without a heartbeat.
    pub settle_lease: Duration,
    pub retry_every: Duration,
    /// `PAYMENT_SETTLE_CONCURRENCY`: the settler's settlements at once.
    pub settle_concurrency: usize,
    /// `PAYMENT_BALANCE_MAX_AGE_MS`: how long a balance read serves calls
    /// settled later.
    pub balance_max_age: Duration,
    pub rpc_url: String,
    pub rpc_timeout: Duration,
}

impl PaymentConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let network_text = env_string("PAYMENT_NETWORK", "eip155:8453");
        let network = Network::parse(&network_text).with_context(|| {
            format!("PAYMENT_NETWORK={network_text:?} is not an eip155 network")
        })?;
        let known = USDC.iter().find(|(id, ..)| *id == network.chain_id);
        let asset = Asset {
            network,
            address: env_string("PAYMENT_ASSET", known.map_or("", |k| k.1)),
            name: env_string("PAYMENT_ASSET_NAME", known.map_or("USD Coin", |k| k.2)),
            version: env_string("PAYMENT_ASSET_VERSION", known.map_or("2", |k| k.3)),
        };
        anyhow::ensure!(
            is_address(&asset.address),
            "PAYMENT_ASSET must be a 0x address (no USDC default for {network})"
        );
        let pay_to = env_string("PAYMENT_PAY_TO", "");
        anyhow::ensure!(
            is_address(&pay_to),
            "PAYMENT_PAY_TO must be the 0x address that receives payments"
        );
        PaymentConfig {
            listen_addr: env_or("PAYMENT_GRPC_ADDR", "127.0.0.1:50052".parse()?)?,
            database_url: env_string("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
            database_pool_size: env_or("PAYMENT_DATABASE_POOL_SIZE", DEFAULT_DATABASE_POOL_SIZE)?,
            facilitator_url: env_string("FACILITATOR_URL", "http://127.0.0.1:8402"),
            facilitator_api_key: tessera_runtime::config::env_secret("FACILITATOR_API_KEY"),
            pay_to,
            asset,
            max_timeout_seconds: env_or("PAYMENT_MAX_TIMEOUT_SECONDS", 60)?,
            catalog: Catalog::with_overrides(&env_string("PAYMENT_PRICES", ""))?,
            settle_timeout: Duration::from_secs(env_or("PAYMENT_SETTLE_TIMEOUT_SECONDS", 45)?),
            settle_lease: Duration::from_secs(env_or(
                "PAYMENT_SETTLE_LEASE_SECONDS",
                DEFAULT_SETTLE_LEASE.as_secs(),
            )?),
            retry_every: Duration::from_secs(env_or(
                "PAYMENT_RETRY_SECONDS",
                DEFAULT_RETRY_EVERY.as_secs(),
            )?),
            settle_concurrency: env_or("PAYMENT_SETTLE_CONCURRENCY", DEFAULT_SETTLE_CONCURRENCY)?,
            balance_max_age: Duration::from_millis(env_or("PAYMENT_BALANCE_MAX_AGE_MS", 1000)?),
            rpc_url: env_string("PAYMENT_RPC_URL", "http://127.0.0.1:8545"),
            rpc_timeout: Duration::from_secs(env_or("PAYMENT_RPC_TIMEOUT_SECONDS", 10)?),
        }
        .checked()
    }

    /// A payment must still be valid when its settlement is sent, so the
    /// settle timeout has to fit inside the time a client signs for.
    pub fn checked(self) -> anyhow::Result<Self> {
        anyhow::ensure!(
            self.settle_timeout.as_secs() < self.max_timeout_seconds,
            "PAYMENT_SETTLE_TIMEOUT_SECONDS ({}) must be below PAYMENT_MAX_TIMEOUT_SECONDS ({}): \
             authorizations expiring before a settlement could finish are refused",
            self.settle_timeout.as_secs(),
            self.max_timeout_seconds
        );
        anyhow::ensure!(
            self.settle_concurrency > 0,
            "PAYMENT_SETTLE_CONCURRENCY must be at least 1"
        );
        anyhow::ensure!(
            self.settle_lease >= Duration::from_secs(1),
            "PAYMENT_SETTLE_LEASE_SECONDS must be at least 1"
        );
        anyhow::ensure!(
            !self.retry_every.is_zero(),
            "PAYMENT_RETRY_SECONDS must be at least 1"
        );
        anyhow::ensure!(
            self.database_pool_size > 0,
            "PAYMENT_DATABASE_POOL_SIZE must be at least 1"
        );
        Ok(self)
    }
}

pub fn is_address(text: &str) -> bool {
    text.len() == 42 && text.starts_with("0x") && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PaymentConfig {
        PaymentConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            database_url: "postgres://postgres@127.0.0.1:5432/test".into(),
            database_pool_size: DEFAULT_DATABASE_POOL_SIZE,
            facilitator_url: "http://127.0.0.1:8402".into(),
            facilitator_api_key: None,
            pay_to: format!("0x{}", "11".repeat(20)),
            asset: Asset {
                network: Network::parse("eip155:8453").unwrap(),
                address: USDC[0].1.into(),
                name: USDC[0].2.into(),
                version: USDC[0].3.into(),
            },
            max_timeout_seconds: 60,
            catalog: Catalog::default(),
            settle_timeout: Duration::from_secs(45),
            settle_lease: DEFAULT_SETTLE_LEASE,
            retry_every: DEFAULT_RETRY_EVERY,
            settle_concurrency: DEFAULT_SETTLE_CONCURRENCY,
            balance_max_age: Duration::from_secs(1),
            rpc_url: "http://127.0.0.1:8545".into(),
            rpc_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn every_setting_that_would_stop_settlement_is_refused_with_its_name() {
        assert!(config().checked().is_ok());
        type Break = fn(&mut PaymentConfig);
        let refused: [(&str, Break); 5] = [
            ("PAYMENT_SETTLE_TIMEOUT_SECONDS", |c| {
                c.settle_timeout = Duration::from_secs(60)
            }),
            ("PAYMENT_SETTLE_CONCURRENCY", |c| c.settle_concurrency = 0),
            ("PAYMENT_SETTLE_LEASE_SECONDS", |c| {
                c.settle_lease = Duration::ZERO
            }),
            ("PAYMENT_RETRY_SECONDS", |c| c.retry_every = Duration::ZERO),
            ("PAYMENT_DATABASE_POOL_SIZE", |c| c.database_pool_size = 0),
        ];
        for (name, break_it) in refused {
            let mut config = config();
            break_it(&mut config);
            let error = config.checked().expect_err(name).to_string();
            assert!(error.starts_with(name), "{name}: {error}");
        }
    }
}
