//! The payment service (`tessera.payment.v1.PaymentService`): x402 quotes
//! from one price catalog, payment checks, a durable nonce reservation so a
//! payment serves at most one call, the facilitator round trips, and the
//! payments ledger in PostgreSQL. The gateway drives it; see [`Payments`].
//! Deferred settlements wait in the ledger for the [`Settler`].

mod backlog;
pub mod balances;
pub mod catalog;
pub mod config;
pub mod facilitator_client;
mod group_commit;
pub mod grpc;
mod lease;
pub mod ledger;
pub mod metrics;
pub mod service;
pub mod settler;

pub use config::PaymentConfig;
pub use service::{Payments, Settled, Verified};
pub use settler::Settler;

/// Fully qualified gRPC service name, for health and reflection.
pub const SERVICE_NAME: &str = tessera_proto::payment::v1::payment_service_server::SERVICE_NAME;

/// Connects the ledger (running its migrations) and builds the service.
pub async fn open(config: &PaymentConfig) -> anyhow::Result<Payments> {
    let options: sqlx::postgres::PgConnectOptions = config.database_url.parse()?;
    // A ledger transaction never waits long for a lock, and a connection
    // left mid-transaction (a stalled caller) cannot hold its locks forever.
    let options = options.options([
        ("lock_timeout", "5s"),
        ("idle_in_transaction_session_timeout", "30s"),
    ]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(config.database_pool_size)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options)
        .await?;
    ledger::migrator().run(&pool).await?;
    register_pool(&pool);
    Payments::new(config, ledger::Ledger::new(pool))
}

/// Samples the ledger's pool as `tessera_pool_connections{pool="payment"}`.
fn register_pool(pool: &sqlx::PgPool) {
    let pool = pool.clone();
    tessera_runtime::dependency::register_pool("payment", move || {
        tessera_runtime::dependency::PoolSample::of(
            pool.size(),
            pool.num_idle(),
            pool.options().get_max_connections(),
        )
    });
}

/// Starts the settler of `payments`' queued settlements as `config` says
/// (`PAYMENT_SETTLE_CONCURRENCY`, looking every `PAYMENT_RETRY_SECONDS`),
/// until `shutdown`.
pub fn spawn_settler(
    payments: &Payments,
    config: &PaymentConfig,
    shutdown: &tessera_runtime::Shutdown,
) -> Settler {
    Settler::spawn(
        payments.clone(),
        config.settle_concurrency,
        config.retry_every,
        shutdown.clone(),
    )
}

/// Retries pending settlements every `every` until `shutdown`.
pub async fn run_retries(
    payments: Payments,
    every: std::time::Duration,
    shutdown: tessera_runtime::Shutdown,
) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(every) => {
                if let Err(error) = payments.retry_pending().await {
                    tracing::warn!(%error, "retrying pending settlements failed");
                }
            }
        }
    }
}
