//! Settling many authorizations in one transaction.
//!
//! A settle that passed its checks (see [`crate::settle`]) is handed to the
//! batcher and waits for its own outcome. Each settling key has one worker;
//! a free worker takes the first waiting authorization, then whatever else
//! is waiting (`FACILITATOR_BATCH_WINDOW_MS` = 0, the default: group commit,
//! no added latency when idle) or whatever arrives within the window, up to
//! `FACILITATOR_BATCH_MAX`, and settles them in one transaction:
//!
//! - one authorization: a plain `transferWithAuthorization` to the token
//!   (cheaper than through the batch contract);
//! - several: Multicall3's `aggregate3` at `FACILITATOR_BATCH_CONTRACT`,
//!   each call allowed to fail alone.
//!
//! A worker keeps its key busy until its transaction's receipt is in, so
//! while one key's batch is being mined the next free key takes the next
//! batch, and authorizations arriving meanwhile make the following batch
//! bigger. Each key's nonces stay strictly sequential ([`crate::nonces`]).
//!
//! **Per-item outcomes** come from the receipt's logs: an authorization is
//! settled iff the receipt has the token's `AuthorizationUsed(from, nonce)`
//! log with its `Transfer` ([`tessera_evm::token::authorization_paid`]);
//! otherwise it failed alone, `invalid_transaction_state` with the batch's
//! hash in `transaction` (e.g. its nonce was spent, or its payer emptied
//! the wallet, between its check and the batch). No receipt within the
//! timeout: every authorization of the batch answers
//! `unexpected_settle_error` with the hash (it may still be mined).
//!
//! **Gas.** The batch is estimated with every call required to succeed
//! (`allowFailure` false), so the estimate covers every transfer, and sent
//! with `allowFailure` true and the usual headroom. When that estimate
//! reverts (some authorization would fail now), it is estimated as sent and
//! sent anyway: the failing ones fail alone. When even that reverts (the
//! contract is not a Multicall3), each authorization is sent alone. When
//! the node refuses the estimate outright (say the key lacks ETH for gas)
//! or does not answer, every authorization of the batch answers
//! `unexpected_settle_error`, nothing sent.
//!
//! **Ownership.** The worker owns the transaction: a request that stops
//! waiting (its client went away) does not stop or change the batch, and
//! the authorization stays claimed ([`crate::in_flight`])
//! until its outcome is known.
//!
//! Without code at the batch contract at start (or with
//! `FACILITATOR_BATCH_MAX=1`) nothing is batched: each settle sends its own
//! transaction at once, from the keys in turn, as many at once as asked.
//!
//! Series (`/metrics`):
//!
//! - `tessera_facilitator_batch_size`: authorizations per settlement
//!   transaction (1 for one sent alone);
//! - `tessera_facilitator_batches_total{outcome}`: settlement
//!   transactions: `mined`, `reverted` (mined with status 0), `unknown` (no
//!   receipt in time, or the node's answer to the send was lost),
//!   `not_sent` (refused before or at sending);
//! - `tessera_facilitator_batch_items_total{outcome}`: authorizations
//!   through them: `settled`, `failed`, `unknown`;
//! - `tessera_facilitator_gas_per_item`: gas used by a mined settlement
//!   transaction divided by its authorizations;
//! - `tessera_facilitator_batch_waiting`: authorizations handed to the
//!   batcher and not yet in a sent transaction.

use alloy::primitives::{Address, B256};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tessera_evm::batch::aggregate3_calldata;
use tessera_evm::token::authorization_paid;
use tessera_evm::ChainError;
use tessera_runtime::metrics::prometheus;
use tessera_x402::reason;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;

use crate::in_flight::InFlight;
use crate::send::{Failure, Sender};
use crate::verify::Verified;
use crate::Settler;

/// Batch outcomes (`tessera_facilitator_batches_total`).
const MINED: &str = "mined";
const REVERTED: &str = "reverted";
const UNKNOWN: &str = "unknown";
const NOT_SENT: &str = "not_sent";
/// Item outcomes (`tessera_facilitator_batch_items_total`).
const SETTLED: &str = "settled";
const FAILED: &str = "failed";

struct Series {
    size: Histogram,
    batches: IntCounterVec,
    items: IntCounterVec,
    gas_per_item: Histogram,
    waiting: IntGauge,
}

static SERIES: LazyLock<Series> = LazyLock::new(|| {
    use tessera_runtime::metrics::register;
    let series = Series {
        size: register(
            Histogram::with_opts(
                HistogramOpts::new(
                    "tessera_facilitator_batch_size",
                    "Authorizations per settlement transaction (1: sent alone).",
                )
                .buckets(vec![
                    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
                ]),
            )
            .expect("a valid histogram"),
        ),
        batches: register(
            IntCounterVec::new(
                Opts::new(
                    "tessera_facilitator_batches_total",
                    "Settlement transactions, by outcome: mined, reverted, unknown (no receipt \
                     in time), not_sent.",
                ),
                &["outcome"],
            )
            .expect("a valid counter"),
        ),
        items: register(
            IntCounterVec::new(
                Opts::new(
                    "tessera_facilitator_batch_items_total",
                    "Authorizations through settlement transactions, by outcome: settled, \
                     failed, unknown.",
                ),
                &["outcome"],
            )
            .expect("a valid counter"),
        ),
        gas_per_item: register(
            Histogram::with_opts(
                HistogramOpts::new(
                    "tessera_facilitator_gas_per_item",
                    "Gas used by a mined settlement transaction per authorization in it.",
                )
                .buckets(vec![
                    10e3, 20e3, 30e3, 40e3, 50e3, 60e3, 70e3, 80e3, 100e3, 150e3, 200e3, 300e3,
                ]),
            )
            .expect("a valid histogram"),
        ),
        waiting: register(
            IntGauge::new(
                "tessera_facilitator_batch_waiting",
                "Authorizations handed to the batcher and not yet in a sent transaction.",
            )
            .expect("a valid gauge"),
        ),
    };
    for outcome in [MINED, REVERTED, UNKNOWN, NOT_SENT] {
        series.batches.with_label_values(&[outcome]);
    }
    for outcome in [SETTLED, FAILED, UNKNOWN] {
        series.items.with_label_values(&[outcome]);
    }
    series
});

/// Creates every series at 0.
pub(crate) fn init_metrics() {
    LazyLock::force(&SERIES);
}

/// Counts one settlement transaction of `items` authorizations and how
/// it went, `settled` of them settled.
fn record(outcome: &str, items: usize, settled: usize, receipt: Option<&TransactionReceipt>) {
    let series = &*SERIES;
    series.size.observe(items as f64);
    series.batches.with_label_values(&[outcome]).inc();
    let unknown = if outcome == UNKNOWN { items } else { 0 };
    series
        .items
        .with_label_values(&[SETTLED])
        .inc_by(settled as u64);
    series
        .items
        .with_label_values(&[UNKNOWN])
        .inc_by(unknown as u64);
    series
        .items
        .with_label_values(&[FAILED])
        .inc_by((items - settled - unknown) as u64);
    if let Some(receipt) = receipt {
        series
            .gas_per_item
            .observe(receipt.gas_used as f64 / items.max(1) as f64);
    }
}

/// How a batch is taken and sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) max: usize,
    pub(crate) window: Duration,
    pub(crate) contract: Address,
}

/// An authorization waiting for its batch.
struct Item {
    verified: Verified,
    /// Held until the outcome is known, even when the request is gone.
    claim: InFlight,
    reply: oneshot::Sender<Result<B256, Failure>>,
}

impl Item {
    fn answer(self, outcome: Result<B256, Failure>) {
        let Item { claim, reply, .. } = self;
        claim.finish(&outcome);
        // The request may have stopped waiting: the outcome is then only
        // on chain (a settle again reconciles with it).
        let _ = reply.send(outcome);
    }
}

/// Hands authorizations to the workers, one per settling key.
#[derive(Debug)]
pub(crate) struct Batcher {
    queue: mpsc::UnboundedSender<Item>,
    plan: Plan,
    /// Handed over and not yet in a sent transaction (this batcher's part
    /// of the `waiting` gauge).
    waiting: Arc<AtomicUsize>,
}

impl Batcher {
    /// Starts a worker per settler; they stop when the batcher is dropped
    /// (after answering what was handed to them).
    pub(crate) fn start(sender: Arc<Sender>, settlers: &[Arc<Settler>], plan: Plan) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let waiting = Arc::new(AtomicUsize::new(0));
        for settler in settlers {
            tokio::spawn(work(
                receiver.clone(),
                settler.clone(),
                sender.clone(),
                plan,
                waiting.clone(),
            ));
        }
        Batcher {
            queue,
            plan,
            waiting,
        }
    }

    pub(crate) fn plan(&self) -> Plan {
        self.plan
    }

    /// Authorizations handed over and not yet in a sent transaction.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Settles `verified` in the next batch; resolves with its own outcome.
    pub(crate) async fn settle(
        &self,
        verified: Verified,
        claim: InFlight,
    ) -> Result<B256, Failure> {
        let (reply, answer) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        SERIES.waiting.inc();
        let item = Item {
            verified,
            claim,
            reply,
        };
        if self.queue.send(item).is_err() {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            SERIES.waiting.dec();
            return Err(Failure::new(
                reason::UNEXPECTED_SETTLE_ERROR,
                "the settlement workers have stopped",
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(Failure::new(
                reason::UNEXPECTED_SETTLE_ERROR,
                "the settlement worker stopped before answering",
            ))
        })
    }
}

/// One settling key's worker: a batch at a time, until the queue closes.
async fn work(
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Item>>>,
    settler: Arc<Settler>,
    sender: Arc<Sender>,
    plan: Plan,
    waiting: Arc<AtomicUsize>,
) {
    while let Some(items) = next_batch(&queue, plan).await {
        waiting.fetch_sub(items.len(), Ordering::SeqCst);
        SERIES.waiting.sub(items.len() as i64);
        // In a task of its own, so that a panic fails this batch (its
        // requests are answered `unexpected_settle_error`) and not the key.
        let (sender, settler) = (sender.clone(), settler.clone());
        let batch = tokio::spawn(async move {
            settle_batch(&sender, &settler, plan.contract, items).await;
        });
        if let Err(error) = batch.await {
            tracing::error!(%error, "a settlement batch panicked");
        }
    }
}

/// Waits for the first item, then takes what is waiting (or arrives within
/// the window) up to `max`. `None`: the queue is closed and empty.
async fn next_batch(queue: &Mutex<mpsc::UnboundedReceiver<Item>>, plan: Plan) -> Option<Vec<Item>> {
    use mpsc::error::TryRecvError;
    // Held while the batch fills: the other free workers wait for the next.
    let mut queue = queue.lock().await;
    let first = queue.recv().await?;
    let deadline = Instant::now() + plan.window;
    let mut items = vec![first];
    while items.len() < plan.max {
        match queue.try_recv() {
            Ok(item) => items.push(item),
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) if plan.window.is_zero() => break,
            Err(TryRecvError::Empty) => match tokio::time::timeout_at(deadline, queue.recv()).await
            {
                Ok(Some(item)) => items.push(item),
                Ok(None) | Err(_) => break,
            },
        }
    }
    Some(items)
}

/// Settles `items` in one transaction from `settler` and answers each.
async fn settle_batch(
    sender: &Sender,
    settler: &Arc<Settler>,
    contract: Address,
    items: Vec<Item>,
) {
    if items.len() == 1 {
        let item = items.into_iter().next().expect("one item");
        let outcome = settle_alone(sender, settler, &item.verified).await;
        item.answer(outcome);
        return;
    }
    let count = items.len();
    let from = settler.key.address();
    let batch = |allow_failure: bool| {
        let calls = items
            .iter()
            .map(|item| (item.verified.token, item.verified.transfer_calldata()));
        TransactionRequest::default()
            .from(from)
            .to(contract)
            .input(aggregate3_calldata(calls, allow_failure).into())
    };
    let fail_all = |items: Vec<Item>, failure: Failure| {
        for item in items {
            item.answer(Err(failure.clone()));
        }
    };
    let request = batch(true);
    let gas = match sender.chain.estimate_gas(batch(false)).await {
        Ok(gas) => gas,
        Err(error @ ChainError::Unavailable(_)) => {
            record(NOT_SENT, count, 0, None);
            let failure = Failure::new(reason::UNEXPECTED_SETTLE_ERROR, error.to_string());
            return fail_all(items, failure);
        }
        Err(strict) => {
            // Some authorization would fail now; each may fail alone.
            tracing::info!(batch = count, error = %strict, "a batch item would fail now; sending the batch with it failing alone");
            match sender.chain.estimate_gas(request.clone()).await {
                Ok(gas) => gas,
                Err(error @ (ChainError::Unavailable(_) | ChainError::Refused(_))) => {
                    // No answer, or the node refused our transaction itself
                    // (e.g. the key lacks ETH for gas): ours, not the payers'.
                    record(NOT_SENT, count, 0, None);
                    let failure = Failure::new(reason::UNEXPECTED_SETTLE_ERROR, error.to_string());
                    return fail_all(items, failure);
                }
                Err(error) => {
                    tracing::warn!(
                        contract = %contract,
                        %error,
                        "the batch contract refused a batch whose calls may fail alone; settling each alone"
                    );
                    return settle_each_alone(sender, settler, items).await;
                }
            }
        }
    };
    let hash = match sender.send(settler, request, gas).await {
        Ok(hash) => hash,
        Err(failure) => {
            let outcome = if failure.sent() { UNKNOWN } else { NOT_SENT };
            record(outcome, count, 0, None);
            return fail_all(items, failure);
        }
    };
    tracing::debug!(from = %from, tx = %hash, batch = count, "settlement batch sent");
    let receipt = match sender.wait_for_receipt(hash).await {
        Ok(receipt) => receipt,
        Err(failure) => {
            record(UNKNOWN, count, 0, None);
            tracing::warn!(tx = %hash, batch = count, "no receipt for a settlement batch in time");
            return fail_all(items, failure);
        }
    };
    let block = receipt.block_number.unwrap_or_default();
    let mut settled = 0;
    let outcomes: Vec<_> = items
        .iter()
        .map(|item| {
            let verified = &item.verified;
            if authorization_paid(receipt.logs(), verified.token, &verified.authorization) {
                settled += 1;
                Ok(hash)
            } else if !receipt.status() {
                Err(Failure::new(
                    reason::INVALID_TRANSACTION_STATE,
                    format!("the batch settlement transaction reverted on chain in block {block}"),
                )
                .with_tx(hash))
            } else {
                Err(Failure::new(
                    reason::INVALID_TRANSACTION_STATE,
                    format!(
                        "transferWithAuthorization failed inside the batch settlement transaction \
                         (block {block}): this authorization was not used, nothing was paid"
                    ),
                )
                .with_tx(hash))
            }
        })
        .collect();
    let outcome = if receipt.status() { MINED } else { REVERTED };
    record(outcome, count, settled, Some(&receipt));
    tracing::info!(
        from = %from,
        tx = %hash,
        block,
        batch = count,
        settled,
        gas_used = receipt.gas_used,
        "settlement batch mined"
    );
    for (item, outcome) in items.into_iter().zip(outcomes) {
        item.answer(outcome);
    }
}

/// Each item in its own transaction from `settler`: sent one after the
/// other (the nonce allocator orders them), their receipts awaited together.
async fn settle_each_alone(sender: &Sender, settler: &Arc<Settler>, items: Vec<Item>) {
    let mut sent = Vec::with_capacity(items.len());
    for item in items {
        match send_alone(sender, settler, &item.verified).await {
            Ok(hash) => sent.push((item, hash)),
            Err(failure) => {
                record(if failure.sent() { UNKNOWN } else { NOT_SENT }, 1, 0, None);
                item.answer(Err(failure));
            }
        }
    }
    for (item, hash) in sent {
        let outcome = confirm_alone(sender, hash).await;
        item.answer(outcome);
    }
}

/// One authorization in its own transaction (`transferWithAuthorization`
/// to the token), from `settler`: estimate, send, wait for the receipt.
pub(crate) async fn settle_alone(
    sender: &Sender,
    settler: &Settler,
    verified: &Verified,
) -> Result<B256, Failure> {
    let hash = send_alone(sender, settler, verified)
        .await
        .inspect_err(|failure| {
            record(if failure.sent() { UNKNOWN } else { NOT_SENT }, 1, 0, None)
        })?;
    confirm_alone(sender, hash).await
}

async fn send_alone(
    sender: &Sender,
    settler: &Settler,
    verified: &Verified,
) -> Result<B256, Failure> {
    let request = verified.transfer_request(settler.key.address());
    // Before taking the nonce: a transfer that would revert costs neither
    // gas nor a nonce.
    let gas = sender
        .chain
        .estimate_gas(request.clone())
        .await
        .map_err(|error| match error {
            ChainError::Reverted(text) | ChainError::Refused(text) => Failure::new(
                reason::INVALID_TRANSACTION_STATE,
                format!("the transfer would revert: {text}"),
            ),
            ChainError::Unavailable(_) => {
                Failure::new(reason::UNEXPECTED_SETTLE_ERROR, error.to_string())
            }
        })?;
    sender.send(settler, request, gas).await
}

async fn confirm_alone(sender: &Sender, hash: B256) -> Result<B256, Failure> {
    let receipt = sender.wait_for_receipt(hash).await.inspect_err(|_| {
        record(UNKNOWN, 1, 0, None);
    })?;
    if receipt.status() {
        record(MINED, 1, 1, Some(&receipt));
        Ok(hash)
    } else {
        record(REVERTED, 1, 0, Some(&receipt));
        Err(Failure::new(
            reason::INVALID_TRANSACTION_STATE,
            format!(
                "transferWithAuthorization reverted on chain in block {}",
                receipt.block_number.unwrap_or_default()
            ),
        )
        .with_tx(hash))
    }
}
