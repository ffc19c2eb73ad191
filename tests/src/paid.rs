//! The whole paid path on real parts: anvil with our EIP-3009 token, our
//! facilitator, the payment service (ledger in PostgreSQL), memory on Redis
//! + PostgreSQL, and the gateway charging every memory route with x402.

use crate::chain::{Chain, FacilitatorServer, NETWORK, TOKEN_NAME, TOKEN_VERSION};
use crate::harness::{database_url, durable_memory, MemoryServer, PgUrl};
use crate::proxy::PausableProxy;
use alloy::primitives::U256;
use std::time::Duration;
use tessera_gateway::{GatewayConfig, SettleMode};
use tessera_memory::Limits;
use tessera_payment::catalog::Catalog;
use tessera_payment::config::{Asset, PaymentConfig};
use tessera_payment::Payments;
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::grpc_auth::ServiceToken;
use tessera_runtime::Shutdown;
use tessera_x402::Network;

pub struct PaidStack {
    pub chain: Chain,
    pub facilitator: FacilitatorServer,
    /// Between the payment service and the facilitator, to take it away.
    pub facilitator_proxy: PausableProxy,
    /// Between the payment service and the chain's RPC (balances,
    /// contract-wallet signatures), to take the chain away from it.
    pub payment_rpc_proxy: PausableProxy,
    /// Between the payment service and PostgreSQL, when
    /// [`Options::ledger_proxy`] asked for it, to fail a ledger write.
    pub ledger_proxy: Option<PausableProxy>,
    pub payments: Payments,
    /// What `payments` was opened with (to open it again, as a restarted
    /// payment service would).
    pub payment_config: PaymentConfig,
    pub payment_url: String,
    pub memory: MemoryServer,
    /// Between the gateway and memory, to hold a served call in flight.
    pub memory_proxy: PausableProxy,
    pub gateway_url: String,
    /// PostgreSQL's clock when the stack started (text, for comparisons).
    started_at: String,
    gateway_config: GatewayConfig,
    shutdown: Shutdown,
}

/// Serves a gateway of `config` on a free port until `shutdown`.
async fn serve_gateway(config: &GatewayConfig, shutdown: &Shutdown) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen_addr = listener.local_addr().unwrap();
    let config = GatewayConfig {
        listen_addr,
        ..config.clone()
    };
    let router = tessera_gateway::router(&config)
        .await
        .expect("gateway with x402");
    tokio::spawn(tessera_gateway::serve(listener, router, shutdown.clone()));
    format!("http://{listen_addr}")
}

/// A proxy to the test database and the URL that reaches it through it,
/// with no statement cache.
async fn proxied_database() -> (PausableProxy, String) {
    let database = PgUrl::parse(&database_url());
    let proxy = PausableProxy::start(database.socket_addr().await).await;
    let url = database.with_addr(proxy.addr);
    // Every statement is sent with its text, so the proxy can hold it.
    let separator = if url.contains('?') { '&' } else { '?' };
    (proxy, format!("{url}{separator}statement-cache-capacity=0"))
}

pub struct Options {
    /// The gateway's `PAYMENT_SETTLE_MODE`.
    pub settle_mode: SettleMode,
    /// Run the payment service's settler of queued (async) settlements, as
    /// the binaries do. Off: queued payments wait (as while the payment
    /// service is down) until a test starts one
    /// ([`PaidStack::start_settler`]).
    pub settler: bool,
    /// The facilitator's settling keys (`FACILITATOR_PRIVATE_KEYS`): the
    /// chain's facilitator key and new keys holding ETH for gas.
    pub settlement_keys: usize,
    /// Reach the ledger through [`PaidStack::ledger_proxy`].
    pub ledger_proxy: bool,
    /// The settler's settlements at once (`PAYMENT_SETTLE_CONCURRENCY`).
    pub settle_concurrency: usize,
    /// How long a balance read serves calls settled later
    /// (`PAYMENT_BALANCE_MAX_AGE_MS`).
    pub balance_max_age: Duration,
    pub settle_timeout: Duration,
    /// `PAYMENT_SETTLE_LEASE_SECONDS`.
    pub settle_lease: Duration,
    /// `PAYMENT_RETRY_SECONDS` of the settler and the background pass
    /// (which run with [`Options::settler`]): an hour unless asked, so a
    /// test's pending rows are retried when it says
    /// (`Payments::retry_pending`), not behind its back.
    pub retry_every: Duration,
    /// Buyers funded with `BUYER_FUNDS` each.
    pub buyers: usize,
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    /// The internal service token memory and payment require and the
    /// gateway sends; empty = none.
    pub internal_token: &'static str,
    /// Leading zero bits of the pow service's challenges.
    pub pow_difficulty: u32,
    /// Changes the gateway's settings (Idempotency-Key store, rate limits)
    /// before it starts.
    pub adjust_gateway: fn(&mut GatewayConfig),
    /// Changes the facilitator's configuration before it starts.
    pub adjust_facilitator: fn(&mut tessera_facilitator::FacilitatorConfig),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settle_mode: SettleMode::Sync,
            settler: true,
            settlement_keys: 1,
            ledger_proxy: false,
            settle_concurrency: tessera_payment::config::DEFAULT_SETTLE_CONCURRENCY,
            balance_max_age: Duration::from_secs(1),
            settle_timeout: Duration::from_secs(20),
            settle_lease: tessera_payment::config::DEFAULT_SETTLE_LEASE,
            retry_every: Duration::from_secs(3600),
            buyers: 4,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 1024,
            internal_token: "",
            pow_difficulty: 8,
            adjust_gateway: |_| {},
            adjust_facilitator: |_| {},
        }
    }
}

impl PaidStack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let chain = Chain::start_with_buyers(options.buyers).await;
        // Settlements batch through Multicall3's interface at its canonical
        // address, as on Base.
        chain.install_batch_call().await;
        let mut facilitator_config = chain.facilitator_config();
        for _ in 1..options.settlement_keys {
            let key = tessera_facilitator::SettlementKey::new(chain.new_gas_key().await);
            facilitator_config.extra_settlement_keys.push(key);
        }
        (options.adjust_facilitator)(&mut facilitator_config);
        let facilitator = FacilitatorServer::start(facilitator_config).await;
        let facilitator_addr = facilitator
            .http_url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let facilitator_proxy = PausableProxy::start(facilitator_addr).await;
        let rpc_addr = chain.rpc_url.trim_start_matches("http://").parse().unwrap();
        let payment_rpc_proxy = PausableProxy::start(rpc_addr).await;
        let shutdown = Shutdown::new();
        let (ledger_proxy, database_url) = match options.ledger_proxy {
            false => (None, database_url()),
            true => {
                let (proxy, url) = proxied_database().await;
                (Some(proxy), url)
            }
        };

        let config = PaymentConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            database_url,
            database_pool_size: tessera_payment::config::DEFAULT_DATABASE_POOL_SIZE,
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
            settle_lease: options.settle_lease,
            retry_every: options.retry_every,
            rpc_url: format!("http://{}", payment_rpc_proxy.addr),
            rpc_timeout: Duration::from_secs(5),
            facilitator_api_key: None,
            settle_concurrency: options.settle_concurrency,
            balance_max_age: options.balance_max_age,
        };
        let payments = tessera_payment::open(&config)
            .await
            .expect("payment service opens its ledger");
        let started_at: String = sqlx::query_scalar("SELECT now()::text")
            .fetch_one(payments.ledger().pool())
            .await
            .unwrap();
        let payment_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let payment_url = format!("http://{}", payment_listener.local_addr().unwrap());
        let token = ServiceToken::new(options.internal_token).unwrap();
        let payment_server = GrpcServer::new(
            tessera_payment::SERVICE_NAME,
            tessera_payment::grpc::server(payments.clone()),
        )
        .require_token(token.clone());
        tokio::spawn(payment_server.serve(payment_listener, shutdown.clone()));
        if options.settler {
            tessera_payment::spawn_settler(&payments, &config, &shutdown);
            tokio::spawn(tessera_payment::run_retries(
                payments.clone(),
                config.retry_every,
                shutdown.clone(),
            ));
        }

        let memory =
            MemoryServer::start_with_token(durable_memory(Limits::default()).await, token.clone())
                .await;
        let memory_addr = memory.url().trim_start_matches("http://").parse().unwrap();
        let memory_proxy = PausableProxy::start(memory_addr).await;
        let tools_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tools_url = format!("http://{}", tools_listener.local_addr().unwrap());
        let runner = tessera_tools::Runner::new(&tessera_tools::ToolsConfig::default());
        let tools_server =
            GrpcServer::new(tessera_tools::SERVICE_NAME, tessera_tools::server(runner))
                .require_token(token.clone());
        tokio::spawn(tools_server.serve(tools_listener, shutdown.clone()));
        let pow_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pow_url = format!("http://{}", pow_listener.local_addr().unwrap());
        let pow_server = GrpcServer::new(
            tessera_pow::SERVICE_NAME,
            tessera_pow::server(crate::harness::pow_service(options.pow_difficulty).await),
        )
        .require_token(token.clone());
        tokio::spawn(pow_server.serve(pow_listener, shutdown.clone()));
        let discovery_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let discovery_url = format!("http://{}", discovery_listener.local_addr().unwrap());
        let discovery_server =
            GrpcServer::new(tessera_discovery::SERVICE_NAME, tessera_discovery::server())
                .require_token(token.clone());
        tokio::spawn(discovery_server.serve(discovery_listener, shutdown.clone()));
        // Call accounting on a fresh SQLite file, its leaderboard indexing
        // the stack's token on anvil.
        let stats_config = tessera_stats::StatsConfig {
            chain: Some(tessera_stats::ChainConfig {
                index_every: Duration::from_millis(200),
                // anvil mines a block per transaction and no more.
                confirmations: 0,
                ..tessera_stats::ChainConfig::new(&chain.rpc_url, &chain.token.to_string(), NETWORK)
            }),
            ..tessera_stats::StatsConfig::embedded(
                std::env::temp_dir()
                    .join(format!("tessera-stats-{:016x}", rand::random::<u64>()))
                    .join("stats.db"),
            )
        };
        let stats = tessera_stats::Stats::open(&stats_config, &shutdown)
            .await
            .expect("stats service");
        let stats_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stats_url = format!("http://{}", stats_listener.local_addr().unwrap());
        let stats_server =
            GrpcServer::new(tessera_stats::SERVICE_NAME, tessera_stats::server(stats))
                .require_token(token.clone());
        tokio::spawn(stats_server.serve(stats_listener, shutdown.clone()));
        let mut gateway_config = GatewayConfig {
            memory_url: format!("http://{}", memory_proxy.addr),
            tools_url,
            pow_url,
            discovery_url,
            stats_url,
            stats_flush: Duration::from_millis(50),
            free_mode: false,
            payment_url: Some(payment_url.clone()),
            settle_mode: options.settle_mode,
            request_timeout: options.request_timeout,
            max_concurrent_requests: options.max_concurrent_requests,
            internal_token: token,
            ..Default::default()
        };
        (options.adjust_gateway)(&mut gateway_config);
        let gateway_url = serve_gateway(&gateway_config, &shutdown).await;

        PaidStack {
            started_at,
            chain,
            facilitator,
            facilitator_proxy,
            payment_rpc_proxy,
            ledger_proxy,
            payments,
            payment_config: config,
            payment_url,
            memory,
            memory_proxy,
            gateway_url,
            gateway_config,
            shutdown,
        }
    }

    /// Starts the settler [`Options::settler`] left off, with the stack's
    /// settings, as the binaries run it.
    pub fn start_settler(&self) -> tessera_payment::Settler {
        tessera_payment::spawn_settler(&self.payments, &self.payment_config, &self.shutdown)
    }

    /// Another gateway over the same services, with the same settings (a
    /// second replica); its base URL.
    pub async fn another_gateway(&self) -> String {
        serve_gateway(&self.gateway_config, &self.shutdown).await
    }

    /// A FREE_MODE gateway over the same memory (no payment: `X-Agent-Id`
    /// names the namespace), to compare paid calls with unpaid ones.
    pub async fn free_gateway(&self) -> String {
        let config = GatewayConfig {
            free_mode: true,
            payment_url: None,
            ..self.gateway_config.clone()
        };
        serve_gateway(&config, &self.shutdown).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway_url)
    }

    pub async fn balance(&self, address: alloy::primitives::Address) -> U256 {
        self.chain.balance_of(address).await
    }

    /// The ledger's key of `payer`'s account in this stack's network and
    /// token.
    pub fn account_of(&self, payer: &str) -> tessera_payment::ledger::Account {
        tessera_payment::ledger::Account {
            network: NETWORK.into(),
            asset: format!("{:#x}", self.chain.token),
            payer: payer.into(),
        }
    }

    /// `payer`'s account in this stack's ledger (outstanding, settled_total,
    /// debt).
    pub async fn account(&self, payer: &str) -> tessera_payment::ledger::AccountState {
        self.payments
            .ledger()
            .account(&self.account_of(payer))
            .await
            .unwrap()
    }

    /// Payment rows this stack's gateway made: their resource is on its URL,
    /// and they are newer than the stack (an earlier test's gateway may have
    /// had the same port).
    pub async fn ledger_rows(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM payments WHERE resource LIKE $1 AND created_at >= $2::timestamptz",
        )
        .bind(format!("{}/%", self.gateway_url))
        .bind(&self.started_at)
        .fetch_one(self.payments.ledger().pool())
        .await
        .unwrap()
    }
}

impl Drop for PaidStack {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A gateway's answer: status, headers, and the body as JSON (a string when
/// it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

/// Sends `method url` with an optional JSON body and extra headers.
pub async fn send(
    method: reqwest::Method,
    url: &str,
    body: Option<serde_json::Value>,
    headers: &[(&str, String)],
) -> Reply {
    let mut request = reqwest::Client::new().request(method, url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    }
}

/// A base64 JSON header (`PAYMENT-REQUIRED`, `PAYMENT-RESPONSE`), decoded.
pub fn decode(header: &reqwest::header::HeaderValue) -> serde_json::Value {
    tessera_x402::decode_header(header.to_str().unwrap()).unwrap()
}

/// The terms `url` quotes: sends it `method` unpaid (with `body`), checks
/// the answer is a 402, and answers the first `accepts` of its
/// `PAYMENT-REQUIRED`.
pub async fn quoted_terms(
    method: reqwest::Method,
    url: &str,
    body: Option<serde_json::Value>,
) -> tessera_x402::Requirements {
    let unpaid = send(method, url, body, &[]).await;
    assert_eq!(
        unpaid.status,
        reqwest::StatusCode::PAYMENT_REQUIRED,
        "{}",
        unpaid.body
    );
    let quote = decode(unpaid.headers.get("payment-required").unwrap());
    serde_json::from_value(quote["accepts"][0].clone()).unwrap()
}

/// A signer's namespace: its lower-case 0x address.
pub fn namespace(signer: &alloy::signers::local::PrivateKeySigner) -> String {
    format!("{:#x}", signer.address())
}

impl PaidStack {
    /// A proof-of-work solution for the tool `slug`: a challenge from this
    /// stack's gateway, solved (`X-Pow-Solution` value).
    pub async fn pow_solution(&self, slug: &str) -> String {
        let url = self.url(&format!("/api/pow/challenge?slug={slug}"));
        let issued = send(reqwest::Method::GET, &url, None, &[]).await;
        assert_eq!(
            issued.status,
            reqwest::StatusCode::OK,
            "{slug}: {}",
            issued.body
        );
        let nonce = tessera_pow::token::solve(
            issued.body["challenge"].as_str().unwrap(),
            issued.body["difficulty"].as_u64().unwrap() as u32,
        );
        format!("{}:{nonce}", issued.body["token"].as_str().unwrap())
    }

    /// A key's stored value, read from memory directly (no payment), to
    /// check what a refused call did not write.
    pub async fn stored(&self, namespace: &str, key: &str) -> Option<String> {
        let mut memory = self.memory.client().await;
        memory
            .get(tessera_proto::memory::v1::GetRequest {
                namespace: namespace.into(),
                key: key.into(),
                ..Default::default()
            })
            .await
            .ok()
            .map(|entry| entry.into_inner().value_json)
    }
}
