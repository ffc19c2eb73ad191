//! Standalone discovery service: serves `DiscoveryService` (`Find` and
//! `Pricing` over the catalog; `Route` still planned) with health and
//! reflection on `DISCOVERY_GRPC_ADDR` (default `127.0.0.1:50055`) until
//! SIGINT/SIGTERM.

use anyhow::Context;
use std::net::SocketAddr;
use tessera_discovery::{entries, server, ADDR_ENV, DEFAULT_ADDR, LANDS_WITH, SERVICE_NAME};
use tessera_runtime::{config::env_or, grpc::GrpcServer, telemetry, Shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-discovery")?;
    let addr: SocketAddr = env_or(ADDR_ENV, DEFAULT_ADDR.parse()?)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({ADDR_ENV})"))?;
    // Builds the entries and the find index before the first request.
    let server = server();
    tracing::info!(
        service = SERVICE_NAME,
        entries = entries().len(),
        "Route answers UNIMPLEMENTED until it lands with {LANDS_WITH}"
    );
    GrpcServer::new(SERVICE_NAME, server)
        .serve(listener, Shutdown::on_signals())
        .await
}
