//! Memory service configuration, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `MEMORY_GRPC_ADDR` | `127.0.0.1:50051` | gRPC listen address |
//! | `MEMORY_BACKEND` | `embedded` | `embedded` (SQLite file) or `redis-postgres` |
//! | `MEMORY_EMBEDDED_PATH` | `data/tessera-memory.db` | SQLite file of the embedded backend |
//! | `REDIS_URL` | `redis://127.0.0.1:6379` | hot path (redis-postgres) |
//! | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/test` | source of truth (redis-postgres) |
//! | `DATABASE_POOL_SIZE` | `16` | PostgreSQL connections (each with `lock_timeout` 5s and `idle_in_transaction_session_timeout` 30s) |
//! | `MEMORY_MAX_VALUE_BYTES` | `65536` | largest serialized value |
//! | `MEMORY_MAX_KEYS` | `10000` | live keys per namespace |
//! | `MEMORY_MAX_BYTES` | `33554432` | key + value bytes per namespace |
//! | `MEMORY_MAX_GRANTS` | `1000` | active grants a namespace gives |
//! | `MEMORY_MAX_WATCHES` | `10000` | watches open at once on this server; past it a new watch is refused (RESOURCE_EXHAUSTED, `TOO_MANY_WATCHES`) |
//! | `MEMORY_MAX_WATCH_SECONDS` | `60` | longest a watch lasts (the client then renews it from its last cursor or revision) |
//! | `MEMORY_RECLAIM_AFTER_SECONDS` | `3600` | a deleted or expired key's row is reclaimed this long after (its revisions keep growing when written again) |
//! | `MEMORY_RECLAIM_EVERY_SECONDS` | `600` | how often the reclaimer runs (0 = never) |
//! | `INTERNAL_TOKEN` | unset | when set, every gRPC call but health needs `authorization: Bearer <token>` (see `tessera_runtime::grpc_auth`) |

use crate::durable::{DurableConfig, DurableStore};
use crate::embedded::EmbeddedStore;
use crate::model::Limits;
use crate::store::MemoryStore;
use crate::Memory;
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tessera_runtime::config::{env_or, env_string, redact_url};

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone)]
pub enum Backend {
    Embedded { path: PathBuf },
    RedisPostgres(DurableConfig),
}

#[derive(Debug, Clone)]
pub struct MemoryConfig {
    pub listen_addr: SocketAddr,
    pub backend: Backend,
    pub limits: Limits,
    /// Keys dead (deleted or expired) this long are reclaimed...
    pub reclaim_after: Duration,
    /// ...by a pass this often; zero: never.
    pub reclaim_every: Duration,
}

impl MemoryConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Limits::default();
        let limits = Limits {
            max_value_bytes: env_or("MEMORY_MAX_VALUE_BYTES", defaults.max_value_bytes)?,
            max_keys: env_or("MEMORY_MAX_KEYS", defaults.max_keys)?,
            max_bytes: env_or("MEMORY_MAX_BYTES", defaults.max_bytes)?,
            max_grants: env_or("MEMORY_MAX_GRANTS", defaults.max_grants)?,
            max_watch_seconds: env_or("MEMORY_MAX_WATCH_SECONDS", defaults.max_watch_seconds)?,
            max_watches: env_or("MEMORY_MAX_WATCHES", defaults.max_watches)?,
        };
        anyhow::ensure!(
            limits.max_watch_seconds > 0,
            "MEMORY_MAX_WATCH_SECONDS must be at least 1"
        );
        let backend = match env_string("MEMORY_BACKEND", "embedded").as_str() {
            "embedded" => Backend::Embedded {
                path: env_string("MEMORY_EMBEDDED_PATH", "data/tessera-memory.db").into(),
            },
            "redis-postgres" => Backend::RedisPostgres(DurableConfig {
                redis_url: env_string("REDIS_URL", DEFAULT_REDIS_URL),
                database_url: env_string("DATABASE_URL", DEFAULT_DATABASE_URL),
                database_pool_size: env_or("DATABASE_POOL_SIZE", 16)?,
                limits,
                deliberate_bug: None,
            }),
            other => bail!("MEMORY_BACKEND={other:?}: expected \"embedded\" or \"redis-postgres\""),
        };
        Ok(MemoryConfig {
            listen_addr: env_or("MEMORY_GRPC_ADDR", "127.0.0.1:50051".parse()?)?,
            backend,
            limits,
            reclaim_after: Duration::from_secs(env_or("MEMORY_RECLAIM_AFTER_SECONDS", 3600)?),
            reclaim_every: Duration::from_secs(env_or("MEMORY_RECLAIM_EVERY_SECONDS", 600)?),
        })
    }

    /// Opens the configured backend.
    pub async fn open(&self) -> anyhow::Result<Memory> {
        let store: Arc<dyn MemoryStore> = match &self.backend {
            Backend::Embedded { path } => {
                tracing::info!(path = %path.display(), "memory backend: embedded SQLite");
                Arc::new(
                    EmbeddedStore::open(path, self.limits)
                        .await
                        .map_err(anyhow::Error::new)?,
                )
            }
            Backend::RedisPostgres(config) => {
                tracing::info!(
                    redis = %redact_url(&config.redis_url),
                    postgres = %redact_url(&config.database_url),
                    "memory backend: Redis + PostgreSQL"
                );
                let store = DurableStore::connect(config).await.with_context(|| {
                    format!(
                        "cannot reach Redis at {} and PostgreSQL at {}",
                        redact_url(&config.redis_url),
                        redact_url(&config.database_url)
                    )
                })?;
                register_pool(store.pool());
                Arc::new(store)
            }
        };
        Ok(Memory::new(store, self.limits))
    }

    /// Starts the reclaimer for `memory` (unless `reclaim_every` is zero).
    pub fn spawn_reclaimer(&self, memory: &Memory, shutdown: &tessera_runtime::Shutdown) {
        if !self.reclaim_every.is_zero() {
            memory.spawn_reclaimer(self.reclaim_every, self.reclaim_after, shutdown.clone());
        }
    }
}

/// Samples the durable store's PostgreSQL pool as
/// `tessera_pool_connections{pool="memory"}`.
fn register_pool(pool: &sqlx::PgPool) {
    let pool = pool.clone();
    tessera_runtime::dependency::register_pool("memory", move || {
        tessera_runtime::dependency::PoolSample::of(
            pool.size(),
            pool.num_idle(),
            pool.options().get_max_connections(),
        )
    });
}
