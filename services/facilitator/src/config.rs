//! Facilitator configuration, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FACILITATOR_HTTP_ADDR` | `127.0.0.1:8402` | HTTP API (`/verify`, `/settle`, `/supported`, `/health`, `/metrics`) |
//! | `FACILITATOR_GRPC_ADDR` | `127.0.0.1:50053` | the same over gRPC, with health and reflection |
//! | `FACILITATOR_RPC_URL` | `http://127.0.0.1:8545` | the chain's JSON-RPC endpoint (plain HTTP; the chain id is read from it at start) |
//! | `FACILITATOR_PRIVATE_KEY` | unset | 0x-hex secp256k1 key that sends settlements and pays their gas; without it the facilitator only verifies. Never logged |
//! | `FACILITATOR_PRIVATE_KEYS` | unset | comma-separated further 0x-hex keys that send settlements beside `FACILITATOR_PRIVATE_KEY` (which must be set): each key has its own `FACILITATOR_BATCHES_IN_FLIGHT` batches in flight. Each needs ETH for gas; the same key twice is refused. Never logged |
//! | `FACILITATOR_BATCH_MAX` | `100` | at most this many authorizations per settlement transaction, 1 to 1000; 1 = every settle sends its own transaction, as many at once as asked |
//! | `FACILITATOR_BATCH_WINDOW_MS` | `0` | how long a free key waits, after the first waiting settle, for more to join its batch, at most 10000; 0 = takes only those already waiting (group commit: no added latency when idle, large batches while the previous is being mined) |
//! | `FACILITATOR_BATCHES_IN_FLIGHT` | `4` | per settling key, how many sent batches may await their receipts at once, 1 to 16: a key takes its next batch as soon as the previous one is accepted by the node, so one key carries up to this many × `FACILITATOR_BATCH_MAX` authorizations per block. 4 lets a key keep several batches in each block even when a receipt is seen a block late, while bounding what one stuck transaction (its nonce blocks the ones behind it) holds up; 16 is the smallest per-account pool quota of common nodes (geth's `txpool.accountslots`), beyond which a node may evict our pending transactions. 1 = one batch at a time (the next waits for the previous one's receipt) |
//! | `FACILITATOR_BATCH_CONTRACT` | `0xcA11bde05977b3631167028862bE2a173976CA11` | the Multicall3 (`aggregate3`) that batches run through; Multicall3's canonical address on Base and most chains. With no code there at start the facilitator warns and settles one authorization per transaction |
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
pub const PRIVATE_KEYS_ENV: &str = "FACILITATOR_PRIVATE_KEYS";
pub const BATCH_MAX_ENV: &str = "FACILITATOR_BATCH_MAX";
pub const BATCH_WINDOW_ENV: &str = "FACILITATOR_BATCH_WINDOW_MS";
pub const BATCH_CONTRACT_ENV: &str = "FACILITATOR_BATCH_CONTRACT";
pub const BATCHES_IN_FLIGHT_ENV: &str = "FACILITATOR_BATCHES_IN_FLIGHT";

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8402";
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50053";
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:8545";
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BATCH_MAX: usize = 100;
/// The largest `FACILITATOR_BATCH_MAX` (a transferWithAuthorization costs
/// some 40-60k gas: 1000 of them fill a 30M-gas block at most twice over;
/// a batch bigger than a block holds is sent in parts).
pub const MAX_BATCH_MAX: usize = 1000;
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::ZERO;
pub const MAX_BATCH_WINDOW: Duration = Duration::from_secs(10);
/// Sent batches per key awaiting their receipts: with a block every second
/// or two, a receipt is seen up to a block after it is mined, so 4 keeps a
/// key's batches in every block under load, and a transaction that gets
/// stuck (the ones behind its nonce wait with it) holds up at most 4.
pub const DEFAULT_BATCHES_IN_FLIGHT: usize = 4;
/// The largest `FACILITATOR_BATCHES_IN_FLIGHT`: geth keeps 16 pending
/// transactions per account (`txpool.accountslots`) before it may evict.
pub const MAX_BATCHES_IN_FLIGHT: usize = 16;
/// Multicall3's canonical address.
pub const DEFAULT_BATCH_CONTRACT: Address = tessera_evm::batch::MULTICALL3_ADDRESS;

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

/// `FACILITATOR_PRIVATE_KEYS`: comma-separated keys, each trimmed, empty
/// entries skipped. The error names the entry by position, never its text.
pub fn parse_settlement_keys(list: &str) -> anyhow::Result<Vec<SettlementKey>> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(index, entry)| {
            SettlementKey::parse(entry).with_context(|| format!("entry {}", index + 1))
        })
        .collect()
}

/// How settlements are grouped into transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// `FACILITATOR_BATCH_MAX`: authorizations per transaction, 1 to
    /// [`MAX_BATCH_MAX`]; 1 turns batching off.
    pub max: usize,
    /// `FACILITATOR_BATCH_WINDOW_MS`: how long a batch stays open for more
    /// after its first item, at most [`MAX_BATCH_WINDOW`]; zero = only what
    /// is already waiting.
    pub window: Duration,
    /// `FACILITATOR_BATCH_CONTRACT`: the Multicall3-compatible contract.
    pub contract: Address,
    /// `FACILITATOR_BATCHES_IN_FLIGHT`: per settling key, sent batches
    /// awaiting their receipts, 1 to [`MAX_BATCHES_IN_FLIGHT`].
    pub in_flight: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max: DEFAULT_BATCH_MAX,
            window: DEFAULT_BATCH_WINDOW,
            contract: DEFAULT_BATCH_CONTRACT,
            in_flight: DEFAULT_BATCHES_IN_FLIGHT,
        }
    }
}

impl BatchConfig {
    /// From the three variables' raw values (`None` or blank: the default),
    /// `FACILITATOR_BATCHES_IN_FLIGHT` at its default.
    pub fn parse(
        max: Option<&str>,
        window_ms: Option<&str>,
        contract: Option<&str>,
    ) -> anyhow::Result<Self> {
        Self::parse_all(max, window_ms, contract, None)
    }

    /// From the four variables' raw values (`None` or blank: the default).
    pub fn parse_all(
        max: Option<&str>,
        window_ms: Option<&str>,
        contract: Option<&str>,
        in_flight: Option<&str>,
    ) -> anyhow::Result<Self> {
        fn set(raw: Option<&str>) -> Option<&str> {
            raw.map(str::trim).filter(|raw| !raw.is_empty())
        }
        let defaults = BatchConfig::default();
        let max = match set(max) {
            Some(raw) => raw
                .parse()
                .map_err(|e| anyhow::anyhow!("{BATCH_MAX_ENV}={raw:?} is not valid: {e}"))?,
            None => defaults.max,
        };
        let window = match set(window_ms) {
            Some(raw) => Duration::from_millis(
                raw.parse()
                    .map_err(|e| anyhow::anyhow!("{BATCH_WINDOW_ENV}={raw:?} is not valid: {e}"))?,
            ),
            None => defaults.window,
        };
        let contract = match set(contract) {
            Some(raw) => raw.parse().map_err(|e| {
                anyhow::anyhow!("{BATCH_CONTRACT_ENV}={raw:?} is not an address: {e}")
            })?,
            None => defaults.contract,
        };
        let in_flight = match set(in_flight) {
            Some(raw) => raw.parse().map_err(|e| {
                anyhow::anyhow!("{BATCHES_IN_FLIGHT_ENV}={raw:?} is not valid: {e}")
            })?,
            None => defaults.in_flight,
        };
        let config = BatchConfig {
            max,
            window,
            contract,
            in_flight,
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=MAX_BATCH_MAX).contains(&self.max),
            "{BATCH_MAX_ENV} must be 1 to {MAX_BATCH_MAX}, not {}",
            self.max
        );
        anyhow::ensure!(
            self.window <= MAX_BATCH_WINDOW,
            "{BATCH_WINDOW_ENV} must be at most {}, not {}",
            MAX_BATCH_WINDOW.as_millis(),
            self.window.as_millis()
        );
        anyhow::ensure!(
            self.contract != Address::ZERO,
            "{BATCH_CONTRACT_ENV} must not be the zero address"
        );
        anyhow::ensure!(
            (1..=MAX_BATCHES_IN_FLIGHT).contains(&self.in_flight),
            "{BATCHES_IN_FLIGHT_ENV} must be 1 to {MAX_BATCHES_IN_FLIGHT}, not {}",
            self.in_flight
        );
        Ok(())
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
    /// `FACILITATOR_PRIVATE_KEYS`: more keys that settle beside
    /// `settlement_key` (which must then be set).
    pub extra_settlement_keys: Vec<SettlementKey>,
    pub batch: BatchConfig,
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
            extra_settlement_keys: Vec::new(),
            batch: BatchConfig::default(),
            receipt_timeout: DEFAULT_RECEIPT_TIMEOUT,
            rpc_timeout: DEFAULT_RPC_TIMEOUT,
            api_keys: ApiKeys::open(),
        }
    }

    /// Every key that settles: `settlement_key` first, then the extra ones.
    pub fn settlement_keys(&self) -> Vec<SettlementKey> {
        self.settlement_key
            .iter()
            .chain(&self.extra_settlement_keys)
            .cloned()
            .collect()
    }

    /// What [`FacilitatorConfig::from_env`] and `Facilitator::connect`
    /// refuse: extra keys without the main one, a key given twice (two
    /// senders on one account would collide on nonces), batch settings out
    /// of range.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.settlement_key.is_some() || self.extra_settlement_keys.is_empty(),
            "{PRIVATE_KEYS_ENV} is set without {PRIVATE_KEY_ENV}"
        );
        let keys = self.settlement_keys();
        for (index, key) in keys.iter().enumerate() {
            anyhow::ensure!(
                !keys[..index].iter().any(|k| k.address() == key.address()),
                "the settling key of {} is given twice ({PRIVATE_KEY_ENV}, {PRIVATE_KEYS_ENV}); each must be distinct",
                key.address()
            );
        }
        self.batch.validate()
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
        let extra_settlement_keys =
            parse_settlement_keys(&env_string(PRIVATE_KEYS_ENV, "")).context(PRIVATE_KEYS_ENV)?;
        let variable = |name: &str| std::env::var(name).ok();
        let batch = BatchConfig::parse_all(
            variable(BATCH_MAX_ENV).as_deref(),
            variable(BATCH_WINDOW_ENV).as_deref(),
            variable(BATCH_CONTRACT_ENV).as_deref(),
            variable(BATCHES_IN_FLIGHT_ENV).as_deref(),
        )?;
        let config = FacilitatorConfig {
            http_addr: env_or(HTTP_ADDR_ENV, DEFAULT_HTTP_ADDR.parse()?)?,
            grpc_addr: env_or(GRPC_ADDR_ENV, DEFAULT_GRPC_ADDR.parse()?)?,
            rpc_url: env_string(RPC_URL_ENV, DEFAULT_RPC_URL),
            settlement_key,
            extra_settlement_keys,
            batch,
            receipt_timeout: Duration::from_secs(receipt_timeout),
            rpc_timeout: Duration::from_secs(rpc_timeout),
            api_keys: ApiKeys::parse(&env_string(API_KEYS_ENV, "")).context(API_KEYS_ENV)?,
        };
        config.validate()?;
        Ok(config)
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

    const KEY_A: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    const KEY_B: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    #[test]
    fn batch_settings_default_parse_and_are_bounded() {
        let defaults = BatchConfig::parse(None, Some(" "), None).unwrap();
        assert_eq!(defaults, BatchConfig::default());
        assert_eq!(defaults.max, 100);
        assert_eq!(defaults.window, Duration::ZERO);
        assert_eq!(defaults.in_flight, 4);
        assert_eq!(
            defaults.contract.to_checksum(None),
            "0xcA11bde05977b3631167028862bE2a173976CA11"
        );

        let set = BatchConfig::parse(
            Some("1000"),
            Some("10000"),
            Some("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
        )
        .unwrap();
        assert_eq!(set.max, 1000);
        assert_eq!(set.window, Duration::from_secs(10));
        assert_eq!(
            set.contract.to_checksum(None),
            "0x5FbDB2315678afecb367f032d93F642f64180aa3"
        );
        assert_eq!(BatchConfig::parse(Some("1"), None, None).unwrap().max, 1);
        assert_eq!(set.in_flight, DEFAULT_BATCHES_IN_FLIGHT);
        for (raw, in_flight) in [("1", 1), (" 16 ", 16), ("", DEFAULT_BATCHES_IN_FLIGHT)] {
            let parsed = BatchConfig::parse_all(None, None, None, Some(raw)).unwrap();
            assert_eq!(parsed.in_flight, in_flight, "{raw:?}");
        }

        for (max, window, contract, in_flight, named) in [
            (Some("0"), None, None, None, BATCH_MAX_ENV),
            (Some("1001"), None, None, None, BATCH_MAX_ENV),
            (Some("-3"), None, None, None, BATCH_MAX_ENV),
            (Some("many"), None, None, None, BATCH_MAX_ENV),
            (None, Some("10001"), None, None, BATCH_WINDOW_ENV),
            (None, Some("0.5"), None, None, BATCH_WINDOW_ENV),
            (None, None, Some("0x1234"), None, BATCH_CONTRACT_ENV),
            (
                None,
                None,
                Some("0x0000000000000000000000000000000000000000"),
                None,
                BATCH_CONTRACT_ENV,
            ),
            (None, None, None, Some("0"), BATCHES_IN_FLIGHT_ENV),
            (None, None, None, Some("17"), BATCHES_IN_FLIGHT_ENV),
            (None, None, None, Some("-1"), BATCHES_IN_FLIGHT_ENV),
            (None, None, None, Some("two"), BATCHES_IN_FLIGHT_ENV),
        ] {
            let error = BatchConfig::parse_all(max, window, contract, in_flight).unwrap_err();
            assert!(
                format!("{error:#}").contains(named),
                "{max:?} {window:?} {contract:?} {in_flight:?}: {error:#}"
            );
        }
    }

    #[test]
    fn extra_keys_parse_are_never_shown_and_must_be_distinct() {
        let keys = parse_settlement_keys(&format!(" {KEY_B} ,, ")).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(parse_settlement_keys("").unwrap().is_empty());
        let error = parse_settlement_keys(&format!("{KEY_B},{}", &KEY_A[..40])).unwrap_err();
        let shown = format!("{error:#}");
        assert!(shown.contains("entry 2"), "{shown}");
        assert!(!shown.contains(&KEY_A[2..20]), "{shown}");
        assert!(!shown.contains(&KEY_B[2..20]), "{shown}");

        let primary = SettlementKey::parse(KEY_A).unwrap();
        let mut config = FacilitatorConfig::new("http://127.0.0.1:8545", Some(primary.clone()));
        config.extra_settlement_keys = keys.clone();
        config.validate().unwrap();
        assert_eq!(
            config
                .settlement_keys()
                .iter()
                .map(SettlementKey::address)
                .collect::<Vec<_>>(),
            vec![primary.address(), keys[0].address()]
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains(&KEY_B[2..]), "{shown}");

        // The main key again among the extra ones, or one extra key twice.
        for extra in [
            vec![primary.clone()],
            vec![keys[0].clone(), keys[0].clone()],
        ] {
            let config = FacilitatorConfig {
                extra_settlement_keys: extra,
                ..config.clone()
            };
            let error = config.validate().unwrap_err();
            assert!(format!("{error:#}").contains("twice"), "{error:#}");
        }
        // Extra keys need the main one.
        let config = FacilitatorConfig {
            settlement_key: None,
            ..config
        };
        let error = config.validate().unwrap_err();
        assert!(format!("{error:#}").contains(PRIVATE_KEY_ENV), "{error:#}");
        // An out-of-range batch setting is refused by validate too.
        let mut config = FacilitatorConfig::new("http://127.0.0.1:8545", None);
        config.batch.max = 0;
        assert!(config.validate().is_err());
        let mut config = FacilitatorConfig::new("http://127.0.0.1:8545", None);
        config.batch.in_flight = 0;
        assert!(config.validate().is_err());
    }
}
