//! Builders for memory backends and servers, each on its own port, namespace
//! or file, so tests run in parallel without stepping on each other.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tessera_memory::durable::{DurableConfig, DurableStore};
use tessera_memory::embedded::EmbeddedStore;
use tessera_memory::{Limits, Memory};
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::grpc_auth::ServiceToken;
use tessera_runtime::Shutdown;
use tonic::transport::Channel;

pub fn redis_url() -> String {
    tessera_runtime::config::env_string("REDIS_URL", tessera_memory::config::DEFAULT_REDIS_URL)
}

pub fn database_url() -> String {
    tessera_runtime::config::env_string(
        "DATABASE_URL",
        tessera_memory::config::DEFAULT_DATABASE_URL,
    )
}

/// A namespace no other test (or earlier run) uses.
pub fn unique_namespace(label: &str) -> String {
    format!("t-{label}-{:016x}", rand::random::<u64>())
}

fn temp_path(label: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tessera-{label}-{:016x}", rand::random::<u64>()))
}

pub async fn embedded_memory(limits: Limits) -> Memory {
    let path = temp_path("embedded").join("memory.db");
    let store = EmbeddedStore::open(&path, limits)
        .await
        .expect("open embedded store");
    Memory::new(Arc::new(store), limits)
}

/// The durable store on the Redis and PostgreSQL this machine runs. Fails
/// (never skips) with what to start when they do not answer.
pub async fn durable_store_at(redis_url: &str, limits: Limits) -> DurableStore {
    durable_store_with(redis_url, &database_url(), limits).await
}

/// As [`durable_store_at`], with PostgreSQL at `database_url`.
pub async fn durable_store_with(
    redis_url: &str,
    database_url: &str,
    limits: Limits,
) -> DurableStore {
    durable_store_from(DurableConfig {
        redis_url: redis_url.to_string(),
        database_url: database_url.to_string(),
        database_pool_size: 16,
        limits,
        deliberate_bug: None,
    })
    .await
}

/// The durable store `config` describes.
pub async fn durable_store_from(config: DurableConfig) -> DurableStore {
    let (redis_url, database_url) = (&config.redis_url, &config.database_url);
    match DurableStore::connect(&config).await {
        Ok(store) => store,
        Err(error) => panic!(
            "the Redis + PostgreSQL tests need Redis at {} and PostgreSQL at {} \
             (set REDIS_URL / DATABASE_URL, or start them: `redis-server --save '' --appendonly no` \
             and PostgreSQL with database `test`; `.ci/run` does both): {error:#}",
            redis_url,
            tessera_runtime::config::redact_url(database_url)
        ),
    }
}

pub async fn durable_memory(limits: Limits) -> Memory {
    let store = durable_store_at(&redis_url(), limits).await;
    Memory::new(Arc::new(store), limits)
}

/// A memory gRPC server on a free port; stops when the returned handle drops.
pub struct MemoryServer {
    pub addr: SocketAddr,
    /// What the server requires, and [`MemoryServer::client`] sends.
    token: ServiceToken,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl MemoryServer {
    pub async fn start(memory: Memory) -> Self {
        Self::start_with_token(memory, ServiceToken::none()).await
    }

    /// A server requiring `token` (`INTERNAL_TOKEN`) on every call but health.
    pub async fn start_with_token(memory: Memory, token: ServiceToken) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let server = GrpcServer::new(
            tessera_memory::grpc::SERVICE_NAME,
            tessera_memory::grpc::server(memory),
        )
        .require_token(token.clone());
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            server.serve(listener, stop).await.expect("memory server");
        });
        MemoryServer {
            addr,
            token,
            shutdown,
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected channel, sending no token (health, reflection, or a
    /// client of any of the server's services).
    pub async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .expect("connect to memory server")
    }

    /// A client sending the server's token, if it requires one.
    pub async fn client(
        &self,
    ) -> MemoryServiceClient<tonic::service::interceptor::InterceptedService<Channel, ServiceToken>>
    {
        MemoryServiceClient::with_interceptor(self.channel().await, self.token.clone())
    }

    /// Stops accepting, drains in-flight calls, and waits until it has.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MemoryServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Just enough of a PostgreSQL URL to point it at another host:port (a
/// proxy).
pub struct PgUrl {
    before: String,
    host_port: String,
    after: String,
}

impl PgUrl {
    pub fn parse(url: &str) -> Self {
        let scheme_end = url.find("://").expect("a URL") + 3;
        let authority_start = url[scheme_end..]
            .find('@')
            .map_or(scheme_end, |at| scheme_end + at + 1);
        let authority_end = url[authority_start..]
            .find('/')
            .map_or(url.len(), |slash| authority_start + slash);
        PgUrl {
            before: url[..authority_start].to_string(),
            host_port: url[authority_start..authority_end].to_string(),
            after: url[authority_end..].to_string(),
        }
    }

    pub async fn socket_addr(&self) -> SocketAddr {
        let host_port = if self.host_port.contains(':') {
            self.host_port.clone()
        } else {
            format!("{}:5432", self.host_port)
        };
        tokio::net::lookup_host(host_port)
            .await
            .unwrap()
            .next()
            .unwrap()
    }

    pub fn with_addr(&self, addr: SocketAddr) -> String {
        format!("{}{}{}", self.before, addr, self.after)
    }
}

/// A memory replica whose PostgreSQL and Redis connections each go through a
/// proxy of its own, so a test can hold, slow or sever them.
pub struct ProxiedReplica {
    pub memory: Memory,
    pub pg: crate::proxy::PausableProxy,
    pub redis: crate::proxy::PausableProxy,
}

impl ProxiedReplica {
    pub async fn start(redis_port: u16, limits: Limits) -> Self {
        Self::start_with(redis_port, &database_url(), limits, None).await
    }

    /// A replica on the PostgreSQL at `database_url`, with `bug` if any.
    pub async fn start_with(
        redis_port: u16,
        database_url: &str,
        limits: Limits,
        bug: Option<tessera_memory::durable::DeliberateBug>,
    ) -> Self {
        let database = PgUrl::parse(database_url);
        let pg = crate::proxy::PausableProxy::start(database.socket_addr().await).await;
        let redis_target: SocketAddr = ([127, 0, 0, 1], redis_port).into();
        let redis = crate::proxy::PausableProxy::start(redis_target).await;
        let store = durable_store_from(DurableConfig {
            redis_url: format!("redis://{}", redis.addr),
            database_url: database.with_addr(pg.addr),
            database_pool_size: 16,
            limits,
            deliberate_bug: bug,
        })
        .await;
        ProxiedReplica {
            memory: Memory::new(Arc::new(store), limits),
            pg,
            redis,
        }
    }

    /// Every connection cut and no new one accepted: as the servers see it,
    /// the replica's process died at whatever step it was.
    pub fn kill(&self) {
        self.pg.close();
        self.redis.close();
    }
}

/// A tools client calling a tools service of this process (default
/// limits), as the all-in-one does.
pub fn tools_in_process() -> tessera_gateway::ToolsClient {
    let runner = tessera_tools::Runner::new(&tessera_tools::ToolsConfig::default());
    tessera_gateway::ToolsClient::in_process(tessera_tools::server(runner), ServiceToken::none())
}

/// The secret of every test's proof-of-work service.
pub const POW_SECRET: &str = "tessera-tests-pow-secret-0123456789";

/// A pow service of this process on an embedded claim store in a fresh
/// temporary file, at `difficulty` bits for every tool.
pub async fn pow_service(difficulty: u32) -> tessera_pow::Pow {
    let path = std::env::temp_dir().join(format!("{}.db", unique_namespace("tessera-pow")));
    let store = tessera_pow::Store::Embedded { path };
    let config = tessera_pow::PowConfig::for_tests(POW_SECRET, difficulty, store);
    tessera_pow::Pow::open(&config).await.expect("pow service")
}

/// A pow client calling `pow` in process.
pub fn pow_client(pow: tessera_pow::Pow) -> tessera_gateway::PowClient {
    tessera_gateway::PowClient::direct(tessera_pow::PowServer::new(pow))
}

/// Serves a gateway of `config` (its `listen_addr` replaced by a free
/// loopback port) over `backends` until the process ends; its base URL.
pub async fn spawn_gateway(
    mut config: tessera_gateway::GatewayConfig,
    backends: tessera_gateway::Backends,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    config.listen_addr = listener.local_addr()?;
    let router = tessera_gateway::router_with(&config, backends).await?;
    tokio::spawn(tessera_gateway::serve(listener, router, Shutdown::new()));
    Ok(format!("http://{}", config.listen_addr))
}

/// Serves a FREE_MODE gateway (otherwise default settings) over
/// [`in_process_backends`] until the process ends; its base URL.
pub async fn spawn_free_gateway() -> String {
    let config = tessera_gateway::GatewayConfig {
        free_mode: true,
        ..Default::default()
    };
    spawn_gateway(config, in_process_backends().await)
        .await
        .unwrap()
}

/// A discovery client calling a discovery service of this process, as the
/// all-in-one does.
pub fn discovery_in_process() -> tessera_gateway::DiscoveryClient {
    tessera_gateway::DiscoveryClient::direct(tessera_discovery::Discovery::default())
}

/// A stats service of this process on a fresh SQLite file, called directly
/// as the all-in-one does; no chain (the leaderboard indexes nothing).
pub async fn stats_in_process() -> tessera_gateway::StatsClient {
    let path = temp_path("stats").join("stats.db");
    let store = tessera_stats::StatsStore::sqlite(&path)
        .await
        .expect("open the stats store");
    tessera_gateway::StatsClient::direct(tessera_stats::Stats::new(store, None))
}

/// Every backend a gateway calls, in this process as the all-in-one has
/// them: memory on a fresh embedded store, the tools, a pow service at 8
/// bits, discovery, stats on a fresh SQLite file.
pub async fn in_process_backends() -> tessera_gateway::Backends {
    let memory = embedded_memory(Default::default()).await;
    tessera_gateway::Backends {
        memory: tessera_gateway::MemoryClient::in_process(
            tessera_memory::grpc::server(memory),
            ServiceToken::none(),
        ),
        tools: tools_in_process(),
        pow: pow_client(pow_service(8).await),
        discovery: discovery_in_process(),
        stats: stats_in_process().await,
    }
}
