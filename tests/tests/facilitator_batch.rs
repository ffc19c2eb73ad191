//! Settlements batched on chain (issue #12): the facilitator settles many
//! authorizations in one Multicall3 `aggregate3` transaction, one batch in
//! flight per settling key. Real anvil, our EIP-3009 token, and our
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
use tessera_facilitator::{Facilitator, FacilitatorConfig, SettlementKey};
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
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
}

/// (b) One batch of six in which two fail after their checks (one payer
/// spends the payment's nonce on another transfer, another empties the
/// wallet): those two fail alone with the batch's hash, the others settle.
/// A seventh whose request is dropped while it waits still settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_item_fails_alone_with_the_batch_hash() {
    let chain = Chain::start_with_buyers(7).await;
    chain.install_batch_call().await;
    chain.set_block_time(1).await;
    let mut config = chain.facilitator_config();
    batch(&mut config, "100", "5000");
    let facilitator = Arc::new(Facilitator::connect(&config).await.unwrap());
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let payments: Vec<Payment> = chain
        .buyers
        .iter()
        .map(|buyer| Payment::new(&chain, buyer, &requirements))
        .collect();
    let (diverter, drained, abandoned) = (0, 1, 6);

    // The batch is open for 5 s: every settle passes its checks and waits.
    let settles: Vec<_> = payments
        .iter()
        .map(|payment| {
            let facilitator = facilitator.clone();
            let request = payment.facilitator_request();
            tokio::spawn(async move { facilitator.settle(&request).await })
        })
        .collect();
    until_waiting(&facilitator, payments.len()).await;

    // Then, before the batch is sent: payer 0 spends the payment's nonce on
    // a transfer of 1 to itself; payer 1 moves all its tokens away; the
    // request for payment 6 is dropped.
    let mut diversion = payments[diverter].authorization.clone();
    diversion.to = diversion.from;
    diversion.value = U256::from(1);
    let diversion_signature = chain.sign(&chain.buyers[diverter], &diversion);
    let sink = PrivateKeySigner::random().address();
    let (diverted, ()) = tokio::join!(
        chain.execute_authorization(&diversion, diversion_signature),
        chain.transfer_plain(&chain.buyers[drained], sink, U256::from(BUYER_FUNDS)),
    );
    assert!(diverted.status());
    settles[abandoned].abort();
    assert!(
        facilitator.settlements_waiting() == payments.len(),
        "the batch was still open after the two transfers"
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
    let batch_hash = hash_of(answers[2].as_ref().unwrap());
    let receipt = chain.receipt(batch_hash).await.unwrap();
    assert!(receipt.status(), "the batch went through");
    assert_eq!(receipt.to, Some(MULTICALL3_ADDRESS));
    for (index, answer) in answers.iter().enumerate() {
        let Some(answer) = answer else { continue };
        assert_eq!(
            answer.transaction,
            batch_hash.to_string(),
            "payment {index}: {answer:?}"
        );
        if index == diverter || index == drained {
            assert!(!answer.success, "payment {index}: {answer:?}");
            assert_eq!(
                answer.error_reason.as_deref(),
                Some(reason::INVALID_TRANSACTION_STATE),
                "{answer:?}"
            );
            assert!(
                answer
                    .error_message
                    .as_deref()
                    .unwrap()
                    .contains("inside the batch"),
                "{answer:?}"
            );
        } else {
            assert!(answer.success, "payment {index}: {answer:?}");
        }
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
        "four answered payments and the abandoned one"
    );
    assert_eq!(
        chain.balance_of(chain.buyers[diverter].address()).await,
        U256::from(BUYER_FUNDS),
        "the diverter paid itself"
    );
    assert_eq!(chain.balance_of(sink).await, U256::from(BUYER_FUNDS));
    assert_eq!(
        chain
            .transaction_count(chain.facilitator_key.address())
            .await,
        1,
        "one transaction for the seven"
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
        assert!(
            answer
                .error_message
                .as_deref()
                .unwrap()
                .contains("may still be mined"),
            "{answer:?}"
        );
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
    let facilitator = Arc::new(
        Facilitator::connect(&chain.facilitator_config())
            .await
            .unwrap(),
    );
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
    let mut second_config = chain.facilitator_config();
    second_config.settlement_key = Some(SettlementKey::new(second_key.clone()));
    let replicas = [
        Arc::new(
            Facilitator::connect(&chain.facilitator_config())
                .await
                .unwrap(),
        ),
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
