//! Standalone discovery service: serves `DiscoveryService` (`Find`,
//! `Pricing` and `Route`) with health and reflection on
//! `DISCOVERY_GRPC_ADDR` (default `127.0.0.1:50055`), crawling the
//! registries of `DISCOVERY_REGISTRIES` in the background, until
//! SIGINT/SIGTERM. Settings: `tessera_discovery::config`.

use anyhow::Context;
use tessera_discovery::{entries, Discovery, DiscoveryConfig, SERVICE_NAME};
use tessera_proto::discovery::v1::discovery_service_server::DiscoveryServiceServer;
use tessera_runtime::{grpc::GrpcServer, metrics_endpoint, telemetry, Shutdown};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-discovery")?;
    let config = DiscoveryConfig::from_env()?;
    let addr = config.listen_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (DISCOVERY_GRPC_ADDR)"))?;
    let shutdown = Shutdown::on_signals();
    let discovery = Discovery::open(&config, &shutdown).await?;
    tracing::info!(
        service = SERVICE_NAME,
        entries = entries().len(),
        registries = config.registries.len(),
        "discovery serving"
    );
    let serving = GrpcServer::new(SERVICE_NAME, DiscoveryServiceServer::new(discovery))
        .serve(listener, shutdown.clone());
    // `GET /metrics` on METRICS_ADDR when set.
    metrics_endpoint::serve_beside(&shutdown, serving).await
}
