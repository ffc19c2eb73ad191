//! The PostgreSQL side of the durable store: the source of truth.

use crate::model::{Entry, ListQuery};
use crate::ops::Stored;
use sqlx::{PgConnection, PgPool, Row};
use std::future::Future;
use tessera_error::{Error, Result};
use tessera_runtime::dependency::{self, Dependency};

/// The memory schema's migrations. Other services may keep their own
/// migrations in the same database (and sqlx's one `_sqlx_migrations`
/// table), so versions applied by them are not an error here.
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// Runs `statement`, timed as the PostgreSQL operation `operation`.
pub async fn timed<T>(
    operation: &'static str,
    statement: impl Future<Output = std::result::Result<T, sqlx::Error>>,
) -> Result<T> {
    dependency::call(Dependency::Postgres, operation, statement)
        .await
        .map_err(db_error)
}

pub fn db_error(error: sqlx::Error) -> Error {
    tracing::warn!(%error, "postgres call failed");
    Error::unavailable(
        "DATABASE_UNAVAILABLE",
        "the memory database is unavailable; a write's outcome is unknown: read before retrying",
    )
}

/// A durable state with the generation it was loaded under.
pub struct Loaded {
    pub stored: Stored,
    pub gen: i64,
}

/// Whether a Redis state (generation, revision) is in PostgreSQL.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Persisted, or superseded by a later revision of the same lineage.
    Durable,
    /// Fenced off before it (or a successor) was persisted: it never happened.
    Lost,
    /// Fenced off, and the fence is too old to tell.
    Unknown,
}

fn loaded_from(row: &sqlx::postgres::PgRow) -> Loaded {
    Loaded {
        stored: Stored {
            value: row.get("value"),
            revision: row.get::<i64, _>("revision") as u64,
            created_at_ms: row.get("created_at"),
            updated_at_ms: row.get("updated_at"),
            expires_at_ms: row.get("expires_at"),
        },
        gen: row.get("gen"),
    }
}

/// A key a load asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub namespace: String,
    pub key: String,
}

/// Locks the rows of `keys` (sorted, distinct: every locker takes rows in
/// key order, so lockers cannot deadlock) for a load and returns their
/// committed states, creating the missing rows (nothing stored) when
/// `create`. A key missing from the answer was never written (or was
/// reclaimed). A new row starts at its namespace's floor: revision and
/// generation above any its reclaimed rows had. The floor row is
/// share-locked, so a reclaim raising it waits for this load.
pub async fn lock_rows(
    conn: &mut PgConnection,
    keys: &[RowKey],
    create: bool,
) -> Result<Vec<(RowKey, Loaded)>> {
    let namespaces: Vec<&str> = keys.iter().map(|k| k.namespace.as_str()).collect();
    let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    let sql = if create {
        "WITH input AS (SELECT * FROM unnest($1::text[], $2::text[]) AS i(namespace, key)),
              floor AS (SELECT namespace, revision, gen FROM memory_floors
                        WHERE namespace IN (SELECT namespace FROM input) FOR SHARE)
         INSERT INTO memory_entries
             (namespace, key, value, revision, gen, created_at, updated_at, expires_at)
         SELECT i.namespace, i.key, NULL, coalesce(f.revision, 0), coalesce(f.gen + 1, 0), 0, 0, NULL
         FROM input i LEFT JOIN floor f ON f.namespace = i.namespace
         ORDER BY i.namespace, i.key
         ON CONFLICT (namespace, key) DO UPDATE SET gen = memory_entries.gen
         RETURNING namespace, key, value, revision, gen, created_at, updated_at, expires_at"
    } else {
        "SELECT m.namespace, m.key, m.value, m.revision, m.gen, m.created_at, m.updated_at,
                m.expires_at
         FROM memory_entries m
         JOIN unnest($1::text[], $2::text[]) AS i(namespace, key)
           ON m.namespace = i.namespace AND m.key = i.key
         ORDER BY m.namespace, m.key
         FOR UPDATE OF m"
    };
    let statement = sqlx::query(sql)
        .bind(&namespaces)
        .bind(&names)
        .fetch_all(&mut *conn);
    let rows = timed("load", statement).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let key = RowKey {
                namespace: row.get("namespace"),
                key: row.get("key"),
            };
            (key, loaded_from(row))
        })
        .collect())
}

/// Moves locked rows each from generation `gen` to `gen + 1`, fencing off
/// every state of `gen` still on its way here, and recording where `gen`
/// ended.
pub async fn advance_generations(conn: &mut PgConnection, rows: &[(RowKey, i64)]) -> Result<()> {
    let statement = sqlx::query(
        "UPDATE memory_entries m
             SET prior_gen = m.gen, prior_rev = m.revision, gen = m.gen + 1
         FROM unnest($1::text[], $2::text[], $3::int8[]) AS i(namespace, key, gen)
         WHERE m.namespace = i.namespace AND m.key = i.key AND m.gen = i.gen",
    )
    .bind(
        rows.iter()
            .map(|(k, _)| k.namespace.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|(k, _)| k.key.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, gen)| *gen).collect::<Vec<_>>())
    .execute(&mut *conn);
    let advanced = timed("advance", statement).await?.rows_affected();
    if advanced == rows.len() as u64 {
        Ok(())
    } else {
        Err(Error::internal("a locked row changed generation"))
    }
}

/// Where a row stands: its generation and revision, and where the previous
/// generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub gen: i64,
    pub revision: i64,
    pub prior_gen: i64,
    pub prior_rev: i64,
}

impl Fence {
    fn from_row(row: &sqlx::postgres::PgRow) -> Self {
        Fence {
            gen: row.get("gen"),
            revision: row.get("revision"),
            prior_gen: row.get("prior_gen"),
            prior_rev: row.get("prior_rev"),
        }
    }

    /// Whether the state (gen, revision) is in PostgreSQL. A generation is one
    /// line of history (one load, one Redis incarnation), so within it a
    /// later revision stored means this one was stored or superseded.
    pub fn verdict(&self, gen: i64, revision: i64) -> Verdict {
        if self.gen == gen && self.revision >= revision {
            Verdict::Durable
        } else if self.gen > gen && self.prior_gen == gen {
            if self.prior_rev >= revision {
                Verdict::Durable
            } else {
                Verdict::Lost
            }
        } else {
            // Two loads since (a real Redis loss twice over), or a state that
            // cannot exist: say so rather than guess.
            Verdict::Unknown
        }
    }

    /// [`Self::verdict`], or with the guard off the verdict of a design
    /// without generations: any revision at least as new counts.
    pub fn judge(&self, gen: i64, revision: i64, guard: Guard) -> Verdict {
        match guard {
            Guard::On => self.verdict(gen, revision),
            Guard::Off if self.revision >= revision => Verdict::Durable,
            Guard::Off => Verdict::Lost,
        }
    }
}

/// The generation guard on persists. Off only to prove that the
/// linearizability checker catches the bug it prevents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    On,
    Off,
}

/// One state to write: a key's newest state of one generation.
pub struct Candidate<'a> {
    pub namespace: &'a str,
    pub key: &'a str,
    pub stored: &'a Stored,
    pub gen: i64,
}

/// The rows' fences after writing each candidate whose generation is current
/// and whose revision is newer than the row's, keyed like the input (a key
/// without a row maps to `None`). Several candidates go in one statement
/// that first locks their rows in key order (so concurrent rounds cannot
/// deadlock), then updates, then reports each row as it now stands.
pub async fn write_candidates(
    pool: &PgPool,
    candidates: &[Candidate<'_>],
    guard: Guard,
) -> Result<Vec<Option<Fence>>> {
    if let [one] = candidates {
        return write_one(pool, one, guard).await.map(|fence| vec![fence]);
    }
    let stored = |f: fn(&Stored) -> i64| candidates.iter().map(|c| f(c.stored)).collect::<Vec<_>>();
    let statement = || {
        sqlx::query(
            "WITH input AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[],
                                  $6::int8[], $7::int8[], $8::int8[])
                 AS i(namespace, key, value, revision, created_at, updated_at, expires_at, gen)
         ),
         locked AS (
             SELECT m.namespace, m.key, m.gen, m.revision, m.prior_gen, m.prior_rev
             FROM memory_entries m
             JOIN input i ON m.namespace = i.namespace AND m.key = i.key
             ORDER BY m.namespace, m.key
             FOR UPDATE OF m
         ),
         updated AS (
             UPDATE memory_entries m
                 SET value = i.value, revision = i.revision, created_at = i.created_at,
                     updated_at = i.updated_at, expires_at = i.expires_at
             FROM input i
             JOIN locked l ON l.namespace = i.namespace AND l.key = i.key
             WHERE m.namespace = i.namespace AND m.key = i.key
               AND (m.gen = i.gen OR NOT $9) AND m.revision < i.revision
             RETURNING m.namespace, m.key, m.revision
         )
         SELECT l.namespace, l.key, l.gen, coalesce(u.revision, l.revision) AS revision,
                l.prior_gen, l.prior_rev
         FROM locked l
         LEFT JOIN updated u ON u.namespace = l.namespace AND u.key = l.key",
        )
        .bind(candidates.iter().map(|c| c.namespace).collect::<Vec<_>>())
        .bind(candidates.iter().map(|c| c.key).collect::<Vec<_>>())
        .bind(
            candidates
                .iter()
                .map(|c| c.stored.value.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(stored(|s| s.revision as i64))
        .bind(stored(|s| s.created_at_ms))
        .bind(stored(|s| s.updated_at_ms))
        .bind(
            candidates
                .iter()
                .map(|c| c.stored.expires_at_ms)
                .collect::<Vec<_>>(),
        )
        .bind(candidates.iter().map(|c| c.gen).collect::<Vec<_>>())
        .bind(guard == Guard::On)
    };
    // Rows are locked in key order, so rounds should never deadlock; if
    // PostgreSQL ever says they did, the statement was rolled back whole and
    // is run again.
    let mut attempts = 0;
    let rows = loop {
        attempts += 1;
        match dependency::call(Dependency::Postgres, "persist", statement().fetch_all(pool)).await {
            Err(sqlx::Error::Database(error))
                if error.code().as_deref() == Some("40P01") && attempts < 3 =>
            {
                tracing::warn!(%error, "a persist round deadlocked; running it again");
            }
            result => break result.map_err(db_error)?,
        }
    };
    let fences: std::collections::HashMap<(String, String), Fence> = rows
        .iter()
        .map(|row| ((row.get("namespace"), row.get("key")), Fence::from_row(row)))
        .collect();
    Ok(candidates
        .iter()
        .map(|c| {
            fences
                .get(&(c.namespace.to_string(), c.key.to_string()))
                .copied()
        })
        .collect())
}

/// One candidate: a guarded UPDATE in autocommit, and the row's fence read
/// only when it did not apply.
async fn write_one(
    pool: &PgPool,
    candidate: &Candidate<'_>,
    guard: Guard,
) -> Result<Option<Fence>> {
    let stored = candidate.stored;
    let revision = stored.revision as i64;
    let statement = sqlx::query(
        "UPDATE memory_entries
             SET value = $3, revision = $4, created_at = $5, updated_at = $6, expires_at = $7
         WHERE namespace = $1 AND key = $2 AND (gen = $8 OR NOT $9) AND revision < $4
         RETURNING gen, revision, prior_gen, prior_rev",
    )
    .bind(candidate.namespace)
    .bind(candidate.key)
    .bind(&stored.value)
    .bind(revision)
    .bind(stored.created_at_ms)
    .bind(stored.updated_at_ms)
    .bind(stored.expires_at_ms)
    .bind(candidate.gen)
    .bind(guard == Guard::On)
    .fetch_optional(pool);
    let written = timed("persist", statement).await?;
    if let Some(row) = written {
        return Ok(Some(Fence::from_row(&row)));
    }
    // A separate statement, so it sees whatever committed meanwhile.
    let statement = sqlx::query(
        "SELECT gen, revision, prior_gen, prior_rev FROM memory_entries
         WHERE namespace = $1 AND key = $2",
    )
    .bind(candidate.namespace)
    .bind(candidate.key)
    .fetch_optional(pool);
    let row = timed("fence", statement).await?;
    Ok(row.as_ref().map(Fence::from_row))
}

/// A deleted or expired row, as it stood when found.
#[derive(Debug, Clone)]
pub struct DeadRow {
    pub namespace: String,
    pub key: String,
    pub gen: i64,
    pub revision: i64,
}

/// The dead rows condition: deleted, or expired, at or before `$1`.
const DEAD: &str =
    "((value IS NULL AND updated_at <= $1) OR (value IS NOT NULL AND expires_at <= $1))";

/// Up to `limit` rows dead since `cutoff_ms` or earlier.
pub async fn dead_rows(pool: &PgPool, cutoff_ms: i64, limit: i64) -> Result<Vec<DeadRow>> {
    let sql =
        format!("SELECT namespace, key, gen, revision FROM memory_entries WHERE {DEAD} LIMIT $2");
    let statement = sqlx::query(&sql)
        .bind(cutoff_ms)
        .bind(limit)
        .fetch_all(pool);
    let rows = timed("dead_rows", statement).await?;
    Ok(rows
        .iter()
        .map(|row| DeadRow {
            namespace: row.get("namespace"),
            key: row.get("key"),
            gen: row.get("gen"),
            revision: row.get("revision"),
        })
        .collect())
}

/// Creates the floor rows `namespaces` lack (at `now_ms`); returns the
/// namespaces whose floor row was created just now.
pub async fn ensure_floors(
    pool: &PgPool,
    namespaces: &[String],
    now_ms: i64,
) -> Result<Vec<String>> {
    let statement = sqlx::query(
        "INSERT INTO memory_floors (namespace, revision, gen, created_at)
         SELECT DISTINCT unnest($1::text[]), 0, 0, $2
         ON CONFLICT (namespace) DO NOTHING
         RETURNING namespace",
    )
    .bind(namespaces)
    .bind(now_ms)
    .fetch_all(pool);
    let rows = timed("ensure_floors", statement).await?;
    Ok(rows.iter().map(|row| row.get("namespace")).collect())
}

/// Whether any other transaction of this database began before `since_ms`
/// and is still open (one that may have read a namespace as floorless).
pub async fn older_transactions_open(pool: &PgPool, since_ms: i64) -> Result<bool> {
    let statement = sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND xact_start < to_timestamp($1::float8 / 1000))",
    )
    .bind(since_ms)
    .fetch_one(pool);
    let open: bool = timed("open_transactions", statement).await?;
    Ok(open)
}

/// Deletes `dead` if it is still the same dead row, raising its namespace's
/// floor first (in one transaction). `false`: it changed meanwhile (a write
/// loaded it) and stays.
pub async fn reclaim_row(pool: &PgPool, dead: &DeadRow, cutoff_ms: i64) -> Result<bool> {
    let mut tx = timed("begin", pool.begin()).await?;
    let statement = sqlx::query(
        "UPDATE memory_floors
             SET revision = greatest(revision, $2), gen = greatest(gen, $3)
         WHERE namespace = $1",
    )
    .bind(&dead.namespace)
    .bind(dead.revision)
    .bind(dead.gen)
    .execute(&mut *tx);
    timed("raise_floor", statement).await?;
    let sql = format!(
        "DELETE FROM memory_entries
         WHERE namespace = $2 AND key = $3 AND gen = $4 AND revision = $5 AND {DEAD}"
    );
    let statement = sqlx::query(&sql)
        .bind(cutoff_ms)
        .bind(&dead.namespace)
        .bind(&dead.key)
        .bind(dead.gen)
        .bind(dead.revision)
        .execute(&mut *tx);
    let deleted = timed("reclaim", statement).await?.rows_affected();
    timed("commit", tx.commit()).await?;
    Ok(deleted == 1)
}

/// Live keys and their bytes, counted from the source of truth.
pub async fn usage(pool: &PgPool, namespace: &str, now_ms: i64) -> Result<(i64, i64)> {
    let statement = sqlx::query(
        "SELECT count(*) AS keys,
                coalesce(sum(octet_length(value) + octet_length(key)), 0)::BIGINT AS bytes
         FROM memory_entries
         WHERE namespace = $1 AND value IS NOT NULL
           AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(namespace)
    .bind(now_ms)
    .fetch_one(pool);
    let row = timed("usage", statement).await?;
    Ok((row.get("keys"), row.get("bytes")))
}

/// Live entries, newest first. Every acknowledged write is here, so the
/// listing never misses one.
pub async fn list(
    pool: &PgPool,
    namespace: &str,
    query: &ListQuery,
    now_ms: i64,
) -> Result<Vec<Entry>> {
    let (after_at, after_key) = match &query.after {
        Some(cursor) => (cursor.updated_at_ms, cursor.key.clone()),
        None => (i64::MAX, String::new()),
    };
    let statement = sqlx::query(
        "SELECT key, value, revision, created_at, updated_at, expires_at
         FROM memory_entries
         WHERE namespace = $1 AND value IS NOT NULL
           AND (expires_at IS NULL OR expires_at > $2)
           AND starts_with(key, $3)
           AND (updated_at < $4 OR (updated_at = $4 AND ($5 = '' OR key < $5)))
         ORDER BY updated_at DESC, key DESC
         LIMIT $6",
    )
    .bind(namespace)
    .bind(now_ms)
    .bind(&query.prefix)
    .bind(after_at)
    .bind(&after_key)
    .bind(query.limit as i64 + 1)
    .fetch_all(pool);
    let rows = timed("list", statement).await?;
    Ok(rows
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
        .collect())
}
