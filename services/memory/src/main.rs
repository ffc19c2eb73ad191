use tessera_memory::config::MemoryConfig;
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::{telemetry, Shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-memory")?;
    let config = MemoryConfig::from_env()?;
    let memory = config.open().await?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    GrpcServer::new(tessera_memory::grpc::SERVICE_NAME, tessera_memory::grpc::server(memory))
        .serve(listener, Shutdown::on_signals())
        .await
}
