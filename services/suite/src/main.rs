//! `tessera`: every service and the REST gateway in one process. The gRPC
//! services share one port (`MEMORY_GRPC_ADDR`, default 127.0.0.1:50051);
//! the gateway listens on `GATEWAY_ADDR` (default 127.0.0.1:8080) and calls
//! the memory, tools and pow gRPC services in process (the same requests as
//! across pods, without the loopback hop). The memory backend defaults to the embedded
//! SQLite file (see `MEMORY_BACKEND`).
//!
//! Metrics: the gateway's `GET /metrics` shows every series of this process,
//! the gRPC services' (`service="memory"`, `"pow"`, …) as well as the
//! gateway's, because `tessera_runtime::metrics` keeps one registry per
//! process. No separate `METRICS_ADDR` listener is needed here.

use std::net::SocketAddr;
use tessera_gateway::GatewayConfig;
use tessera_memory::config::MemoryConfig;
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::{telemetry, Shutdown};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("tessera")?;
    let memory_config = MemoryConfig::from_env()?;
    let memory = memory_config.open().await?;
    let grpc_listener = tokio::net::TcpListener::bind(memory_config.listen_addr).await?;
    let grpc_addr = grpc_listener.local_addr()?;

    let mut gateway_config = GatewayConfig::from_env()?;
    gateway_config.memory_url = format!("http://{}", loopback(grpc_addr));
    gateway_config.memory_backend = Some(
        match &memory_config.backend {
            tessera_memory::config::Backend::Embedded { .. } => "embedded",
            tessera_memory::config::Backend::RedisPostgres(_) => "redis-postgres",
        }
        .to_string(),
    );
    // /api/reliability probes what this process stores memory in.
    if let tessera_memory::config::Backend::RedisPostgres(durable) = &memory_config.backend {
        let probes = &mut gateway_config.reliability;
        probes
            .redis_url
            .get_or_insert_with(|| durable.redis_url.clone());
        probes
            .database_url
            .get_or_insert_with(|| durable.database_url.clone());
    }
    let payments_hosted = std::env::var_os("PAYMENT_PAY_TO").is_some();
    if payments_hosted && !gateway_config.free_mode && gateway_config.payment_url.is_none() {
        gateway_config.payment_url = Some(format!("http://{}", loopback(grpc_addr)));
    }

    let tools = tessera_tools::Runner::new(&tessera_tools::ToolsConfig::from_env()?);
    let pow = tessera_pow::Pow::open(&tessera_pow::PowConfig::from_env()?).await?;
    let pow_in_process =
        tessera_gateway::PowClient::direct(tessera_pow::PowServer::new(pow.clone()));
    let tools_in_process = tessera_gateway::ToolsClient::in_process(
        tessera_tools::server(tools.clone()),
        gateway_config.internal_token.clone(),
    );
    let shutdown = Shutdown::on_signals();
    // Crawls DISCOVERY_REGISTRIES in the background when any are set.
    let discovery = tessera_discovery::Discovery::open(
        &tessera_discovery::DiscoveryConfig::from_env()?,
        &shutdown,
    )
    .await?;
    // Call accounting; indexes the leaderboard when a chain is configured.
    let stats =
        tessera_stats::Stats::open(&tessera_stats::StatsConfig::from_env()?, &shutdown).await?;
    let memory_for_reclaim = memory.clone();
    let memory_in_process = tessera_gateway::MemoryClient::in_process(
        tessera_memory::grpc::server(memory.clone()),
        gateway_config.internal_token.clone(),
    );
    let grpc = GrpcServer::new(
        tessera_memory::grpc::SERVICE_NAME,
        tessera_memory::grpc::server(memory),
    )
    // The x402 facilitator is its own deployable (`tessera-facilitator`):
    // it needs a chain RPC endpoint and a settling key.
    .add(
        tessera_tools::SERVICE_NAME,
        tessera_tools::server(tools.clone()),
    )
    .add(tessera_pow::SERVICE_NAME, tessera_pow::server(pow.clone()))
    .add(
        tessera_discovery::SERVICE_NAME,
        tessera_proto::discovery::v1::discovery_service_server::DiscoveryServiceServer::new(
            discovery.clone(),
        ),
    )
    .add(
        tessera_stats::SERVICE_NAME,
        tessera_stats::server(stats.clone()),
    )
    // The gateway below sends the same INTERNAL_TOKEN it requires here.
    .require_token(gateway_config.internal_token.clone());

    memory_config.spawn_reclaimer(&memory_for_reclaim, &shutdown);
    // Payments need a chain and a ledger: hosted when configured (PAYMENT_PAY_TO).
    let payment_config = if payments_hosted {
        Some(tessera_payment::PaymentConfig::from_env()?)
    } else {
        None
    };
    let mut settler = None;
    let grpc = match &payment_config {
        Some(config) => {
            let payments = tessera_payment::open(config).await?;
            tokio::spawn(tessera_payment::run_retries(
                payments.clone(),
                config.retry_every,
                shutdown.clone(),
            ));
            settler = Some(tessera_payment::spawn_settler(&payments, config, &shutdown));
            grpc.add(
                tessera_payment::SERVICE_NAME,
                tessera_payment::grpc::server(payments),
            )
        }
        None => grpc,
    };
    // gRPC first: a paid gateway asks the payment service for its prices
    // before it serves.
    let mut grpc_task = tokio::spawn(grpc.serve(grpc_listener, shutdown.clone()));
    let backends = tessera_gateway::Backends {
        memory: memory_in_process,
        tools: tools_in_process,
        pow: pow_in_process,
        discovery: tessera_gateway::DiscoveryClient::direct(discovery),
        stats: tessera_gateway::StatsClient::direct(stats),
    };
    let router = tessera_gateway::router_with(&gateway_config, backends).await?;
    let http_listener = tokio::net::TcpListener::bind(gateway_config.listen_addr).await?;
    let http_addr = loopback(http_listener.local_addr()?);
    let mut http_task = tokio::spawn(tessera_gateway::serve(
        http_listener,
        router,
        shutdown.clone(),
    ));
    println!(
        "Tessera is up.\n  REST gateway: http://{http_addr}\n  gRPC (memory, tools, pow, discovery, stats; reflection, health): {}",
        loopback(grpc_addr)
    );
    match (&payment_config, gateway_config.free_mode) {
        (_, true) => println!(
            "  FREE_MODE (development, nobody pays): name your namespace with X-Agent-Id, e.g.\n  \
             curl -s -X POST http://{http_addr}/api/memory -H 'X-Agent-Id: agent-1' -H 'Content-Type: application/json' -d '{{\"key\":\"hello\",\"value\":\"world\"}}'"
        ),
        (Some(config), false) => println!(
            "  Every memory route is paid with x402, in {} ({}) on {} to {}; the paying wallet is the namespace.\n  \
             An unpaid call answers 402 with the quote in PAYMENT-REQUIRED; pay it with an x402 client, e.g.\n  \
             node tests/chain/pay.mjs --url http://{http_addr}/api/memory/cas --method POST --body '{{\"key\":\"k\",\"value\":1}}' --key <payer key>",
            config.asset.name,
            config.asset.address,
            config.asset.network,
            config.pay_to,
        ),
        (None, false) => println!(
            "  Every memory route is paid with x402 through the payment service at {}; the paying wallet is the namespace.",
            gateway_config.payment_url.as_deref().unwrap_or("PAYMENT_URL")
        ),
    }

    // Whichever server stops first (a signal, or a failure) stops the other.
    let (first, other) = tokio::select! {
        result = &mut grpc_task => (result, http_task),
        result = &mut http_task => (result, grpc_task),
    };
    shutdown.trigger();
    first??;
    other.await??;
    // Deferred settlements in flight finish; queued ones wait in the ledger
    // for the next start.
    if let Some(settler) = settler {
        settler.stopped().await;
    }
    // The gateway's router is gone: send the call events it left queued.
    tessera_gateway::flush_call_events(std::time::Duration::from_secs(5)).await;
    Ok(())
}

/// The address a local client dials for a listener (0.0.0.0 → 127.0.0.1).
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}
