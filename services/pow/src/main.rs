//! Standalone pow service: serves `PowService` (planned: every RPC answers
//! `UNIMPLEMENTED`) with health and reflection on `POW_GRPC_ADDR`
//! (default `127.0.0.1:50054`) until SIGINT/SIGTERM.

use anyhow::Context;
use std::net::SocketAddr;
use tessera_pow::{server, ADDR_ENV, DEFAULT_ADDR, LANDS_WITH, SERVICE_NAME};
use tessera_runtime::{config::env_or, grpc::GrpcServer, telemetry, Shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-pow")?;
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
