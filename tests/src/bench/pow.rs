//! The proof-of-work tier: challenge issuance and a tool call paid with a
//! solution, both through a gateway with payments on (PoW applies only
//! there: the payment service of a [`PaidStack`]) calling its tools and pow
//! services in process as the all-in-one does, and solution redemption in
//! process (token check, work check, the single-use claim in Redis, as
//! replicas keep it; the gateway's pow uses the same).
//!
//! The tool call is measured on the embedded claim store (the all-in-one's
//! default, as the free call it is compared with) and on Redis (replicas).
//!
//! Solutions are minted and solved before the cases (at difficulty 1: the
//! server's check costs one SHA-256 whatever the difficulty, and the
//! client's solving is not what is measured): one per tool call; the
//! redeem case claims and releases one per client.

use super::driver::{run_shared, Outcome};
use super::Settings;
use anyhow::{ensure, Context};
use reqwest::header::CONTENT_TYPE;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tessera_pow::token::{solve, Signer};
use tessera_tests::harness::{redis_url, POW_SECRET};
use tessera_tests::paid::{Options, PaidStack};

const BITS: u32 = 1;
/// Solutions made per measured second (and for the warm-up) of the tool
/// case: more than it spends on this machine.
const SOLUTIONS_PER_SECOND: usize = 40_000;

/// Single-use solutions, handed out once each.
struct Solutions {
    all: Vec<String>,
    next: AtomicUsize,
}

impl Solutions {
    fn mint(slug: &str, count: usize) -> Self {
        let signer = Signer::new(POW_SECRET.as_bytes());
        let expires_at = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            // Long enough for the run; their claims leave Redis soon after.
            + 600) as i64;
        let all = (0..count)
            .map(|_| {
                let (claims, token) = signer.mint(slug, BITS, expires_at);
                format!("{token}:{}", solve(&claims.challenge, BITS))
            })
            .collect();
        Solutions {
            all,
            next: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> anyhow::Result<&str> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        self.all
            .get(index)
            .map(String::as_str)
            .context("the bench ran out of pre-solved solutions")
    }
}

/// A gateway charging through `stack`'s payment service, with memory, tools
/// and `pow` in process as the all-in-one has them (and as the free call's
/// gateway has them); its base URL. It serves until the process ends.
async fn paid_gateway(stack: &PaidStack, pow: tessera_pow::Pow) -> anyhow::Result<String> {
    let config = tessera_gateway::GatewayConfig {
        payment_url: Some(stack.payment_url.clone()),
        // Issuance's and redemption's own costs are measured, not the
        // per-IP limits (every bench client is 127.0.0.1).
        pow_challenges_per_minute: 0,
        pow_calls_per_minute: 0,
        ..Default::default()
    };
    let backends = tessera_gateway::Backends {
        memory: tessera_gateway::MemoryClient::in_process(
            tessera_memory::grpc::server(
                tessera_tests::harness::embedded_memory(Default::default()).await,
            ),
            Default::default(),
        ),
        tools: tessera_tests::harness::tools_in_process(),
        pow: tessera_tests::harness::pow_client(pow),
        discovery: tessera_tests::harness::discovery_in_process(),
        stats: tessera_tests::harness::stats_in_process().await,
    };
    tessera_tests::harness::spawn_gateway(config, backends).await
}

struct Shared {
    http: reqwest::Client,
    challenge_url: String,
    /// On the embedded claim store, as `make run`.
    tool_url: String,
    /// On the Redis claim store, as replicas.
    replicated_tool_url: String,
    tool_body: Vec<u8>,
    tool_solutions: Solutions,
    /// One per client, claimed and released over and over.
    client_solutions: Solutions,
    pow: tessera_pow::Pow,
    _stack: PaidStack,
}

pub struct Pow {
    shared: Arc<Shared>,
}

impl Pow {
    pub async fn setup(settings: &Settings) -> anyhow::Result<Self> {
        let stack = PaidStack::start_with(Options {
            pow_difficulty: BITS,
            ..Default::default()
        })
        .await;
        // Two tool cases (embedded and Redis claims) draw from them.
        let count = 2 * SOLUTIONS_PER_SECOND * (settings.seconds as usize + 1);
        let open = |store| async move {
            let config = tessera_pow::PowConfig::for_tests(POW_SECRET, BITS, store);
            tessera_pow::Pow::open(&config).await
        };
        let pow = open(tessera_pow::Store::Redis { url: redis_url() }).await?;
        let embedded_path = std::env::temp_dir().join(format!(
            "{}.db",
            tessera_tests::harness::unique_namespace("bench-pow")
        ));
        let embedded = open(tessera_pow::Store::Embedded {
            path: embedded_path,
        })
        .await?;
        let gateway = paid_gateway(&stack, embedded).await?;
        let replicated_gateway = paid_gateway(&stack, pow.clone()).await?;
        let body = serde_json::to_vec(&serde_json::json!({ "text": "x".repeat(1024) }))?;
        Ok(Pow {
            shared: Arc::new(Shared {
                http: reqwest::Client::builder()
                    .pool_max_idle_per_host(settings.concurrency)
                    .build()?,
                challenge_url: format!("{gateway}/api/pow/challenge?slug=sha256"),
                tool_url: format!("{gateway}/api/sha256"),
                replicated_tool_url: format!("{replicated_gateway}/api/sha256"),
                tool_body: body,
                tool_solutions: Solutions::mint("sha256", count),
                client_solutions: Solutions::mint("sha256", settings.concurrency),
                pow,
                _stack: stack,
            }),
        })
    }

    /// `GET /api/pow/challenge?slug=sha256`.
    pub async fn challenge(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(name, settings, &self.shared, |shared, _, _| async move {
            let response = shared.http.get(&shared.challenge_url).send().await?;
            ensure!(response.status().is_success(), "HTTP {}", response.status());
            response.bytes().await?;
            Ok(())
        })
        .await
    }

    /// `Pow::redeem` then `Pow::release` in process, each client on its
    /// own solution: check the token and the work, claim it in Redis, give
    /// it back (one op = both).
    pub async fn redeem(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, _| async move {
                let solution = &shared.client_solutions.all[client];
                let claim = shared.pow.redeem("sha256", solution).await?;
                ensure!(shared.pow.release(&claim).await?, "the claim was not held");
                Ok(())
            },
        )
        .await
    }

    /// `POST /api/sha256` (1 KiB) with `X-Pow-Solution`, payments on;
    /// claims in the embedded store (`replicated`: in Redis).
    pub async fn tool(&self, name: &str, settings: &Settings, replicated: bool) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            move |shared, _, _| async move {
                let solution = shared.tool_solutions.take()?;
                let url = if replicated {
                    &shared.replicated_tool_url
                } else {
                    &shared.tool_url
                };
                let response = shared
                    .http
                    .post(url)
                    .header(CONTENT_TYPE, "application/json")
                    .header("x-pow-solution", solution)
                    .body(shared.tool_body.clone())
                    .send()
                    .await?;
                let status = response.status();
                let body = response.bytes().await?;
                ensure!(
                    status.is_success(),
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                Ok(())
            },
        )
        .await
    }
}
