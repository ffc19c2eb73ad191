//! The store of idempotency entries: [`IdempotencyStore::begin`] claims a
//! key or says what is there, [`IdempotencyStore::complete`] keeps the
//! response of a claimed call, [`IdempotencyStore::release`] forgets a
//! claim whose call failed. Each step is one atomic operation on the
//! backend, so concurrent duplicates (on any gateway replica sharing the
//! store) see exactly one claim.

mod redis_entries;
mod sqlite_entries;

use crate::key::{CacheKey, Fingerprint};
use crate::response::StoredResponse;
use redis_entries::RedisEntries;
use sqlite_entries::SqliteEntries;
use std::path::Path;
use std::time::Duration;
use tessera_error::Error;

/// What [`IdempotencyStore::begin`] found for a key.
#[derive(Debug)]
pub enum Begin {
    /// No live entry: this call now holds the key and must run, then
    /// [`complete`](IdempotencyStore::complete) or
    /// [`release`](IdempotencyStore::release) the claim.
    Claimed(Claim),
    /// The key was completed with the same fingerprint: answer this.
    Replay(StoredResponse),
    /// Another call with the same fingerprint holds the key: poll again.
    InFlight,
    /// The key is live (in flight or completed) with another fingerprint.
    Mismatch,
}

/// The right to complete or release one in-flight entry: its key and a
/// random owner id (128 bits, hex). Used once; a claim that is dropped
/// unused keeps the key until its lease expires.
#[derive(Debug)]
pub struct Claim {
    key: CacheKey,
    owner: String,
}

impl Claim {
    fn new(key: CacheKey) -> Self {
        Claim {
            key,
            owner: hex::encode(rand::random::<[u8; 16]>()),
        }
    }

    /// The key this claim holds.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    fn owner(&self) -> &str {
        &self.owner
    }
}

/// How long entries live and how many SQLite keeps.
#[derive(Clone, Debug)]
pub struct Limits {
    /// How long a completed response is replayed.
    pub ttl: Duration,
    /// How long an in-flight claim holds its key before a retry may run
    /// again (covers a gateway that dies mid-call).
    pub lease: Duration,
    /// The SQLite bound on entries (Redis relies on its own memory policy).
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ttl: Duration::from_secs(24 * 60 * 60),
            lease: Duration::from_secs(120),
            max_entries: 100_000,
        }
    }
}

/// A duration as the whole milliseconds a backend expiry takes (at least
/// one: a zero expiry would mean "never" or "now" depending on the call).
fn expiry_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// A backend failure, logged with its cause; callers see one stable reason.
fn unavailable(what: &str, error: impl std::fmt::Display) -> Error {
    tracing::warn!(%error, "idempotency store: {what} failed");
    Error::unavailable(
        "IDEMPOTENCY_STORE_UNAVAILABLE",
        format!("the idempotency store is unavailable ({what})"),
    )
}

/// Idempotency entries in Redis (shared by every gateway replica) or
/// SQLite (one process). Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct IdempotencyStore {
    backend: Backend,
    limits: Limits,
}

#[derive(Clone)]
enum Backend {
    Redis(RedisEntries),
    Sqlite(SqliteEntries),
}

impl std::fmt::Debug for IdempotencyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.backend {
            Backend::Redis(_) => f.write_str("IdempotencyStore::Redis"),
            Backend::Sqlite(_) => f.write_str("IdempotencyStore::Sqlite"),
        }
    }
}

impl IdempotencyStore {
    /// Entries in Redis at `url`, under `tessera:idempotency:<hex key>`.
    pub async fn redis(url: &str, limits: Limits) -> anyhow::Result<Self> {
        Ok(IdempotencyStore {
            backend: Backend::Redis(RedisEntries::connect(url).await?),
            limits,
        })
    }

    /// Entries in the SQLite file at `path` (parent directories created,
    /// WAL journal), bounded by `limits.max_entries`.
    pub async fn sqlite(path: &Path, limits: Limits) -> anyhow::Result<Self> {
        Ok(IdempotencyStore {
            backend: Backend::Sqlite(SqliteEntries::open(path, limits.max_entries).await?),
            limits,
        })
    }

    /// Entries in an in-memory SQLite database (one connection, kept
    /// open): for tests and a one-process default that need not survive a
    /// restart.
    pub async fn in_memory(limits: Limits) -> anyhow::Result<Self> {
        Ok(IdempotencyStore {
            backend: Backend::Sqlite(SqliteEntries::open_in_memory(limits.max_entries).await?),
            limits,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Claims `key` for a call carrying `fingerprint`, or says what holds
    /// it. An expired entry counts as absent and is taken over.
    pub async fn begin(&self, key: &CacheKey, fingerprint: &Fingerprint) -> Result<Begin, Error> {
        let claim = Claim::new(*key);
        let lease_ms = expiry_ms(self.limits.lease);
        match &self.backend {
            Backend::Redis(entries) => entries.begin(claim, fingerprint, lease_ms).await,
            Backend::Sqlite(entries) => entries.begin(claim, fingerprint, lease_ms).await,
        }
    }

    /// Keeps `response` for the claimed key for `limits.ttl`; `false` (and
    /// nothing changed) when the claim no longer holds the key: its lease
    /// expired, or another call claimed the key since.
    pub async fn complete(&self, claim: Claim, response: &StoredResponse) -> Result<bool, Error> {
        let encoded = response.encode()?;
        let ttl_ms = expiry_ms(self.limits.ttl);
        match &self.backend {
            Backend::Redis(entries) => entries.complete(&claim, &encoded, ttl_ms).await,
            Backend::Sqlite(entries) => entries.complete(&claim, &encoded, ttl_ms).await,
        }
    }

    /// Forgets the claimed key so a retry runs afresh; `false` (and nothing
    /// changed) when the claim no longer holds the key.
    pub async fn release(&self, claim: Claim) -> Result<bool, Error> {
        match &self.backend {
            Backend::Redis(entries) => entries.release(&claim).await,
            Backend::Sqlite(entries) => entries.release(&claim).await,
        }
    }
}
