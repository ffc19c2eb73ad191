//! What the crawler learned, kept so a restart does not forget it: the
//! listings, each seller's last probes, and each failing origin's backoff.
//! SQLite (`embedded`, the default) or PostgreSQL (`postgres`), with one
//! schema and the same statements on both (`$n` parameters, `ON CONFLICT`
//! upserts):
//!
//! | table | row | columns |
//! |---|---|---|
//! | `discovery_listings` | a listed resource | `resource` (key), `registry`, `origin`, `listing` (JSON of [`Listing`]), `seen_ms` (last crawl that listed it) |
//! | `discovery_probes` | a probed resource | `resource` (key), `outcomes` (`1`/`0` per probe, oldest first, the last `DISCOVERY_HEALTH_WINDOW`), `last_probe_ms`, `last_error` (empty when OK), `quote` (JSON of the last readable [`Quote`], empty when none yet) |
//! | `discovery_backoff` | an origin backing off | `origin` (key), `failures` (in a row), `retry_at_ms` |
//!
//! The process keeps everything in memory and writes behind each change as
//! it happens; the store is read once, on start ([`Store::load`]). Tables
//! are created when missing (on PostgreSQL under an advisory lock, so
//! replicas starting together do not race). Several replicas on one
//! PostgreSQL each crawl and write their own findings; the last write of a
//! row wins, which is as good as either.

use crate::config::StoreConfig;
use crate::health::{Backoff, ProbeHistory};
use crate::listing::Listing;
use crate::quote::Quote;
use anyhow::Context;
use sqlx::postgres::PgPoolOptions;

use sqlx::{PgPool, SqlitePool};
use std::time::Duration;

/// Runs `$body` with `$pool` bound to whichever pool the store has: the
/// statements are the same text on both.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS discovery_listings (
         resource TEXT PRIMARY KEY,
         registry TEXT NOT NULL,
         origin TEXT NOT NULL,
         listing TEXT NOT NULL,
         seen_ms BIGINT NOT NULL
     )",
    "CREATE INDEX IF NOT EXISTS discovery_listings_by_registry
         ON discovery_listings (registry, seen_ms)",
    "CREATE TABLE IF NOT EXISTS discovery_probes (
         resource TEXT PRIMARY KEY,
         outcomes TEXT NOT NULL,
         last_probe_ms BIGINT NOT NULL,
         last_error TEXT NOT NULL,
         quote TEXT NOT NULL
     )",
    "CREATE TABLE IF NOT EXISTS discovery_backoff (
         origin TEXT PRIMARY KEY,
         failures BIGINT NOT NULL,
         retry_at_ms BIGINT NOT NULL
     )",
];

/// Serializes schema creation between replicas (any constant unlikely to
/// be another service's).
const SCHEMA_LOCK: i64 = 0x7465_7373_6469_7363;

const UPSERT_LISTING: &str =
    "INSERT INTO discovery_listings (resource, registry, origin, listing, seen_ms)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (resource) DO UPDATE SET registry = excluded.registry,
         origin = excluded.origin, listing = excluded.listing, seen_ms = excluded.seen_ms";

const UPSERT_PROBE: &str =
    "INSERT INTO discovery_probes (resource, outcomes, last_probe_ms, last_error, quote)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (resource) DO UPDATE SET outcomes = excluded.outcomes,
         last_probe_ms = excluded.last_probe_ms, last_error = excluded.last_error,
         quote = excluded.quote";

const UPSERT_BACKOFF: &str = "INSERT INTO discovery_backoff (origin, failures, retry_at_ms)
     VALUES ($1, $2, $3)
     ON CONFLICT (origin) DO UPDATE SET failures = excluded.failures,
         retry_at_ms = excluded.retry_at_ms";

/// A seller's probe state as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProbe {
    pub resource: String,
    pub history: ProbeHistory,
    pub last_probe_ms: i64,
    pub last_error: String,
    pub quote: Option<Quote>,
}

/// Everything stored, as read on start.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub listings: Vec<Listing>,
    pub probes: Vec<StoredProbe>,
    pub backoffs: Vec<(String, Backoff)>,
}

/// The sellers' store.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Opens (creating the file and tables when missing) the store of
    /// `config`, its pool sampled as `tessera_pool_connections{pool="discovery"}`.
    pub async fn open(config: &StoreConfig) -> anyhow::Result<Store> {
        let store = Self::open_pool(config).await?;
        store.register_pool();
        Ok(store)
    }

    fn register_pool(&self) {
        use tessera_runtime::dependency::{register_pool, PoolSample};
        match self.clone() {
            Store::Sqlite(pool) => register_pool("discovery", move || {
                PoolSample::of(
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }),
            Store::Postgres(pool) => register_pool("discovery", move || {
                PoolSample::of(
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }),
        }
    }

    async fn open_pool(config: &StoreConfig) -> anyhow::Result<Store> {
        match config {
            StoreConfig::Embedded { path } => {
                // A crawl lost to a power cut is crawled again.
                let pool =
                    tessera_sqlite::open(path, 1, tessera_sqlite::Durability::Normal).await?;
                for statement in SCHEMA {
                    sqlx::query(statement).execute(&pool).await?;
                }
                Ok(Store::Sqlite(pool))
            }
            StoreConfig::Postgres { url } => {
                let pool = PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot connect to {}",
                            tessera_runtime::config::redact_url(url)
                        )
                    })?;
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SCHEMA_LOCK)
                    .execute(&mut *tx)
                    .await?;
                for statement in SCHEMA {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(Store::Postgres(pool))
            }
        }
    }

    /// Everything stored. A row that no longer reads (a listing of an
    /// older shape) is skipped.
    pub async fn load(&self, health_window: usize) -> anyhow::Result<Loaded> {
        let listings: Vec<(String,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT listing FROM discovery_listings ORDER BY resource")
                .fetch_all(pool)
                .await?
        });
        let probes: Vec<(String, String, i64, String, String)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT resource, outcomes, last_probe_ms, last_error, quote FROM discovery_probes",
            )
            .fetch_all(pool)
            .await?
        });
        let backoffs: Vec<(String, i64, i64)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT origin, failures, retry_at_ms FROM discovery_backoff")
                .fetch_all(pool)
                .await?
        });
        Ok(Loaded {
            listings: listings
                .into_iter()
                .filter_map(|(json,)| serde_json::from_str(&json).ok())
                .collect(),
            probes: probes
                .into_iter()
                .map(
                    |(resource, outcomes, last_probe_ms, last_error, quote)| StoredProbe {
                        resource,
                        history: ProbeHistory::decode(&outcomes, health_window),
                        last_probe_ms,
                        last_error,
                        quote: serde_json::from_str(&quote).ok(),
                    },
                )
                .collect(),
            backoffs: backoffs
                .into_iter()
                .map(|(origin, failures, retry_at_ms)| {
                    let failures = u32::try_from(failures).unwrap_or(u32::MAX);
                    (
                        origin,
                        Backoff {
                            failures,
                            retry_at_ms,
                        },
                    )
                })
                .collect(),
        })
    }

    /// Upserts `listings`, seen by the crawl at `seen_ms`, in one
    /// transaction.
    pub async fn save_listings(&self, listings: &[Listing], seen_ms: i64) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for listing in listings {
                sqlx::query(UPSERT_LISTING)
                    .bind(&listing.resource)
                    .bind(&listing.registry)
                    .bind(listing.origin())
                    .bind(serde_json::to_string(listing)?)
                    .bind(seen_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes the listings of `registry` that its crawl begun at
    /// `crawl_started_ms` did not list, and their probes.
    pub async fn forget_unlisted(
        &self,
        registry: &str,
        crawl_started_ms: i64,
    ) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM discovery_listings WHERE registry = $1 AND seen_ms < $2")
                .bind(registry)
                .bind(crawl_started_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "DELETE FROM discovery_probes
                 WHERE resource NOT IN (SELECT resource FROM discovery_listings)",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Upserts a seller's probe state.
    pub async fn save_probe(&self, probe: &StoredProbe) -> anyhow::Result<()> {
        let quote = match &probe.quote {
            Some(quote) => serde_json::to_string(quote)?,
            None => String::new(),
        };
        on_pool!(self, |pool| {
            sqlx::query(UPSERT_PROBE)
                .bind(&probe.resource)
                .bind(probe.history.encode())
                .bind(probe.last_probe_ms)
                .bind(&probe.last_error)
                .bind(&quote)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Keeps `origin`'s backoff, or clears it (`None`).
    pub async fn save_backoff(&self, origin: &str, backoff: Option<Backoff>) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            match backoff {
                Some(backoff) => {
                    sqlx::query(UPSERT_BACKOFF)
                        .bind(origin)
                        .bind(i64::from(backoff.failures))
                        .bind(backoff.retry_at_ms)
                        .execute(pool)
                        .await?;
                }
                None => {
                    sqlx::query("DELETE FROM discovery_backoff WHERE origin = $1")
                        .bind(origin)
                        .execute(pool)
                        .await?;
                }
            }
        });
        Ok(())
    }
}
