//! Standalone stats service: serves `StatsService` with health and
//! reflection on `STATS_GRPC_ADDR` (default `127.0.0.1:50056`) until
//! SIGINT/SIGTERM, indexing the leaderboard when a chain is configured.

use anyhow::Context;
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::grpc_auth::ServiceToken;
use tessera_runtime::{metrics_endpoint, telemetry, Shutdown};
use tessera_stats::{server, Stats, StatsConfig, SERVICE_NAME};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-stats")?;
    let config = StatsConfig::from_env()?;
    let token = ServiceToken::from_env()?;
    let shutdown = Shutdown::on_signals();
    let stats = Stats::open(&config, &shutdown).await?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {} (STATS_GRPC_ADDR)", config.listen_addr))?;
    match &config.chain {
        Some(chain) => {
            tracing::info!(store = ?config.store, network = %chain.network, asset = %chain.asset, "stats service ready")
        }
        None => {
            tracing::info!(store = ?config.store, "stats service ready; no chain configured (STATS_RPC_URL): the leaderboard is empty")
        }
    }
    let serving = GrpcServer::new(SERVICE_NAME, server(stats))
        .require_token(token)
        .serve(listener, shutdown.clone());
    // `GET /metrics` on METRICS_ADDR when set.
    metrics_endpoint::serve_beside(&shutdown, serving).await
}
