//! Entries in SQLite, one row per key in `idempotency_entries`: the
//! fingerprint, and either `owner` (in flight) or `response` (completed),
//! with `expires_at_ms` (the lease, then the ttl). A row with
//! `expires_at_ms <= now` counts as absent: `begin` takes it over in the
//! same statement that would insert a new one, and rows past their expiry
//! are purged at most once a minute.
//!
//! The table is bounded by `max_entries`. Every `N = max(1, max_entries /
//! 100)` claims, the claim's own transaction (which holds SQLite's write
//! lock, so claims are counted in commit order) deletes expired rows and
//! then, while the table is over the bound, the completed rows closest to
//! expiry. Between two trims at most `N - 1` rows are added, so the table
//! never holds more than `max_entries + N - 1` rows (under 1 % over).
//! In-flight rows are never evicted: the bound can only be exceeded by
//! more than that when more than `max_entries` calls are in flight at once.

use super::{unavailable, Begin, Claim};
use crate::key::Fingerprint;
use crate::response::StoredResponse;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_error::Error;

/// Expired rows are purged at most this often (milliseconds).
const PURGE_EVERY_MS: i64 = 60_000;
/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS idempotency_entries (
    key TEXT PRIMARY KEY,
    fingerprint BLOB NOT NULL,
    owner TEXT NULL,
    response BLOB NULL,
    expires_at_ms INTEGER NOT NULL
)";
const CREATE_EXPIRY_INDEX: &str = "CREATE INDEX IF NOT EXISTS idempotency_entries_expiry
    ON idempotency_entries (expires_at_ms)";

/// Inserts an in-flight row, or takes over an expired one; changes nothing
/// (0 rows) when a live row holds the key.
const CLAIM: &str =
    "INSERT INTO idempotency_entries (key, fingerprint, owner, response, expires_at_ms)
    VALUES (?, ?, ?, NULL, ?)
    ON CONFLICT (key) DO UPDATE SET
        fingerprint = excluded.fingerprint,
        owner = excluded.owner,
        response = NULL,
        expires_at_ms = excluded.expires_at_ms
    WHERE idempotency_entries.expires_at_ms <= ?";
const COMPLETE: &str = "UPDATE idempotency_entries
    SET owner = NULL, response = ?, expires_at_ms = ?
    WHERE key = ? AND owner = ? AND expires_at_ms > ?";
const RELEASE: &str =
    "DELETE FROM idempotency_entries WHERE key = ? AND owner = ? AND expires_at_ms > ?";
const PURGE_EXPIRED: &str = "DELETE FROM idempotency_entries WHERE expires_at_ms <= ?";
/// Evicts the given number of completed rows, closest to expiry first
/// (oldest insert first among equal expiries).
const EVICT_COMPLETED: &str = "DELETE FROM idempotency_entries WHERE key IN (
    SELECT key FROM idempotency_entries WHERE owner IS NULL
    ORDER BY expires_at_ms, rowid LIMIT ?)";

/// A live row as read back: fingerprint, owner, response.
type LiveRow = (Vec<u8>, Option<String>, Option<Vec<u8>>);

#[derive(Clone)]
pub(super) struct SqliteEntries {
    pool: SqlitePool,
    bound: Arc<Bound>,
}

/// The state of the `max_entries` bound and of the periodic purge.
struct Bound {
    max_entries: u64,
    /// Trim every this many claims.
    trim_every: u64,
    /// Claims since the last committed trim.
    claims_since_trim: AtomicU64,
    last_purge_ms: AtomicI64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl SqliteEntries {
    pub(super) async fn open(path: &Path, max_entries: u64) -> anyhow::Result<Self> {
        // Exactly-once needs the kept answer on disk before it is served.
        let pool = tessera_sqlite::open(path, 4, tessera_sqlite::Durability::Full).await?;
        Self::prepare(pool, max_entries).await
    }

    pub(super) async fn open_in_memory(max_entries: u64) -> anyhow::Result<Self> {
        // An in-memory database lives as long as its connection: keep the
        // one connection open for the life of the pool.
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::prepare(pool, max_entries).await
    }

    async fn prepare(pool: SqlitePool, max_entries: u64) -> anyhow::Result<Self> {
        sqlx::query(CREATE_TABLE).execute(&pool).await?;
        sqlx::query(CREATE_EXPIRY_INDEX).execute(&pool).await?;
        let entries = SqliteEntries {
            pool,
            bound: Arc::new(Bound {
                max_entries,
                trim_every: (max_entries / 100).max(1),
                claims_since_trim: AtomicU64::new(0),
                last_purge_ms: AtomicI64::new(0),
            }),
        };
        // A file written under a larger bound is brought within this one.
        let mut transaction = entries.pool.begin().await?;
        trim(&mut transaction, now_ms(), max_entries).await?;
        transaction.commit().await?;
        Ok(entries)
    }

    async fn purge_expired_if_due(&self, now_ms: i64) -> Result<(), Error> {
        let last = self.bound.last_purge_ms.load(Ordering::Relaxed);
        if now_ms - last >= PURGE_EVERY_MS
            && self
                .bound
                .last_purge_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            sqlx::query(PURGE_EXPIRED)
                .bind(now_ms)
                .execute(&self.pool)
                .await
                .map_err(|error| unavailable("purge", error))?;
        }
        Ok(())
    }

    pub(super) async fn begin(
        &self,
        claim: Claim,
        fingerprint: &Fingerprint,
        lease_ms: i64,
    ) -> Result<Begin, Error> {
        let now = now_ms();
        self.purge_expired_if_due(now).await?;
        let key = claim.key().hex();
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(|error| unavailable("begin", error))?;
        let claimed = sqlx::query(CLAIM)
            .bind(&key)
            .bind(&fingerprint.as_bytes()[..])
            .bind(claim.owner())
            .bind(now.saturating_add(lease_ms))
            .bind(now)
            .execute(&mut *transaction)
            .await
            .map_err(|error| unavailable("begin", error))?
            .rows_affected()
            == 1;
        if claimed {
            // Counted while this transaction holds the write lock.
            let pending = self.bound.claims_since_trim.fetch_add(1, Ordering::Relaxed) + 1;
            let trims = pending >= self.bound.trim_every;
            if trims {
                trim(&mut transaction, now, self.bound.max_entries)
                    .await
                    .map_err(|error| unavailable("evict", error))?;
            }
            transaction
                .commit()
                .await
                .map_err(|error| unavailable("begin", error))?;
            if trims {
                self.bound
                    .claims_since_trim
                    .fetch_sub(pending, Ordering::Relaxed);
            }
            return Ok(Begin::Claimed(claim));
        }
        // The claim changed nothing, so a live row holds the key; read it
        // in the same transaction, before anyone can change it.
        let row: Option<LiveRow> = sqlx::query_as(
            "SELECT fingerprint, owner, response FROM idempotency_entries WHERE key = ?",
        )
        .bind(&key)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| unavailable("begin", error))?;
        transaction
            .commit()
            .await
            .map_err(|error| unavailable("begin", error))?;
        let Some((stored_fingerprint, owner, response)) = row else {
            return Err(corrupt_entry(
                &key,
                "a live row vanished inside its transaction",
            ));
        };
        let Some(stored_fingerprint) = Fingerprint::from_slice(&stored_fingerprint) else {
            return Err(corrupt_entry(&key, "the fingerprint is not 32 bytes"));
        };
        if stored_fingerprint != *fingerprint {
            return Ok(Begin::Mismatch);
        }
        match (owner, response) {
            (_, Some(response)) => StoredResponse::decode(&response).map(Begin::Replay),
            (Some(_), None) => Ok(Begin::InFlight),
            (None, None) => Err(corrupt_entry(&key, "neither owner nor response")),
        }
    }

    pub(super) async fn complete(
        &self,
        claim: &Claim,
        response: &[u8],
        ttl_ms: i64,
    ) -> Result<bool, Error> {
        let now = now_ms();
        let completed = sqlx::query(COMPLETE)
            .bind(response)
            .bind(now.saturating_add(ttl_ms))
            .bind(claim.key().hex())
            .bind(claim.owner())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|error| unavailable("complete", error))?;
        Ok(completed.rows_affected() == 1)
    }

    pub(super) async fn release(&self, claim: &Claim) -> Result<bool, Error> {
        let released = sqlx::query(RELEASE)
            .bind(claim.key().hex())
            .bind(claim.owner())
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|error| unavailable("release", error))?;
        Ok(released.rows_affected() == 1)
    }
}

fn corrupt_entry(key: &str, what: &str) -> Error {
    tracing::warn!(key, what, "idempotency store: corrupt SQLite entry");
    Error::internal("a stored idempotency entry is corrupt")
}

/// Deletes expired rows, then evicts completed rows closest to expiry while
/// the table holds more than `max_entries` rows.
async fn trim(
    transaction: &mut Transaction<'static, Sqlite>,
    now_ms: i64,
    max_entries: u64,
) -> Result<(), sqlx::Error> {
    let connection: &mut SqliteConnection = transaction;
    sqlx::query(PURGE_EXPIRED)
        .bind(now_ms)
        .execute(&mut *connection)
        .await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_entries")
        .fetch_one(&mut *connection)
        .await?;
    let max_entries = i64::try_from(max_entries).unwrap_or(i64::MAX);
    let excess = count.saturating_sub(max_entries);
    if excess > 0 {
        sqlx::query(EVICT_COMPLETED)
            .bind(excess)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}
