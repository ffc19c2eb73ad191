//! `tessera-gateway`: the REST gateway on its own (see the crate docs for the
//! environment it reads).

use anyhow::Context;
use tessera_gateway::GatewayConfig;
use tessera_runtime::Shutdown;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = tessera_runtime::telemetry::init("tessera-gateway")?;
    let config = GatewayConfig::from_env()?;
    let router = tessera_gateway::router(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("binding GATEWAY_ADDR {}", config.listen_addr))?;
    tessera_gateway::serve(listener, router, Shutdown::on_signals()).await
}
