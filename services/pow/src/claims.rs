//! Single use: a solution's challenge is claimed once, until its token
//! expires. In Redis (`SET NX PXAT`, shared by every replica) or in SQLite
//! (the embedded default, one process). A claim is named by a random id, so
//! only the call that claimed it can release it.
//!
//! A claim is taken before the call runs and released if the call is not
//! served, so a solution pays for at most one served call, and a failed call
//! leaves it usable. A process that dies between claim and release leaves
//! the claim until the token expires: the solution is lost, never reused.
//! A Redis that loses its data (restart without persistence, eviction)
//! forgets claims, so a spent solution could be used again until it expires
//! (at most `POW_CHALLENGE_TTL_SECONDS`): what is at stake is one free
//! cpu-tier call per lost claim.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::SqlitePool;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tessera_error::Error;

const REDIS_PREFIX: &str = "tessera:pow:claim:";
/// Compare-and-delete: only the claim's own id releases it.
const RELEASE_LUA: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
/// How long a Redis answer (or connection) may take.
const REDIS_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Expired SQLite rows are purged at most this often (milliseconds).
const PURGE_EVERY_MS: i64 = 60_000;

#[derive(Clone)]
pub enum ClaimStore {
    Redis {
        connection: redis::aio::ConnectionManager,
        release: Arc<redis::Script>,
    },
    Sqlite {
        pool: SqlitePool,
        last_purge_ms: Arc<AtomicI64>,
    },
}

impl std::fmt::Debug for ClaimStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimStore::Redis { .. } => f.write_str("ClaimStore::Redis"),
            ClaimStore::Sqlite { .. } => f.write_str("ClaimStore::Sqlite"),
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
        let client = redis::Client::open(url)?;
        // The library's 500 ms answer timeout fails claims spuriously when
        // the process is busy; a claim may wait, the call has its own
        // deadline.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(REDIS_ANSWER_TIMEOUT))
            .set_connection_timeout(Some(REDIS_ANSWER_TIMEOUT));
        let connection = redis::aio::ConnectionManager::new_with_config(client, config).await?;
        Ok(ClaimStore::Redis {
            connection,
            release: Arc::new(redis::Script::new(RELEASE_LUA)),
        })
    }

    pub async fn sqlite(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS pow_claims (
                 challenge TEXT PRIMARY KEY,
                 claim TEXT NOT NULL,
                 expires_at_ms INTEGER NOT NULL
             )",
        )
        .execute(&pool)
        .await?;
        Ok(ClaimStore::Sqlite {
            pool,
            last_purge_ms: Arc::new(AtomicI64::new(0)),
        })
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
            ClaimStore::Redis { connection, .. } => {
                let set: Option<String> = redis::cmd("SET")
                    .arg(format!("{REDIS_PREFIX}{challenge}"))
                    .arg(claim)
                    .arg("NX")
                    .arg("PXAT")
                    .arg(expires_at_ms)
                    .query_async(&mut connection.clone())
                    .await
                    .map_err(|error| unavailable("claim", error))?;
                Ok(set.is_some())
            }
            ClaimStore::Sqlite {
                pool,
                last_purge_ms,
            } => {
                let last = last_purge_ms.load(Ordering::Relaxed);
                if now_ms - last >= PURGE_EVERY_MS
                    && last_purge_ms
                        .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    sqlx::query("DELETE FROM pow_claims WHERE expires_at_ms <= ?")
                        .bind(now_ms)
                        .execute(pool)
                        .await
                        .map_err(|error| unavailable("purge", error))?;
                }
                let inserted = sqlx::query(
                    "INSERT INTO pow_claims (challenge, claim, expires_at_ms) VALUES (?, ?, ?)
                     ON CONFLICT (challenge) DO NOTHING",
                )
                .bind(challenge)
                .bind(claim)
                .bind(expires_at_ms)
                .execute(pool)
                .await
                .map_err(|error| unavailable("claim", error))?;
                Ok(inserted.rows_affected() == 1)
            }
        }
    }

    /// Releases `claim` of `challenge`; `false` if it was not held (already
    /// released, expired, or another's).
    pub async fn release(&self, challenge: &str, claim: &str) -> Result<bool, Error> {
        match self {
            ClaimStore::Redis {
                connection,
                release,
            } => {
                let deleted: i64 = release
                    .key(format!("{REDIS_PREFIX}{challenge}"))
                    .arg(claim)
                    .invoke_async(&mut connection.clone())
                    .await
                    .map_err(|error| unavailable("release", error))?;
                Ok(deleted == 1)
            }
            ClaimStore::Sqlite { pool, .. } => {
                let deleted =
                    sqlx::query("DELETE FROM pow_claims WHERE challenge = ? AND claim = ?")
                        .bind(challenge)
                        .bind(claim)
                        .execute(pool)
                        .await
                        .map_err(|error| unavailable("release", error))?;
                Ok(deleted.rows_affected() == 1)
            }
        }
    }
}
