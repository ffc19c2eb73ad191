//! `tessera-gateway`: the REST gateway on its own (see the crate docs for the
//! environment it reads).

use anyhow::Context;
use tessera_gateway::GatewayConfig;
use tessera_runtime::Shutdown;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = tessera_runtime::telemetry::init("tessera-gateway")?;
    let config = GatewayConfig::from_env()?;
    let router = tessera_gateway::router(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("binding GATEWAY_ADDR {}", config.listen_addr))?;
    tessera_gateway::serve(listener, router, Shutdown::on_signals()).await?;
    // The routers are gone: send the call events they left queued.
    tessera_gateway::flush_call_events(std::time::Duration::from_secs(5)).await;
    Ok(())
}
