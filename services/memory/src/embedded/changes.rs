//! The embedded store's change log: a table written in each write's own
//! transaction (so a change is logged exactly when its write commits), and
//! an in-process wake-up per namespace. A cursor is the change's `seq`.

use super::db_error;
use crate::model::Entry;
use crate::ops::Stored;
use crate::watch::{invalid_cursor, Change, ChangeLog, Cursor, Read, Target, Wakeups, LOG_LENGTH};
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::sync::Arc;
use tessera_error::Result;

pub struct EmbeddedChanges {
    pool: SqlitePool,
    pub(super) wakeups: Arc<Wakeups>,
}

impl EmbeddedChanges {
    pub fn new(pool: SqlitePool) -> Self {
        EmbeddedChanges {
            pool,
            wakeups: Arc::default(),
        }
    }
}

/// Logs the write that left `key` as `stored`, inside the write's
/// transaction, trimming the namespace's log to its last [`LOG_LENGTH`].
pub(super) async fn log_change(
    conn: &mut SqliteConnection,
    namespace: &str,
    key: &str,
    stored: &Stored,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO memory_changes (namespace, key, revision, value, created_at, updated_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(namespace)
    .bind(key)
    .bind(stored.revision as i64)
    .bind(&stored.value)
    .bind(stored.created_at_ms)
    .bind(stored.updated_at_ms)
    .bind(stored.expires_at_ms)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    // One statement: what falls out of the last LOG_LENGTH (nothing while
    // there are fewer), and the floor only when something did.
    let trimmed: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM memory_changes WHERE namespace = ?1 AND seq < (
             SELECT seq FROM memory_changes WHERE namespace = ?1
             ORDER BY seq DESC LIMIT 1 OFFSET ?2)
         RETURNING seq",
    )
    .bind(namespace)
    .bind(LOG_LENGTH as i64 - 1)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let Some(floor) = trimmed.into_iter().max() else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO memory_change_floors (namespace, seq) VALUES (?, ?)
         ON CONFLICT (namespace) DO UPDATE SET seq = max(seq, excluded.seq)",
    )
    .bind(namespace)
    .bind(floor)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

fn parse(cursor: &str) -> Result<i64> {
    cursor
        .parse::<i64>()
        .ok()
        .filter(|seq| *seq >= 0)
        .ok_or_else(|| invalid_cursor(cursor))
}

#[async_trait::async_trait]
impl ChangeLog for EmbeddedChanges {
    fn check_cursor(&self, cursor: &str) -> Result<()> {
        parse(cursor).map(drop)
    }

    fn poll_every(&self) -> Option<std::time::Duration> {
        // Every write of this store wakes its watches itself.
        None
    }

    async fn head(&self, namespace: &str) -> Result<Cursor> {
        let head: Option<i64> =
            sqlx::query_scalar("SELECT max(seq) FROM memory_changes WHERE namespace = ?")
                .bind(namespace)
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(head.unwrap_or(0).to_string())
    }

    async fn after(
        &self,
        namespace: &str,
        cursor: &str,
        limit: usize,
        wanted: &Target,
    ) -> Result<Read> {
        let after = parse(cursor)?;
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // Below the trimmed floor, or beyond any seq ever given (a cursor
        // from another copy of the file): what follows it is unknown.
        let (floor, issued): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT seq FROM memory_change_floors WHERE namespace = ?),
                    (SELECT seq FROM sqlite_sequence WHERE name = 'memory_changes')",
        )
        .bind(namespace)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        if floor.is_some_and(|floor| after < floor) || after > issued.unwrap_or(0) {
            return Ok(Read {
                changes: Vec::new(),
                cursor: cursor.to_string(),
                gap: true,
                more: false,
            });
        }
        let rows = sqlx::query(
            "SELECT seq, key, revision, value, created_at, updated_at, expires_at
             FROM memory_changes WHERE namespace = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(namespace)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let mut read = Read {
            changes: Vec::new(),
            cursor: cursor.to_string(),
            gap: false,
            more: rows.len() >= limit,
        };
        for row in &rows {
            read.cursor = row.get::<i64, _>("seq").to_string();
            let key: String = row.get("key");
            if !wanted.accepts(&key) {
                continue;
            }
            let revision = row.get::<i64, _>("revision") as u64;
            let value: Option<String> = row.get("value");
            let entry = value.map(|value| Entry {
                namespace: namespace.to_string(),
                key: key.clone(),
                value,
                revision,
                created_at_ms: row.get("created_at"),
                updated_at_ms: row.get("updated_at"),
                expires_at_ms: row.get("expires_at"),
            });
            read.changes.push(Change {
                cursor: read.cursor.clone(),
                key,
                revision,
                entry,
            });
        }
        Ok(read)
    }

    async fn find(&self, namespace: &str, key: &str, revision: u64) -> Result<Option<Cursor>> {
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM memory_changes WHERE namespace = ? AND key = ? AND revision = ?
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(namespace)
        .bind(key)
        .bind(revision as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(seq.map(|seq| seq.to_string()))
    }

    fn wakeups(&self, namespace: &str) -> tokio::sync::watch::Receiver<u64> {
        self.wakeups.subscribe(namespace)
    }
}
