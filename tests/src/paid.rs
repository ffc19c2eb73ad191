//! The whole paid path on real parts: anvil with our EIP-3009 token, our
//! facilitator, the payment service (ledger in PostgreSQL), memory on Redis
//! + PostgreSQL, and the gateway charging every memory route with x402.

use crate::chain::{Chain, FacilitatorServer, NETWORK, TOKEN_NAME, TOKEN_VERSION};
use crate::harness::{database_url, durable_memory, MemoryServer};
use crate::proxy::PausableProxy;
use alloy::primitives::U256;
use std::time::Duration;
use tessera_gateway::GatewayConfig;
use tessera_memory::Limits;
use tessera_payment::catalog::Catalog;
use tessera_payment::config::{Asset, PaymentConfig};
use tessera_payment::Payments;
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::Shutdown;
use tessera_x402::Network;

pub struct PaidStack {
    pub chain: Chain,
    pub facilitator: FacilitatorServer,
    /// Between the payment service and the facilitator, to take it away.
    pub facilitator_proxy: PausableProxy,
    pub payments: Payments,
    pub payment_url: String,
    pub memory: MemoryServer,
    pub gateway_url: String,
    shutdown: Shutdown,
}

pub struct Options {
    pub settle_before: bool,
    pub settle_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settle_before: false,
            settle_timeout: Duration::from_secs(20),
        }
    }
}

impl PaidStack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let chain = Chain::start().await;
        let facilitator = chain.start_facilitator().await;
        let facilitator_addr = facilitator
            .http_url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let facilitator_proxy = PausableProxy::start(facilitator_addr).await;
        let shutdown = Shutdown::new();

        let config = PaymentConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            database_url: database_url(),
            facilitator_url: format!("http://{}", facilitator_proxy.addr),
            pay_to: chain.pay_to.to_checksum(None),
            asset: Asset {
                network: Network::parse(NETWORK).unwrap(),
                address: chain.token.to_checksum(None),
                name: TOKEN_NAME.into(),
                version: TOKEN_VERSION.into(),
            },
            max_timeout_seconds: 60,
            catalog: Catalog::default(),
            settle_timeout: options.settle_timeout,
            retry_every: Duration::from_secs(3600),
        };
        let payments = tessera_payment::open(&config)
            .await
            .expect("payment service opens its ledger");
        let payment_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let payment_url = format!("http://{}", payment_listener.local_addr().unwrap());
        let payment_server = GrpcServer::new(
            tessera_payment::SERVICE_NAME,
            tessera_payment::grpc::server(payments.clone()),
        );
        tokio::spawn(payment_server.serve(payment_listener, shutdown.clone()));

        let memory = MemoryServer::start(durable_memory(Limits::default()).await).await;
        let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen_addr = gateway_listener.local_addr().unwrap();
        let router = tessera_gateway::router(&GatewayConfig {
            listen_addr,
            memory_url: memory.url(),
            free_mode: false,
            payment_url: Some(payment_url.clone()),
            settle_before: options.settle_before,
        })
        .await
        .expect("gateway with x402");
        tokio::spawn(tessera_gateway::serve(
            gateway_listener,
            router,
            shutdown.clone(),
        ));

        PaidStack {
            chain,
            facilitator,
            facilitator_proxy,
            payments,
            payment_url,
            memory,
            gateway_url: format!("http://{listen_addr}"),
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway_url)
    }

    pub async fn balance(&self, address: alloy::primitives::Address) -> U256 {
        self.chain.balance_of(address).await
    }
}

impl Drop for PaidStack {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
