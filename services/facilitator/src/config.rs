//! Facilitator configuration, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FACILITATOR_HTTP_ADDR` | `127.0.0.1:8402` | HTTP API (`/verify`, `/settle`, `/supported`, `/health`, `/metrics`) |
//! | `FACILITATOR_GRPC_ADDR` | `127.0.0.1:50053` | the same over gRPC, with health and reflection |
//! | `FACILITATOR_RPC_URL` | `http://127.0.0.1:8545` | the chain's JSON-RPC endpoint (plain HTTP; the chain id is read from it at start) |
//! | `FACILITATOR_PRIVATE_KEY` | unset | 0x-hex secp256k1 key that sends settlements and pays their gas; without it the facilitator only verifies. Never logged |
//! | `FACILITATOR_RECEIPT_TIMEOUT_SECS` | `30` | how long a settle waits for its receipt |
//! | `FACILITATOR_RPC_TIMEOUT_SECS` | `10` | how long one JSON-RPC request may take |
//! | `FACILITATOR_API_KEYS` | unset | comma-separated API keys; when set, `POST /verify` and `POST /settle` (and gRPC `Verify`/`Settle`) need `Authorization: Bearer <one of them>`. Unset or empty = open. Never logged |

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tessera_runtime::config::{env_or, env_string};
use tessera_runtime::grpc_auth::ServiceToken;

pub const HTTP_ADDR_ENV: &str = "FACILITATOR_HTTP_ADDR";
pub const GRPC_ADDR_ENV: &str = "FACILITATOR_GRPC_ADDR";
pub const RPC_URL_ENV: &str = "FACILITATOR_RPC_URL";
pub const PRIVATE_KEY_ENV: &str = "FACILITATOR_PRIVATE_KEY";
pub const RECEIPT_TIMEOUT_ENV: &str = "FACILITATOR_RECEIPT_TIMEOUT_SECS";
pub const RPC_TIMEOUT_ENV: &str = "FACILITATOR_RPC_TIMEOUT_SECS";
pub const API_KEYS_ENV: &str = "FACILITATOR_API_KEYS";

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8402";
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50053";
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:8545";
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// The key that settles. Its `Debug` shows the address only, so a config
/// can be logged whole.
#[derive(Clone)]
pub struct SettlementKey(PrivateKeySigner);

impl SettlementKey {
    pub fn new(signer: PrivateKeySigner) -> Self {
        SettlementKey(signer)
    }

    /// Parses 0x-hex (or bare hex) of a 32-byte secp256k1 key. The error
    /// never repeats the input.
    pub fn parse(hex: &str) -> anyhow::Result<Self> {
        hex.trim()
            .parse::<PrivateKeySigner>()
            .map(SettlementKey)
            .map_err(|_| anyhow::anyhow!("not a 32-byte hex secp256k1 private key"))
    }

    pub fn address(&self) -> Address {
        self.0.address()
    }

    pub fn signer(&self) -> &PrivateKeySigner {
        &self.0
    }
}

impl fmt::Debug for SettlementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SettlementKey({})", self.address())
    }
}

/// The API keys `/verify` and `/settle` accept; none = open to anyone (the
/// facilitator then relays any valid payment with its own gas). Each key is
/// checked like the internal service token (`Bearer`, constant time); `Debug`
/// shows how many there are, never the keys.
#[derive(Clone, Default)]
pub struct ApiKeys(Arc<[ServiceToken]>);

impl ApiKeys {
    /// No key: open.
    pub fn open() -> Self {
        ApiKeys::default()
    }

    /// Comma-separated keys, each trimmed; empty entries are skipped. A key
    /// must be visible ASCII without spaces (it travels in a header); the
    /// error never repeats it.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let keys = list
            .split(',')
            .map(ServiceToken::new)
            .filter(|key| key.as_ref().map_or(true, ServiceToken::is_set))
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(|_| {
                anyhow::anyhow!("API keys must be visible ASCII without spaces or commas")
            })?;
        Ok(ApiKeys(keys.into()))
    }

    /// Whether any key is required.
    pub fn required(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether an `Authorization` header value admits the call: `Bearer
    /// <key>` with one of the keys, every key compared (in constant time).
    /// Always true when none is required.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        !self.required()
            || self
                .0
                .iter()
                .fold(false, |found, key| key.admits(authorization) | found)
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} keys)", self.0.len())
    }
}

#[derive(Debug, Clone)]
pub struct FacilitatorConfig {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub rpc_url: String,
    /// `None`: verify-only; `/settle` answers `unexpected_settle_error`.
    pub settlement_key: Option<SettlementKey>,
    pub receipt_timeout: Duration,
    pub rpc_timeout: Duration,
    /// Keys `/verify` and `/settle` require; [`ApiKeys::open`] by default.
    pub api_keys: ApiKeys,
}

impl FacilitatorConfig {
    /// Defaults for everything but the chain endpoint and key; tests fill
    /// the rest themselves.
    pub fn new(rpc_url: impl Into<String>, settlement_key: Option<SettlementKey>) -> Self {
        FacilitatorConfig {
            http_addr: DEFAULT_HTTP_ADDR.parse().expect("a valid default"),
            grpc_addr: DEFAULT_GRPC_ADDR.parse().expect("a valid default"),
            rpc_url: rpc_url.into(),
            settlement_key,
            receipt_timeout: DEFAULT_RECEIPT_TIMEOUT,
            rpc_timeout: DEFAULT_RPC_TIMEOUT,
            api_keys: ApiKeys::open(),
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let raw_key = env_string(PRIVATE_KEY_ENV, "");
        let settlement_key = if raw_key.is_empty() {
            None
        } else {
            Some(SettlementKey::parse(&raw_key).context(PRIVATE_KEY_ENV)?)
        };
        let receipt_timeout: u64 = env_or(RECEIPT_TIMEOUT_ENV, DEFAULT_RECEIPT_TIMEOUT.as_secs())?;
        let rpc_timeout: u64 = env_or(RPC_TIMEOUT_ENV, DEFAULT_RPC_TIMEOUT.as_secs())?;
        anyhow::ensure!(
            receipt_timeout > 0,
            "{RECEIPT_TIMEOUT_ENV} must be at least 1"
        );
        anyhow::ensure!(rpc_timeout > 0, "{RPC_TIMEOUT_ENV} must be at least 1");
        Ok(FacilitatorConfig {
            http_addr: env_or(HTTP_ADDR_ENV, DEFAULT_HTTP_ADDR.parse()?)?,
            grpc_addr: env_or(GRPC_ADDR_ENV, DEFAULT_GRPC_ADDR.parse()?)?,
            rpc_url: env_string(RPC_URL_ENV, DEFAULT_RPC_URL),
            settlement_key,
            receipt_timeout: Duration::from_secs(receipt_timeout),
            rpc_timeout: Duration::from_secs(rpc_timeout),
            api_keys: ApiKeys::parse(&env_string(API_KEYS_ENV, "")).context(API_KEYS_ENV)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_reaches_debug_output_or_errors() {
        let secret = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        let key = SettlementKey::parse(secret).unwrap();
        let config = FacilitatorConfig::new("http://127.0.0.1:8545", Some(key.clone()));
        let shown = format!("{config:?}");
        assert!(!shown.contains(&secret[2..]), "{shown}");
        assert!(shown.contains(&key.address().to_string()), "{shown}");

        let error =
            SettlementKey::parse("0x4c0883a69102937d6231471b5dbb6204fe51296170").unwrap_err();
        assert!(!format!("{error:#}").contains("4c0883a6"), "{error:#}");

        let config = FacilitatorConfig {
            api_keys: ApiKeys::parse("key-one-secret, key-two-secret").unwrap(),
            ..config
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("ApiKeys(2 keys)"), "{shown}");
        assert!(!shown.contains("-secret"), "{shown}");
        let error = ApiKeys::parse("good,has space-secret").unwrap_err();
        assert!(!format!("{error:#}").contains("-secret"), "{error:#}");
    }

    #[test]
    fn api_keys_admit_any_listed_bearer_key_and_none_is_open() {
        let open = ApiKeys::parse(" , ").unwrap();
        assert!(!open.required());
        assert!(open.admits(None));
        let keys = ApiKeys::parse("alpha, beta").unwrap();
        assert!(keys.required());
        assert!(keys.admits(Some(b"Bearer alpha")));
        assert!(keys.admits(Some(b"bearer beta")));
        for wrong in [
            &b"Bearer gamma"[..],
            b"Bearer alph",
            b"alpha",
            b"Basic alpha",
        ] {
            assert!(
                !keys.admits(Some(wrong)),
                "{}",
                String::from_utf8_lossy(wrong)
            );
        }
        assert!(!keys.admits(None));
    }
}
