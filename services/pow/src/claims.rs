//! Single use: a solution's challenge is claimed once, until its token
//! expires. In Redis (shared by every replica, [`redis`]) or in this
//! process with SQLite behind it (the embedded default, [`embedded`]). A
//! claim is named by a random id, so only the call that claimed it can
//! release it.
//!
//! A claim is taken before the call runs and released if the call is not
//! served, so a solution pays for at most one served call, and a failed call
//! leaves it usable. A process that dies between claim and release leaves
//! the claim until the token expires: the solution is lost, never reused.
//!
//! A store that loses claims (a Redis restarted without persistence or
//! evicting, an embedded process killed before its last writes) lets a spent
//! solution be used again until it expires (at most
//! `POW_CHALLENGE_TTL_SECONDS`): what is at stake is one free cpu-tier call
//! per lost claim.

pub mod embedded;
pub mod redis;

use std::path::Path;
use tessera_error::Error;

#[derive(Clone)]
pub enum ClaimStore {
    Redis(redis::RedisClaims),
    Embedded(embedded::EmbeddedClaims),
}

impl std::fmt::Debug for ClaimStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimStore::Redis(_) => f.write_str("ClaimStore::Redis"),
            ClaimStore::Embedded(_) => f.write_str("ClaimStore::Embedded"),
        }
    }
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> Error {
    tracing::warn!(%error, "pow claim store: {what}");
    Error::unavailable(
        "POW_STORE_UNAVAILABLE",
        format!("the proof-of-work store is unavailable ({what})"),
    )
}

impl ClaimStore {
    pub async fn redis(url: &str) -> anyhow::Result<Self> {
        Ok(ClaimStore::Redis(redis::RedisClaims::open(url).await?))
    }

    pub async fn embedded(path: &Path) -> anyhow::Result<Self> {
        Ok(ClaimStore::Embedded(
            embedded::EmbeddedClaims::open(path).await?,
        ))
    }

    /// Claims `challenge` for `claim` until `expires_at_ms`; `false` when
    /// it is already claimed.
    pub async fn claim(
        &self,
        challenge: &str,
        claim: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, Error> {
        match self {
            ClaimStore::Redis(redis) => redis.claim(challenge, claim, expires_at_ms).await,
            ClaimStore::Embedded(embedded) => {
                embedded.claim(challenge, claim, expires_at_ms, now_ms)
            }
        }
    }

    /// Releases `claim` of `challenge`; `false` if it was not held (already
    /// released, expired, or another's).
    pub async fn release(&self, challenge: &str, claim: &str) -> Result<bool, Error> {
        match self {
            ClaimStore::Redis(redis) => redis.release(challenge, claim).await,
            ClaimStore::Embedded(embedded) => embedded.release(challenge, claim),
        }
    }
}
