//! Standalone pow service: serves `PowService` with health and reflection
//! on `POW_GRPC_ADDR` (default `127.0.0.1:50054`) until SIGINT/SIGTERM.

use anyhow::Context;
use tessera_pow::{server, Pow, PowConfig, SERVICE_NAME};
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::grpc_auth::ServiceToken;
use tessera_runtime::{metrics_endpoint, telemetry, Shutdown};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-pow")?;
    let config = PowConfig::from_env()?;
    let token = ServiceToken::from_env()?;
    let pow = Pow::open(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {} (POW_GRPC_ADDR)", config.listen_addr))?;
    tracing::info!(difficulty = config.difficulty, store = ?config.store, "pow service ready");
    let shutdown = Shutdown::on_signals();
    let serving = GrpcServer::new(SERVICE_NAME, server(pow))
        .require_token(token)
        .serve(listener, shutdown.clone());
    // `GET /metrics` on METRICS_ADDR when set.
    metrics_endpoint::serve_beside(&shutdown, serving).await
}
