//! Standalone facilitator service: serves `FacilitatorService` (planned: every RPC answers
//! `UNIMPLEMENTED`) with health and reflection on `FACILITATOR_GRPC_ADDR`
//! (default `127.0.0.1:50053`) until SIGINT/SIGTERM.

use anyhow::Context;
use std::net::SocketAddr;
use tessera_facilitator::{server, ADDR_ENV, DEFAULT_ADDR, LANDS_WITH, SERVICE_NAME};
use tessera_runtime::{config::env_or, grpc::GrpcServer, telemetry, Shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-facilitator")?;
    let addr: SocketAddr = env_or(ADDR_ENV, DEFAULT_ADDR.parse()?)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({ADDR_ENV})"))?;
    tracing::warn!(
        service = SERVICE_NAME,
        "planned service: every RPC answers UNIMPLEMENTED until it lands with {LANDS_WITH}"
    );
    GrpcServer::new(SERVICE_NAME, server())
        .serve(listener, Shutdown::on_signals())
        .await
}
