//! `tessera-facilitator`: the x402 facilitator as its own deployable. The
//! HTTP API on `FACILITATOR_HTTP_ADDR` (default 127.0.0.1:8402), gRPC with
//! health and reflection on `FACILITATOR_GRPC_ADDR` (default
//! 127.0.0.1:50053), the chain at `FACILITATOR_RPC_URL`; `/verify` and
//! `/settle` need a key from `FACILITATOR_API_KEYS` when that is set; see
//! `tessera_facilitator::config`. Stops gracefully on SIGINT/SIGTERM.

use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tessera_facilitator::{config, Facilitator, FacilitatorConfig, StartError};
use tessera_runtime::config::redact_url;
use tessera_runtime::{telemetry, Shutdown};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera-facilitator")?;
    let config = FacilitatorConfig::from_env()?;
    let shutdown = Shutdown::on_signals();

    let Some(facilitator) = connect(&config, &shutdown).await? else {
        return Ok(());
    };
    tracing::info!(
        network = %facilitator.network(),
        rpc = %redact_url(&config.rpc_url),
        settles_from = ?facilitator.settlement_addresses(),
        batch_max = facilitator.batch_max(),
        api_keys = config.api_keys.required(),
        "facilitator ready"
    );
    if !config.api_keys.required() {
        tracing::warn!(
            "{} is not set: anyone who reaches /verify and /settle can have payments settled with our gas",
            config::API_KEYS_ENV
        );
    }
    let http = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} ({})",
                config.http_addr,
                config::HTTP_ADDR_ENV
            )
        })?;
    let grpc = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} ({})",
                config.grpc_addr,
                config::GRPC_ADDR_ENV
            )
        })?;
    let api_keys = config.api_keys.clone();
    tessera_facilitator::serve(Arc::new(facilitator), api_keys, http, grpc, shutdown).await
}

/// Waits for the chain (it may start after us), retrying with backoff
/// until it answers or a shutdown signal arrives (`None`); a refused
/// configuration is an error at once.
async fn connect(
    config: &FacilitatorConfig,
    shutdown: &Shutdown,
) -> anyhow::Result<Option<Facilitator>> {
    let mut delay = Duration::from_millis(250);
    loop {
        match Facilitator::connect(config).await {
            Ok(facilitator) => return Ok(Some(facilitator)),
            Err(error @ StartError::Config(_)) => return Err(error.into()),
            Err(error) => {
                tracing::warn!(
                    error = %redact_url(&error.to_string()),
                    retry_in_ms = delay.as_millis() as u64,
                    "chain not reachable yet"
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait() => return Ok(None),
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
