//! The PostgreSQL side of the durable store: the source of truth.

use crate::model::{Entry, ListQuery};
use crate::ops::Stored;
use sqlx::{PgConnection, PgPool, Row};
use tessera_error::{Error, Result};

/// The memory schema's migrations. Other services may keep their own
/// migrations in the same database (and sqlx's one `_sqlx_migrations`
/// table), so versions applied by them are not an error here.
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_ignore_missing(true);
    migrator
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

/// Locks a key's row for a load, creating it (revision 0, nothing stored)
/// for a write. `None`: a read of a key that was never written.
pub async fn lock_for_load(
    conn: &mut PgConnection,
    namespace: &str,
    key: &str,
    create: bool,
) -> Result<Option<()>> {
    if create {
        sqlx::query(
            "INSERT INTO memory_entries
                 (namespace, key, value, revision, gen, created_at, updated_at, expires_at)
             VALUES ($1, $2, NULL, 0, 1, 0, 0, NULL)
             ON CONFLICT (namespace, key) DO NOTHING",
        )
        .bind(namespace)
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }
    let row =
        sqlx::query("SELECT 1 FROM memory_entries WHERE namespace = $1 AND key = $2 FOR UPDATE")
            .bind(namespace)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
    Ok(row.map(drop))
}

/// Takes the next load generation of a locked row, fencing off every state
/// of the previous one, and returns the durable state to install.
pub async fn next_generation(
    conn: &mut PgConnection,
    namespace: &str,
    key: &str,
) -> Result<Loaded> {
    let row = sqlx::query(
        "UPDATE memory_entries
             SET prior_gen = gen, prior_rev = revision, gen = gen + 1
         WHERE namespace = $1 AND key = $2
         RETURNING value, revision, gen, created_at, updated_at, expires_at",
    )
    .bind(namespace)
    .bind(key)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(loaded_from(&row))
}

/// Writes a Redis state if its generation is current and it is newer than
/// what is stored; otherwise tells whether it (or a successor) got in.
pub async fn persist(
    pool: &PgPool,
    namespace: &str,
    key: &str,
    stored: &Stored,
    gen: i64,
) -> Result<Verdict> {
    let revision = stored.revision as i64;
    let written = sqlx::query(
        "UPDATE memory_entries
             SET value = $3, revision = $4, created_at = $5, updated_at = $6, expires_at = $7
         WHERE namespace = $1 AND key = $2 AND gen = $8 AND revision < $4",
    )
    .bind(namespace)
    .bind(key)
    .bind(&stored.value)
    .bind(revision)
    .bind(stored.created_at_ms)
    .bind(stored.updated_at_ms)
    .bind(stored.expires_at_ms)
    .bind(gen)
    .execute(pool)
    .await
    .map_err(db_error)?
    .rows_affected();
    if written == 1 {
        return Ok(Verdict::Durable);
    }
    // A separate statement, so it sees whatever committed meanwhile.
    let row = sqlx::query(
        "SELECT gen, revision, prior_gen, prior_rev FROM memory_entries
         WHERE namespace = $1 AND key = $2",
    )
    .bind(namespace)
    .bind(key)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(Verdict::Lost);
    };
    let (now_gen, now_rev): (i64, i64) = (row.get("gen"), row.get("revision"));
    let (prior_gen, prior_rev): (i64, i64) = (row.get("prior_gen"), row.get("prior_rev"));
    Ok(if now_gen == gen && now_rev >= revision {
        Verdict::Durable
    } else if now_gen == gen {
        // Unreachable in theory: the update above would have applied.
        Verdict::Unknown
    } else if now_gen < gen {
        // A load installed this generation in Redis but never committed it:
        // nothing of it can have reached PostgreSQL.
        Verdict::Lost
    } else if prior_gen == gen {
        if prior_rev >= revision {
            Verdict::Durable
        } else {
            Verdict::Lost
        }
    } else {
        Verdict::Unknown
    })
}

/// Live keys and their bytes, counted from the source of truth.
pub async fn usage(pool: &PgPool, namespace: &str, now_ms: i64) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT count(*) AS keys,
                coalesce(sum(octet_length(value) + octet_length(key)), 0)::BIGINT AS bytes
         FROM memory_entries
         WHERE namespace = $1 AND value IS NOT NULL
           AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(namespace)
    .bind(now_ms)
    .fetch_one(pool)
    .await
    .map_err(db_error)?;
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
    let rows = sqlx::query(
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
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
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
