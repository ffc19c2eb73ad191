//! The durable-write baseline: a plain single-row upsert per call on this
//! machine's PostgreSQL, each client on its own row, one pool connection
//! per client.

use super::driver::{run_shared, Outcome};
use super::Settings;
use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

const CREATE: &str =
    "CREATE TABLE IF NOT EXISTS bench_upsert (id BIGINT PRIMARY KEY, v TEXT NOT NULL)";
const UPSERT: &str =
    "INSERT INTO bench_upsert (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v";

pub struct Postgres {
    pool: Arc<PgPool>,
}

impl Postgres {
    pub async fn setup(settings: &Settings) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.concurrency as u32)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&settings.database_url)
            .await
            .with_context(|| {
                let url = tessera_runtime::config::redact_url(&settings.database_url);
                format!("connect to PostgreSQL at {url}")
            })?;
        sqlx::query(CREATE).execute(&pool).await?;
        Ok(Postgres {
            pool: Arc::new(pool),
        })
    }

    /// Each call writes a new value (the call number) to the client's row.
    pub async fn upsert(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.pool,
            |pool, client, call| async move {
                sqlx::query(UPSERT)
                    .bind(client as i64)
                    .bind(call.to_string())
                    .execute(&*pool)
                    .await?;
                Ok(())
            },
        )
        .await
    }
}
