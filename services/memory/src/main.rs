use tessera_memory::config::MemoryConfig;
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::grpc_auth::{self, ServiceToken};
use tessera_runtime::{metrics_endpoint, telemetry, Shutdown};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-memory")?;
    let config = MemoryConfig::from_env()?;
    let token = ServiceToken::from_env()?;
    if !token.is_set() {
        tracing::warn!(
            "{} is not set: any client that reaches the gRPC port can act as any namespace",
            grpc_auth::ENV
        );
    }
    let memory = config.open().await?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    let shutdown = Shutdown::on_signals();
    config.spawn_reclaimer(&memory, &shutdown);
    let serving = GrpcServer::new(
        tessera_memory::grpc::SERVICE_NAME,
        tessera_memory::grpc::server(memory),
    )
    .require_token(token)
    .serve(listener, shutdown.clone());
    // `GET /metrics` on METRICS_ADDR when set; it stops with the server.
    metrics_endpoint::serve_beside(&shutdown, serving).await
}
