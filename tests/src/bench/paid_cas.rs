//! A memory CAS paid with x402, end to end on real parts
//! ([`tessera_tests::paid::PaidStack`]: anvil with our EIP-3009 token, our
//! facilitator, the payment service with its PostgreSQL ledger, durable
//! memory, the gateway charging every memory route).
//!
//! Each call is what a paying client does: a fresh EIP-3009 authorization
//! for the CAS price from the client's own wallet (signed before the case,
//! as an agent signs on its own machine: [`PRESIGN_CALLS_PER_SECOND`]), send
//! `POST /api/memory/cas` with `PAYMENT-SIGNATURE`; the gateway asks the
//! payment service (nonce reserved in PostgreSQL, facilitator verify), runs
//! the CAS in the payer's namespace, settles on chain (anvil mines the
//! transfer, the facilitator waits for its receipt) and answers with
//! `PAYMENT-RESPONSE`. A call counts only if it swapped and its settlement
//! succeeded.
//!
//! [`Variant`]s: `paid-cas` is sync on an automining anvil (a block per
//! transaction). The issue-12 cases run on anvil mining a block a second:
//! `paid-sync-1s` answers once the transfer is mined; `paid-async-b{1,10,100}`
//! answer at once (a call counts if it swapped and its answer says
//! `settlement_pending`) with the facilitator's batches capped at 1, 10 or
//! 100 authorizations (`paid-async-b100-k2`: 100, from two settling keys).
//! After an async case the queue is drained and the
//! ledger and the receipts say what settlement cost: items per block,
//! transactions per item, gas per item.

use super::driver::{run_shared, Outcome};
use super::Settings;
use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{ensure, Context};
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tessera_gateway::SettleMode;
use tessera_tests::chain::BUYER_FUNDS;
use tessera_tests::paid::{Options, PaidStack};
use tessera_x402::facilitator::SettleResponse;
use tessera_x402::{decode_header, encode_header, Requirements};

/// The payment service's route name for `POST /api/memory/cas`.
const ROUTE: &str = "memory.cas";

/// Each client signs ahead the authorizations of this many calls a second
/// (all clients together) for the warm-up and the measured seconds, at most
/// [`PRESIGN_SECONDS_AT_MOST`] of them; past that it signs as it calls. A
/// paying agent signs on its own machine: signing here, on the 2 cores the
/// services share, would charge the client's CPU to the server (the unpaid
/// baseline signs nothing). Signed ahead, an authorization must still be
/// valid long enough when used (`maxTimeoutSeconds` 60, of which the
/// payment service wants the settle timeout left).
const PRESIGN_CALLS_PER_SECOND: u64 = 3_000;
const PRESIGN_SECONDS_AT_MOST: u64 = 30;

struct Client {
    /// The client's own funded wallet; its address is its namespace.
    signer: PrivateKeySigner,
    /// `PAYMENT-SIGNATURE` headers signed before the case (see
    /// [`PRESIGN_CALLS_PER_SECOND`]), used first.
    presigned: std::sync::Mutex<Vec<String>>,
    acquire: Vec<u8>,
    release: Vec<u8>,
}

/// How a paid case settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub mode: SettleMode,
    /// anvil mines a block this often; `None`: a block per transaction.
    pub block_seconds: Option<u64>,
    /// The facilitator's `FACILITATOR_BATCH_MAX`; `None`: its default.
    pub batch_max: Option<usize>,
    /// The facilitator's settling keys.
    pub keys: usize,
}

impl Variant {
    pub const SYNC_AUTOMINE: Variant = Variant {
        mode: SettleMode::Sync,
        block_seconds: None,
        batch_max: None,
        keys: 1,
    };

    pub const fn on_blocks(mode: SettleMode, batch_max: Option<usize>) -> Variant {
        Variant {
            mode,
            block_seconds: Some(1),
            batch_max,
            keys: 1,
        }
    }

    /// Settling from `keys` keys at once.
    pub const fn with_keys(self, keys: usize) -> Variant {
        Variant { keys, ..self }
    }

    /// A non-capturing adjustment per supported batch size.
    fn adjust_facilitator(self) -> fn(&mut tessera_facilitator::FacilitatorConfig) {
        match self.batch_max {
            None => |_| {},
            Some(1) => |config| config.batch.max = 1,
            Some(10) => |config| config.batch.max = 10,
            Some(100) => |config| config.batch.max = 100,
            Some(other) => panic!("no bench variant batches {other}"),
        }
    }
}

struct Shared {
    variant: Variant,
    stack: PaidStack,
    http: reqwest::Client,
    cas_url: String,
    requirements: Requirements,
    clients: Vec<Client>,
    /// Calls answered with a successful `PAYMENT-RESPONSE`, warm-up
    /// included: each moved exactly the price on chain.
    settled: AtomicU64,
}

pub struct PaidCas {
    shared: Arc<Shared>,
    /// What the run's settlement check found, for after the table.
    pub note: Option<String>,
}

#[derive(Deserialize)]
struct CasView {
    swapped: bool,
}

impl PaidCas {
    /// The paid stack, and one new wallet holding [`BUYER_FUNDS`] per client.
    pub async fn setup(settings: &Settings, variant: Variant) -> anyhow::Result<Self> {
        let stack = PaidStack::start_with(Options {
            settle_mode: variant.mode,
            adjust_facilitator: variant.adjust_facilitator(),
            settlement_keys: variant.keys,
            // A settlement spends about a block and a half in flight, so the
            // default (enough for one key's batches) grows with the keys.
            settle_concurrency: tessera_payment::config::DEFAULT_SETTLE_CONCURRENCY * variant.keys,
            // As deployed: pending settlements retried, queued ones looked
            // for, every few seconds.
            retry_every: tessera_payment::config::DEFAULT_RETRY_EVERY,
            ..Options::default()
        })
        .await;
        let requirements = stack
            .payments
            .requirements(ROUTE)
            .context("the CAS route's price")?;
        let mut clients = Vec::with_capacity(settings.concurrency);
        for client in 0..settings.concurrency {
            let signer = stack.chain.new_buyer(BUYER_FUNDS).await;
            let holder = format!("agent-{client}");
            let key = format!("lock-{client}");
            clients.push(Client {
                signer,
                presigned: std::sync::Mutex::new(Vec::new()),
                acquire: body(json!({ "key": key, "expected": null, "value": holder })),
                release: body(json!({ "key": key, "expected": holder, "value": null })),
            });
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(settings.concurrency)
            .build()?;
        let target = PaidCas {
            shared: Arc::new(Shared {
                variant,
                cas_url: stack.url("/api/memory/cas"),
                stack,
                http,
                requirements,
                clients,
                settled: AtomicU64::new(0),
            }),
            note: None,
        };
        // One paid sample on a key no case touches, so a setup fault fails
        // here with its reason.
        let probe = body(json!({ "key": "probe", "expected": null, "value": 1 }));
        paid_cas(&target.shared, 0, &probe)
            .await
            .context("a sample paid CAS")?;
        // Settled before the case reads payTo's balance (async answers first).
        let pool = target.shared.stack.payments.ledger().pool().clone();
        for _ in 0..300 {
            let unfinished: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM payments
                  WHERE status IN ('reserved', 'verified', 'queued', 'settling', 'pending')",
            )
            .fetch_one(&pool)
            .await?;
            if unfinished == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(seconds) = variant.block_seconds {
            target.shared.stack.chain.set_block_time(seconds).await;
        }
        let seconds = (settings.seconds + 1).min(PRESIGN_SECONDS_AT_MOST);
        let per_client =
            (PRESIGN_CALLS_PER_SECOND * seconds).div_ceil(settings.concurrency as u64) as usize;
        for client in &target.shared.clients {
            let signed = (0..per_client)
                .map(|_| sign(&target.shared, &client.signer))
                .collect();
            *client.presigned.lock().expect("not poisoned") = signed;
        }
        Ok(target)
    }

    pub fn price(&self) -> &str {
        &self.shared.requirements.amount
    }

    /// Lock acquire and release pairs on the client's own key, as the
    /// unpaid cases, each call paid. Afterwards checks that payTo's token
    /// balance grew by exactly the settled calls × the price; a mismatch is
    /// an error of the case.
    pub async fn compare_and_swap(&mut self, name: &str, settings: &Settings) -> Outcome {
        if self.shared.variant.mode == SettleMode::Async {
            return self.compare_and_swap_async(name, settings).await;
        }
        let chain = &self.shared.stack.chain;
        let pay_to = chain.pay_to;
        let before = chain.balance_of(pay_to).await;
        let settled_before = self.shared.settled.load(Ordering::SeqCst);
        let mut outcome = self.lock_pairs(name, settings).await;
        let after = chain.balance_of(pay_to).await;
        let settled = self.shared.settled.load(Ordering::SeqCst) - settled_before;
        let price: U256 = self.price().parse().expect("the price is a number");
        let expected = U256::from(settled) * price;
        let received = after - before;
        let verdict = if received == expected {
            "exactly as expected"
        } else {
            outcome.error(1, || {
                format!("payTo received {received}, not {settled} settled × {price} = {expected}")
            });
            "MISMATCH"
        };
        self.note = Some(format!(
            "{name} settlement: payTo {pay_to} received {received} units = {settled} settled \
             payments (warm-up included) × price {price}: {verdict}"
        ));
        outcome
    }

    /// Lock acquire and release pairs on each client's own key, every call
    /// paid.
    async fn lock_pairs(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, call| async move {
                let requests = &shared.clients[client];
                let body = if call.is_multiple_of(2) {
                    &requests.acquire
                } else {
                    &requests.release
                };
                paid_cas(&shared, client, body).await
            },
        )
        .await
    }

    /// The async case: calls answered pending, then the queue drained and
    /// what settlement cost read from the ledger and the receipts. Every
    /// served call must end settled and payTo must have received exactly
    /// settled × price; anything else is an error of the case.
    async fn compare_and_swap_async(&mut self, name: &str, settings: &Settings) -> Outcome {
        let shared = &self.shared;
        let chain = &shared.stack.chain;
        let pool = shared.stack.payments.ledger().pool().clone();
        let payers: Vec<String> = shared
            .clients
            .iter()
            .map(|client| format!("{:#x}", client.signer.address()))
            .collect();
        let before = chain.balance_of(chain.pay_to).await;
        let started: String = sqlx::query_scalar("SELECT now()::text")
            .fetch_one(&pool)
            .await
            .expect("the ledger answers");
        let mut outcome = self.lock_pairs(name, settings).await;

        let answered = tokio::time::Instant::now();
        let unfinished = "SELECT count(*) FROM payments WHERE payer = ANY($1) AND created_at >= $2::timestamptz
                            AND status IN ('reserved', 'verified', 'queued', 'settling', 'pending')";
        let mut left: i64 = -1;
        while answered.elapsed() < drain_at_most(&shared.stack.payment_config) {
            left = sqlx::query_scalar(unfinished)
                .bind(&payers)
                .bind(&started)
                .fetch_one(&pool)
                .await
                .expect("the ledger answers");
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let drained = answered.elapsed();
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT status, transaction FROM payments
              WHERE payer = ANY($1) AND created_at >= $2::timestamptz",
        )
        .bind(&payers)
        .bind(&started)
        .fetch_all(&pool)
        .await
        .expect("the ledger answers");
        let settled: Vec<&str> = rows
            .iter()
            .filter(|(status, _)| status == "settled")
            .filter_map(|(_, tx)| tx.as_deref())
            .collect();
        // Settling slower than the calls came is the case's finding, not
        // an error: only a payment that ended unpaid is.
        let unpaid = rows
            .iter()
            .filter(|(status, _)| ["failed", "cancelled", "rejected"].contains(&status.as_str()))
            .count();
        if unpaid > 0 {
            outcome.error(unpaid as u64, || {
                format!("{unpaid} of {} served payments ended unpaid", rows.len())
            });
        }
        let mut per_tx: HashMap<&str, u64> = HashMap::new();
        for tx in &settled {
            *per_tx.entry(tx).or_default() += 1;
        }
        let (mut gas, mut blocks) = (0u128, BTreeSet::new());
        for tx in per_tx.keys() {
            let hash = tx.parse().expect("a transaction hash");
            match chain.receipt(hash).await {
                Some(receipt) => {
                    gas += receipt.gas_used as u128;
                    blocks.insert(receipt.block_number.unwrap_or_default());
                }
                None => outcome.error(1, || format!("no receipt for {tx}")),
            }
        }
        let gas_limit = chain.block_gas_limit().await;
        let after = chain.balance_of(chain.pay_to).await;
        let price: U256 = self.price().parse().expect("the price is a number");
        let items = settled.len() as u64;
        let expected = U256::from(items) * price;
        let received = after - before;
        let verdict = if left != 0 {
            format!(
                "not drained, {left} of {} unfinished: {} (no exactness check); facilitator: {}",
                rows.len(),
                unfinished_by_status(&pool, &payers, &started).await,
                facilitator_batch_outcomes(),
            )
        } else if received == expected {
            "exact".to_string()
        } else {
            outcome.error(1, || {
                format!("payTo received {received}, not {items} settled × {price} = {expected}")
            });
            "MISMATCH".to_string()
        };
        let per_item = |total: f64| {
            if items == 0 {
                0.0
            } else {
                total / items as f64
            }
        };
        // In async mode a call answered settled was settled before it ran:
        // the settler's queue would have outlasted its authorization.
        let settled_before = shared.settled.load(Ordering::SeqCst);
        self.note = Some(format!(
            "{name} settlement (batch max {}): {items} payments settled in {} transactions \
             over {} blocks ({:.1} items/s over the {:.1} s after the last answer): {:.1} items \
             per block, {:.3} transactions per item, {:.0} gas per item; payTo received \
             {received} = {items} × {price}: {verdict}; {settled_before} of {} calls settled \
             before they ran (queue full); the chain's ceiling at this gas per item: \
             {gas_limit} gas a block = {:.0} items per block",
            self.shared
                .variant
                .batch_max
                .map_or("default".to_string(), |max| max.to_string())
                + &match self.shared.variant.keys {
                    1 => String::new(),
                    keys => format!(", {keys} keys"),
                },
            per_tx.len(),
            blocks.len(),
            items as f64 / (settings.seconds as f64 + drained.as_secs_f64()),
            drained.as_secs_f64(),
            items as f64 / blocks.len().max(1) as f64,
            per_item(per_tx.len() as f64),
            per_item(gas as f64),
            rows.len(),
            gas_limit as f64 / per_item(gas as f64).max(1.0),
        ));
        outcome
    }
}

/// How long an async case waits for its queue to drain: every payment has
/// ended by then, settled or failed. A call is queued only while its turn
/// would come before its authorization (valid for `maxTimeoutSeconds`)
/// has less than a settle timeout left, so the last one queued may wait
/// nearly that long (batches of 10 took 43 s after 8 s of calls).
fn drain_at_most(config: &tessera_payment::PaymentConfig) -> Duration {
    Duration::from_secs(config.max_timeout_seconds)
        + config.settle_timeout
        + Duration::from_secs(10)
}

/// The case's unfinished payments counted by status and error reason, to
/// say where a drain stalled.
async fn unfinished_by_status(pool: &sqlx::PgPool, payers: &[String], started: &str) -> String {
    let counts: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT status, error_reason, count(*) FROM payments
          WHERE payer = ANY($1) AND created_at >= $2::timestamptz
            AND status IN ('reserved', 'verified', 'queued', 'settling', 'pending')
          GROUP BY status, error_reason ORDER BY status",
    )
    .bind(payers)
    .bind(started)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    counts
        .iter()
        .map(|(status, reason, count)| match reason {
            Some(reason) => format!("{count} {status} ({reason})"),
            None => format!("{count} {status}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The facilitator's settlement transactions and items by outcome, from
/// this process's metrics (every case's stack so far).
fn facilitator_batch_outcomes() -> String {
    tessera_runtime::metrics::render()
        .lines()
        .filter(|line| {
            line.starts_with("tessera_facilitator_batches_total{")
                || line.starts_with("tessera_facilitator_batch_items_total{")
        })
        .map(|line| line.trim_start_matches("tessera_facilitator_"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One paid `POST /api/memory/cas` from `client`'s wallet with `body`.
async fn paid_cas(shared: &Shared, client: usize, body: &[u8]) -> anyhow::Result<()> {
    let client = &shared.clients[client];
    let presigned = client.presigned.lock().expect("not poisoned").pop();
    let payment = presigned.unwrap_or_else(|| sign(shared, &client.signer));
    let response = shared
        .http
        .post(&shared.cas_url)
        .header("PAYMENT-SIGNATURE", payment)
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    let status = response.status();
    let settlement = response
        .headers()
        .get("payment-response")
        .map(|value| -> anyhow::Result<SettleResponse> { Ok(decode_header(value.to_str()?)?) })
        .transpose()
        .context("the PAYMENT-RESPONSE header")?;
    let reply = response.bytes().await?;
    if settlement.as_ref().is_some_and(|s| s.success) {
        shared.settled.fetch_add(1, Ordering::SeqCst);
    }
    ensure!(
        status.is_success(),
        "HTTP {status}: {}",
        String::from_utf8_lossy(&reply)
    );
    let settlement = settlement.context("no PAYMENT-RESPONSE on a paid 2xx")?;
    let pending =
        settlement.error_reason.as_deref() == Some(tessera_x402::reason::SETTLEMENT_PENDING);
    ensure!(
        (shared.variant.mode == SettleMode::Async && pending)
            || (settlement.success && !settlement.transaction.is_empty()),
        "settlement failed: {} {}",
        settlement.error_reason.unwrap_or_default(),
        settlement.error_message.unwrap_or_default()
    );
    let view: CasView = serde_json::from_slice(&reply).context("CAS reply")?;
    ensure!(view.swapped, "CAS did not swap");
    Ok(())
}

/// A `PAYMENT-SIGNATURE` header for one call from `signer`.
fn sign(shared: &Shared, signer: &PrivateKeySigner) -> String {
    encode_header(&shared.stack.chain.pay(signer, &shared.requirements))
}

fn body(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&value).expect("a JSON value serializes")
}
