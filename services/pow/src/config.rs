//! Pow service configuration, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `POW_GRPC_ADDR` | `127.0.0.1:50054` | gRPC listen address (standalone binary) |
//! | `POW_SECRET` | none: required unless `FREE_MODE` | HMAC key of the tokens, at least 32 characters; every replica needs the same one, and it must survive restarts (a token signed under a lost secret is refused) |
//! | `POW_DIFFICULTY` | `16` | leading zero bits a solution needs (about 65,000 hashes), 1 to 40 |
//! | `POW_DIFFICULTIES` | none | per-tool overrides, `slug=bits,slug=bits` |
//! | `POW_CHALLENGE_TTL_SECONDS` | `300` | how long a challenge may be solved and used |
//! | `POW_STORE` | `embedded` | where single use is kept: `embedded` (SQLite, one process) or `redis` (shared by replicas) |
//! | `POW_EMBEDDED_PATH` | `data/tessera-pow.db` | the SQLite file |
//! | `REDIS_URL` | `redis://127.0.0.1:6379` | the Redis of `POW_STORE=redis` |

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tessera_runtime::config::{env_bool, env_or, env_secret, env_string, Secret};

pub const DEFAULT_ADDR: &str = "127.0.0.1:50054";
pub const DEFAULT_DIFFICULTY: u32 = 16;
pub const MAX_DIFFICULTY: u32 = 40;
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone)]
pub enum Store {
    Embedded { path: PathBuf },
    Redis { url: String },
}

#[derive(Debug, Clone)]
pub struct PowConfig {
    pub listen_addr: SocketAddr,
    pub secret: Secret,
    pub difficulty: u32,
    pub difficulties: BTreeMap<String, u32>,
    pub challenge_ttl: Duration,
    pub store: Store,
}

impl PowConfig {
    /// A configuration for tests: `secret`, `difficulty` for every tool, an
    /// embedded store at `path`.
    pub fn for_tests(secret: &str, difficulty: u32, store: Store) -> Self {
        PowConfig {
            listen_addr: DEFAULT_ADDR.parse().expect("a valid default address"),
            secret: Secret::new(secret),
            difficulty,
            difficulties: BTreeMap::new(),
            challenge_ttl: Duration::from_secs(300),
            store,
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let secret = match env_secret("POW_SECRET") {
            Some(secret) => secret,
            None if env_bool("FREE_MODE", false)? => {
                tracing::warn!("POW_SECRET is not set: FREE_MODE signs challenges with a key of this process only");
                Secret::new(&hex::encode(rand::random::<[u8; 32]>()))
            }
            None => anyhow::bail!(
                "POW_SECRET is not set: proof-of-work tokens need a secret of at least {MIN_SECRET_LEN} \
                 characters, the same on every replica and kept across restarts \
                 (e.g. `openssl rand -hex 32`)"
            ),
        };
        anyhow::ensure!(
            secret.expose().len() >= MIN_SECRET_LEN,
            "POW_SECRET must be at least {MIN_SECRET_LEN} characters"
        );
        let difficulty = env_or("POW_DIFFICULTY", DEFAULT_DIFFICULTY)?;
        check_difficulty("POW_DIFFICULTY", difficulty)?;
        let difficulties = parse_difficulties(&env_string("POW_DIFFICULTIES", ""))?;
        let ttl: u64 = env_or("POW_CHALLENGE_TTL_SECONDS", 300)?;
        anyhow::ensure!(ttl > 0, "POW_CHALLENGE_TTL_SECONDS must be at least 1");
        let store = match env_string("POW_STORE", "embedded").as_str() {
            "embedded" => Store::Embedded {
                path: env_string("POW_EMBEDDED_PATH", "data/tessera-pow.db").into(),
            },
            "redis" => Store::Redis {
                url: env_string("REDIS_URL", "redis://127.0.0.1:6379"),
            },
            other => anyhow::bail!("POW_STORE={other:?}: expected \"embedded\" or \"redis\""),
        };
        Ok(PowConfig {
            listen_addr: env_or("POW_GRPC_ADDR", DEFAULT_ADDR.parse()?)?,
            secret,
            difficulty,
            difficulties,
            challenge_ttl: Duration::from_secs(ttl),
            store,
        })
    }
}

fn check_difficulty(what: &str, bits: u32) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_DIFFICULTY).contains(&bits),
        "{what}: a difficulty is 1 to {MAX_DIFFICULTY} bits, not {bits}"
    );
    Ok(())
}

/// `slug=bits,slug=bits`; every slug must be a cpu-tier tool.
pub fn parse_difficulties(text: &str) -> anyhow::Result<BTreeMap<String, u32>> {
    let mut difficulties = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (slug, bits) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("POW_DIFFICULTIES: {pair:?} is not slug=bits"))?;
        let slug = slug.trim();
        anyhow::ensure!(
            crate::payable::pow_route(slug).is_some(),
            "POW_DIFFICULTIES names {slug:?}, which is not a tool proof of work pays for"
        );
        let bits: u32 = bits
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("POW_DIFFICULTIES: {pair:?}: bits is not a number"))?;
        check_difficulty(&format!("POW_DIFFICULTIES {slug}"), bits)?;
        difficulties.insert(slug.to_string(), bits);
    }
    Ok(difficulties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_overrides_name_cpu_tools_only() {
        let parsed = parse_difficulties("hash=20, uuid = 8").unwrap();
        assert_eq!(parsed.get("hash"), Some(&20));
        assert_eq!(parsed.get("uuid"), Some(&8));
        assert!(parse_difficulties("memory.cas=4").is_err());
        assert!(parse_difficulties("no-such-tool=4").is_err());
        assert!(parse_difficulties("hash=0").is_err());
        assert!(parse_difficulties("hash=41").is_err());
        assert!(parse_difficulties("hash").is_err());
        assert!(parse_difficulties("").unwrap().is_empty());
    }
}
