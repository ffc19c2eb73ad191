//! Standalone payment service on `PAYMENT_GRPC_ADDR` (see `config` for
//! every variable), retrying pending settlements in the background.

use tessera_payment::{config::PaymentConfig, grpc, open, run_retries, SERVICE_NAME};
use tessera_runtime::{grpc::GrpcServer, telemetry, Shutdown};

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
    GrpcServer::new(SERVICE_NAME, grpc::server(payments))
        .serve(listener, shutdown)
        .await
}
