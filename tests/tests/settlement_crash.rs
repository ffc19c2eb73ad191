//! Nothing is lost between serving a paid call and settling it (issue #12):
//! the split binaries (gateway, memory, payment, facilitator) on anvil with
//! our `BatchCall` at Multicall3's address, the gateway in its default
//! settle mode (async: answered at once, settled in the background). The
//! payment service and the facilitator are killed with SIGKILL at a chosen
//! point and started again with the same environment; every served payment
//! must then end settled exactly once (its own transfer on chain, no second
//! transaction for it) or, when its payer emptied the wallet meanwhile,
//! failed and recorded as that payer's debt. Balances, the ledger's
//! accounts and the chain's logs must agree to the unit.
//!
//! The crash points: with the settlement batch in the pool (mined while
//! both are down, or after they are back); with payments claimed
//! (`settling`, their settle hanging) and queued, nothing sent; and between
//! serving a call and queueing its settlement (the payment stays
//! `verified`: an orphan).
//!
//! Each test has the payments ledger to itself: a fresh PostgreSQL schema
//! (`search_path` in `DATABASE_URL`), so the restarted payment service's
//! background pass sees only this test's rows.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider as _;
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tessera_evm::token::{authorization_paid, IEip3009Token};
use tessera_tests::binaries::{facilitator_vars, free_port, payment_vars, Process};
use tessera_tests::chain::{payload_v2, Chain};
use tessera_tests::harness::database_url;
use tessera_tests::paid::{decode, quoted_terms, send, Reply};
use tessera_tests::proxy::PausableProxy;
use tessera_x402::eip3009::TransferWithAuthorization;
use tessera_x402::{encode_header, Requirements};

/// `PAYMENT_SETTLE_TIMEOUT_SECONDS`: above the facilitator's receipt
/// timeout, as the payment service's configuration asks.
const SETTLE_TIMEOUT_SECS: u64 = 10;
/// `PAYMENT_MAX_TIMEOUT_SECONDS`: how long the calls' authorizations are
/// valid.
const AUTHORIZATION_SECONDS: u64 = 120;
/// `FACILITATOR_RECEIPT_TIMEOUT_SECS`.
const RECEIPT_TIMEOUT_SECS: u64 = 8;
/// How long the restarted services may take to finish every payment.
const RECOVERY: Duration = Duration::from_secs(90);
/// The paid route every call makes.
const ROUTE: &str = "/api/memory/incr";

fn env(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    env.insert("RUST_LOG".into(), "info".into());
    env.insert("NO_COLOR".into(), "1".into());
    env
}

fn lower(address: Address) -> String {
    format!("{address:#x}")
}

/// Where the facilitator is at the start.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FacilitatorAtStart {
    Running,
    /// Its port accepts connections and never answers: every settle the
    /// payment service sends hangs until its settle timeout.
    BlackHole,
}

struct Settings {
    buyers: usize,
    /// `PAYMENT_SETTLE_CONCURRENCY`.
    settle_concurrency: usize,
    /// `FACILITATOR_BATCH_WINDOW_MS`.
    batch_window_ms: u64,
    facilitator: FacilitatorAtStart,
}

/// A listener that accepts and holds every connection, answering nothing.
struct BlackHole {
    task: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    async fn start(port: u16) -> BlackHole {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        BlackHole { task }
    }

    /// Closes the listener and every connection, freeing the port.
    async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// One paid call: its payer (an index into the chain's buyers), the
/// authorization it paid with, and the payment id its answer named.
struct Call {
    payer: usize,
    authorization: TransferWithAuthorization,
    id: String,
}

/// The split services on real parts, each binary in its own process.
struct Stack {
    chain: Chain,
    schema: String,
    /// This test's own connection to the ledger's schema.
    ledger: sqlx::PgPool,
    facilitator_port: u16,
    facilitator_env: BTreeMap<String, String>,
    facilitator: Option<Process>,
    black_hole: Option<BlackHole>,
    payment_port: u16,
    payment_env: BTreeMap<String, String>,
    payment: Option<Process>,
    memory: Process,
    /// Between the gateway and memory, to hold a served call mid-way.
    memory_proxy: PausableProxy,
    gateway: Process,
    gateway_url: String,
    /// Processes killed so far (their output, for a failure message).
    dead: Vec<Process>,
    /// The route's terms, from its 402 quote.
    requirements: Requirements,
    price: U256,
    /// The block before the first paid call.
    start_block: u64,
    /// Each buyer's balance (by its index into the chain's buyers) before
    /// the first paid call.
    balances_before: HashMap<usize, U256>,
    /// payTo's balance before the first paid call.
    pay_to_before: U256,
}

impl Stack {
    async fn start(settings: Settings) -> Stack {
        let chain = Chain::start_with_buyers(settings.buyers).await;
        chain.install_batch_call().await;

        let schema = format!("settlement_crash_{:016x}", rand::random::<u64>());
        let base = database_url();
        let admin = sqlx::PgPool::connect(&base)
            .await
            .expect("PostgreSQL at DATABASE_URL");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let ledger_url = format!("{base}{separator}options=-c%20search_path%3D{schema}");

        let facilitator_port = free_port();
        let mut facilitator_env = facilitator_vars(&chain, facilitator_port);
        facilitator_env.extend([
            (
                "FACILITATOR_BATCH_WINDOW_MS",
                settings.batch_window_ms.to_string(),
            ),
            (
                "FACILITATOR_RECEIPT_TIMEOUT_SECS",
                RECEIPT_TIMEOUT_SECS.to_string(),
            ),
        ]);
        let facilitator_env = env(&facilitator_env);
        let payment_port = free_port();
        let mut payment_env = payment_vars(
            &chain,
            payment_port,
            ledger_url.clone(),
            format!("http://127.0.0.1:{facilitator_port}"),
        );
        payment_env.extend([
            (
                "PAYMENT_SETTLE_TIMEOUT_SECONDS",
                SETTLE_TIMEOUT_SECS.to_string(),
            ),
            ("PAYMENT_RETRY_SECONDS", "1".into()),
            // Long enough that the calls queued behind a facilitator that
            // answers nothing are admitted (see the payment service's
            // backlog): these tests are about what a crash leaves queued.
            (
                "PAYMENT_MAX_TIMEOUT_SECONDS",
                AUTHORIZATION_SECONDS.to_string(),
            ),
            (
                "PAYMENT_SETTLE_CONCURRENCY",
                settings.settle_concurrency.to_string(),
            ),
        ]);
        let payment_env = env(&payment_env);

        let memory_port = free_port();
        let memory_file = std::env::temp_dir()
            .join(format!("tessera-crash-{:016x}", rand::random::<u64>()))
            .join("memory.db");
        let mut memory = Process::start(
            "tessera-memory",
            &env(&[
                ("MEMORY_BACKEND", "embedded".into()),
                (
                    "MEMORY_EMBEDDED_PATH",
                    memory_file.to_string_lossy().into_owned(),
                ),
                ("MEMORY_GRPC_ADDR", format!("127.0.0.1:{memory_port}")),
            ]),
        );
        memory.wait_port(memory_port, Duration::from_secs(30)).await;
        let memory_proxy = PausableProxy::start(([127, 0, 0, 1], memory_port).into()).await;

        let mut facilitator = None;
        let mut black_hole = None;
        match settings.facilitator {
            FacilitatorAtStart::Running => {
                facilitator = Some(start_facilitator(&facilitator_env, facilitator_port).await)
            }
            FacilitatorAtStart::BlackHole => {
                black_hole = Some(BlackHole::start(facilitator_port).await)
            }
        }
        let payment = start_payment(&payment_env, payment_port).await;

        let gateway_port = free_port();
        // PAYMENT_SETTLE_MODE unset: the default, async.
        let gateway = Process::start(
            "tessera-gateway",
            &env(&[
                ("GATEWAY_ADDR", format!("127.0.0.1:{gateway_port}")),
                ("FREE_MODE", "false".into()),
                ("MEMORY_URL", format!("http://{}", memory_proxy.addr)),
                ("PAYMENT_URL", format!("http://127.0.0.1:{payment_port}")),
                ("STATS_EVENTS", "false".into()),
                ("IDEMPOTENCY_STORE", "memory".into()),
            ]),
        );
        let gateway_url = format!("http://127.0.0.1:{gateway_port}");
        let ledger = sqlx::PgPool::connect(&ledger_url)
            .await
            .expect("the ledger's schema");

        let mut stack = Stack {
            chain,
            schema,
            ledger,
            facilitator_port,
            facilitator_env,
            facilitator,
            black_hole,
            payment_port,
            payment_env,
            payment: Some(payment),
            memory,
            memory_proxy,
            gateway,
            gateway_url,
            dead: Vec::new(),
            requirements: Requirements {
                scheme: String::new(),
                network: String::new(),
                amount: String::new(),
                asset: String::new(),
                pay_to: String::new(),
                max_timeout_seconds: 0,
                extra: None,
            },
            price: U256::ZERO,
            start_block: 0,
            balances_before: HashMap::new(),
            pay_to_before: U256::ZERO,
        };
        let health = format!("{}/health", stack.gateway_url);
        stack
            .gateway
            .wait_http(&health, Duration::from_secs(60))
            .await;

        // The route's terms, as a client learns them: from the 402.
        stack.requirements = quoted_terms(Method::POST, &stack.url(ROUTE), Some(body())).await;
        stack.price = stack.requirements.amount.parse().unwrap();
        stack.start_block = stack.chain.provider().get_block_number().await.unwrap();
        stack.balances_before = stack.buyer_balances().await;
        stack.pay_to_before = stack.chain.balance_of(stack.chain.pay_to).await;
        stack
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway_url)
    }

    async fn start_facilitator(&mut self) {
        self.facilitator =
            Some(start_facilitator(&self.facilitator_env, self.facilitator_port).await);
    }

    async fn start_payment(&mut self) {
        self.payment = Some(start_payment(&self.payment_env, self.payment_port).await);
    }

    /// Starts the facilitator and the payment service again; the moment
    /// they were started.
    async fn restart(&mut self) -> Instant {
        let restarted = Instant::now();
        self.start_facilitator().await;
        self.start_payment().await;
        restarted
    }

    async fn kill_payment(&mut self) {
        let mut payment = self.payment.take().expect("the payment service runs");
        payment.kill().await;
        self.dead.push(payment);
    }

    async fn kill_facilitator(&mut self) {
        let mut facilitator = self.facilitator.take().expect("the facilitator runs");
        facilitator.kill().await;
        self.dead.push(facilitator);
    }

    /// Every process's output, for a failure message.
    fn outputs(&self) -> String {
        let running = [
            Some(&self.gateway),
            Some(&self.memory),
            self.payment.as_ref(),
            self.facilitator.as_ref(),
        ];
        let mut text = String::new();
        for process in running.into_iter().flatten() {
            text += &format!("--- {} ---\n{}\n", process.name, tail(&process.output()));
        }
        for process in &self.dead {
            text += &format!(
                "--- {} (killed) ---\n{}\n",
                process.name,
                tail(&process.output())
            );
        }
        text
    }

    /// Starts `count` paid calls for each `(payer, count)` of `plan` (payer:
    /// an index into the chain's buyers), all at once, each with a payment
    /// signed for the route's terms; answers each call's payer,
    /// authorization and task.
    fn spawn_calls(
        &self,
        plan: &[(usize, usize)],
    ) -> Vec<(
        usize,
        TransferWithAuthorization,
        tokio::task::JoinHandle<Reply>,
    )> {
        let mut calls = Vec::new();
        let rounds = plan.iter().map(|(_, count)| *count).max().unwrap_or(0);
        for round in 0..rounds {
            for &(payer, count) in plan {
                if round >= count {
                    continue;
                }
                let buyer = &self.chain.buyers[payer];
                let authorization = self
                    .chain
                    .authorization(buyer.address(), &self.requirements);
                let signature = self.chain.sign(buyer, &authorization);
                let header =
                    encode_header(&payload_v2(&self.requirements, &authorization, &signature));
                let url = self.url(ROUTE);
                let task = tokio::spawn(async move {
                    send(
                        Method::POST,
                        &url,
                        Some(body()),
                        &[("PAYMENT-SIGNATURE", header)],
                    )
                    .await
                });
                calls.push((payer, authorization, task));
            }
        }
        calls
    }

    /// Makes the calls of [`Stack::spawn_calls`] and checks each is served
    /// and answered with a pending settlement naming its payment.
    async fn pay_all(&self, plan: &[(usize, usize)]) -> Vec<Call> {
        let mut calls = Vec::new();
        for (payer, authorization, task) in self.spawn_calls(plan) {
            let reply = task.await.unwrap();
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{}\n{}",
                reply.body,
                self.outputs()
            );
            let settlement = decode(
                reply
                    .headers
                    .get("payment-response")
                    .expect("a PAYMENT-RESPONSE"),
            );
            assert_eq!(
                settlement["errorReason"], "settlement_pending",
                "answered before the chain: {settlement}"
            );
            let id = settlement["extensions"]["settlement"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a payment id in {settlement}"))
                .to_string();
            calls.push(Call {
                payer,
                authorization,
                id,
            });
        }
        calls
    }

    /// How many of the ledger's payments are in `status`.
    async fn count(&self, status: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM payments WHERE status = $1")
            .bind(status)
            .fetch_one(&self.ledger)
            .await
            .unwrap()
    }

    /// Waits (up to [`RECOVERY`]) until the payment of every call of
    /// `calls` is final, as the gateway's lookup shows it; answers each
    /// one's lookup by payment id.
    async fn until_final(&self, calls: &[Call]) -> HashMap<String, Value> {
        let ids: Vec<String> = calls.iter().map(|call| call.id.clone()).collect();
        let within = RECOVERY;
        let started = Instant::now();
        let mut done = HashMap::new();
        let mut last = HashMap::new();
        loop {
            for id in &ids {
                if done.contains_key(id) {
                    continue;
                }
                let found = send(
                    Method::GET,
                    &self.url(&format!("/api/payments/{id}")),
                    None,
                    &[],
                )
                .await;
                if found.status == StatusCode::OK && found.body["final"] == true {
                    done.insert(id.clone(), found.body);
                } else {
                    last.insert(id.clone(), found.body);
                }
            }
            if done.len() == ids.len() {
                println!(
                    "every payment final {:.1} s after the restart",
                    started.elapsed().as_secs_f64()
                );
                return done;
            }
            if started.elapsed() > within {
                let open: Vec<_> = ids
                    .iter()
                    .filter(|id| !done.contains_key(*id))
                    .map(|id| last[id].clone())
                    .collect();
                panic!(
                    "{} of {} payments not final {within:?} after the restart: {open:#?}\n{}",
                    open.len(),
                    ids.len(),
                    self.outputs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The token's `Transfer`s to payTo since the stack started.
    async fn transfers_to_pay_to(&self) -> Vec<U256> {
        let filter = Filter::new()
            .address(self.chain.token)
            .event_signature(IEip3009Token::Transfer::SIGNATURE_HASH)
            .topic2(self.chain.pay_to.into_word())
            .from_block(self.start_block + 1);
        self.chain
            .provider()
            .get_logs(&filter)
            .await
            .unwrap()
            .iter()
            .map(|log| {
                IEip3009Token::Transfer::decode_log(&log.inner)
                    .unwrap()
                    .data
                    .value
            })
            .collect()
    }

    /// `payer_accounts` of `payer`: (outstanding, settled_total, debt).
    async fn account(&self, payer: Address) -> (U256, U256, U256) {
        let row: (String, String, String) = sqlx::query_as(
            "SELECT outstanding::text, settled_total::text, debt::text FROM payer_accounts
              WHERE payer = $1",
        )
        .bind(lower(payer))
        .fetch_one(&self.ledger)
        .await
        .unwrap_or_else(|e| panic!("no account of {payer}: {e}"));
        let number = |text: &str| U256::from_str_radix(text, 10).unwrap();
        (number(&row.0), number(&row.1), number(&row.2))
    }

    /// The end state, exactly: every call of `calls` final; each of a
    /// payer in `debtors` failed, nothing paid, its account in debt for it;
    /// every other settled by a mined transaction holding its own
    /// `AuthorizationUsed` and `Transfer`; balances and accounts moved by
    /// exactly the prices; payTo received exactly one transfer per settled
    /// call and nothing else; the ledger holds no other payment.
    async fn assert_end_state(
        &self,
        calls: &[Call],
        finals: &HashMap<String, Value>,
        debtors: &[usize],
    ) {
        let chain = &self.chain;
        let mut settled_of: BTreeMap<usize, u64> = BTreeMap::new();
        let mut failed_of: BTreeMap<usize, u64> = BTreeMap::new();
        for call in calls {
            let found = &finals[&call.id];
            let from = call.authorization.from;
            assert_eq!(found["served"], true, "{found}");
            assert_eq!(found["payer"], lower(from), "{found}");
            let used = chain
                .authorization_used(from, call.authorization.nonce)
                .await;
            if debtors.contains(&call.payer) {
                assert_eq!(
                    found["status"], "failed",
                    "the emptied wallet's payment is a debt: {found}"
                );
                assert!(!used, "nothing was paid for {found}");
                *failed_of.entry(call.payer).or_default() += 1;
                continue;
            }
            assert_eq!(
                found["status"],
                "settled",
                "every served payment settles: {found}\n{}",
                self.outputs()
            );
            let hash: B256 = found["transaction"]
                .as_str()
                .unwrap_or_else(|| panic!("a transaction in {found}"))
                .parse()
                .unwrap();
            let receipt = chain
                .receipt(hash)
                .await
                .unwrap_or_else(|| panic!("{hash} is mined"));
            assert!(receipt.status(), "{hash} succeeded");
            assert!(
                authorization_paid(receipt.logs(), chain.token, &call.authorization),
                "{hash} holds this payment's AuthorizationUsed and Transfer: {found}"
            );
            assert!(used, "the authorization is spent on chain: {found}");
            *settled_of.entry(call.payer).or_default() += 1;
        }
        let settled: u64 = settled_of.values().sum();

        // Balances and accounts, to the unit.
        for (&payer, &balance_before) in &self.balances_before {
            let address = chain.buyers[payer].address();
            let settled = *settled_of.get(&payer).unwrap_or(&0);
            let failed = *failed_of.get(&payer).unwrap_or(&0);
            let (outstanding, settled_total, debt) = self.account(address).await;
            assert_eq!(outstanding, U256::ZERO, "{address}: nothing outstanding");
            assert_eq!(
                settled_total,
                self.price * U256::from(settled),
                "{address}: settled_total"
            );
            assert_eq!(
                debt,
                self.price * U256::from(failed),
                "{address}: debt is exactly its failed payments"
            );
            if !debtors.contains(&payer) {
                assert_eq!(
                    chain.balance_of(address).await,
                    balance_before - self.price * U256::from(settled),
                    "{address} paid exactly its calls, once each"
                );
            }
        }
        assert_eq!(
            chain.balance_of(chain.pay_to).await,
            self.pay_to_before + self.price * U256::from(settled),
            "payTo received exactly each settled price once"
        );
        let transfers = self.transfers_to_pay_to().await;
        assert_eq!(
            transfers.len() as u64,
            settled,
            "one transfer to payTo per settled payment, no second one"
        );
        assert!(transfers.iter().all(|value| *value == self.price));

        // The ledger holds these payments and no other, all final.
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM payments")
            .fetch_all(&self.ledger)
            .await
            .unwrap();
        assert_eq!(rows.len(), calls.len(), "{rows:?}");
        for (id, status) in rows {
            assert_eq!(
                finals
                    .get(&id)
                    .unwrap_or_else(|| panic!("{id} is no call's"))["status"],
                status.as_str()
            );
        }
    }

    /// The transactions waiting in anvil's pool.
    async fn pooled(&self) -> Vec<B256> {
        let content: Value = self
            .chain
            .provider()
            .raw_request("txpool_content".into(), ())
            .await
            .unwrap();
        let mut hashes = Vec::new();
        for by_nonce in content["pending"]
            .as_object()
            .into_iter()
            .flat_map(|o| o.values())
        {
            for transaction in by_nonce.as_object().into_iter().flat_map(|o| o.values()) {
                hashes.push(transaction["hash"].as_str().unwrap().parse().unwrap());
            }
        }
        hashes
    }

    /// The facilitator's `tessera_facilitator_batch_waiting`: settles handed
    /// to its batcher and not yet in a sent transaction.
    async fn batch_waiting(&self) -> Option<i64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.facilitator_port);
        let text = reqwest::get(url).await.ok()?.text().await.ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix("tessera_facilitator_batch_waiting "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map(|value| value as i64)
    }

    /// Drops this test's schema (on success only: a failure keeps it to look
    /// at).
    async fn remove_schema(&self) {
        let admin = sqlx::PgPool::connect(&database_url()).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    }

    /// Each buyer's balance now, by its index into the chain's buyers.
    async fn buyer_balances(&self) -> HashMap<usize, U256> {
        let mut balances = HashMap::new();
        for (payer, buyer) in self.chain.buyers.iter().enumerate() {
            balances.insert(payer, self.chain.balance_of(buyer.address()).await);
        }
        balances
    }

    /// Polls `check` every `every` until it answers `Ok`, and answers that;
    /// once `deadline` has passed, fails with the state `check` last
    /// reported and every process's output.
    async fn until<T>(
        &self,
        deadline: Instant,
        every: Duration,
        mut check: impl AsyncFnMut() -> Result<T, String>,
    ) -> T {
        loop {
            match check().await {
                Ok(done) => return done,
                Err(state) => assert!(Instant::now() < deadline, "{state}\n{}", self.outputs()),
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Prints how long the recovery took and drops this test's schema (the
    /// end of a test that passed).
    async fn finish(&self, recovery: Duration) {
        println!("recovered in {:.1} s", recovery.as_secs_f64());
        self.remove_schema().await;
    }
}

async fn start_facilitator(env: &BTreeMap<String, String>, port: u16) -> Process {
    let mut facilitator = Process::start("tessera-facilitator", env);
    facilitator
        .wait_http(
            &format!("http://127.0.0.1:{port}/supported"),
            Duration::from_secs(30),
        )
        .await;
    facilitator
}

async fn start_payment(env: &BTreeMap<String, String>, port: u16) -> Process {
    let mut payment = Process::start("tessera-payment", env);
    payment.wait_port(port, Duration::from_secs(30)).await;
    payment
}

/// A plan of calls (see [`Stack::spawn_calls`]): each of `payers` making
/// `calls_each` calls.
fn each_calling(payers: std::ops::Range<usize>, calls_each: usize) -> Vec<(usize, usize)> {
    payers.map(|payer| (payer, calls_each)).collect()
}

fn body() -> Value {
    json!({"key": "crash-counter"})
}

/// The last lines of a process's output.
fn tail(output: &str) -> String {
    let lines: Vec<_> = output.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Where a batch-in-the-pool test starts from: its stack, the payment
/// service and the facilitator killed; the calls, answered pending; and the
/// one batch paying them all, waiting in the pool.
struct BatchInThePool {
    stack: Stack,
    calls: Vec<Call>,
    batch: B256,
}

/// The start of the batch-in-the-pool tests: a stack of 5 payers with
/// automatic mining off; 4 paid calls each answered pending, the payment
/// service's settler claims every payment (`settling`), the facilitator
/// sends them all in one `aggregate3` batch that waits in the pool, and
/// then both are killed.
async fn killed_with_the_batch_in_the_pool() -> BatchInThePool {
    const PAYERS: usize = 5;
    const CALLS_EACH: usize = 4;
    let mut stack = Stack::start(Settings {
        buyers: PAYERS,
        settle_concurrency: 200,
        // Every settle of the burst joins the first batch.
        batch_window_ms: 3000,
        facilitator: FacilitatorAtStart::Running,
    })
    .await;
    stack.chain.set_automine(false).await;
    let plan = each_calling(0..PAYERS, CALLS_EACH);
    let started = Instant::now();
    let calls = stack.pay_all(&plan).await;
    let total = calls.len() as i64;
    // Before the first settle gives up waiting (the payment service's
    // settle timeout, the facilitator's receipt timeout).
    let deadline = started + Duration::from_secs(SETTLE_TIMEOUT_SECS - 2);
    let batch = stack
        .until(deadline, Duration::from_millis(50), async || {
            let pooled = stack.pooled().await;
            let settling = stack.count("settling").await;
            let waiting = stack.batch_waiting().await;
            if pooled.len() == 1 && settling == total && waiting == Some(0) {
                return Ok(pooled[0]);
            }
            Err(format!(
                "no batch of every payment in the pool: pooled {pooled:?}, settling {settling} of {total}, \
                 waiting in the batcher {waiting:?}"
            ))
        })
        .await;
    println!(
        "batch {batch} in the pool {:.1} s after the calls began",
        started.elapsed().as_secs_f64()
    );
    stack.kill_payment().await;
    stack.kill_facilitator().await;
    assert_eq!(
        stack.count("settling").await,
        total,
        "the ledger does not know the outcome"
    );
    BatchInThePool {
        stack,
        calls,
        batch,
    }
}

/// Asserts the end state of a batch-in-the-pool test: every payment
/// settled by `batch`, the batch pays each of them, and each payment is
/// paid once.
async fn assert_settled_by(
    stack: &Stack,
    calls: &[Call],
    finals: &HashMap<String, Value>,
    batch: B256,
) {
    stack.assert_end_state(calls, finals, &[]).await;
    for call in calls {
        assert_eq!(
            finals[&call.id]["transaction"],
            format!("{batch:#x}"),
            "settled by the batch sent before the crash"
        );
    }
}

/// Killed with the settlement batch in the pool; the batch is mined while
/// both are down, and both start again: every payment must end settled by
/// that batch (the facilitator reconciles with it), and no second
/// transaction is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_the_batch_in_the_pool_each_payment_settles_once_by_that_batch() {
    let BatchInThePool {
        mut stack,
        calls,
        batch,
    } = killed_with_the_batch_in_the_pool().await;

    // The batch lands while both are down.
    stack.chain.mine().await;
    let receipt = stack
        .chain
        .receipt(batch)
        .await
        .expect("the batch is mined");
    assert!(receipt.status());
    for call in &calls {
        assert!(
            authorization_paid(receipt.logs(), stack.chain.token, &call.authorization),
            "the batch holds every payment"
        );
    }
    stack.chain.set_automine(true).await;

    let restarted = stack.restart().await;
    let finals = stack.until_final(&calls).await;
    let recovery = restarted.elapsed();
    assert_settled_by(&stack, &calls, &finals, batch).await;
    assert_eq!(
        stack
            .chain
            .transaction_count(stack.chain.facilitator_key.address())
            .await,
        1,
        "no second settlement transaction"
    );
    stack.finish(recovery).await;
}

/// Killed with the settlement batch in the pool, and started again before
/// it is mined: the restarted services take the payments up while the
/// chain still holds the batch (the facilitator, seeing their
/// authorizations unspent, may well send them again), then blocks resume.
/// Whatever was sent, every payment must end settled by the first batch,
/// the one that paid it, and none as a debt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_the_batch_in_the_pool_and_restarted_before_it_lands_each_settles_once() {
    let BatchInThePool {
        mut stack,
        calls,
        batch,
    } = killed_with_the_batch_in_the_pool().await;

    let restarted = stack.restart().await;
    // Until the restarted payment service has taken a payment up again
    // (each claim counts an attempt), and its settle has had time to reach
    // the chain.
    stack
        .until(
            restarted + RECOVERY,
            Duration::from_millis(100),
            async || {
                let retaken: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM payments WHERE attempts > 1")
                        .fetch_one(&stack.ledger)
                        .await
                        .unwrap();
                if retaken > 0 {
                    return Ok(());
                }
                Err("no payment was taken up again".to_string())
            },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pooled = stack.pooled().await;
    println!(
        "taken up again {:.1} s after the restart; {} transactions in the pool",
        restarted.elapsed().as_secs_f64(),
        pooled.len()
    );
    // Blocks resume: the first batch lands, and whatever followed it.
    stack.chain.set_block_time(1).await;

    let finals = stack.until_final(&calls).await;
    let recovery = restarted.elapsed();
    assert_settled_by(&stack, &calls, &finals, batch).await;
    stack.finish(recovery).await;
}

/// Killed with payments queued and claimed, nothing sent. The facilitator
/// answers nothing at first (its port holds every connection), and the
/// payment service settles at most 4 at once: of 22 paid calls, 4 payments
/// are claimed (`settling`, their settle hanging) and 18 wait `queued` when
/// the payment service is killed. Meanwhile one payer empties its wallet.
/// Started again with the facilitator up, every payment of the other
/// payers settles exactly once, and the emptied wallet's payments fail and
/// are its debt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_payments_queued_and_claimed_each_settles_once_or_is_a_debt() {
    const PAYERS: usize = 5;
    const CALLS_EACH: usize = 4;
    const EMPTIER: usize = PAYERS;
    const CONCURRENCY: usize = 4;
    let mut stack = Stack::start(Settings {
        buyers: PAYERS + 1,
        settle_concurrency: CONCURRENCY,
        batch_window_ms: 0,
        facilitator: FacilitatorAtStart::BlackHole,
    })
    .await;

    let mut plan = each_calling(0..PAYERS, CALLS_EACH);
    plan.push((EMPTIER, 2));
    let started = Instant::now();
    let calls = stack.pay_all(&plan).await;
    let total = calls.len() as i64;

    // Before the first claimed settle gives up.
    let deadline = started + Duration::from_secs(SETTLE_TIMEOUT_SECS - 2);
    stack
        .until(deadline, Duration::from_millis(50), async || {
            let (settling, queued) = (stack.count("settling").await, stack.count("queued").await);
            if settling == CONCURRENCY as i64 && queued == total - settling {
                return Ok(());
            }
            Err(format!("settling {settling}, queued {queued} of {total}"))
        })
        .await;
    stack.kill_payment().await;
    stack.black_hole.take().unwrap().close().await;
    assert_eq!(
        stack
            .chain
            .transaction_count(stack.chain.facilitator_key.address())
            .await,
        0,
        "nothing was sent"
    );

    // The payer empties its wallet before anything of it is settled.
    let emptier = stack.chain.buyers[EMPTIER].clone();
    let all = stack.chain.balance_of(emptier.address()).await;
    stack
        .chain
        .transfer_plain(&emptier, PrivateKeySigner::random().address(), all)
        .await;

    let restarted = stack.restart().await;
    let finals = stack.until_final(&calls).await;
    let recovery = restarted.elapsed();

    stack.assert_end_state(&calls, &finals, &[EMPTIER]).await;
    assert_eq!(stack.chain.balance_of(emptier.address()).await, U256::ZERO);
    stack.finish(recovery).await;
}

/// Killed between serving and queueing: the calls are verified and their
/// memory work held in flight (the gateway → memory link paused) when the
/// payment service is killed; then memory answers, the gateway serves the
/// calls, and cannot queue their settlements. Their payments stay
/// `verified`, served, in the ledger: the restarted payment service takes
/// them for orphans (older than the verify timeout plus the settle
/// timeout) and settles each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_serving_and_queueing_the_served_payments_settle_once() {
    const PAYERS: usize = 3;
    const CALLS_EACH: usize = 2;
    let mut stack = Stack::start(Settings {
        buyers: PAYERS,
        settle_concurrency: 200,
        batch_window_ms: 0,
        facilitator: FacilitatorAtStart::Running,
    })
    .await;

    stack.memory_proxy.pause();
    let plan = each_calling(0..PAYERS, CALLS_EACH);
    let spawned = stack.spawn_calls(&plan);
    let total = spawned.len() as i64;
    let started = Instant::now();
    stack
        .until(
            started + Duration::from_secs(20),
            Duration::from_millis(50),
            async || {
                if stack.count("verified").await < total {
                    return Err("the calls were not all verified".to_string());
                }
                Ok(())
            },
        )
        .await;
    stack.kill_payment().await;
    stack.memory_proxy.resume();
    let mut authorizations = Vec::new();
    for (payer, authorization, task) in spawned {
        let reply = task.await.unwrap();
        // Served: its work was done, whatever became of its settlement.
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        authorizations.push((payer, authorization));
    }
    assert_eq!(stack.count("verified").await, total, "nothing queued them");

    let restarted = Instant::now();
    stack.start_payment().await;
    let mut calls = Vec::new();
    for (payer, authorization) in authorizations {
        let id: String =
            sqlx::query_scalar("SELECT id FROM payments WHERE payer = $1 AND nonce = $2")
                .bind(lower(authorization.from))
                .bind(format!("{:#x}", authorization.nonce))
                .fetch_one(&stack.ledger)
                .await
                .unwrap();
        calls.push(Call {
            payer,
            authorization,
            id,
        });
    }
    let finals = stack.until_final(&calls).await;
    let recovery = restarted.elapsed();
    stack.assert_end_state(&calls, &finals, &[]).await;
    stack.finish(recovery).await;
}
