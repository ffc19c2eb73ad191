//! Settlements batched on chain (issue #12): the facilitator settles many
//! authorizations in one Multicall3 `aggregate3` transaction, several
//! batches in flight per settling key, and a batched settle reads no chain
//! state of its own (its batch's estimate simulates every transfer). Real
//! anvil, our EIP-3009 token, and our
//! `BatchCall` installed at Multicall3's canonical address (as on Base), so
//! the facilitator runs with its default batch settings. No mocks.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_evm::batch::MULTICALL3_ADDRESS;
use tessera_evm::token::authorization_paid;
use tessera_facilitator::{Facilitator, FacilitatorConfig, SettlementKey, Urgency};
use tessera_tests::chain::{
    facilitator_request, payload_v2, Chain, FacilitatorServer, BUYER_FUNDS,
};
use tessera_x402::eip3009::TransferWithAuthorization;
use tessera_x402::facilitator::{FacilitatorRequest, SettleResponse};
use tessera_x402::{reason, Requirements};

const PRICE: u64 = 1_000; // 0.001 USDC

/// One signed payment of `PRICE` to `chain.pay_to`.
struct Payment {
    authorization: TransferWithAuthorization,
    request: Value,
}

impl Payment {
    fn new(chain: &Chain, buyer: &PrivateKeySigner, requirements: &Requirements) -> Self {
        let authorization = chain.authorization(buyer.address(), requirements);
        let signature = chain.sign(buyer, &authorization);
        let request = facilitator_request(
            &payload_v2(requirements, &authorization, &signature),
            requirements,
        );
        Payment {
            authorization,
            request,
        }
    }

    fn facilitator_request(&self) -> FacilitatorRequest {
        serde_json::from_value(self.request.clone()).unwrap()
    }
}

/// `count` payments from the buyers in turn.
fn payments(chain: &Chain, count: usize) -> Vec<Payment> {
    let requirements = chain.requirements(chain.pay_to, PRICE);
    (0..count)
        .map(|i| Payment::new(chain, &chain.buyers[i % chain.buyers.len()], &requirements))
        .collect()
}

/// Settles every payment at once through `facilitator`, each its own task.
async fn settle_all(facilitator: &Arc<Facilitator>, payments: &[Payment]) -> Vec<SettleResponse> {
    let tasks: Vec<_> = payments
        .iter()
        .map(|payment| {
            let facilitator = facilitator.clone();
            let request = payment.facilitator_request();
            tokio::spawn(async move { facilitator.settle(&request).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

fn hash_of(answer: &SettleResponse) -> B256 {
    answer
        .transaction
        .parse()
        .unwrap_or_else(|_| panic!("a transaction hash in {answer:?}"))
}

/// The answer says its transaction was sent and may still be mined.
fn assert_may_still_be_mined(answer: &SettleResponse) {
    assert!(
        answer
            .error_message
            .as_deref()
            .unwrap()
            .contains("may still be mined"),
        "{answer:?}"
    );
}

/// The distinct transactions of successful answers, with their receipts.
async fn receipts(chain: &Chain, answers: &[SettleResponse]) -> BTreeMap<B256, TransactionReceipt> {
    let mut receipts = BTreeMap::new();
    for answer in answers {
        let hash = hash_of(answer);
        if let std::collections::btree_map::Entry::Vacant(entry) = receipts.entry(hash) {
            entry.insert(chain.receipt(hash).await.expect("mined"));
        }
    }
    receipts
}

/// Asserts every transaction `sender` ever sent is among `hashes`, and their
/// nonces are 0, 1, 2, … with no gap.
async fn assert_consecutive_nonces(chain: &Chain, sender: Address, hashes: &BTreeSet<B256>) {
    let mut nonces = Vec::new();
    for hash in hashes {
        nonces.push(chain.transaction_nonce(*hash).await);
    }
    nonces.sort_unstable();
    let count = chain.transaction_count(sender).await;
    assert_eq!(
        nonces,
        (0..count).collect::<Vec<_>>(),
        "{sender}: the nonces of its settlement transactions are consecutive from 0, and it sent nothing else"
    );
}

/// Waits until `facilitator` holds `count` settles waiting for their batch.
async fn until_waiting(facilitator: &Facilitator, count: usize) {
    let started = Instant::now();
    while facilitator.settlements_waiting() < count {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "only {} settles reached the batcher",
            facilitator.settlements_waiting()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Batch settings from the environment variables' spellings.
fn batch(config: &mut FacilitatorConfig, max: &str, window_ms: &str) {
    config.batch =
        tessera_facilitator::BatchConfig::parse(Some(max), Some(window_ms), None).unwrap();
}

/// (a) and (g): 50 concurrent `/settle` with a block a second settle in a
/// handful of transactions, every balance exact, every authorization used
/// once; settling a batched payment again reconciles with its batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_settles_share_a_few_transactions() {
    const ITEMS: usize = 50;
    const PAYERS: usize = 10;
    let chain = Chain::start_with_buyers(PAYERS).await;
    chain.install_batch_call().await;
    chain.set_block_time(1).await;
    let server = FacilitatorServer::start(chain.facilitator_config()).await;
    assert_eq!(server.facilitator.batch_max(), 100, "the defaults batch");
    let sender = chain.facilitator_key.address();
    let payments = payments(&chain, ITEMS);

    let client = reqwest::Client::new();
    let started = Instant::now();
    let posts = payments.iter().map(|payment| {
        let client = client.clone();
        let url = format!("{}/settle", server.http_url);
        let body = payment.request.clone();
        async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<SettleResponse>().await.unwrap()
        }
    });
    let answers = futures::future::join_all(posts).await;
    let took = started.elapsed();

    for (payment, answer) in payments.iter().zip(&answers) {
        assert!(answer.success, "{answer:?}");
        assert_eq!(
            answer.payer.as_deref(),
            Some(payment.authorization.from.to_checksum(None).as_str())
        );
        assert!(
            chain
                .authorization_used(payment.authorization.from, payment.authorization.nonce)
                .await
        );
    }
    let receipts = receipts(&chain, &answers).await;
    for (payment, answer) in payments.iter().zip(&answers) {
        let receipt = &receipts[&hash_of(answer)];
        assert!(
            authorization_paid(receipt.logs(), chain.token, &payment.authorization),
            "the receipt of {} shows this payment",
            answer.transaction
        );
    }
    let mut sizes = BTreeMap::new();
    for answer in &answers {
        *sizes.entry(hash_of(answer)).or_insert(0usize) += 1;
    }
    for (hash, receipt) in &receipts {
        assert!(receipt.status());
        assert_eq!(receipt.from, sender);
        let expected_to = if sizes[hash] == 1 {
            chain.token
        } else {
            MULTICALL3_ADDRESS
        };
        assert_eq!(receipt.to, Some(expected_to), "a batch of {}", sizes[hash]);
    }
    println!(
        "{ITEMS} concurrent settles, 1 s blocks: {} transactions, items per tx {:?}, gas per item {:?}, {:?} in all",
        receipts.len(),
        sizes.values().collect::<Vec<_>>(),
        receipts
            .iter()
            .map(|(hash, r)| r.gas_used / sizes[hash] as u64)
            .collect::<Vec<_>>(),
        took
    );
    assert!(
        receipts.len() <= 5,
        "{ITEMS} settles took {} transactions",
        receipts.len()
    );
    assert_consecutive_nonces(&chain, sender, &receipts.keys().copied().collect()).await;
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        U256::from(PRICE * ITEMS as u64)
    );
    for buyer in &chain.buyers {
        assert_eq!(
            chain.balance_of(buyer.address()).await,
            U256::from(BUYER_FUNDS - PRICE * (ITEMS / PAYERS) as u64)
        );
    }

    // (g) Settling batched payments again reconciles with their batch: the
    // same hash, nothing sent.
    let sent = chain.transaction_count(sender).await;
    let batched = answers
        .iter()
        .position(|a| sizes[&hash_of(a)] > 1)
        .expect("some payment was batched");
    for index in [batched, ITEMS - 1] {
        let again = server
            .facilitator
            .settle(&payments[index].facilitator_request())
            .await;
        assert!(again.success, "{again:?}");
        assert_eq!(again.transaction, answers[index].transaction);
    }
    assert_eq!(chain.transaction_count(sender).await, sent, "nothing sent");
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        U256::from(PRICE * ITEMS as u64)
    );

    assert_eq!(server.facilitator.settlements_waiting(), 0);
    // The series (process-wide: the other tests here add to them).
    let metrics = tessera_runtime::metrics::render();
    for series in [
        "tessera_facilitator_batch_size_count",
        "tessera_facilitator_batches_total{outcome=\"mined\"}",
        "tessera_facilitator_batch_items_total{outcome=\"settled\"}",
        "tessera_facilitator_gas_per_item_count",
        "tessera_facilitator_batch_waiting ",
        "tessera_facilitator_batches_in_flight ",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
}

/// (b) One batch of eight, all past their local checks, some of which can
/// no longer settle when the batch goes out: one payer spends the payment's
/// nonce on another transfer, another empties its wallet, a third keeps
/// funds for only one of its two payments. The batch's estimate fails, so
/// the worker reads each item's state: the spent nonce answers
/// `invalid_transaction_state` (reconciled: spent by a transfer that did not
/// pay it) and the empty wallet `insufficient_funds`, both before sending,
/// with no transaction. The third payer's two each look fundable alone, so
/// the rest go out with each call allowed to fail: one of the two settles,
/// the other fails alone with the batch's hash. An authorization whose
/// request is dropped while it waits still settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_items_get_their_reason_and_a_transfer_that_still_fails_fails_alone() {
    let chain = Chain::start_with_buyers(7).await;
    chain.install_batch_call().await;
    chain.set_block_time(1).await;
    let mut config = chain.facilitator_config();
    batch(&mut config, "100", "5000");
    let facilitator = Arc::new(Facilitator::connect(&config).await.unwrap());
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let (diverter, drained, short, abandoned) = (0, 1, 2, 6);
    let mut payments: Vec<Payment> = chain
        .buyers
        .iter()
        .map(|buyer| Payment::new(&chain, buyer, &requirements))
        .collect();
    payments.push(Payment::new(&chain, &chain.buyers[short], &requirements));
    let short_pair = [short, payments.len() - 1];

    // The batch is open for 5 s: every settle passes its checks and waits.
    let settles: Vec<_> = payments
        .iter()
        .map(|payment| spawn_settle(&facilitator, payment))
        .collect();
    until_waiting(&facilitator, payments.len()).await;

    // Then, before the batch is sent: payer 0 spends the payment's nonce on
    // a transfer of 1 to itself; payer 1 moves all its tokens away; payer 2
    // keeps one payment's worth; the request for payment 6 is dropped.
    let mut diversion = payments[diverter].authorization.clone();
    diversion.to = diversion.from;
    diversion.value = U256::from(1);
    let diversion_signature = chain.sign(&chain.buyers[diverter], &diversion);
    let sink = PrivateKeySigner::random().address();
    let (diverted, (), ()) = tokio::join!(
        chain.execute_authorization(&diversion, diversion_signature),
        chain.transfer_plain(&chain.buyers[drained], sink, U256::from(BUYER_FUNDS)),
        chain.transfer_plain(&chain.buyers[short], sink, U256::from(BUYER_FUNDS - PRICE)),
    );
    assert!(diverted.status());
    settles[abandoned].abort();
    assert!(
        facilitator.settlements_waiting() == payments.len(),
        "the batch was still open after the transfers"
    );

    let mut answers = Vec::new();
    for (index, task) in settles.into_iter().enumerate() {
        match task.await {
            Ok(answer) => answers.push(Some(answer)),
            Err(error) => {
                assert!(error.is_cancelled() && index == abandoned, "{error}");
                answers.push(None);
            }
        }
    }
    let batch_hash = hash_of(answers[3].as_ref().unwrap());
    let receipt = chain.receipt(batch_hash).await.unwrap();
    assert!(receipt.status(), "the batch went through");
    assert_eq!(receipt.to, Some(MULTICALL3_ADDRESS));
    let answer = |index: usize| answers[index].as_ref().unwrap();

    let diverted = answer(diverter);
    assert!(!diverted.success, "{diverted:?}");
    assert_eq!(
        diverted.error_reason.as_deref(),
        Some(reason::INVALID_TRANSACTION_STATE),
        "{diverted:?}"
    );
    assert_eq!(diverted.transaction, "", "not sent: {diverted:?}");
    assert!(
        diverted
            .error_message
            .as_deref()
            .unwrap()
            .contains("did not pay this payment"),
        "{diverted:?}"
    );
    let drained_answer = answer(drained);
    assert!(!drained_answer.success, "{drained_answer:?}");
    assert_eq!(
        drained_answer.error_reason.as_deref(),
        Some(reason::INSUFFICIENT_FUNDS),
        "{drained_answer:?}"
    );
    assert_eq!(
        drained_answer.transaction, "",
        "not sent: {drained_answer:?}"
    );

    let (paid, unpaid): (Vec<usize>, Vec<usize>) =
        short_pair.iter().partition(|&&index| answer(index).success);
    assert_eq!(
        (paid.len(), unpaid.len()),
        (1, 1),
        "one of the short payer's two: {:?} {:?}",
        answer(short_pair[0]),
        answer(short_pair[1])
    );
    let failed_alone = answer(unpaid[0]);
    assert_eq!(failed_alone.transaction, batch_hash.to_string());
    assert_eq!(
        failed_alone.error_reason.as_deref(),
        Some(reason::INVALID_TRANSACTION_STATE),
        "{failed_alone:?}"
    );
    assert!(
        failed_alone
            .error_message
            .as_deref()
            .unwrap()
            .contains("inside the batch"),
        "{failed_alone:?}"
    );
    for index in [3, 4, 5, paid[0]] {
        let settled = answer(index);
        assert!(settled.success, "payment {index}: {settled:?}");
        assert_eq!(settled.transaction, batch_hash.to_string());
    }
    // The abandoned payment was in the same batch and settled.
    assert!(authorization_paid(
        receipt.logs(),
        chain.token,
        &payments[abandoned].authorization
    ));
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        U256::from(5 * PRICE),
        "three answered payments, one of the short payer's two, and the abandoned one"
    );
    assert_eq!(
        chain.balance_of(chain.buyers[diverter].address()).await,
        U256::from(BUYER_FUNDS),
        "the diverter paid itself"
    );
    assert_eq!(
        chain.balance_of(chain.buyers[short].address()).await,
        U256::ZERO
    );
    assert_eq!(
        chain.balance_of(sink).await,
        U256::from(2 * BUYER_FUNDS - PRICE)
    );
    assert_eq!(
        chain
            .transaction_count(chain.facilitator_key.address())
            .await,
        1,
        "one transaction for the eight"
    );
    // A settle of the diverted payment again: its nonce was spent by a
    // transfer that did not pay it.
    let again = facilitator
        .settle(&payments[diverter].facilitator_request())
        .await;
    assert!(!again.success, "{again:?}");
    assert_eq!(
        again.error_reason.as_deref(),
        Some(reason::INVALID_TRANSACTION_STATE)
    );
}

/// (c) Two settling keys under load, a block a second: both send, each
/// key's nonces consecutive with no gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_keys_pipeline_batches_with_gapless_nonces() {
    let chain = Chain::start_with_buyers(10).await;
    chain.install_batch_call().await;
    let second = chain.new_gas_key().await;
    chain.set_block_time(1).await;
    let mut config = chain.facilitator_config();
    config.extra_settlement_keys = vec![SettlementKey::new(second.clone())];
    let facilitator = Arc::new(Facilitator::connect(&config).await.unwrap());
    let keys = [chain.facilitator_key.address(), second.address()];
    assert_eq!(facilitator.settlement_addresses(), keys);
    let supported = serde_json::to_value(facilitator.supported()).unwrap();
    assert_eq!(
        supported["signers"]["eip155:*"],
        serde_json::json!([keys[0].to_checksum(None), keys[1].to_checksum(None)])
    );

    // Four waves of ten, 300 ms apart: while one key's batch is being
    // mined, the other takes the next.
    let payments = payments(&chain, 40);
    let mut waves = Vec::new();
    for wave in payments.chunks(10) {
        let facilitator = facilitator.clone();
        let requests: Vec<_> = wave.iter().map(Payment::facilitator_request).collect();
        waves.push(tokio::spawn(async move {
            let settles = requests.iter().map(|request| facilitator.settle(request));
            futures::future::join_all(settles).await
        }));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut answers = Vec::new();
    for wave in waves {
        answers.extend(wave.await.unwrap());
    }
    for answer in &answers {
        assert!(answer.success, "{answer:?}");
    }
    let receipts = receipts(&chain, &answers).await;
    let mut by_key: BTreeMap<Address, BTreeSet<B256>> = BTreeMap::new();
    for (hash, receipt) in &receipts {
        assert!(keys.contains(&receipt.from), "sent from {}", receipt.from);
        by_key.entry(receipt.from).or_default().insert(*hash);
    }
    println!(
        "40 settles in 4 waves, 2 keys: {} transactions, per key {:?}",
        receipts.len(),
        by_key.values().map(BTreeSet::len).collect::<Vec<_>>()
    );
    for key in keys {
        let hashes = by_key.get(&key).cloned().unwrap_or_default();
        assert!(!hashes.is_empty(), "{key} sent no settlement");
        assert_consecutive_nonces(&chain, key, &hashes).await;
    }
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(40 * PRICE));
}

/// A batch that would ask for more gas than a block holds is sent in parts
/// that each fit (a transaction asking for more is refused by the node or
/// never mined): on a chain whose blocks hold 1,500,000 gas, 60 settles
/// taken in one batch (about 2.5M gas) go out in a few transactions, each
/// asking for at most the block's limit, none settled alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_bigger_than_a_block_is_sent_in_parts_that_fit() {
    const ITEMS: usize = 60;
    const BLOCK_GAS: u64 = 1_500_000;
    let chain = Chain::start_with_buyers(10).await;
    chain.install_batch_call().await;
    chain.set_block_gas_limit(BLOCK_GAS).await;
    assert_eq!(chain.block_gas_limit().await, BLOCK_GAS);
    let mut config = chain.facilitator_config();
    batch(&mut config, "100", "500");
    let facilitator = Arc::new(Facilitator::connect(&config).await.unwrap());

    let answers = settle_all(&facilitator, &payments(&chain, ITEMS)).await;
    for answer in &answers {
        assert!(answer.success, "{answer:?}");
    }
    let receipts = receipts(&chain, &answers).await;
    println!(
        "{ITEMS} settles under {BLOCK_GAS} gas a block: {} transactions",
        receipts.len()
    );
    assert!(
        (2..=6).contains(&receipts.len()),
        "{} transactions: split in parts, not sent whole nor each alone",
        receipts.len()
    );
    for (hash, receipt) in &receipts {
        assert!(receipt.status(), "{hash} reverted");
        assert!(
            chain.transaction_gas_limit(*hash).await <= BLOCK_GAS,
            "{hash} asked for more gas than a block holds"
        );
    }
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        U256::from(ITEMS as u64 * PRICE)
    );
    assert!(
        metric("tessera_facilitator_batches_split_total") >= 1,
        "the split is counted for operators"
    );
}

/// (d) and (g): a facilitator restarted on the same keys continues at the
/// right nonces, counting a batch its predecessor left in the pool, and a
/// settle of a payment from that batch reconciles with it once mined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_continues_each_keys_nonces() {
    let chain = Chain::start_with_buyers(8).await;
    chain.install_batch_call().await;
    let second = chain.new_gas_key().await;
    let keys = [chain.facilitator_key.address(), second.address()];
    let mut config = chain.facilitator_config();
    config.extra_settlement_keys = vec![SettlementKey::new(second.clone())];
    config.receipt_timeout = Duration::from_secs(2);
    batch(&mut config, "100", "300");

    let first = Arc::new(Facilitator::connect(&config).await.unwrap());
    let mut answers = settle_all(&first, &payments(&chain, 8)).await;
    assert!(answers.iter().all(|a| a.success), "{answers:?}");
    // Then the chain stops mining: a batch goes out, no receipt comes back.
    chain.set_automine(false).await;
    let stuck = payments(&chain, 6);
    let pending = settle_all(&first, &stuck).await;
    let pending_hash = hash_of(&pending[0]);
    for answer in &pending {
        assert!(!answer.success, "{answer:?}");
        assert_eq!(
            answer.error_reason.as_deref(),
            Some(reason::UNEXPECTED_SETTLE_ERROR)
        );
        assert_may_still_be_mined(answer);
        assert_eq!(hash_of(answer), pending_hash, "one batch");
    }
    drop(first);

    // The restarted facilitator counts the pooled batch.
    let restarted = Arc::new(Facilitator::connect(&config).await.unwrap());
    for (key, next) in restarted.next_settlement_nonces().await {
        let pending_count = chain
            .provider()
            .get_transaction_count(key)
            .pending()
            .await
            .unwrap();
        assert_eq!(next, Some(pending_count), "{key}");
    }
    let mined: u64 = {
        let mut total = 0;
        for key in keys {
            total += chain.transaction_count(key).await;
        }
        total
    };
    let allocated: u64 = restarted
        .next_settlement_nonces()
        .await
        .iter()
        .map(|(_, next)| next.unwrap())
        .sum();
    assert_eq!(allocated, mined + 1, "the pooled batch's nonce is taken");
    chain.mine().await;
    chain.set_automine(true).await;
    assert!(chain.receipt(pending_hash).await.unwrap().status());

    let later = settle_all(&restarted, &payments(&chain, 8)).await;
    assert!(later.iter().all(|a| a.success), "{later:?}");
    answers.extend(later);

    // (g) The stuck payments, settled again: reconciled with the batch.
    let again = settle_all(&restarted, &stuck).await;
    for answer in &again {
        assert!(answer.success, "{answer:?}");
        assert_eq!(hash_of(answer), pending_hash);
    }
    answers.extend(again);
    let receipts = receipts(&chain, &answers).await;
    for key in keys {
        let hashes = receipts
            .iter()
            .filter(|(_, r)| r.from == key)
            .map(|(h, _)| *h)
            .collect();
        assert_consecutive_nonces(&chain, key, &hashes).await;
    }
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(22 * PRICE));
}

/// Waits until `key` has sent `count` transactions (mined or in the pool).
async fn until_sent(chain: &Chain, key: Address, count: u64) {
    let started = Instant::now();
    while chain
        .provider()
        .get_transaction_count(key)
        .pending()
        .await
        .unwrap()
        < count
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{key} sent fewer than {count}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn spawn_settle(
    facilitator: &Arc<Facilitator>,
    payment: &Payment,
) -> tokio::task::JoinHandle<SettleResponse> {
    let facilitator = facilitator.clone();
    let request = payment.facilitator_request();
    tokio::spawn(async move { facilitator.settle(&request).await })
}

/// A settle of an authorization already waiting for its batch (a retry
/// whose first attempt is still queued behind a busy key) follows the first
/// and answers its transaction, instead of failing as a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_settle_of_a_waiting_authorization_answers_the_first_ones_outcome() {
    let chain = Chain::start_with_buyers(2).await;
    chain.install_batch_call().await;
    // One batch in flight: the only key is busy while its batch waits.
    let mut config = chain.facilitator_config();
    config.batch.in_flight = 1;
    let facilitator = Arc::new(Facilitator::connect(&config).await.unwrap());
    let payments = payments(&chain, 2);
    // The only key is kept busy: its transaction waits in the pool.
    chain.set_automine(false).await;
    let busy = spawn_settle(&facilitator, &payments[0]);
    until_sent(&chain, chain.facilitator_key.address(), 1).await;
    let first = spawn_settle(&facilitator, &payments[1]);
    until_waiting(&facilitator, 1).await;
    let again = spawn_settle(&facilitator, &payments[1]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !again.is_finished(),
        "the second settle waits for the first"
    );
    assert_eq!(facilitator.settlements_waiting(), 1, "nothing more queued");

    chain.set_automine(true).await;
    chain.mine().await;
    let busy = busy.await.unwrap();
    assert!(busy.success, "{busy:?}");
    let (first, again) = (first.await.unwrap(), again.await.unwrap());
    assert!(first.success, "{first:?}");
    assert!(again.success, "{again:?}");
    assert_eq!(again.transaction, first.transaction);
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(2 * PRICE));
}

/// Two facilitators (replicas) settle one authorization at once, both past
/// their checks before either sends: the one whose transfer can no longer
/// succeed (the other spent the nonce) answers the other's transaction, not
/// a failure (which would make a debtor of a payer who paid).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_that_lost_the_race_to_another_replica_answers_the_winners_transaction() {
    let chain = Chain::start_with_buyers(3).await;
    chain.install_batch_call().await;
    let second_key = chain.new_gas_key().await;
    // One batch in flight per key: a key is busy while its batch waits.
    let mut first_config = chain.facilitator_config();
    first_config.batch.in_flight = 1;
    let mut second_config = first_config.clone();
    second_config.settlement_key = Some(SettlementKey::new(second_key.clone()));
    let replicas = [
        Arc::new(Facilitator::connect(&first_config).await.unwrap()),
        Arc::new(Facilitator::connect(&second_config).await.unwrap()),
    ];
    let payments = payments(&chain, 3);
    // Each replica's key is kept busy, so both settles of the shared
    // payment pass their checks and wait for their batches.
    chain.set_automine(false).await;
    let mut busy = Vec::new();
    for (replica, key) in replicas
        .iter()
        .zip([chain.facilitator_key.address(), second_key.address()])
    {
        busy.push(spawn_settle(replica, &payments[busy.len()]));
        until_sent(&chain, key, 1).await;
    }
    let shared = &payments[2];
    let settles: Vec<_> = replicas
        .iter()
        .map(|replica| spawn_settle(replica, shared))
        .collect();
    for replica in &replicas {
        until_waiting(replica, 1).await;
    }
    chain.set_automine(true).await;
    chain.mine().await;
    for busy in busy {
        let busy = busy.await.unwrap();
        assert!(busy.success, "{busy:?}");
    }
    let mut answers = Vec::new();
    for settle in settles {
        answers.push(settle.await.unwrap());
    }
    assert!(answers.iter().all(|a| a.success), "{answers:?}");
    assert_eq!(answers[0].transaction, answers[1].transaction);
    let winner = chain.receipt(hash_of(&answers[0])).await.unwrap();
    assert!(authorization_paid(
        winner.logs(),
        chain.token,
        &shared.authorization
    ));
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(3 * PRICE));
}

/// (e) No code at the batch contract: a warning, and every settle sends its
/// own transaction, all at once, and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_batch_contract_each_settles_alone() {
    let chain = Chain::start_with_buyers(10).await;
    chain.set_block_time(1).await;
    let facilitator = Arc::new(
        Facilitator::connect(&chain.facilitator_config())
            .await
            .unwrap(),
    );
    assert_eq!(facilitator.batch_max(), 1);
    let payments = payments(&chain, 10);
    let answers = settle_all(&facilitator, &payments).await;
    assert!(answers.iter().all(|a| a.success), "{answers:?}");
    let receipts = receipts(&chain, &answers).await;
    assert_eq!(receipts.len(), 10, "one transaction each");
    let blocks: BTreeSet<_> = receipts.values().map(|r| r.block_number).collect();
    assert!(
        blocks.len() <= 2,
        "sent at once, not one per block: blocks {blocks:?}"
    );
    for receipt in receipts.values() {
        assert_eq!(receipt.to, Some(chain.token));
    }
    assert_consecutive_nonces(
        &chain,
        chain.facilitator_key.address(),
        &receipts.keys().copied().collect(),
    )
    .await;
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(10 * PRICE));
}

/// Gas per authorization alone, in a batch of 10 and of 100 (printed), and
/// a batch is cheaper per authorization than one alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_cost_less_gas_per_authorization() {
    let chain = Chain::start_with_buyers(10).await;
    chain.install_batch_call().await;
    // Warm up: payTo's first receipt of the token costs more.
    let mut config = chain.facilitator_config();
    batch(&mut config, "1", "0");
    let alone = Arc::new(Facilitator::connect(&config).await.unwrap());
    settle_all(&alone, &payments(&chain, 1)).await;
    let answers = settle_all(&alone, &payments(&chain, 1)).await;
    let gas_alone = receipts(&chain, &answers)
        .await
        .values()
        .next()
        .unwrap()
        .gas_used;
    drop(alone);

    let mut per_item = vec![(1usize, gas_alone)];
    for size in [10usize, 100] {
        let mut config = chain.facilitator_config();
        batch(&mut config, &size.to_string(), "5000");
        let facilitator = Arc::new(Facilitator::connect(&config).await.unwrap());
        let answers = settle_all(&facilitator, &payments(&chain, size)).await;
        assert!(answers.iter().all(|a| a.success), "{answers:?}");
        let receipts = receipts(&chain, &answers).await;
        assert_eq!(receipts.len(), 1, "one batch of {size}");
        let gas = receipts.values().next().unwrap().gas_used;
        per_item.push((size, gas / size as u64));
    }
    println!("gas per authorization by batch size: {per_item:?}");
    assert!(per_item[1].1 < per_item[0].1, "{per_item:?}");
    assert!(per_item[2].1 < per_item[0].1, "{per_item:?}");
}

/// Settling keys given twice, or a batch setting out of range, are refused
/// at start.
#[tokio::test]
async fn a_refused_configuration_does_not_start() {
    let chain = Chain::start_with_buyers(0).await;
    let mut config = chain.facilitator_config();
    config.extra_settlement_keys = vec![SettlementKey::new(chain.facilitator_key.clone())];
    let error = Facilitator::connect(&config).await.unwrap_err();
    assert!(
        matches!(error, tessera_facilitator::StartError::Config(_)),
        "{error}"
    );
    assert!(error.to_string().contains("twice"), "{error}");
    let mut config = chain.facilitator_config();
    config.batch.max = 1001;
    let error = Facilitator::connect(&config).await.unwrap_err();
    assert!(
        error.to_string().contains("FACILITATOR_BATCH_MAX"),
        "{error}"
    );
}

/// A facilitator on a chain mining a block a second, batches of at most
/// `batch_max`, one batch in flight: what waits behind it stays waiting
/// for a block.
async fn one_batch_in_flight(batch_max: &str) -> (Chain, Arc<Facilitator>) {
    let chain = Chain::start_with_buyers(10).await;
    chain.install_batch_call().await;
    chain.set_block_time(1).await;
    let mut config = chain.facilitator_config();
    config.batch =
        tessera_facilitator::BatchConfig::parse_all(Some(batch_max), Some("0"), None, Some("1"))
            .unwrap();
    let facilitator = Arc::new(Facilitator::connect(&config).await.unwrap());
    (chain, facilitator)
}

/// Settles each payment as `urgency` says, each its own task.
fn settle_each(
    facilitator: &Arc<Facilitator>,
    payments: &[Payment],
    urgency: Urgency,
) -> Vec<tokio::task::JoinHandle<SettleResponse>> {
    payments
        .iter()
        .map(|payment| {
            let facilitator = facilitator.clone();
            let request = payment.facilitator_request();
            tokio::spawn(async move { facilitator.settle_with(&request, urgency).await })
        })
        .collect()
}

/// A settle its caller waits for goes into the next batch ahead of a
/// seller's background settlements: behind 40 of them (batches of 5, one
/// in flight, a block a second: 8 blocks' worth), an urgent settle is mined
/// in the batch after the one in flight when it came; in arrival order it
/// would wait 8 blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_settle_goes_ahead_of_the_background_queue() {
    const BACKGROUND: usize = 40;
    let (chain, facilitator) = one_batch_in_flight("5").await;
    let background = payments(&chain, BACKGROUND);
    let urgent = payments(&chain, 1).pop().unwrap();

    let queued = settle_each(&facilitator, &background, Urgency::Background);
    until_waiting(&facilitator, BACKGROUND - 5).await;
    let urgent_answer = facilitator.settle(&urgent.facilitator_request()).await;
    let mut answers = Vec::new();
    for task in queued {
        answers.push(task.await.unwrap());
    }
    assert!(urgent_answer.success, "{urgent_answer:?}");
    assert!(answers.iter().all(|a| a.success), "{answers:?}");

    let urgent_block = chain
        .receipt(hash_of(&urgent_answer))
        .await
        .expect("mined")
        .block_number
        .unwrap();
    let receipts = receipts(&chain, &answers).await;
    let mined_before: Vec<u64> = receipts
        .values()
        .filter_map(|receipt| receipt.block_number)
        .filter(|block| *block < urgent_block)
        .collect();
    println!(
        "{BACKGROUND} background settles in {} transactions; the urgent one in block {urgent_block}, \
         after {} of them",
        receipts.len(),
        mined_before.len()
    );
    assert!(
        mined_before.len() <= 2,
        "the urgent settle waited behind {} background batches: {mined_before:?}",
        mined_before.len()
    );
}

/// While background settles wait, urgent ones fill at most half of each
/// batch: ahead of the backlog, yet never starving it (its authorizations
/// would run out). 20 background settles, then 20 urgent ones, batches of
/// 4, one in flight: every batch mined before the last background one holds
/// at most 2 urgent settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urgent_settles_fill_at_most_half_a_batch_while_background_ones_wait() {
    const EACH: usize = 20;
    let (chain, facilitator) = one_batch_in_flight("4").await;
    let background = settle_each(&facilitator, &payments(&chain, EACH), Urgency::Background);
    until_waiting(&facilitator, EACH - 4).await;
    let urgent = settle_each(&facilitator, &payments(&chain, EACH), Urgency::Now);
    until_waiting(&facilitator, 2 * EACH - 8).await;
    let mut answers = Vec::new();
    for (task, urgency) in background
        .into_iter()
        .map(|t| (t, Urgency::Background))
        .chain(urgent.into_iter().map(|t| (t, Urgency::Now)))
    {
        let answer = task.await.unwrap();
        assert!(answer.success, "{answer:?}");
        answers.push((hash_of(&answer), urgency));
    }

    let mut per_tx: BTreeMap<B256, (u64, usize, usize)> = BTreeMap::new();
    for (hash, urgency) in &answers {
        if !per_tx.contains_key(hash) {
            let block = chain.receipt(*hash).await.unwrap().block_number.unwrap();
            per_tx.insert(*hash, (block, 0, 0));
        }
        let entry = per_tx.get_mut(hash).unwrap();
        match urgency {
            Urgency::Now => entry.1 += 1,
            Urgency::Background => entry.2 += 1,
        }
    }
    let last_background = per_tx
        .values()
        .filter(|(_, _, background)| *background > 0)
        .map(|(block, _, _)| *block)
        .max()
        .unwrap();
    let mixed: Vec<(u64, usize, usize)> = per_tx
        .values()
        .copied()
        .filter(|(block, urgent, _)| *urgent > 0 && *block < last_background)
        .collect();
    println!("(block, urgent, background) of batches before the last background one: {mixed:?}");
    assert!(!mixed.is_empty(), "no urgent settle went ahead: {per_tx:?}");
    for (block, urgent, background) in &mixed {
        assert!(
            *urgent <= 2,
            "block {block}: {urgent} urgent and {background} background settles in a batch of 4: {per_tx:?}"
        );
    }
}

/// A node without `eth_createAccessList` (it answers "method not found")
/// is asked `eth_estimateGas` instead, and only that from then on: its
/// batches settle all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_access_lists_is_estimated_the_old_way() {
    const ITEMS: usize = 4;
    let chain = Chain::start_with_buyers(ITEMS).await;
    chain.install_batch_call().await;
    let proxy = RpcProxy::start(&chain.rpc_url).await;
    proxy.without_method("eth_createAccessList");
    let mut config = chain.facilitator_config();
    config.rpc_url = proxy.url.clone();
    batch(&mut config, &ITEMS.to_string(), "2000");
    let batched = Arc::new(Facilitator::connect(&config).await.unwrap());

    for round in 0..2 {
        proxy.reset();
        let paid = payments(&chain, ITEMS);
        let answers = settle_all(&batched, &paid).await;
        assert!(answers.iter().all(|a| a.success), "{answers:?}");
        assert_eq!(receipts(&chain, &answers).await.len(), 1, "one batch");
        let calls = proxy.calls();
        println!("round {round}: {calls:?}");
        let asked_access_list = calls.get("eth_createAccessList").copied();
        assert_eq!(asked_access_list, (round == 0).then_some(1), "{calls:?}");
        assert_eq!(calls.get("eth_estimateGas"), Some(&1), "{calls:?}");
    }
}

/// A JSON-RPC proxy in front of anvil: counts the calls by method (an
/// `eth_call` by the name of the function its input selects), and can refuse
/// an `eth_sendRawTransaction` (a node's error answer, nothing forwarded) or
/// lose its answer (forwarded, then HTTP 502).
struct RpcProxy {
    url: String,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct ProxyState {
    calls: std::sync::Mutex<BTreeMap<String, usize>>,
    /// `eth_sendRawTransaction`s seen.
    sends: std::sync::atomic::AtomicUsize,
    /// The send (by its number among `sends`) refused, and the one whose
    /// answer is lost.
    refuse_send: std::sync::Mutex<Option<usize>>,
    lose_send: std::sync::Mutex<Option<usize>>,
    /// The hashes of the sends whose answers were lost.
    lost: std::sync::Mutex<Vec<B256>>,
    /// A JSON-RPC method answered "method not found", as by a node without
    /// it.
    missing_method: std::sync::Mutex<Option<&'static str>>,
}

/// What the proxy does with one request.
enum Fate {
    Forward,
    Refuse(Value),
    /// Answered "method not found".
    Missing(Value),
    Lose,
}

impl RpcProxy {
    async fn start(target: &str) -> RpcProxy {
        use axum::extract::State;
        use axum::http::{header, StatusCode};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(ProxyState::default());
        let client = reqwest::Client::new();
        let target = target.to_string();
        let handler = move |State(state): State<Arc<ProxyState>>, body: axum::body::Bytes| {
            let (client, target) = (client.clone(), target.clone());
            async move {
                let fate = state.note(&body);
                if let Fate::Refuse(id) | Fate::Missing(id) = &fate {
                    let error = match fate {
                        Fate::Missing(_) => serde_json::json!({
                            "code": -32601,
                            "message": "the method does not exist/is not available",
                        }),
                        _ => {
                            serde_json::json!({"code": -32000, "message": "refused by the test proxy"})
                        }
                    };
                    let refusal = serde_json::json!({
                        "jsonrpc": "2.0",
                        "id": id,
                        "error": error,
                    });
                    return (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        refusal.to_string().into_bytes(),
                    );
                }
                let answer = client
                    .post(&target)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.to_vec())
                    .send()
                    .await
                    .unwrap();
                let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
                let bytes = answer.bytes().await.unwrap().to_vec();
                if matches!(fate, Fate::Lose) {
                    if let Ok(answer) = serde_json::from_slice::<Value>(&bytes) {
                        if let Some(hash) = answer["result"].as_str() {
                            state.lost.lock().unwrap().push(hash.parse().unwrap());
                        }
                    }
                    return (
                        StatusCode::BAD_GATEWAY,
                        [(header::CONTENT_TYPE, "text/plain")],
                        b"answer lost by the test proxy".to_vec(),
                    );
                }
                (status, [(header::CONTENT_TYPE, "application/json")], bytes)
            }
        };
        let app = axum::Router::new()
            .route("/", axum::routing::post(handler))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        RpcProxy { url, state, task }
    }

    /// Calls counted since the last reset, by method.
    fn calls(&self) -> BTreeMap<String, usize> {
        self.state.calls.lock().unwrap().clone()
    }

    fn reset(&self) {
        self.state.calls.lock().unwrap().clear();
    }

    /// The `nth` `eth_sendRawTransaction` from now (1: the next) is refused.
    fn refuse_send(&self, nth: usize) {
        let seen = self.state.sends.load(std::sync::atomic::Ordering::SeqCst);
        *self.state.refuse_send.lock().unwrap() = Some(seen + nth);
    }

    /// The `nth` `eth_sendRawTransaction` from now reaches the node and its
    /// answer is lost.
    fn lose_send_answer(&self, nth: usize) {
        let seen = self.state.sends.load(std::sync::atomic::Ordering::SeqCst);
        *self.state.lose_send.lock().unwrap() = Some(seen + nth);
    }

    fn lost(&self) -> Vec<B256> {
        self.state.lost.lock().unwrap().clone()
    }

    /// From now on `method` is answered "method not found" (single calls).
    fn without_method(&self, method: &'static str) {
        *self.state.missing_method.lock().unwrap() = Some(method);
    }
}

impl Drop for RpcProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ProxyState {
    /// Counts the request's calls and says what to do with it.
    fn note(&self, body: &[u8]) -> Fate {
        use alloy::sol_types::SolCall;
        use tessera_evm::token::IEip3009Token;
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return Fate::Forward;
        };
        let calls = match &request {
            Value::Array(calls) => calls.clone(),
            call => vec![call.clone()],
        };
        let selectors = [
            (
                IEip3009Token::authorizationStateCall::SELECTOR,
                "authorizationState",
            ),
            (IEip3009Token::balanceOfCall::SELECTOR, "balanceOf"),
        ];
        let mut fate = Fate::Forward;
        for call in &calls {
            let method = call["method"].as_str().unwrap_or("?").to_string();
            let name = if method == "eth_call" {
                let params = &call["params"][0];
                let input = params["input"]
                    .as_str()
                    .or(params["data"].as_str())
                    .unwrap_or("");
                let function = selectors
                    .iter()
                    .find(|(selector, _)| {
                        input
                            .starts_with(&format!("0x{}", alloy::primitives::hex::encode(selector)))
                    })
                    .map_or("other", |(_, name)| name);
                format!("eth_call:{function}")
            } else {
                method.clone()
            };
            *self.calls.lock().unwrap().entry(name).or_default() += 1;
            if *self.missing_method.lock().unwrap() == Some(method.as_str()) {
                fate = Fate::Missing(call["id"].clone());
            }
            if method == "eth_sendRawTransaction" {
                let number = self.sends.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if *self.refuse_send.lock().unwrap() == Some(number) {
                    fate = Fate::Refuse(call["id"].clone());
                } else if *self.lose_send.lock().unwrap() == Some(number) {
                    fate = Fate::Lose;
                }
            }
        }
        fate
    }
}

/// The receipts of `answers`' transactions grouped by block: (block,
/// transactions, authorizations).
fn per_block(
    answers: &[SettleResponse],
    receipts: &BTreeMap<B256, TransactionReceipt>,
) -> BTreeMap<u64, (usize, usize)> {
    let mut blocks: BTreeMap<u64, (BTreeSet<B256>, usize)> = BTreeMap::new();
    for answer in answers {
        let hash = hash_of(answer);
        let block = receipts[&hash].block_number.unwrap();
        let entry = blocks.entry(block).or_default();
        entry.0.insert(hash);
        entry.1 += 1;
    }
    blocks
        .into_iter()
        .map(|(block, (hashes, items))| (block, (hashes.len(), items)))
        .collect()
}

/// An unlabelled series' value in the process's metrics (0 when absent).
fn metric(name: &str) -> i64 {
    tessera_runtime::metrics::render()
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as i64)
}

/// One key, a block a second, batches of at most 10 and 4 in flight: a
/// hundred concurrent settles take the key a few blocks, not ten, because
/// the key sends its next batch as soon as the previous one is accepted
/// (several batches, more than 10 authorizations, in one block); its
/// nonces stay consecutive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_keeps_several_batches_in_flight() {
    const ITEMS: usize = 100;
    let chain = Chain::start_with_buyers(20).await;
    chain.install_batch_call().await;
    chain.set_block_time(1).await;
    let mut config = chain.facilitator_config();
    config.batch =
        tessera_facilitator::BatchConfig::parse_all(Some("10"), Some("0"), None, Some("4"))
            .unwrap();
    let facilitator = Arc::new(Facilitator::connect(&config).await.unwrap());
    let sender = chain.facilitator_key.address();
    let payments = payments(&chain, ITEMS);

    // The gauge of sent batches awaiting receipts, sampled meanwhile.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut most = 0;
            while sampling.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(metric("tessera_facilitator_batches_in_flight"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            most
        })
    };
    let started = Instant::now();
    let answers = settle_all(&facilitator, &payments).await;
    let took = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    let most_in_flight = sampler.await.unwrap();

    for answer in &answers {
        assert!(answer.success, "{answer:?}");
    }
    let receipts = receipts(&chain, &answers).await;
    let blocks = per_block(&answers, &receipts);
    let mut sizes = BTreeMap::new();
    for answer in &answers {
        *sizes.entry(hash_of(answer)).or_insert(0u64) += 1;
    }
    let gas_per_item: Vec<u64> = receipts
        .iter()
        .map(|(hash, receipt)| receipt.gas_used / sizes[hash])
        .collect();
    println!(
        "{ITEMS} concurrent settles, one key, 1 s blocks, batches of at most 10, 4 in flight: \
         {} transactions in {} blocks; per block (transactions, items) {:?}; \
         gas per item {gas_per_item:?}; most batches in flight {most_in_flight}; {took:?} in all",
        receipts.len(),
        blocks.len(),
        blocks.values().collect::<Vec<_>>(),
    );
    let most_in_a_block = blocks.values().map(|(_, items)| *items).max().unwrap();
    assert!(
        most_in_a_block >= 20,
        "at most {most_in_a_block} authorizations in a block: one batch of 10 at a time? {blocks:?}"
    );
    assert!(
        blocks.len() <= 4,
        "{ITEMS} settles took {} blocks: {blocks:?}",
        blocks.len()
    );
    assert!(
        most_in_flight >= 2,
        "tessera_facilitator_batches_in_flight reached only {most_in_flight}"
    );
    assert_consecutive_nonces(&chain, sender, &receipts.keys().copied().collect()).await;
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        U256::from(PRICE * ITEMS as u64)
    );
    assert_eq!(facilitator.settlements_waiting(), 0);
}

/// A batched settle makes no `eth_call` of its own: no `authorizationState`
/// nor `balanceOf` per authorization (the batch's gas estimate simulates
/// them all), where a settle without batching reads both. Only when a
/// batch's estimate fails are the items read: settling paid payments again
/// reconciles them with their batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_settle_reads_no_chain_state_of_its_own() {
    const ITEMS: usize = 10;
    let chain = Chain::start_with_buyers(ITEMS).await;
    chain.install_batch_call().await;
    let proxy = RpcProxy::start(&chain.rpc_url).await;
    let mut config = chain.facilitator_config();
    config.rpc_url = proxy.url.clone();
    batch(&mut config, "10", "2000");
    let batched = Arc::new(Facilitator::connect(&config).await.unwrap());
    assert_eq!(batched.batch_max(), 10);

    proxy.reset();
    let paid = payments(&chain, ITEMS);
    let answers = settle_all(&batched, &paid).await;
    assert!(answers.iter().all(|a| a.success), "{answers:?}");
    let receipts = receipts(&chain, &answers).await;
    assert_eq!(receipts.len(), 1, "one batch of {ITEMS}");
    let calls = proxy.calls();
    println!("JSON-RPC calls of {ITEMS} batched settles (one batch): {calls:?}");
    for read in ["eth_call:authorizationState", "eth_call:balanceOf"] {
        assert_eq!(calls.get(read), None, "{read} in {calls:?}");
    }
    // Estimated by running the batch once (`eth_createAccessList`'s gas
    // used), not by the node's search, which runs it once per probe.
    assert_eq!(
        calls.get("eth_createAccessList"),
        Some(&1),
        "one estimate for the batch: {calls:?}"
    );
    assert_eq!(calls.get("eth_estimateGas"), None, "{calls:?}");
    assert_eq!(calls.get("eth_sendRawTransaction"), Some(&1), "{calls:?}");

    // The proxy does see them: three settles without batching read each
    // one's nonce (to reconcile, then to check) and balance.
    let mut alone_config = config.clone();
    batch(&mut alone_config, "1", "0");
    let alone = Arc::new(Facilitator::connect(&alone_config).await.unwrap());
    proxy.reset();
    let more = payments(&chain, 3);
    let answers_alone = settle_all(&alone, &more).await;
    assert!(answers_alone.iter().all(|a| a.success), "{answers_alone:?}");
    let calls = proxy.calls();
    println!("JSON-RPC calls of 3 settles without batching: {calls:?}");
    assert_eq!(
        calls.get("eth_call:authorizationState"),
        Some(&6),
        "{calls:?}"
    );
    assert_eq!(calls.get("eth_call:balanceOf"), Some(&3), "{calls:?}");

    // Settling two batched payments again: their batch's estimate fails,
    // their state is read, and each reconciles with the batch; nothing sent.
    proxy.reset();
    let again = settle_all(&batched, &paid[..2]).await;
    for (answer, first) in again.iter().zip(&answers) {
        assert!(answer.success, "{answer:?}");
        assert_eq!(answer.transaction, first.transaction);
    }
    let calls = proxy.calls();
    println!("JSON-RPC calls of settling 2 paid payments again: {calls:?}");
    assert!(
        calls
            .get("eth_call:authorizationState")
            .copied()
            .unwrap_or(0)
            >= 2,
        "{calls:?}"
    );
    assert_eq!(calls.get("eth_sendRawTransaction"), None, "{calls:?}");
}

/// Among batches in flight, a send the node refuses gives its nonce back
/// (the next batch re-syncs to the pending count, which counts the batches
/// still pooled, and reuses it), and a send whose answer is lost is counted
/// by the re-sync when the node has it: either way the key's nonces stay
/// consecutive and every batch after is mined. The refused batch's
/// payments settle when settled again; the lost one's answer its hash (it
/// may still be mined) and, once it is, reconcile with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_or_lost_send_among_batches_in_flight_leaves_no_nonce_gap() {
    let chain = Chain::start_with_buyers(10).await;
    chain.install_batch_call().await;
    chain.set_block_time(1).await;
    let proxy = RpcProxy::start(&chain.rpc_url).await;
    let mut config = chain.facilitator_config();
    config.rpc_url = proxy.url.clone();
    config.batch =
        tessera_facilitator::BatchConfig::parse_all(Some("5"), Some("0"), None, Some("4")).unwrap();
    let facilitator = Arc::new(Facilitator::connect(&config).await.unwrap());
    let sender = chain.facilitator_key.address();
    let mut hashes = BTreeSet::new();
    let mut paid = 0u64;

    for lose in [false, true] {
        if lose {
            proxy.lose_send_answer(2);
        } else {
            proxy.refuse_send(2);
        }
        let payments = payments(&chain, 30);
        let answers = settle_all(&facilitator, &payments).await;
        let (settled, failed): (Vec<_>, Vec<_>) = answers
            .iter()
            .zip(&payments)
            .partition(|(answer, _)| answer.success);
        println!(
            "{} send: {} settled, {} failed",
            if lose { "lost" } else { "refused" },
            settled.len(),
            failed.len()
        );
        assert!(!failed.is_empty(), "the second send's batch failed");
        for (answer, _) in &settled {
            hashes.insert(hash_of(answer));
        }
        paid += settled.len() as u64;
        for (answer, _) in &failed {
            assert_eq!(
                answer.error_reason.as_deref(),
                Some(reason::UNEXPECTED_SETTLE_ERROR),
                "{answer:?}"
            );
        }
        let retry: Vec<Payment> = failed
            .iter()
            .map(|(_, payment)| Payment {
                authorization: payment.authorization.clone(),
                request: payment.request.clone(),
            })
            .collect();
        if lose {
            let lost = proxy.lost();
            assert_eq!(lost.len(), 1, "one answer lost");
            for (answer, _) in &failed {
                assert_eq!(hash_of(answer), lost[0], "{answer:?}");
                assert_may_still_be_mined(answer);
            }
            // It reached the node: mined in the next block, it paid them.
            let started = Instant::now();
            let receipt = loop {
                if let Some(receipt) = chain.receipt(lost[0]).await {
                    break receipt;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the lost send is mined"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            for payment in &retry {
                assert!(authorization_paid(
                    receipt.logs(),
                    chain.token,
                    &payment.authorization
                ));
            }
            hashes.insert(lost[0]);
            // Settled again: reconciled with it, nothing sent.
            let again = settle_all(&facilitator, &retry).await;
            for answer in &again {
                assert!(answer.success, "{answer:?}");
                assert_eq!(hash_of(answer), lost[0]);
            }
        } else {
            for (answer, _) in &failed {
                assert_eq!(answer.transaction, "", "nothing sent: {answer:?}");
                assert!(
                    answer.error_message.as_deref().unwrap().contains("refused"),
                    "{answer:?}"
                );
            }
            // Settled again: a new batch.
            let again = settle_all(&facilitator, &retry).await;
            for answer in &again {
                assert!(answer.success, "{answer:?}");
                hashes.insert(hash_of(answer));
            }
        }
        paid += retry.len() as u64;
    }
    println!("{} settlement transactions in all", hashes.len());
    assert_consecutive_nonces(&chain, sender, &hashes).await;
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        U256::from(paid * PRICE)
    );
    assert_eq!(paid, 60);
}

/// A sent batch the node then drops from its pool (a node restart, an
/// eviction) gets no receipt; the key's next send re-reads its nonce from
/// the chain, so the gap is filled instead of holding up every later
/// transaction of the key behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_dropped_from_the_pool_leaves_no_gap() {
    let chain = Chain::start_with_buyers(2).await;
    chain.install_batch_call().await;
    let mut config = chain.facilitator_config();
    config.receipt_timeout = Duration::from_secs(2);
    let facilitator = Arc::new(Facilitator::connect(&config).await.unwrap());
    let key = chain.facilitator_key.address();
    let payments = payments(&chain, 2);

    chain.set_automine(false).await;
    let first = spawn_settle(&facilitator, &payments[0]);
    until_sent(&chain, key, 1).await;
    let _: Value = chain
        .provider()
        .raw_request("anvil_dropAllTransactions".into(), ())
        .await
        .unwrap();
    let first = first.await.unwrap();
    assert_eq!(
        first.error_reason.as_deref(),
        Some(reason::UNEXPECTED_SETTLE_ERROR),
        "{first:?}"
    );
    chain.set_automine(true).await;

    let second = facilitator.settle(&payments[1].facilitator_request()).await;
    assert!(second.success, "{second:?}");
    assert_eq!(chain.transaction_nonce(hash_of(&second)).await, 0);
    let again = facilitator.settle(&payments[0].facilitator_request()).await;
    assert!(again.success, "{again:?}");
    assert_consecutive_nonces(
        &chain,
        key,
        &[hash_of(&second), hash_of(&again)].into_iter().collect(),
    )
    .await;
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(2 * PRICE));
}
