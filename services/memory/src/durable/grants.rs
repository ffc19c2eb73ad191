//! Grants in PostgreSQL, the source of truth: no Redis copy, so a revoke
//! holds from the moment it returns. A check is one primary-key lookup.
//! Expiry is measured on PostgreSQL's clock, one clock for every replica.

use super::pg::timed;
use crate::grants::{grant_quota_exceeded, stored_mode, AccessMode, Grant};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tessera_error::Result;

/// PostgreSQL's clock in unix milliseconds, as SQL.
macro_rules! pg_now_ms {
    () => {
        "floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// Serializes grants of one owner (for the quota), apart from other locks.
const GRANT_LOCK_CLASS: i32 = 0x6772_616e; // "gran"

fn grant_from(namespace: &str, row: &PgRow) -> Result<Grant> {
    Ok(Grant {
        namespace: namespace.to_string(),
        grantee: row.get("grantee"),
        mode: stored_mode(row.get("mode"))?,
        expires_at_ms: row.get("expires_at"),
        created_at_ms: row.get("created_at"),
    })
}

pub async fn grant(
    pool: &PgPool,
    namespace: &str,
    grantee: &str,
    mode: AccessMode,
    ttl_seconds: Option<u64>,
    max_grants: u64,
) -> Result<Grant> {
    let mut tx = timed("begin", pool.begin()).await?;
    let statement = sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(GRANT_LOCK_CLASS)
        .bind(namespace)
        .execute(&mut *tx);
    timed("grant_lock", statement).await?;
    let statement = sqlx::query_scalar(concat!("SELECT ", pg_now_ms!())).fetch_one(&mut *tx);
    let now: i64 = timed("grant_now", statement).await?;
    let statement =
        sqlx::query("DELETE FROM memory_grants WHERE namespace = $1 AND expires_at <= $2")
            .bind(namespace)
            .bind(now)
            .execute(&mut *tx);
    timed("grant_expire", statement).await?;
    let statement = sqlx::query_scalar(
        "SELECT count(*) FROM memory_grants WHERE namespace = $1 AND grantee <> $2",
    )
    .bind(namespace)
    .bind(grantee)
    .fetch_one(&mut *tx);
    let others: i64 = timed("grant_count", statement).await?;
    if others as u64 >= max_grants {
        return Err(grant_quota_exceeded(max_grants));
    }
    let expires_at = ttl_seconds.map(|s| now + s as i64 * 1000);
    let statement = sqlx::query(
        "INSERT INTO memory_grants (namespace, grantee, mode, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (namespace, grantee) DO UPDATE SET mode = excluded.mode,
             expires_at = excluded.expires_at, created_at = excluded.created_at
         RETURNING grantee, mode, expires_at, created_at",
    )
    .bind(namespace)
    .bind(grantee)
    .bind(mode.as_str())
    .bind(expires_at)
    .bind(now)
    .fetch_one(&mut *tx);
    let row = timed("grant_insert", statement).await?;
    timed("commit", tx.commit()).await?;
    grant_from(namespace, &row)
}

pub async fn revoke(pool: &PgPool, namespace: &str, grantee: &str) -> Result<bool> {
    let statement = sqlx::query_scalar(concat!(
        "DELETE FROM memory_grants WHERE namespace = $1 AND grantee = $2
         RETURNING expires_at IS NULL OR expires_at > ",
        pg_now_ms!()
    ))
    .bind(namespace)
    .bind(grantee)
    .fetch_optional(pool);
    let active: Option<bool> = timed("revoke", statement).await?;
    Ok(active == Some(true))
}

pub async fn list(pool: &PgPool, namespace: &str) -> Result<Vec<Grant>> {
    let statement = sqlx::query(concat!(
        "SELECT grantee, mode, expires_at, created_at FROM memory_grants
         WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > ",
        pg_now_ms!(),
        ") ORDER BY grantee"
    ))
    .bind(namespace)
    .fetch_all(pool);
    let rows = timed("grants_list", statement).await?;
    rows.iter().map(|row| grant_from(namespace, row)).collect()
}

pub async fn mode(pool: &PgPool, namespace: &str, grantee: &str) -> Result<Option<AccessMode>> {
    let statement = sqlx::query_scalar(concat!(
        "SELECT mode FROM memory_grants
         WHERE namespace = $1 AND grantee = $2 AND (expires_at IS NULL OR expires_at > ",
        pg_now_ms!(),
        ")"
    ))
    .bind(namespace)
    .bind(grantee)
    .fetch_optional(pool);
    let mode: Option<String> = timed("grant_mode", statement).await?;
    mode.as_deref().map(stored_mode).transpose()
}
