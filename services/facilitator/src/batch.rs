//! Settling many authorizations in one transaction.
//!
//! A settle that passed its local checks (terms, validity window,
//! signature: no chain state, see [`crate::settle`]) is handed to the
//! batcher and waits for its own outcome. Each settling key has one worker;
//! a worker with a free slot takes the first waiting authorization, then
//! whatever else is waiting (`FACILITATOR_BATCH_WINDOW_MS` = 0, the
//! default: group commit, no added latency when idle) or whatever arrives
//! within the window, up to `FACILITATOR_BATCH_MAX`, and settles them in one
//! transaction:
//!
//! - one authorization: a plain `transferWithAuthorization` to the token
//!   (cheaper than through the batch contract);
//! - several: Multicall3's `aggregate3` at `FACILITATOR_BATCH_CONTRACT`,
//!   each call allowed to fail alone.
//!
//! **Urgency.** A settle whose caller waits for it (an x402 client's
//! `/settle`, a call settled before it runs) is [`Urgency::Now`]; a
//! seller's settlement of calls it has already answered says
//! [`Urgency::Background`] (HTTP header `x-settle-urgency: background`, the
//! same gRPC metadata; [`tessera_x402::facilitator::URGENCY_HEADER`]). A
//! batch takes waiting urgent settles before background ones, so a seller's
//! backlog never stands between a waiting caller and the next batch; but
//! while background settles wait, urgent ones fill at most half of it, so a
//! flood of them cannot starve the backlog (its authorizations would run
//! out: served calls unpaid).
//!
//! **Batches in flight.** A worker takes its next batch as soon as the
//! previous one's transaction is *sent* (accepted by the node, or refused),
//! not mined: up to `FACILITATOR_BATCHES_IN_FLIGHT` (default 4) of a key's
//! sent batches wait for their receipts at once, each in its own task, so
//! one key carries up to that many × `FACILITATOR_BATCH_MAX` authorizations
//! per block. With every slot taken the worker takes nothing (the other
//! keys' workers take the waiting settles); a receipt frees a slot.
//!
//! **Nonces.** Only the receipt waits overlap: a key's estimates, nonce
//! allocations, signatures and sends happen one batch after the other, the
//! next batch starting only once the previous send is answered (and the
//! allocator's lock orders them anyway, [`crate::nonces`]). So batch N+1
//! never takes a nonce before batch N's is settled either way:
//!
//! - N accepted: N+1 takes the next nonce;
//! - N refused (nothing in the node's pool): the allocator forgets its next
//!   nonce, and N+1 re-reads the pending count (mined plus pooled, so the
//!   batches still in flight count), which is N's nonce again: no gap;
//! - N's answer lost (the node may or may not hold it): likewise re-read;
//!   if N reached the pool the count includes it and N+1 follows it, if not
//!   N+1 reuses its nonce; if N arrives *after* the re-read, the node
//!   refuses one of the two as a nonce conflict, and a refused N+1 re-syncs
//!   and retries ([`crate::nonces::is_nonce_conflict`]). N's
//!   authorizations answer `unexpected_settle_error` with N's hash (it may
//!   still be mined; a settle again reconciles with it);
//! - no receipt for N in time (N may have been dropped from the node's
//!   pool, which would stall every later nonce): the allocator re-syncs at
//!   the next send, which fills such a gap and changes nothing otherwise.
//!
//! **Failing estimate.** A settle reads no chain state before its batch:
//! the batch is estimated with every call required to succeed
//! (`allowFailure` false), which simulates every transfer at once (one
//! run of the batch: [`tessera_evm::Chain::estimate_gas`]). When
//! that estimate reverts (some authorization would fail now), the worker
//! reads each authorization's state, concurrently (`authorizationState`
//! and `balanceOf`, as a settle alone checks them), and answers the bad
//! ones before sending: a spent nonce `invalid_transaction_state`, which
//! the settle then reconciles with the transaction that spent it
//! (success with that hash when it paid this payment, see
//! [`crate::settle`]); a short balance `insufficient_funds`. The rest are
//! estimated again and sent. If some transfer still fails (two payments
//! of one payer beyond its balance, say), the batch is estimated as sent
//! (`allowFailure` true) and sent anyway: the failing ones fail alone,
//! found in the receipt. When even that reverts (the contract is not a
//! Multicall3), each authorization is sent alone. When the node refuses
//! the estimate outright (say the key lacks ETH for gas) or does not
//! answer, every authorization of the batch answers
//! `unexpected_settle_error`, nothing sent. One authorization alone is
//! estimated alone, and read likewise when that estimate reverts.
//!
//! **Per-item outcomes** come from the receipt's logs: an authorization is
//! settled iff the receipt has the token's `AuthorizationUsed(from, nonce)`
//! log with its `Transfer` ([`tessera_evm::token::authorization_paid`]);
//! otherwise it failed alone, `invalid_transaction_state` with the batch's
//! hash in `transaction` (e.g. its nonce was spent, or its payer emptied
//! the wallet, between the estimate and the block). No receipt within the
//! timeout: every authorization of the batch answers
//! `unexpected_settle_error` with the hash (it may still be mined).
//!
//! **Gas.** Sent with `allowFailure` true and the usual headroom over the
//! strict estimate, which covers every transfer. Never more than a block
//! holds ([`Sender::gas_ceiling`]): a batch that would need more, at the
//! last mined batch's gas per item or by its estimate, is sent in parts
//! that fit, one after the other (whole, its estimate runs out of gas and
//! a node refuses it).
//!
//! **Ownership.** The batch's task owns the transaction: a request that
//! stops waiting (its client went away) does not stop or change the batch,
//! and the authorization stays claimed ([`crate::in_flight`]) until its
//! outcome is known.
//!
//! Without code at the batch contract at start (or with
//! `FACILITATOR_BATCH_MAX=1`) nothing is batched: each settle checks the
//! chain state itself and sends its own transaction at once, from the keys
//! in turn, as many at once as asked.
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
//!   through them: `settled`, `failed` (also those answered before sending
//!   when a batch's estimate failed), `unknown`;
//! - `tessera_facilitator_gas_per_item`: gas used by a mined settlement
//!   transaction divided by its authorizations;
//! - `tessera_facilitator_batch_waiting`: authorizations handed to the
//!   batcher and not yet taken into a batch by a key's worker;
//! - `tessera_facilitator_batches_in_flight`: settlement transactions sent
//!   from the batcher and awaiting their receipts (all keys);
//! - `tessera_facilitator_batches_split_total`: batches sent in parts
//!   because one transaction would ask for more gas than a block holds.

use alloy::primitives::{Address, B256};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tessera_evm::batch::aggregate3_calldata;
use tessera_evm::token::authorization_paid;
use tessera_evm::{Chain, ChainError};
use tessera_runtime::metrics::prometheus;
pub use tessera_x402::facilitator::{Urgency, URGENCY_HEADER};
use tessera_x402::reason;
use tokio::sync::{mpsc, oneshot, Mutex, Semaphore};
use tokio::time::Instant;

use crate::in_flight::InFlight;
use crate::send::{gas_limit, Failure, Sender};
use crate::verify::{check_state, Verified};
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
    in_flight: IntGauge,
    split: IntCounter,
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
                     failed (also those refused before sending), unknown.",
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
                "Authorizations handed to the batcher and not yet taken into a batch.",
            )
            .expect("a valid gauge"),
        ),
        in_flight: register(
            IntGauge::new(
                "tessera_facilitator_batches_in_flight",
                "Settlement transactions sent from the batcher and awaiting their receipts.",
            )
            .expect("a valid gauge"),
        ),
        split: register(
            IntCounter::new(
                "tessera_facilitator_batches_split_total",
                "Batches sent in parts because one transaction would ask for more gas than a \
                 block holds (FACILITATOR_BATCH_MAX above what the chain's blocks take).",
            )
            .expect("a valid counter"),
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
    /// Sent batches per key awaiting their receipts.
    pub(crate) in_flight: usize,
}

/// The waiting settles, urgent ones apart.
struct Queues {
    now: mpsc::UnboundedReceiver<Item>,
    background: mpsc::UnboundedReceiver<Item>,
}

impl Queues {
    /// The next waiting item, if any waits now: an urgent one first while
    /// `urgent_first`, else a background one first.
    fn try_next(&mut self, urgent_first: bool) -> Result<Item, mpsc::error::TryRecvError> {
        use mpsc::error::TryRecvError;
        let (first, second) = match urgent_first {
            true => (&mut self.now, &mut self.background),
            false => (&mut self.background, &mut self.now),
        };
        match first.try_recv() {
            Ok(item) => Ok(item),
            Err(first) => match (first, second.try_recv()) {
                (_, Ok(item)) => Ok(item),
                (TryRecvError::Disconnected, Err(TryRecvError::Disconnected)) => {
                    Err(TryRecvError::Disconnected)
                }
                _ => Err(TryRecvError::Empty),
            },
        }
    }

    /// Waits for the next item (urgent ones first while `urgent_first`);
    /// `None`: both queues are closed and empty.
    async fn next(&mut self, urgent_first: bool) -> Option<Item> {
        match urgent_first {
            true => tokio::select! {
                biased;
                Some(item) = self.now.recv() => Some(item),
                Some(item) = self.background.recv() => Some(item),
                else => None,
            },
            false => tokio::select! {
                biased;
                Some(item) = self.background.recv() => Some(item),
                Some(item) = self.now.recv() => Some(item),
                else => None,
            },
        }
    }
}

/// An authorization waiting for its batch.
struct Item {
    verified: Verified,
    urgency: Urgency,
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

/// Answers every item with `failure`.
fn fail_all(items: Vec<Item>, failure: Failure) {
    for item in items {
        item.answer(Err(failure.clone()));
    }
}

/// Hands authorizations to the workers, one per settling key.
#[derive(Debug)]
pub(crate) struct Batcher {
    now: mpsc::UnboundedSender<Item>,
    background: mpsc::UnboundedSender<Item>,
    plan: Plan,
    /// Handed over and not yet taken into a batch (this batcher's part of
    /// the `waiting` gauge).
    waiting: Arc<AtomicUsize>,
}

impl Batcher {
    /// Starts a worker per settler; they stop when the batcher is dropped
    /// (after answering what was handed to them).
    pub(crate) fn start(sender: Arc<Sender>, settlers: &[Arc<Settler>], plan: Plan) -> Self {
        let (now, now_receiver) = mpsc::unbounded_channel();
        let (background, background_receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(Queues {
            now: now_receiver,
            background: background_receiver,
        }));
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
            now,
            background,
            plan,
            waiting,
        }
    }

    pub(crate) fn plan(&self) -> Plan {
        self.plan
    }

    /// Authorizations handed over and not yet taken into a batch.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Settles `verified` in a batch, the next one unless urgent settles
    /// wait ahead of a background one; resolves with its own outcome.
    pub(crate) async fn settle(
        &self,
        verified: Verified,
        claim: InFlight,
        urgency: Urgency,
    ) -> Result<B256, Failure> {
        let (reply, answer) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        SERIES.waiting.inc();
        let item = Item {
            verified,
            urgency,
            claim,
            reply,
        };
        let queue = match urgency {
            Urgency::Now => &self.now,
            Urgency::Background => &self.background,
        };
        if queue.send(item).is_err() {
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

/// One settling key's worker, until the queue closes: takes a batch when
/// one of the key's `plan.in_flight` slots is free, and the next once that
/// one's transaction is sent; the receipt is awaited in the batch's task,
/// which holds the slot until then.
async fn work(
    queue: Arc<Mutex<Queues>>,
    settler: Arc<Settler>,
    sender: Arc<Sender>,
    plan: Plan,
    waiting: Arc<AtomicUsize>,
) {
    let slots = Arc::new(Semaphore::new(plan.in_flight));
    loop {
        // A slot before the queue: a key whose batches all await their
        // receipts leaves the waiting settles to the other keys.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let Some(items) = next_batch(&queue, plan).await else {
            break;
        };
        waiting.fetch_sub(items.len(), Ordering::SeqCst);
        SERIES.waiting.sub(items.len() as i64);
        let (sent, is_sent) = oneshot::channel::<()>();
        // In a task of its own, so that a panic fails this batch (its
        // requests are answered `unexpected_settle_error`) and not the key.
        let (sender, settler) = (sender.clone(), settler.clone());
        let batch = tokio::spawn(async move {
            let _slot = slot;
            settle_batch(&sender, &settler, plan.contract, items, sent).await;
        });
        // The next batch only once this one's send is answered (or the
        // task ended): nonces are taken one batch after the other.
        let _ = is_sent.await;
        tokio::spawn(async move {
            if let Err(error) = batch.await {
                tracing::error!(%error, "a settlement batch panicked");
            }
        });
    }
}

/// Waits for the first item, then takes what is waiting (or arrives within
/// the window) up to `max`: urgent items first, but while background ones
/// wait, urgent ones fill at most half the batch, so a flood of urgent
/// settles (every call of an overloaded seller settled before it runs)
/// cannot starve the queue of calls already served, whose authorizations
/// run out. `None`: the queues are closed and empty.
async fn next_batch(queue: &Mutex<Queues>, plan: Plan) -> Option<Vec<Item>> {
    use mpsc::error::TryRecvError;
    let urgent_share = plan.max.div_ceil(2);
    // Held while the batch fills: the other free workers wait for the next.
    let mut queue = queue.lock().await;
    let first = queue.next(true).await?;
    let deadline = Instant::now() + plan.window;
    let mut urgent = usize::from(first.urgency == Urgency::Now);
    let mut items = vec![first];
    while items.len() < plan.max {
        let urgent_first = urgent < urgent_share;
        let item = match queue.try_next(urgent_first) {
            Ok(item) => item,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) if plan.window.is_zero() => break,
            Err(TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, queue.next(urgent_first)).await {
                    Ok(Some(item)) => item,
                    Ok(None) | Err(_) => break,
                }
            }
        };
        urgent += usize::from(item.urgency == Urgency::Now);
        items.push(item);
    }
    Some(items)
}

/// Settles `items` from `settler` and answers each: sends their
/// transaction(s), drops `sent` (the worker then takes its next batch),
/// and waits for the receipts.
async fn settle_batch(
    sender: &Sender,
    settler: &Settler,
    contract: Address,
    items: Vec<Item>,
    sent: oneshot::Sender<()>,
) {
    let pending = send_batch(sender, settler, contract, items).await;
    drop(sent);
    // One after the other: one key's transactions are mined in nonce order.
    for transaction in pending {
        transaction.confirm(sender, settler).await;
    }
}

/// A settlement transaction sent from the batcher, awaiting its receipt.
struct Pending {
    hash: B256,
    items: Vec<Item>,
    /// A plain `transferWithAuthorization` (its status is its outcome), not
    /// a batch (its logs are).
    alone: bool,
    /// Counted in `tessera_facilitator_batches_in_flight` while it lives.
    _counted: InFlightCount,
}

struct InFlightCount;

impl InFlightCount {
    fn new() -> Self {
        SERIES.in_flight.inc();
        InFlightCount
    }
}

impl Drop for InFlightCount {
    fn drop(&mut self) {
        SERIES.in_flight.dec();
    }
}

impl Pending {
    fn new(hash: B256, items: Vec<Item>, alone: bool) -> Self {
        Pending {
            hash,
            items,
            alone,
            _counted: InFlightCount::new(),
        }
    }

    /// Waits for the receipt and answers each authorization from it.
    async fn confirm(self, sender: &Sender, settler: &Settler) {
        let Pending {
            hash, items, alone, ..
        } = self;
        let count = items.len();
        let receipt = match receipt_or_resync(sender, settler, hash).await {
            Ok(receipt) => receipt,
            Err(failure) => {
                record(UNKNOWN, count, 0, None);
                tracing::warn!(tx = %hash, batch = count, "no receipt for a settlement in time");
                return fail_all(items, failure);
            }
        };
        if alone {
            let item = items.into_iter().next().expect("one item");
            return item.answer(outcome_alone(hash, &receipt));
        }
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
                        format!(
                            "the batch settlement transaction reverted on chain in block {block}"
                        ),
                    )
                    .with_tx(hash))
                } else {
                    Err(Failure::new(
                        reason::INVALID_TRANSACTION_STATE,
                        format!(
                            "transferWithAuthorization failed inside the batch settlement \
                             transaction (block {block}): this authorization was not used, \
                             nothing was paid"
                        ),
                    )
                    .with_tx(hash))
                }
            })
            .collect();
        let outcome = if receipt.status() { MINED } else { REVERTED };
        record(outcome, count, settled, Some(&receipt));
        sender.mined(receipt.gas_used, count);
        tracing::info!(
            from = %receipt.from,
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
}

/// The receipt of `hash`; when none comes in time, the key's next send
/// re-reads its nonce from the chain: had the node dropped the transaction,
/// every later nonce of the key would wait behind the gap.
async fn receipt_or_resync(
    sender: &Sender,
    settler: &Settler,
    hash: B256,
) -> Result<TransactionReceipt, Failure> {
    let receipt = sender.wait_for_receipt(hash).await;
    if receipt.is_err() {
        settler.nonces.resync().await;
    }
    receipt
}

/// Sends `items` from `settler` in one transaction (one alone; each alone
/// when the contract refuses them), answering those that cannot be sent.
async fn send_batch(
    sender: &Sender,
    settler: &Settler,
    contract: Address,
    items: Vec<Item>,
) -> Vec<Pending> {
    if items.len() == 1 {
        let item = items.into_iter().next().expect("one item");
        return send_one(sender, settler, item).await.into_iter().collect();
    }
    let ceiling = sender.gas_ceiling().await;
    let within = sender.items_within(ceiling);
    if items.len() > within {
        return send_in_parts(sender, settler, contract, items, within).await;
    }
    let chain = &sender.chain;
    let from = settler.key.address();
    let request = |items: &[Item], allow_failure: bool| {
        let calls = items
            .iter()
            .map(|item| (item.verified.token, item.verified.transfer_calldata()));
        TransactionRequest::default()
            .from(from)
            .to(contract)
            .input(aggregate3_calldata(calls, allow_failure).into())
    };
    let not_sent = |items: Vec<Item>, error: ChainError| {
        record(NOT_SENT, items.len(), 0, None);
        fail_all(
            items,
            Failure::new(reason::UNEXPECTED_SETTLE_ERROR, error.to_string()),
        );
        Vec::new()
    };
    let items = match chain.estimate_gas(request(&items, false)).await {
        Ok(gas) if gas_limit(gas) > ceiling => {
            let half = items.len().div_ceil(2);
            return send_in_parts(sender, settler, contract, items, half).await;
        }
        Ok(gas) => {
            let request = request(&items, true);
            return send_many(sender, settler, request, gas, items).await;
        }
        Err(error @ ChainError::Unavailable(_)) => return not_sent(items, error),
        Err(strict) => {
            // Some authorization would fail now: which, and why, is read
            // only now.
            let count = items.len();
            tracing::info!(batch = count, error = %strict, "a batch item would fail now; reading each one's state");
            let items = screen(chain, items).await;
            match items.len() {
                0 => return Vec::new(),
                1 => {
                    let item = items.into_iter().next().expect("one item");
                    return send_one(sender, settler, item).await.into_iter().collect();
                }
                left if left < count => match chain.estimate_gas(request(&items, false)).await {
                    Ok(gas) => {
                        let request = request(&items, true);
                        return send_many(sender, settler, request, gas, items).await;
                    }
                    Err(error @ ChainError::Unavailable(_)) => return not_sent(items, error),
                    Err(_) => items,
                },
                _ => items,
            }
        }
    };
    // Every state read looked right and still some transfer fails (two
    // payments of one payer beyond its balance, a change since the reads):
    // each may fail alone.
    tracing::info!(
        batch = items.len(),
        "a batch item would still fail; sending the batch with it failing alone"
    );
    let request = request(&items, true);
    match chain.estimate_gas(request.clone()).await {
        Ok(gas) => send_many(sender, settler, request, gas, items).await,
        // No answer, or the node refused our transaction itself (e.g. the
        // key lacks ETH for gas): ours, not the payers'.
        Err(error @ (ChainError::Unavailable(_) | ChainError::Refused(_))) => {
            not_sent(items, error)
        }
        Err(error) => {
            tracing::warn!(
                contract = %contract,
                %error,
                "the batch contract refused a batch whose calls may fail alone; settling each alone"
            );
            let mut pending = Vec::with_capacity(items.len());
            for item in items {
                pending.extend(send_one(sender, settler, item).await);
            }
            pending
        }
    }
}

/// Sends `items` as batches of at most `part` each, one after the other
/// (a batch too big for a block would never be mined).
fn send_in_parts<'a>(
    sender: &'a Sender,
    settler: &'a Settler,
    contract: Address,
    mut items: Vec<Item>,
    part: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Pending>> + Send + 'a>> {
    Box::pin(async move {
        SERIES.split.inc();
        tracing::info!(
            batch = items.len(),
            part,
            "a batch would ask for more gas than a block holds; sending it in parts"
        );
        let mut pending = Vec::new();
        while !items.is_empty() {
            let rest = items.split_off(part.min(items.len()));
            pending.extend(send_batch(sender, settler, contract, items).await);
            items = rest;
        }
        pending
    })
}

/// Sends the batch `request` of `items` with `gas`.
async fn send_many(
    sender: &Sender,
    settler: &Settler,
    request: TransactionRequest,
    gas: u64,
    items: Vec<Item>,
) -> Vec<Pending> {
    match sender.send(settler, request, gas).await {
        Ok(hash) => {
            tracing::debug!(from = %settler.key.address(), tx = %hash, batch = items.len(), "settlement batch sent");
            vec![Pending::new(hash, items, false)]
        }
        Err(failure) => {
            let outcome = if failure.sent() { UNKNOWN } else { NOT_SENT };
            record(outcome, items.len(), 0, None);
            fail_all(items, failure);
            Vec::new()
        }
    }
}

/// Sends one authorization alone (`transferWithAuthorization` to the
/// token); when its estimate reverts, reads its state for the reason.
async fn send_one(sender: &Sender, settler: &Settler, item: Item) -> Option<Pending> {
    let request = item.verified.transfer_request(settler.key.address());
    let gas = match sender.chain.estimate_gas(request.clone()).await {
        Ok(gas) => gas,
        Err(error @ ChainError::Unavailable(_)) => {
            record(NOT_SENT, 1, 0, None);
            item.answer(Err(Failure::new(
                reason::UNEXPECTED_SETTLE_ERROR,
                error.to_string(),
            )));
            return None;
        }
        Err(ChainError::Reverted(text) | ChainError::Refused(text)) => {
            let item = screen(&sender.chain, vec![item]).await.pop()?;
            record(NOT_SENT, 1, 0, None);
            item.answer(Err(Failure::new(
                reason::INVALID_TRANSACTION_STATE,
                format!("the transfer would revert: {text}"),
            )));
            return None;
        }
    };
    match sender.send(settler, request, gas).await {
        Ok(hash) => Some(Pending::new(hash, vec![item], true)),
        Err(failure) => {
            record(if failure.sent() { UNKNOWN } else { NOT_SENT }, 1, 0, None);
            item.answer(Err(failure));
            None
        }
    }
}

/// Reads each item's chain state concurrently (nonce unused, balance: what
/// a settle alone checks before sending), answers those that cannot settle
/// with their reason, and returns the others. A spent nonce answers
/// `invalid_transaction_state` (nothing sent), which the settle reconciles
/// with the transaction that spent it.
async fn screen(chain: &Chain, items: Vec<Item>) -> Vec<Item> {
    let mut reads = tokio::task::JoinSet::new();
    for (index, item) in items.iter().enumerate() {
        let (chain, verified) = (chain.clone(), item.verified.clone());
        reads.spawn(async move { (index, check_state(&chain, &verified, None).await) });
    }
    let mut states = vec![None; items.len()];
    while let Some(read) = reads.join_next().await {
        if let Ok((index, state)) = read {
            states[index] = Some(state);
        }
    }
    let mut kept = Vec::with_capacity(items.len());
    let mut refused = 0;
    for (item, state) in items.into_iter().zip(states) {
        let rejection = match state {
            Some(Ok(())) => {
                kept.push(item);
                continue;
            }
            Some(Err(rejection)) => rejection,
            None => {
                item.answer(Err(Failure::new(
                    reason::UNEXPECTED_SETTLE_ERROR,
                    "reading the authorization's state failed: settle again later",
                )));
                refused += 1;
                continue;
            }
        };
        let reason = if rejection.reason == reason::UNEXPECTED_VERIFY_ERROR {
            reason::UNEXPECTED_SETTLE_ERROR
        } else {
            rejection.reason
        };
        tracing::info!(payer = %item.verified.payer(), reason, message = %rejection.message, "batch item refused before sending");
        item.answer(Err(Failure::new(reason, rejection.message)));
        refused += 1;
    }
    SERIES
        .items
        .with_label_values(&[FAILED])
        .inc_by(refused as u64);
    kept
}

/// One authorization in its own transaction (`transferWithAuthorization`
/// to the token), from `settler`: estimate, send, wait for the receipt.
/// (Without batching: the settle has read the chain state already.)
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
    let receipt = receipt_or_resync(sender, settler, hash)
        .await
        .inspect_err(|_| record(UNKNOWN, 1, 0, None))?;
    outcome_alone(hash, &receipt)
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

/// The outcome of a transfer sent alone, from its receipt (counted).
fn outcome_alone(hash: B256, receipt: &TransactionReceipt) -> Result<B256, Failure> {
    if receipt.status() {
        record(MINED, 1, 1, Some(receipt));
        Ok(hash)
    } else {
        record(REVERTED, 1, 0, Some(receipt));
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
