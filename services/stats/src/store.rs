//! Where the counts live: PostgreSQL (shared by replicas) or a SQLite file
//! (the embedded default), with the same tables and the same statements.
//!
//! - `stats_daily`: one row per (UTC day, route, rail, network) with its
//!   calls, errors, charged-but-failed calls, revenue and first call; a
//!   batch adds to its rows in one transaction ([`calls`]).
//! - `stats_recent`: the last [`calls::RECENT`] calls, trimmed in the same
//!   transaction.
//! - `stats_sellers` and `stats_checkpoints`: the leaderboard, advanced with
//!   its checkpoint in one transaction ([`sellers`]).
//!
//! Revenue is an i64 of atomic units: 9.2 × 10^18, 9.2 trillion USDC, in
//! all ([`crate::event::MAX_AMOUNT`] bounds one call). Seller volumes are
//! token amounts anyone can move on chain, so they are kept exactly, as
//! 78-digit zero-padded decimal text (every U256), which sorts as numbers.

pub mod calls;
pub mod sellers;

use crate::config::Store;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use sqlx::{PgPool, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use tessera_error::Error;

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds (the
/// statements are the same on both, the types differ), timed as the
/// SQLite or PostgreSQL operation `$operation`.
macro_rules! on_db {
    ($db:expr, $operation:literal, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => {
                $crate::store::timed($crate::store::Dependency::Sqlite, $operation, async {
                    $body
                })
                .await
            }
            $crate::store::Db::Postgres($pool) => {
                $crate::store::timed($crate::store::Dependency::Postgres, $operation, async {
                    $body
                })
                .await
            }
        }
    };
}
pub(crate) use on_db;

pub(crate) use tessera_runtime::dependency::Dependency;

/// Runs `call`, timed as `operation` on `dependency`.
pub(crate) async fn timed<T>(
    dependency: Dependency,
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tessera_runtime::dependency::call(dependency, operation, call).await
}

#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The call counts and the leaderboard, in SQLite or PostgreSQL.
#[derive(Clone)]
pub struct StatsStore {
    pub(crate) db: Db,
}

impl std::fmt::Debug for StatsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.db {
            Db::Sqlite(_) => f.write_str("StatsStore::Sqlite"),
            Db::Postgres(_) => f.write_str("StatsStore::Postgres"),
        }
    }
}

const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stats_daily (
    day TEXT NOT NULL,
    route TEXT NOT NULL,
    rail TEXT NOT NULL,
    network TEXT NOT NULL,
    calls INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    charged_but_failed INTEGER NOT NULL,
    revenue INTEGER NOT NULL,
    first_at_ms INTEGER NOT NULL,
    PRIMARY KEY (day, route, rail, network)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats_recent (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    route TEXT NOT NULL,
    rail TEXT NOT NULL,
    network TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    amount TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    duration_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stats_sellers (
    network TEXT NOT NULL,
    asset TEXT NOT NULL,
    pay_to TEXT NOT NULL,
    volume TEXT NOT NULL,
    transactions INTEGER NOT NULL,
    PRIMARY KEY (network, asset, pay_to)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stats_sellers_by_volume
    ON stats_sellers (network, asset, volume DESC, pay_to);
CREATE TABLE IF NOT EXISTS stats_checkpoints (
    network TEXT NOT NULL,
    asset TEXT NOT NULL,
    through_block INTEGER NOT NULL,
    head_block INTEGER NOT NULL,
    PRIMARY KEY (network, asset)
) WITHOUT ROWID;
";

/// As [`SQLITE_SCHEMA`]; `volume` compares bytewise (`C`) whatever the
/// database's collation, as SQLite's does.
const POSTGRES_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS stats_daily (
    day TEXT NOT NULL,
    route TEXT NOT NULL,
    rail TEXT NOT NULL,
    network TEXT NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    charged_but_failed BIGINT NOT NULL,
    revenue BIGINT NOT NULL,
    first_at_ms BIGINT NOT NULL,
    PRIMARY KEY (day, route, rail, network)
);
CREATE TABLE IF NOT EXISTS stats_recent (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    route TEXT NOT NULL,
    rail TEXT NOT NULL,
    network TEXT NOT NULL,
    http_status BIGINT NOT NULL,
    amount TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    duration_us BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS stats_sellers (
    network TEXT NOT NULL,
    asset TEXT NOT NULL,
    pay_to TEXT NOT NULL,
    volume TEXT COLLATE "C" NOT NULL,
    transactions BIGINT NOT NULL,
    PRIMARY KEY (network, asset, pay_to)
);
CREATE INDEX IF NOT EXISTS stats_sellers_by_volume
    ON stats_sellers (network, asset, volume DESC, pay_to);
CREATE TABLE IF NOT EXISTS stats_checkpoints (
    network TEXT NOT NULL,
    asset TEXT NOT NULL,
    through_block BIGINT NOT NULL,
    head_block BIGINT NOT NULL,
    PRIMARY KEY (network, asset)
);
"#;

pub(crate) fn db_error(error: sqlx::Error) -> Error {
    tracing::warn!(%error, "stats store call failed");
    Error::unavailable(
        "STATS_STORE_UNAVAILABLE",
        "the stats store is unavailable; retry",
    )
}

impl StatsStore {
    /// Samples this store's pool as `tessera_pool_connections{pool=name}`.
    pub fn register_pool(&self, name: &'static str) {
        use tessera_runtime::dependency::{register_pool, PoolSample};
        match self.db.clone() {
            Db::Sqlite(pool) => register_pool(name, move || {
                PoolSample::of(
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }),
            Db::Postgres(pool) => register_pool(name, move || {
                PoolSample::of(
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }),
        }
    }

    pub async fn open(store: &Store) -> anyhow::Result<Self> {
        match store {
            Store::Embedded { path } => Self::sqlite(path).await,
            Store::Postgres { url } => Self::postgres(url).await,
        }
    }

    /// Opens (or creates) the SQLite file at `path`.
    pub async fn sqlite(path: &Path) -> anyhow::Result<Self> {
        // Durable across a process crash; a power cut may lose the last
        // batches, which are counts, not money.
        let pool = tessera_sqlite::open(path, 4, tessera_sqlite::Durability::Normal).await?;
        sqlx::raw_sql(SQLITE_SCHEMA).execute(&pool).await?;
        Ok(StatsStore {
            db: Db::Sqlite(pool),
        })
    }

    /// Connects to PostgreSQL at `url` and creates the tables if missing.
    pub async fn postgres(url: &str) -> anyhow::Result<Self> {
        let redacted = tessera_runtime::config::redact_url(url);
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("DATABASE_URL {redacted}: {e}"))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| anyhow::anyhow!("the stats database {redacted}: {e}"))?;
        // Replicas starting together: one creates, the others wait.
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tessera-stats schema'))")
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(POSTGRES_SCHEMA).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(StatsStore {
            db: Db::Postgres(pool),
        })
    }
}
