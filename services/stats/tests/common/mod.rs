//! Stores for the tests: a SQLite file in a fresh temporary directory, or
//! a fresh schema of the PostgreSQL this machine runs (`DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`), so tests run in
//! parallel.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use tessera_stats::{Stats, StatsConfig, StatsStore, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store's place, reopenable (a restart), removed by [`Place::remove`].
pub struct Place {
    pub store: Store,
    dir: Option<PathBuf>,
    schema: Option<String>,
}

fn unique(label: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{label}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn database_url() -> String {
    tessera_runtime::config::env_string("DATABASE_URL", tessera_stats::config::DEFAULT_DATABASE_URL)
}

impl Place {
    pub async fn new(backend: Backend) -> Place {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(unique("tessera-stats"));
                Place {
                    store: Store::Embedded {
                        path: dir.join("stats.db"),
                    },
                    dir: Some(dir),
                    schema: None,
                }
            }
            Backend::Postgres => {
                let base = database_url();
                let schema = unique("stats_test");
                let pool = sqlx::PgPool::connect(&base).await.unwrap_or_else(|e| {
                    panic!(
                        "the PostgreSQL tests need PostgreSQL at {} (set DATABASE_URL): {e}",
                        tessera_runtime::config::redact_url(&base)
                    )
                });
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                let separator = if base.contains('?') { '&' } else { '?' };
                Place {
                    store: Store::Postgres {
                        url: format!("{base}{separator}options=-c%20search_path%3D{schema}"),
                    },
                    dir: None,
                    schema: Some(schema),
                }
            }
        }
    }

    pub async fn open(&self) -> StatsStore {
        StatsStore::open(&self.store)
            .await
            .expect("the store opens")
    }

    /// A stats service with no chain over this place.
    pub async fn stats(&self) -> Stats {
        Stats::new(self.open().await, None)
    }

    pub fn config(&self) -> StatsConfig {
        StatsConfig {
            store: self.store.clone(),
            ..StatsConfig::embedded("unused")
        }
    }

    pub async fn remove(self) {
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(schema) = self.schema {
            let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// `$name` once on each store: `$name::sqlite` and `$name::postgres`.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                super::$name(common::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::$name(common::Backend::Postgres).await;
            }
        }
    };
}
