//! Grants in PostgreSQL, the source of truth: no Redis copy, so a revoke
//! holds from the moment it returns. A check is one primary-key lookup.
//! Expiry is measured on PostgreSQL's clock, one clock for every replica.

use super::pg::db_error;
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
    let mut tx = pool.begin().await.map_err(db_error)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(GRANT_LOCK_CLASS)
        .bind(namespace)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    let now: i64 = sqlx::query_scalar(concat!("SELECT ", pg_now_ms!()))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
    sqlx::query("DELETE FROM memory_grants WHERE namespace = $1 AND expires_at <= $2")
        .bind(namespace)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    let others: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM memory_grants WHERE namespace = $1 AND grantee <> $2",
    )
    .bind(namespace)
    .bind(grantee)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_error)?;
    if others as u64 >= max_grants {
        return Err(grant_quota_exceeded(max_grants));
    }
    let expires_at = ttl_seconds.map(|s| now + s as i64 * 1000);
    let row = sqlx::query(
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
    .fetch_one(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    grant_from(namespace, &row)
}

pub async fn revoke(pool: &PgPool, namespace: &str, grantee: &str) -> Result<bool> {
    let active: Option<bool> = sqlx::query_scalar(concat!(
        "DELETE FROM memory_grants WHERE namespace = $1 AND grantee = $2
         RETURNING expires_at IS NULL OR expires_at > ",
        pg_now_ms!()
    ))
    .bind(namespace)
    .bind(grantee)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    Ok(active == Some(true))
}

pub async fn list(pool: &PgPool, namespace: &str) -> Result<Vec<Grant>> {
    let rows = sqlx::query(concat!(
        "SELECT grantee, mode, expires_at, created_at FROM memory_grants
         WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > ",
        pg_now_ms!(),
        ") ORDER BY grantee"
    ))
    .bind(namespace)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    rows.iter().map(|row| grant_from(namespace, row)).collect()
}

pub async fn mode(pool: &PgPool, namespace: &str, grantee: &str) -> Result<Option<AccessMode>> {
    let mode: Option<String> = sqlx::query_scalar(concat!(
        "SELECT mode FROM memory_grants
         WHERE namespace = $1 AND grantee = $2 AND (expires_at IS NULL OR expires_at > ",
        pg_now_ms!(),
        ")"
    ))
    .bind(namespace)
    .bind(grantee)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    mode.as_deref().map(stored_mode).transpose()
}
