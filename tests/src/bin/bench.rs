//! `make bench`: raw Redis vs the memory service over gRPC vs the REST gateway
//! over HTTP, durable writes vs a plain PostgreSQL upsert loop, the x402
//! facilitator's `/verify` vs its CPU limit (EIP-712 hash + ECDSA recovery),
//! and a memory CAS paid with x402 end to end on anvil, all in one run at
//! the same concurrency on this machine's Redis and PostgreSQL.
//!
//! | variable                    | default                                    |
//! |-----------------------------|--------------------------------------------|
//! | `BENCH_CONCURRENCY`         | 32 clients per case                        |
//! | `BENCH_SECONDS`             | 5 measured seconds per case (+1 warm-up)   |
//! | `BENCH_ONLY`                | all cases; else a comma list of case names |
//! | `BENCH_CLIENTS_PER_CHANNEL` | 4 gRPC clients a channel; 0 = one for all  |
//! | `REDIS_URL`, `DATABASE_URL` | as the tests                               |

#[path = "../bench/discovery.rs"]
mod discovery;
#[path = "../bench/driver.rs"]
mod driver;
#[path = "../bench/gateway_http.rs"]
mod gateway_http;
#[path = "../bench/memory_grpc.rs"]
mod memory_grpc;
#[path = "../bench/paid_cas.rs"]
mod paid_cas;
#[path = "../bench/postgres.rs"]
mod postgres;
#[path = "../bench/pow.rs"]
mod pow;
#[path = "../bench/public_api.rs"]
mod public_api;
#[path = "../bench/raw_redis.rs"]
mod raw_redis;
#[path = "../bench/report.rs"]
mod report;
#[path = "../bench/x402.rs"]
mod x402;

use anyhow::{bail, Context};
use gateway_http::GatewayHttp;
use memory_grpc::MemoryGrpc;
use paid_cas::PaidCas;
use postgres::Postgres;
use raw_redis::RawRedis;
use report::Row;
use sqlx::Connection;
use tessera_runtime::config::{env_or, env_string, redact_url};
use x402::{Eip712Recover, FacilitatorVerify};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A bench case, named for `BENCH_ONLY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    RedisGet,
    RedisSet,
    RedisEvalshaCas,
    GrpcNoop,
    GrpcGet,
    GrpcCas,
    GrpcIncr,
    GrpcHotIncr,
    GrpcHotCas,
    HttpNoop,
    HttpGet,
    HttpGetPaired,
    HttpGetCounted,
    HttpCas,
    HttpIncr,
    HttpTool,
    PublicGrpcGet,
    PublicGrpcCas,
    McpCall,
    FindLoad,
    FindOne,
    RouteLoad,
    RouteOne,
    IdemFresh,
    IdemReplay,
    PowChallenge,
    PowRedeem,
    PowTool,
    PowToolRedis,
    PgUpsert,
    GrpcDurableSet,
    GrpcSpreadSet,
    Eip712Recover,
    FacilitatorVerify,
    PaidCas,
    PaidSync1s,
    PaidAsyncB1,
    PaidAsyncB10,
    PaidAsyncB100,
    PaidAsyncB100Keys2,
}

impl Case {
    /// Every case, in run order: each baseline before what it is compared with.
    const ALL: [Case; 40] = [
        Case::RedisGet,
        Case::RedisSet,
        Case::RedisEvalshaCas,
        Case::GrpcNoop,
        Case::GrpcGet,
        Case::GrpcCas,
        Case::GrpcIncr,
        Case::GrpcHotIncr,
        Case::GrpcHotCas,
        Case::HttpNoop,
        Case::HttpGet,
        Case::HttpGetPaired,
        Case::HttpGetCounted,
        Case::HttpCas,
        Case::HttpIncr,
        Case::HttpTool,
        Case::PublicGrpcGet,
        Case::PublicGrpcCas,
        Case::McpCall,
        Case::FindLoad,
        Case::FindOne,
        Case::RouteLoad,
        Case::RouteOne,
        Case::IdemFresh,
        Case::IdemReplay,
        Case::PowChallenge,
        Case::PowRedeem,
        Case::PowTool,
        Case::PowToolRedis,
        Case::PgUpsert,
        Case::GrpcDurableSet,
        Case::GrpcSpreadSet,
        Case::Eip712Recover,
        Case::FacilitatorVerify,
        Case::PaidCas,
        Case::PaidSync1s,
        Case::PaidAsyncB1,
        Case::PaidAsyncB10,
        Case::PaidAsyncB100,
        Case::PaidAsyncB100Keys2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Case::RedisGet => "redis-get",
            Case::RedisSet => "redis-set",
            Case::RedisEvalshaCas => "redis-evalsha",
            Case::GrpcNoop => "grpc-noop",
            Case::GrpcGet => "grpc-get",
            Case::GrpcCas => "grpc-cas",
            Case::GrpcIncr => "grpc-incr",
            Case::GrpcHotIncr => "grpc-hot-incr",
            Case::GrpcHotCas => "grpc-hot-cas",
            Case::HttpNoop => "http-noop",
            Case::HttpGet => "http-get",
            Case::HttpGetPaired => "http-get-off",
            Case::HttpGetCounted => "http-get-stats",
            Case::HttpCas => "http-cas",
            Case::HttpIncr => "http-incr",
            Case::HttpTool => "http-tool",
            Case::PublicGrpcGet => "public-grpc-get",
            Case::PublicGrpcCas => "public-grpc-cas",
            Case::McpCall => "mcp-call",
            Case::FindLoad => "find-10k",
            Case::FindOne => "find-10k-1",
            Case::RouteLoad => "route-1k",
            Case::RouteOne => "route-1k-1",
            Case::IdemFresh => "idem-fresh",
            Case::IdemReplay => "idem-replay",
            Case::PowChallenge => "pow-challenge",
            Case::PowRedeem => "pow-redeem",
            Case::PowTool => "pow-tool",
            Case::PowToolRedis => "pow-tool-redis",
            Case::PgUpsert => "pg-upsert",
            Case::GrpcDurableSet => "grpc-set",
            Case::GrpcSpreadSet => "grpc-spread-set",
            Case::Eip712Recover => "eip712-recover",
            Case::FacilitatorVerify => "facilitator-verify",
            Case::PaidCas => "paid-cas",
            Case::PaidSync1s => "paid-sync-1s",
            Case::PaidAsyncB1 => "paid-async-b1",
            Case::PaidAsyncB10 => "paid-async-b10",
            Case::PaidAsyncB100 => "paid-async-b100",
            Case::PaidAsyncB100Keys2 => "paid-async-b100-k2",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Case::RedisGet | Case::RedisSet | Case::RedisEvalshaCas => "redis (raw)",
            Case::GrpcNoop
            | Case::GrpcGet
            | Case::GrpcCas
            | Case::GrpcIncr
            | Case::GrpcHotIncr
            | Case::GrpcHotCas
            | Case::GrpcSpreadSet => "memory gRPC",
            Case::HttpNoop
            | Case::HttpGet
            | Case::HttpGetPaired
            | Case::HttpGetCounted
            | Case::HttpCas
            | Case::HttpIncr
            | Case::HttpTool => "gateway HTTP",
            Case::PublicGrpcGet | Case::PublicGrpcCas => "gateway public gRPC (h2c)",
            Case::McpCall => "gateway MCP",
            Case::IdemFresh | Case::IdemReplay => "gateway HTTP, keys in Redis",
            Case::FindLoad | Case::FindOne => "gateway discovery, 10k tools",
            Case::RouteLoad | Case::RouteOne => "gateway router, 1k sellers",
            Case::PgUpsert => "postgres (raw)",
            Case::PowChallenge | Case::PowTool => "gateway PoW (paid mode)",
            Case::PowToolRedis => "gateway PoW, claims in Redis",
            Case::PowRedeem => "pow in process",
            Case::GrpcDurableSet => "memory gRPC",
            Case::Eip712Recover => "EVM (raw CPU)",
            Case::FacilitatorVerify => "facilitator HTTP",
            Case::PaidCas => "gateway x402 paid",
            Case::PaidSync1s => "x402 sync, 1 s blocks",
            Case::PaidAsyncB1 => "x402 async, 1 s blocks, batch 1",
            Case::PaidAsyncB10 => "x402 async, 1 s blocks, batch 10",
            Case::PaidAsyncB100 => "x402 async, 1 s blocks, batch 100",
            Case::PaidAsyncB100Keys2 => "x402 async, 1 s blocks, batch 100, 2 keys",
        }
    }

    pub fn op(self) -> &'static str {
        match self {
            Case::RedisGet => "GET",
            Case::RedisSet => "SET",
            Case::RedisEvalshaCas => "EVALSHA cas",
            Case::GrpcNoop => "health Check (no-op)",
            Case::GrpcGet => "Get",
            Case::GrpcCas => "CompareAndSwap",
            Case::GrpcIncr => "Increment",
            Case::GrpcHotIncr => "Increment, 1 hot key",
            Case::GrpcHotCas => "CAS lock, 1 hot key",
            Case::HttpNoop => "GET /health (no-op)",
            Case::HttpGet => "GET /api/memory",
            Case::HttpGetPaired => "GET /api/memory, events off, alternating",
            Case::HttpGetCounted => "GET /api/memory, events on, alternating",
            Case::HttpCas => "POST /api/memory/cas",
            Case::HttpIncr => "POST /api/memory/incr",
            Case::HttpTool => "POST /api/sha256, 1 KiB",
            Case::PublicGrpcGet => "Get",
            Case::PublicGrpcCas => "CompareAndSwap",
            Case::McpCall => "tools/call agent.memory.get",
            Case::FindLoad => "GET /api/find?q=<3 words>&k=5",
            Case::FindOne => "GET /api/find, 1 client (latency)",
            Case::RouteLoad => "POST /api/route {query, top: 3}",
            Case::RouteOne => "POST /api/route, 1 client (latency)",
            Case::IdemFresh => "POST /api/sha256, 1 KiB, new Idempotency-Key",
            Case::IdemReplay => "POST /api/sha256, 1 KiB, replayed Idempotency-Key",
            Case::PowChallenge => "GET /api/pow/challenge",
            Case::PowRedeem => "redeem + release (verify, claim, give back)",
            Case::PowTool | Case::PowToolRedis => "POST /api/sha256, 1 KiB, X-Pow-Solution",
            Case::PgUpsert => "upsert 1 row",
            Case::GrpcDurableSet => "Set (durable)",
            Case::GrpcSpreadSet => "Set, 10k keys, new",
            Case::Eip712Recover => "EIP-712 hash + ecrecover",
            Case::FacilitatorVerify => "POST /verify",
            Case::PaidCas
            | Case::PaidSync1s
            | Case::PaidAsyncB1
            | Case::PaidAsyncB10
            | Case::PaidAsyncB100
            | Case::PaidAsyncB100Keys2 => "POST /api/memory/cas",
        }
    }

    /// The cases this one's ratio is taken against, preferred first: the
    /// first that ran is used. A case that lists itself is a baseline.
    pub fn baselines(self) -> &'static [Case] {
        match self {
            Case::RedisGet | Case::GrpcNoop | Case::GrpcGet | Case::HttpNoop | Case::HttpGet => {
                &[Case::RedisGet]
            }
            Case::RedisSet => &[Case::RedisSet],
            Case::RedisEvalshaCas
            | Case::GrpcCas
            | Case::GrpcIncr
            | Case::GrpcHotIncr
            | Case::GrpcHotCas
            | Case::HttpCas
            | Case::HttpIncr => &[Case::RedisEvalshaCas],
            Case::PgUpsert | Case::GrpcDurableSet | Case::GrpcSpreadSet => &[Case::PgUpsert],
            // The same gateway answering a route that calls nothing.
            Case::HttpTool | Case::FindLoad | Case::RouteLoad => &[Case::HttpNoop, Case::RedisGet],
            // The same read with call events off, measured in alternation
            // with it (issue 9: at least 0.95).
            Case::HttpGetCounted => &[Case::HttpGetPaired, Case::HttpGet, Case::RedisGet],
            Case::HttpGetPaired => &[Case::RedisGet],
            // One client: its latency is the point, not a ratio.
            Case::FindOne => &[Case::FindOne],
            Case::RouteOne => &[Case::RouteOne],
            Case::PowChallenge => &[Case::HttpNoop, Case::RedisGet],
            // A claim and a release: a SET NX and a compare-and-delete script.
            Case::PowRedeem => &[Case::RedisEvalshaCas, Case::RedisSet],
            // The same tool call, free (FREE_MODE gateway), without a key.
            Case::PowTool | Case::PowToolRedis | Case::IdemFresh | Case::IdemReplay => {
                &[Case::HttpTool]
            }
            Case::Eip712Recover | Case::FacilitatorVerify => &[Case::Eip712Recover],
            // The same CAS unpaid through the same gateway, else raw Redis.
            // Issue 12 asks async paid ≥ 0.5 of it.
            Case::PaidCas
            | Case::PaidSync1s
            | Case::PaidAsyncB1
            | Case::PaidAsyncB10
            | Case::PaidAsyncB100
            | Case::PaidAsyncB100Keys2 => &[Case::HttpCas, Case::RedisEvalshaCas],
            // The same call on the memory service's own gRPC port.
            Case::PublicGrpcGet => &[Case::GrpcGet, Case::RedisGet],
            Case::PublicGrpcCas => &[Case::GrpcCas, Case::RedisEvalshaCas],
            // The same read as a REST call on the same gateway.
            Case::McpCall => &[Case::HttpGet, Case::RedisGet],
        }
    }

    fn is_http(self) -> bool {
        matches!(
            self,
            Case::HttpNoop
                | Case::HttpGet
                | Case::HttpGetPaired
                | Case::HttpGetCounted
                | Case::HttpCas
                | Case::HttpIncr
                | Case::HttpTool
                | Case::IdemFresh
                | Case::IdemReplay
                | Case::PublicGrpcGet
                | Case::PublicGrpcCas
                | Case::McpCall
        )
    }

    fn is_public(self) -> bool {
        matches!(
            self,
            Case::PublicGrpcGet | Case::PublicGrpcCas | Case::McpCall
        )
    }

    fn is_grpc(self) -> bool {
        matches!(
            self,
            Case::GrpcNoop
                | Case::GrpcGet
                | Case::GrpcCas
                | Case::GrpcIncr
                | Case::GrpcHotIncr
                | Case::GrpcHotCas
                | Case::GrpcDurableSet
                | Case::GrpcSpreadSet
        )
    }

    fn is_pow(self) -> bool {
        matches!(
            self,
            Case::PowChallenge | Case::PowRedeem | Case::PowTool | Case::PowToolRedis
        )
    }

    fn is_discovery(self) -> bool {
        matches!(
            self,
            Case::FindLoad | Case::FindOne | Case::RouteLoad | Case::RouteOne
        )
    }

    /// A paid CAS on its own stack, and how that stack settles.
    fn paid_variant(self) -> Option<paid_cas::Variant> {
        use paid_cas::Variant;
        use tessera_gateway::SettleMode::{Async, Sync};
        match self {
            Case::PaidCas => Some(Variant::SYNC_AUTOMINE),
            Case::PaidSync1s => Some(Variant::on_blocks(Sync, None)),
            Case::PaidAsyncB1 => Some(Variant::on_blocks(Async, Some(1))),
            Case::PaidAsyncB10 => Some(Variant::on_blocks(Async, Some(10))),
            Case::PaidAsyncB100 => Some(Variant::on_blocks(Async, Some(100))),
            Case::PaidAsyncB100Keys2 => Some(Variant::on_blocks(Async, Some(100)).with_keys(2)),
            _ => None,
        }
    }

    fn is_raw_redis(self) -> bool {
        matches!(
            self,
            Case::RedisGet | Case::RedisSet | Case::RedisEvalshaCas
        )
    }
}

/// gRPC clients per channel by default. One channel per 4 clients beat one
/// shared channel (about 22k vs 14k Get/s at 32 clients on 2 cores) while the
/// memory server's sockets lack TCP_NODELAY; with it the two are even.
const DEFAULT_CLIENTS_PER_CHANNEL: usize = 4;

/// The run's settings, from the environment.
pub struct Settings {
    pub concurrency: usize,
    pub seconds: u64,
    /// gRPC clients per channel (HTTP/2 connection); 0 = one shared channel.
    pub grpc_clients_per_channel: usize,
    pub redis_url: String,
    pub database_url: String,
    pub cases: Vec<Case>,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let concurrency: usize = env_or("BENCH_CONCURRENCY", 32)?;
        let seconds: u64 = env_or("BENCH_SECONDS", 5)?;
        if concurrency == 0 || seconds == 0 {
            bail!("BENCH_CONCURRENCY and BENCH_SECONDS must be at least 1");
        }
        Ok(Settings {
            concurrency,
            seconds,
            grpc_clients_per_channel: env_or(
                "BENCH_CLIENTS_PER_CHANNEL",
                DEFAULT_CLIENTS_PER_CHANNEL,
            )?,
            redis_url: tessera_tests::harness::redis_url(),
            database_url: tessera_tests::harness::database_url(),
            cases: selected_cases(&env_string("BENCH_ONLY", ""))?,
        })
    }

    /// How many gRPC clients share each channel.
    pub fn clients_per_channel(&self) -> usize {
        match self.grpc_clients_per_channel {
            0 => self.concurrency,
            n => n.min(self.concurrency),
        }
    }

    fn wants(&self, pick: impl Fn(Case) -> bool) -> bool {
        self.cases.iter().any(|case| pick(*case))
    }
}

/// The cases `BENCH_ONLY` names, in run order; all when it is empty.
fn selected_cases(only: &str) -> anyhow::Result<Vec<Case>> {
    let names: Vec<&str> = only
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(Case::ALL.to_vec());
    }
    for name in &names {
        if !Case::ALL.iter().any(|case| case.name() == *name) {
            let known: Vec<&str> = Case::ALL.iter().map(|case| case.name()).collect();
            bail!(
                "BENCH_ONLY names an unknown case {name:?}; the cases are: {}",
                known.join(", ")
            );
        }
    }
    Ok(Case::ALL
        .into_iter()
        .filter(|case| names.contains(&case.name()))
        .collect())
}

/// Everything the selected cases call, started once.
struct Targets {
    redis: Option<RawRedis>,
    memory: Option<MemoryGrpc>,
    gateway: Option<GatewayHttp>,
    public: Option<public_api::PublicApi>,
    postgres: Option<Postgres>,
    recover: Option<Eip712Recover>,
    verify: Option<FacilitatorVerify>,
    /// What each paid case's settlement check found (each paid case runs
    /// on a stack of its own, started before it and stopped after it, so
    /// no stack's pools or settler run during another case).
    paid_notes: Vec<String>,
    pow: Option<pow::Pow>,
    discovery: Option<discovery::DiscoveryHttp>,
    /// The events-on half of `http-get-off`'s alternating run, for
    /// `http-get-stats`.
    paired_on: Option<driver::Outcome>,
    /// What the alternating run saw of CPU per call.
    paired_note: Option<String>,
}

impl Targets {
    async fn setup(settings: &Settings) -> anyhow::Result<Self> {
        let mut targets = Targets {
            redis: None,
            memory: None,
            gateway: None,
            public: None,
            postgres: None,
            recover: None,
            verify: None,
            paid_notes: Vec::new(),
            pow: None,
            discovery: None,
            paired_on: None,
            paired_note: None,
        };
        if settings.wants(Case::is_raw_redis) {
            let redis = RawRedis::setup(settings).await.context("raw Redis setup")?;
            targets.redis = Some(redis);
        }
        if settings.wants(|case| case.is_grpc() || case.is_http()) {
            let memory = MemoryGrpc::setup(settings)
                .await
                .context("memory server setup")?;
            if settings.wants(Case::is_http) {
                let gateway = GatewayHttp::setup(settings, &memory)
                    .await
                    .context("gateway setup")?;
                if settings.wants(Case::is_public) {
                    let public = public_api::PublicApi::setup(settings, &gateway)
                        .await
                        .context("public gRPC and MCP setup")?;
                    targets.public = Some(public);
                }
                targets.gateway = Some(gateway);
            }
            targets.memory = Some(memory);
        }
        if settings.wants(Case::is_discovery) {
            let discovery = discovery::DiscoveryHttp::setup(settings)
                .await
                .context("discovery setup")?;
            targets.discovery = Some(discovery);
        }
        if settings.wants(|case| case == Case::PgUpsert) {
            let postgres = Postgres::setup(settings)
                .await
                .context("PostgreSQL setup")?;
            targets.postgres = Some(postgres);
        }
        if settings.wants(|case| case == Case::Eip712Recover) {
            targets.recover = Some(Eip712Recover::setup(settings));
        }
        if settings.wants(|case| case == Case::FacilitatorVerify) {
            let verify = FacilitatorVerify::setup(settings)
                .await
                .context("facilitator setup (anvil: make chain-deps)")?;
            targets.verify = Some(verify);
        }
        if settings.wants(Case::is_pow) {
            let pow = pow::Pow::setup(settings)
                .await
                .context("proof-of-work setup (anvil: make chain-deps)")?;
            targets.pow = Some(pow);
        }

        Ok(targets)
    }

    /// Runs `case`; `done` holds the rows of the cases run before it.
    async fn run(&mut self, case: Case, settings: &Settings, done: &[Row]) -> driver::Outcome {
        let name = case.name();
        let (redis, memory, gateway, postgres) = (
            self.redis.as_ref(),
            self.memory.as_ref(),
            self.gateway.as_ref(),
            self.postgres.as_ref(),
        );
        let missing = "set up for every selected case";
        match case {
            Case::RedisGet => redis.expect(missing).get(name, settings).await,
            Case::RedisSet => redis.expect(missing).set(name, settings).await,
            Case::RedisEvalshaCas => redis.expect(missing).evalsha_cas(name, settings).await,
            Case::GrpcNoop => memory.expect(missing).health(name, settings).await,
            Case::GrpcGet => memory.expect(missing).get(name, settings).await,
            Case::GrpcCas => {
                memory
                    .expect(missing)
                    .compare_and_swap(name, settings)
                    .await
            }
            Case::GrpcIncr => memory.expect(missing).increment(name, settings).await,
            Case::GrpcDurableSet => memory.expect(missing).set(name, settings).await,
            Case::GrpcHotIncr => memory.expect(missing).hot_increment(name, settings).await,
            Case::GrpcHotCas => memory.expect(missing).hot_lock(name, settings).await,
            Case::GrpcSpreadSet => memory.expect(missing).spread_set(name, settings).await,
            Case::HttpNoop => gateway.expect(missing).health(name, settings).await,
            Case::HttpGet => gateway.expect(missing).get(name, settings).await,
            Case::HttpGetPaired => {
                let (off, on, note) = gateway.expect(missing).get_paired(name, settings).await;
                self.paired_on = Some(on);
                self.paired_note = note;
                off
            }
            Case::HttpGetCounted => match self.paired_on.take() {
                Some(on) => on,
                None => gateway.expect(missing).get_counted(name, settings).await,
            },
            Case::HttpCas => {
                gateway
                    .expect(missing)
                    .compare_and_swap(name, settings)
                    .await
            }
            Case::HttpIncr => gateway.expect(missing).increment(name, settings).await,
            Case::HttpTool => gateway.expect(missing).tool(name, settings).await,
            Case::PublicGrpcGet => {
                self.public
                    .as_ref()
                    .expect(missing)
                    .get(name, settings)
                    .await
            }
            Case::PublicGrpcCas => {
                let public = self.public.as_ref().expect(missing);
                public.compare_and_swap(name, settings).await
            }
            Case::McpCall => {
                self.public
                    .as_ref()
                    .expect(missing)
                    .mcp_call(name, settings)
                    .await
            }
            Case::FindLoad | Case::FindOne | Case::RouteLoad | Case::RouteOne => {
                let discovery = self.discovery.as_ref().expect(missing);
                let clients = match case {
                    Case::FindOne | Case::RouteOne => 1,
                    _ => settings.concurrency,
                };
                match case {
                    Case::FindLoad | Case::FindOne => discovery.find(name, settings, clients).await,
                    _ => discovery.route(name, settings, clients).await,
                }
            }
            Case::IdemFresh => gateway.expect(missing).tool_fresh_key(name, settings).await,
            Case::IdemReplay => gateway.expect(missing).tool_replayed(name, settings).await,
            Case::PowChallenge => {
                self.pow
                    .as_ref()
                    .expect(missing)
                    .challenge(name, settings)
                    .await
            }
            Case::PowRedeem => {
                self.pow
                    .as_ref()
                    .expect(missing)
                    .redeem(name, settings)
                    .await
            }
            Case::PowTool => {
                let pow = self.pow.as_ref().expect(missing);
                pow.tool(name, settings, false).await
            }
            Case::PowToolRedis => {
                let pow = self.pow.as_ref().expect(missing);
                pow.tool(name, settings, true).await
            }
            Case::PgUpsert => postgres.expect(missing).upsert(name, settings).await,
            Case::Eip712Recover => {
                let recover = self.recover.as_ref().expect(missing);
                recover.recover(name, settings).await
            }
            Case::FacilitatorVerify => {
                let verify = self.verify.as_ref().expect(missing);
                let limit = done
                    .iter()
                    .find(|row| row.case == Case::Eip712Recover && row.outcome.ops() > 0)
                    .map(|row| row.outcome.ops_per_sec());
                verify.verify(name, settings, limit).await
            }
            Case::PaidCas
            | Case::PaidSync1s
            | Case::PaidAsyncB1
            | Case::PaidAsyncB10
            | Case::PaidAsyncB100
            | Case::PaidAsyncB100Keys2 => {
                let variant = case.paid_variant().expect("a paid case");
                let mut paid = match PaidCas::setup(settings, variant).await {
                    Ok(paid) => paid,
                    Err(error) => {
                        let mut outcome = driver::Outcome::empty(std::time::Duration::ZERO);
                        outcome.error(1, || {
                            format!("{name} stack setup (anvil: make chain-deps): {error:#}")
                        });
                        return outcome;
                    }
                };
                eprintln!(
                    "  {name}: {} buyer wallets minted, CAS price {} units",
                    settings.concurrency,
                    paid.price()
                );
                let outcome = paid.compare_and_swap(name, settings).await;
                self.paid_notes.extend(paid.note.take());
                drop(paid);
                // Its pools close and its settler stops before the next case.
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                outcome
            }
        }
    }

    /// Lines to print after the table.
    fn notes(&self) -> Vec<String> {
        self.paired_note
            .iter()
            .cloned()
            .chain(self.paid_notes.iter().cloned())
            .collect()
    }

    async fn stop(self) -> anyhow::Result<()> {
        if let Some(redis) = self.redis {
            redis.cleanup().await?;
        }
        if let Some(gateway) = self.gateway {
            gateway.stop().await?;
        }
        if let Some(memory) = self.memory {
            memory.stop().await;
        }
        if let Some(verify) = self.verify {
            verify.stop().await;
        }
        drop(self.pow);
        if let Some(discovery) = self.discovery {
            discovery.stop();
        }
        Ok(())
    }
}

async fn print_facts(settings: &Settings) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let per_channel = settings.clients_per_channel();
    let channels = settings.concurrency.div_ceil(per_channel);
    let names: Vec<&str> = settings.cases.iter().map(|case| case.name()).collect();
    println!("tessera-bench");
    println!(
        "  nproc        {cpus} ({model}); Redis, PostgreSQL, servers and clients all share them"
    );
    println!(
        "  concurrency  {} clients per case, closed loop",
        settings.concurrency
    );
    println!(
        "  seconds      {} measured per case, after {:?} warm-up not counted",
        settings.seconds,
        driver::WARMUP
    );
    println!(
        "  redis        {} ({})",
        redact_url(&settings.redis_url),
        redis_version(settings).await?
    );
    println!(
        "  postgres     {} (PostgreSQL {})",
        redact_url(&settings.database_url),
        postgres_version(settings).await?
    );
    println!("  raw redis    one multiplexed connection per client");
    println!(
        "  gRPC         {channels} channel(s), {per_channel} clients each (HTTP/2 multiplexed)"
    );
    println!(
        "  gateway      one pooled keep-alive HTTP/1.1 client; memory and tools services in process (as the all-in-one)"
    );
    println!("  memory       durable backend (harness): 1 Redis connection, PostgreSQL pool of 8");
    println!(
        "  pg upsert    pool of {} connections, one row per client",
        settings.concurrency
    );
    if settings.wants(|case| case == Case::Eip712Recover) {
        println!(
            "  eip712       {} OS threads in a tight loop: domain + signing hash of an EIP-3009 \
             TransferWithAuthorization, ecrecover of pre-signed signatures (more threads than \
             cores: p99 is OS time slicing)",
            settings.concurrency
        );
    }
    if settings.wants(|case| case == Case::FacilitatorVerify || case.paid_variant().is_some()) {
        println!(
            "  chain        anvil {} (automine: a block per settlement; the 1 s cases: a block \
             a second), our EIP-3009 token",
            anvil_version().await
        );
    }
    if settings.wants(|case| case == Case::FacilitatorVerify) {
        println!(
            "  verify       in-process facilitator, one pooled HTTP/1.1 client, distinct \
             pre-signed payments (signature, nonce, balance, simulated transfer on anvil)"
        );
    }
    if settings.wants(Case::is_discovery) {
        println!(
            "  discovery    free-mode gateways, discovery in process: find over {} synthetic \
             tools; route over our catalog and {} synthetic sellers (healthy, priced); a new \
             3-word query each call",
            discovery::CATALOG_TOOLS,
            discovery::SELLERS
        );
    }
    if settings.wants(Case::is_pow) {
        println!(
            "  pow          a gateway with payments on (anvil, payment service), tools and pow in \
             process, claims in Redis; redeem: the pow service in process; solutions \
             pre-solved at difficulty 1, one per call"
        );
    }
    if settings.wants(|case| case.paid_variant().is_some()) {
        println!(
            "  paid cas     each case its own anvil and stack: gateway + payment service (ledger in PostgreSQL) + facilitator + \
             durable memory in-process; each client signs every call from its own wallet"
        );
    }
    println!("  cases        {}", names.join(", "));
    println!();
    Ok(())
}

/// `anvil --version`'s first line, or why it is unknown.
async fn anvil_version() -> String {
    let bin = tessera_tests::chain::anvil_bin();
    match tokio::process::Command::new(&bin)
        .arg("--version")
        .output()
        .await
    {
        Ok(output) => String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("anvil Version: ")
            .trim()
            .to_string(),
        Err(error) => format!("({}: {error})", bin.display()),
    }
}

async fn redis_version(settings: &Settings) -> anyhow::Result<String> {
    let client = redis::Client::open(settings.redis_url.as_str())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut connection)
        .await?;
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .unwrap_or("unknown version");
    Ok(format!("Redis {}", version.trim()))
}

async fn postgres_version(settings: &Settings) -> anyhow::Result<String> {
    let mut connection = sqlx::PgConnection::connect(&settings.database_url).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut connection)
        .await?;
    connection.close().await?;
    Ok(version)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    print_facts(&settings).await?;

    eprintln!("setting up");
    let mut targets = Targets::setup(&settings).await?;
    eprintln!("running {} cases", settings.cases.len());
    let mut rows = Vec::with_capacity(settings.cases.len());
    for &case in &settings.cases {
        let outcome = targets.run(case, &settings, &rows).await;
        rows.push(Row { case, outcome });
    }

    println!();
    let errors = report::print(&rows, &targets.notes());
    targets.stop().await?;
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
