//! Standalone payment service on `PAYMENT_GRPC_ADDR` (see `config` for
//! every variable), settling queued settlements and retrying pending ones in
//! the background.

use tessera_payment::{
    config::PaymentConfig, grpc, open, run_retries, spawn_settler, SERVICE_NAME,
};
use tessera_runtime::{
    grpc::GrpcServer, grpc_auth::ServiceToken, metrics_endpoint, telemetry, Shutdown,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-payment")?;
    let config = PaymentConfig::from_env()?;
    let payments = open(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    let shutdown = Shutdown::on_signals();
    tokio::spawn(run_retries(
        payments.clone(),
        config.retry_every,
        shutdown.clone(),
    ));
    let settler = spawn_settler(&payments, &config, &shutdown);
    let serving = GrpcServer::new(SERVICE_NAME, grpc::server(payments))
        // INTERNAL_TOKEN: only Tessera's gateway may ask for verifications.
        .require_token(ServiceToken::from_env()?)
        .serve(listener, shutdown.clone());
    // `GET /metrics` on METRICS_ADDR when set.
    let served = metrics_endpoint::serve_beside(&shutdown, serving).await;
    // Settlements in flight finish; queued ones wait for the next start.
    settler.stopped().await;
    served
}
