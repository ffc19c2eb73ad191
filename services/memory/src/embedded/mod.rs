//! The embedded backend for `make run`: one SQLite file, every operation one
//! IMMEDIATE transaction applying [`crate::ops::apply`], the file synced
//! before the call returns (`synchronous=FULL`). Each write is logged for
//! watches in the same transaction ([`changes`]).

mod changes;

use crate::grants::{grant_quota_exceeded, stored_mode, AccessMode, Grant};
use crate::model::{
    now_ms, quota_exceeded, CasOutcome, Deleted, Entry, Limits, ListPage, ListQuery, TtlChange,
};
use crate::ops::{self, Number, Op, Stored, Transition};
use crate::store::MemoryStore;
use crate::watch::{ChangeLog, KeyState};
use changes::EmbeddedChanges;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::path::Path;
use std::sync::Arc;
use tessera_error::{Error, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Expired entries retired per write, so quotas free up without a sweeper.
const RETIRE_BATCH: i64 = 16;

#[derive(Clone)]
pub struct EmbeddedStore {
    pool: SqlitePool,
    limits: Limits,
    changes: Arc<EmbeddedChanges>,
}

pub(crate) fn db_error(error: sqlx::Error) -> Error {
    tracing::warn!(%error, "sqlite call failed");
    Error::unavailable(
        "DATABASE_UNAVAILABLE",
        "the embedded memory database failed; retry",
    )
}

impl EmbeddedStore {
    /// Opens (creating if needed) the database file and migrates it.
    pub async fn open(path: &Path, limits: Limits) -> Result<Self> {
        // One connection: SQLite has one writer anyway, and this makes every
        // read-modify-write below a critical section. An acknowledged write
        // is on disk.
        let pool = tessera_sqlite::open(path, 1, tessera_sqlite::Durability::Full)
            .await
            .map_err(|error| Error::internal(format!("the embedded memory database: {error:#}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::internal(format!("embedded migrations failed: {e}")))?;
        Ok(EmbeddedStore {
            changes: Arc::new(EmbeddedChanges::new(pool.clone())),
            pool,
            limits,
        })
    }

    /// A transaction that takes SQLite's write lock at once, so its reads
    /// and writes form one critical section. Dropped uncommitted = rolled back.
    async fn write_transaction(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }

    /// Applies `op` to a key in one transaction, with quota accounting.
    async fn apply(&self, namespace: &str, key: &str, op: &Op) -> Result<(Transition, i64)> {
        let now = now_ms();
        let mut tx = self.write_transaction().await?;
        let transition =
            apply_in_transaction(&mut tx, namespace, key, op, now, self.limits).await?;
        tx.commit().await.map_err(db_error)?;
        if transition.changed {
            self.changes.wakeups.wake(namespace);
        }
        Ok((transition, now))
    }

    /// Creates or replaces a grant in one transaction, with the quota.
    async fn put_grant(
        &self,
        namespace: &str,
        grantee: &str,
        mode: AccessMode,
        ttl_seconds: Option<u64>,
    ) -> Result<Grant> {
        let now = now_ms();
        let grant = Grant {
            namespace: namespace.to_string(),
            grantee: grantee.to_string(),
            mode,
            expires_at_ms: ttl_seconds.map(|s| now + s as i64 * 1000),
            created_at_ms: now,
        };
        let mut tx = self.write_transaction().await?;
        put_grant_in_transaction(&mut tx, &grant, now, self.limits.max_grants).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(grant)
    }
}

async fn put_grant_in_transaction(
    conn: &mut SqliteConnection,
    grant: &Grant,
    now: i64,
    max_grants: u64,
) -> Result<()> {
    sqlx::query("DELETE FROM memory_grants WHERE namespace = ? AND expires_at <= ?")
        .bind(&grant.namespace)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let others: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM memory_grants WHERE namespace = ? AND grantee <> ?",
    )
    .bind(&grant.namespace)
    .bind(&grant.grantee)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    if others as u64 >= max_grants {
        return Err(grant_quota_exceeded(max_grants));
    }
    sqlx::query(
        "INSERT INTO memory_grants (namespace, grantee, mode, expires_at, created_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (namespace, grantee) DO UPDATE SET mode = excluded.mode,
             expires_at = excluded.expires_at, created_at = excluded.created_at",
    )
    .bind(&grant.namespace)
    .bind(&grant.grantee)
    .bind(grant.mode.as_str())
    .bind(grant.expires_at_ms)
    .bind(grant.created_at_ms)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

fn grant_from(namespace: &str, row: &SqliteRow) -> Result<Grant> {
    Ok(Grant {
        namespace: namespace.to_string(),
        grantee: row.get("grantee"),
        mode: stored_mode(row.get("mode"))?,
        expires_at_ms: row.get("expires_at"),
        created_at_ms: row.get("created_at"),
    })
}

async fn apply_in_transaction(
    conn: &mut SqliteConnection,
    namespace: &str,
    key: &str,
    op: &Op,
    now: i64,
    limits: Limits,
) -> Result<Transition> {
    retire_expired(conn, namespace, now).await?;
    let current = match read_stored(conn, namespace, key).await? {
        Some(stored) => stored,
        None => Stored {
            revision: floor_revision(conn, namespace).await?,
            ..Stored::default()
        },
    };
    let transition = ops::apply(op, &current, now)?;
    if !transition.changed {
        return Ok(transition);
    }
    let old_bytes = current.charged_bytes(key, now) as i64;
    let new_bytes = transition.state.charged_bytes(key, now) as i64;
    let keys_delta = i64::from(transition.state.is_live(now)) - i64::from(current.is_live(now));
    let bytes_delta = new_bytes - old_bytes;
    let (keys, bytes) = read_usage(conn, namespace).await?;
    if keys_delta > 0 && (keys + keys_delta) as u64 > limits.max_keys {
        return Err(quota_exceeded("keys", limits.max_keys));
    }
    if bytes_delta > 0 && (bytes + bytes_delta) as u64 > limits.max_bytes {
        return Err(quota_exceeded("bytes", limits.max_bytes));
    }
    write_stored(conn, namespace, key, &transition.state).await?;
    add_usage(conn, namespace, keys_delta, bytes_delta).await?;
    changes::log_change(conn, namespace, key, &transition.state).await?;
    Ok(transition)
}

/// The highest revision `namespace` ever reclaimed: a key created again
/// starts above it.
async fn floor_revision(conn: &mut SqliteConnection, namespace: &str) -> Result<u64> {
    let revision: Option<i64> =
        sqlx::query_scalar("SELECT revision FROM memory_floors WHERE namespace = ?")
            .bind(namespace)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
    Ok(revision.unwrap_or(0) as u64)
}

/// Rows dead at `?1`: deleted before it, or expired by it.
const DEAD: &str =
    "((value IS NULL AND updated_at <= ?1) OR (value IS NOT NULL AND expires_at <= ?1))";

async fn read_stored(
    conn: &mut SqliteConnection,
    namespace: &str,
    key: &str,
) -> Result<Option<Stored>> {
    let row = sqlx::query(
        "SELECT value, revision, created_at, updated_at, expires_at
         FROM memory_entries WHERE namespace = ? AND key = ?",
    )
    .bind(namespace)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(row.map(|row| Stored {
        value: row.get("value"),
        revision: row.get::<i64, _>("revision") as u64,
        created_at_ms: row.get("created_at"),
        updated_at_ms: row.get("updated_at"),
        expires_at_ms: row.get("expires_at"),
    }))
}

async fn write_stored(
    conn: &mut SqliteConnection,
    namespace: &str,
    key: &str,
    stored: &Stored,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO memory_entries (namespace, key, value, revision, created_at, updated_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,
             revision = excluded.revision, created_at = excluded.created_at,
             updated_at = excluded.updated_at, expires_at = excluded.expires_at",
    )
    .bind(namespace)
    .bind(key)
    .bind(&stored.value)
    .bind(stored.revision as i64)
    .bind(stored.created_at_ms)
    .bind(stored.updated_at_ms)
    .bind(stored.expires_at_ms)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn read_usage(conn: &mut SqliteConnection, namespace: &str) -> Result<(i64, i64)> {
    let row = sqlx::query("SELECT keys, bytes FROM namespace_usage WHERE namespace = ?")
        .bind(namespace)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(row.map_or((0, 0), |row| (row.get("keys"), row.get("bytes"))))
}

async fn add_usage(
    conn: &mut SqliteConnection,
    namespace: &str,
    keys: i64,
    bytes: i64,
) -> Result<()> {
    if keys == 0 && bytes == 0 {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO namespace_usage (namespace, keys, bytes) VALUES (?, max(?, 0), max(?, 0))
         ON CONFLICT (namespace) DO UPDATE SET keys = max(namespace_usage.keys + ?, 0),
             bytes = max(namespace_usage.bytes + ?, 0)",
    )
    .bind(namespace)
    .bind(keys)
    .bind(bytes)
    .bind(keys)
    .bind(bytes)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Turns a few expired entries of the namespace into tombstones (keeping
/// their revision) and takes them off the running totals.
async fn retire_expired(conn: &mut SqliteConnection, namespace: &str, now: i64) -> Result<()> {
    let rows = sqlx::query(
        "SELECT key, length(CAST(value AS BLOB)) + length(CAST(key AS BLOB)) AS bytes
         FROM memory_entries
         WHERE namespace = ? AND value IS NOT NULL AND expires_at IS NOT NULL AND expires_at <= ?
         LIMIT ?",
    )
    .bind(namespace)
    .bind(now)
    .bind(RETIRE_BATCH)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    for row in &rows {
        let key: String = row.get("key");
        let bytes: i64 = row.get("bytes");
        sqlx::query("UPDATE memory_entries SET value = NULL, expires_at = NULL WHERE namespace = ? AND key = ?")
            .bind(namespace)
            .bind(&key)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        add_usage(conn, namespace, -1, -bytes).await?;
    }
    Ok(())
}

fn live_entry(namespace: &str, key: &str, stored: &Stored, now: i64) -> Result<Entry> {
    stored
        .to_entry(namespace, key, now)
        .ok_or_else(|| Error::internal("a write left no live entry"))
}

#[async_trait::async_trait]
impl MemoryStore for EmbeddedStore {
    async fn key_state(&self, namespace: &str, key: &str) -> Result<KeyState> {
        let now = now_ms();
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let stored = read_stored(&mut conn, namespace, key)
            .await?
            .unwrap_or_default();
        Ok(KeyState::of(namespace, key, &stored, now))
    }

    fn changes(&self) -> Arc<dyn ChangeLog> {
        self.changes.clone()
    }

    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Entry>> {
        let now = now_ms();
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let stored = read_stored(&mut conn, namespace, key).await?;
        Ok(stored.and_then(|s| s.to_entry(namespace, key, now)))
    }

    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: String,
        ttl: TtlChange,
        if_match: Option<u64>,
    ) -> Result<Entry> {
        let (t, now) = self
            .apply(
                namespace,
                key,
                &Op::Set {
                    value,
                    ttl,
                    if_match,
                },
            )
            .await?;
        live_entry(namespace, key, &t.state, now)
    }

    async fn delete(&self, namespace: &str, key: &str, if_match: Option<u64>) -> Result<Deleted> {
        let (t, _) = self.apply(namespace, key, &Op::Delete { if_match }).await?;
        Ok(Deleted {
            deleted: t.changed,
            revision: t.state.revision,
        })
    }

    async fn list(&self, namespace: &str, query: ListQuery) -> Result<ListPage> {
        let now = now_ms();
        let (after_at, after_key) = match &query.after {
            Some(cursor) => (cursor.updated_at_ms, cursor.key.clone()),
            None => (i64::MAX, String::new()),
        };
        let rows = sqlx::query(
            "SELECT key, value, revision, created_at, updated_at, expires_at
             FROM memory_entries
             WHERE namespace = ? AND value IS NOT NULL
               AND (expires_at IS NULL OR expires_at > ?)
               AND substr(key, 1, length(?)) = ?
               AND (updated_at < ? OR (updated_at = ? AND (? = '' OR key < ?)))
             ORDER BY updated_at DESC, key DESC
             LIMIT ?",
        )
        .bind(namespace)
        .bind(now)
        .bind(&query.prefix)
        .bind(&query.prefix)
        .bind(after_at)
        .bind(after_at)
        .bind(&after_key)
        .bind(&after_key)
        .bind(query.limit as i64 + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let entries: Vec<Entry> = rows
            .iter()
            .map(|row| Entry {
                namespace: namespace.to_string(),
                key: row.get("key"),
                value: row.get("value"),
                revision: row.get::<i64, _>("revision") as u64,
                created_at_ms: row.get("created_at"),
                updated_at_ms: row.get("updated_at"),
                expires_at_ms: row.get("expires_at"),
            })
            .collect();
        Ok(ListPage::from_overfetched(entries, query.limit))
    }

    async fn cas(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
        ttl: TtlChange,
    ) -> Result<CasOutcome> {
        let (t, now) = self
            .apply(
                namespace,
                key,
                &Op::Cas {
                    expected,
                    value,
                    ttl,
                },
            )
            .await?;
        Ok(CasOutcome {
            swapped: t.matched,
            current: t.state.to_entry(namespace, key, now),
            revision: t.state.revision,
        })
    }

    async fn incr(&self, namespace: &str, key: &str, by: Number, ttl: TtlChange) -> Result<Entry> {
        let (t, now) = self.apply(namespace, key, &Op::Incr { by, ttl }).await?;
        live_entry(namespace, key, &t.state, now)
    }

    async fn grant(
        &self,
        namespace: &str,
        grantee: &str,
        mode: AccessMode,
        ttl_seconds: Option<u64>,
    ) -> Result<Grant> {
        self.put_grant(namespace, grantee, mode, ttl_seconds).await
    }

    async fn revoke(&self, namespace: &str, grantee: &str) -> Result<bool> {
        let active: Option<bool> = sqlx::query_scalar(
            "DELETE FROM memory_grants WHERE namespace = ? AND grantee = ?
             RETURNING expires_at IS NULL OR expires_at > ?",
        )
        .bind(namespace)
        .bind(grantee)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(active == Some(true))
    }

    async fn list_grants(&self, namespace: &str) -> Result<Vec<Grant>> {
        let rows = sqlx::query(
            "SELECT grantee, mode, expires_at, created_at FROM memory_grants
             WHERE namespace = ? AND (expires_at IS NULL OR expires_at > ?)
             ORDER BY grantee",
        )
        .bind(namespace)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(|row| grant_from(namespace, row)).collect()
    }

    async fn grant_mode(&self, namespace: &str, grantee: &str) -> Result<Option<AccessMode>> {
        let mode: Option<String> = sqlx::query_scalar(
            "SELECT mode FROM memory_grants
             WHERE namespace = ? AND grantee = ? AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(namespace)
        .bind(grantee)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        mode.as_deref().map(stored_mode).transpose()
    }

    /// One transaction: expired entries still counted leave the usage
    /// totals, each namespace's floor rises to the highest revision it
    /// reclaims, and the dead rows go.
    async fn reclaim(&self, grace: std::time::Duration) -> Result<u64> {
        let cutoff = now_ms() - grace.as_millis() as i64;
        let mut tx = self.write_transaction().await?;
        sqlx::query(
            "UPDATE namespace_usage
                 SET keys = max(keys - dead.dead_keys, 0), bytes = max(bytes - dead.dead_bytes, 0)
             FROM (SELECT namespace, count(*) AS dead_keys,
                          sum(length(CAST(value AS BLOB)) + length(CAST(key AS BLOB))) AS dead_bytes
                   FROM memory_entries
                   WHERE value IS NOT NULL AND expires_at <= ?1
                   GROUP BY namespace) AS dead
             WHERE namespace_usage.namespace = dead.namespace",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query(&format!(
            "INSERT INTO memory_floors (namespace, revision)
             SELECT namespace, max(revision) FROM memory_entries WHERE {DEAD} GROUP BY namespace
             ON CONFLICT (namespace) DO UPDATE SET revision = max(revision, excluded.revision)"
        ))
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let reclaimed = sqlx::query(&format!("DELETE FROM memory_entries WHERE {DEAD}"))
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        tx.commit().await.map_err(db_error)?;
        Ok(reclaimed)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
