//! Standalone tools service: serves `ToolsService` with health and
//! reflection on `TOOLS_GRPC_ADDR` (default `127.0.0.1:50057`) until
//! SIGINT/SIGTERM.

use anyhow::Context;
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::grpc_auth::ServiceToken;
use tessera_runtime::{metrics_endpoint, telemetry, Shutdown};
use tessera_tools::{server, Runner, ToolsConfig, SERVICE_NAME};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-tools")?;
    let config = ToolsConfig::from_env()?;
    let token = ServiceToken::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {} (TOOLS_GRPC_ADDR)", config.listen_addr))?;
    tracing::info!(
        tools = tessera_toolbox::all().count(),
        max_concurrent = config.max_concurrent,
        deadline_ms = config.deadline.as_millis() as u64,
        "tools service ready"
    );
    let shutdown = Shutdown::on_signals();
    let serving = GrpcServer::new(SERVICE_NAME, server(Runner::new(&config)))
        .require_token(token)
        .serve(listener, shutdown.clone());
    // `GET /metrics` on METRICS_ADDR when set.
    metrics_endpoint::serve_beside(&shutdown, serving).await
}
