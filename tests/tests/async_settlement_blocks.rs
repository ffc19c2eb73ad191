//! Asynchronous settlement on a chain that mines a block a second, as a real
//! network does: 200 paid calls from 20 payers are each answered with a
//! pending settlement (not waiting for a block) while settlement catches up
//! behind them, and every authorization is settled exactly once with
//! balances moved by exactly the prices. Meanwhile one more payer empties
//! its wallet under three pending calls (settlement starts only then, so
//! that they must fail), then calls on: it is served within its read
//! balance, then refused; every call it was served ends as its debt, and as
//! a debtor it is refused while empty and, after a top-up, served only
//! settled before its call.
//!
//! The latencies are printed, not asserted (timing belongs to `make bench`):
//! on 2 cores, debug build, the paid p50 was 151 ms against 22 ms unpaid.
//!
//! The settler runs its default concurrency, started with a queue already
//! waiting: until its first settlements finish it knows no rate but the
//! slowest its concurrency allows (see the payment service's `backlog`),
//! and that must let the burst queue.

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use tessera_gateway::SettleMode;
use tessera_tests::chain;
use tessera_tests::paid::{decode, namespace, send, Options, PaidStack};

const PAYERS: usize = 20;
const CALLS_PER_PAYER: usize = 10;
const PRICE: u64 = 1000;
const BLOCK_SECONDS: u64 = 1;

/// A signed `PAYMENT-SIGNATURE` for `memory.incr` from `buyer`, and its
/// authorization's nonce.
fn payment(stack: &PaidStack, buyer: &PrivateKeySigner) -> (String, B256) {
    let required = stack.payments.requirements("memory.incr").unwrap();
    let authorization = stack.chain.authorization(buyer.address(), &required);
    let signature = stack.chain.sign(buyer, &authorization);
    let header =
        tessera_x402::encode_header(&chain::payload_v2(&required, &authorization, &signature));
    (header, authorization.nonce)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `PAYERS` clients at once, each making `CALLS_PER_PAYER` calls in turn;
/// `call(payer, i)` makes one and answers its latency.
async fn run_clients<F, Fut>(call: F) -> Vec<Duration>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Duration> + Send,
{
    let mut clients = tokio::task::JoinSet::new();
    for payer in 0..PAYERS {
        let call = call.clone();
        clients.spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..CALLS_PER_PAYER {
                latencies.push(call(payer, i).await);
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(latencies) = clients.join_next().await {
        all.extend(latencies.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_one_second_blocks_paid_calls_are_answered_pending_and_each_settles_once() {
    let stack = PaidStack::start_with(Options {
        settle_mode: SettleMode::Async,
        buyers: PAYERS,
        // Started once the spender has emptied its wallet under its
        // pending calls (`empties_its_wallet_mid_run`).
        settler: false,
        ..Options::default()
    })
    .await;
    stack.chain.set_block_time(BLOCK_SECONDS).await;
    let buyers = stack.chain.buyers.clone();
    let before: Vec<U256> =
        futures::future::join_all(buyers.iter().map(|buyer| stack.balance(buyer.address()))).await;
    let pay_to_before = stack.balance(stack.chain.pay_to).await;

    // The unpaid baseline: the same calls, client and concurrency on a
    // FREE_MODE gateway over the same memory.
    let free = stack.free_gateway().await;
    let key = format!("blocks/{:016x}", rand::random::<u64>());
    let unpaid = {
        let (free, key) = (free.clone(), key.clone());
        run_clients(move |payer, _| {
            let (free, key) = (free.clone(), key.clone());
            async move {
                let started = Instant::now();
                let reply = send(
                    Method::POST,
                    &format!("{free}/api/memory/incr"),
                    Some(json!({"key": key})),
                    &[("X-Agent-Id", format!("agent-{payer}"))],
                )
                .await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                started.elapsed()
            }
        })
        .await
    };

    // The paid calls, each signed beforehand so signing is not timed.
    let signed: Vec<Vec<(String, B256)>> = buyers
        .iter()
        .map(|buyer| {
            (0..CALLS_PER_PAYER)
                .map(|_| payment(&stack, buyer))
                .collect()
        })
        .collect();
    let payments_of: std::sync::Arc<Vec<Vec<String>>> = std::sync::Arc::new(
        signed
            .iter()
            .map(|calls| calls.iter().map(|(header, _)| header.clone()).collect())
            .collect(),
    );
    let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // One more payer, beside the 20, empties its wallet mid-run.
    let spender = stack.chain.new_buyer(10 * PRICE).await;
    let paid = {
        let (url, key, ids, payments_of) = (
            stack.url("/api/memory/incr"),
            key.clone(),
            ids.clone(),
            payments_of.clone(),
        );
        let payers: Vec<String> = buyers.iter().map(namespace).collect();
        run_clients(move |payer, i| {
            let (url, key, ids, payments_of, payers) = (
                url.clone(),
                key.clone(),
                ids.clone(),
                payments_of.clone(),
                payers.clone(),
            );
            async move {
                let started = Instant::now();
                let reply = send(
                    Method::POST,
                    &url,
                    Some(json!({"key": key})),
                    &[("PAYMENT-SIGNATURE", payments_of[payer][i].clone())],
                )
                .await;
                let elapsed = started.elapsed();
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                let settlement = decode(reply.headers.get("payment-response").unwrap());
                assert_eq!(
                    settlement["errorReason"], "settlement_pending",
                    "{settlement}"
                );
                assert_eq!(settlement["payer"], payers[payer]);
                let id = settlement["extensions"]["settlement"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                ids.lock().unwrap().push(id);
                elapsed
            }
        })
    };
    let (paid, spender_served) = tokio::join!(paid, empties_its_wallet_mid_run(&stack, &spender));
    let (paid_p50, unpaid_p50) = (median(paid), median(unpaid));
    println!(
        "{} paid calls p50 {paid_p50:?}, the same unpaid p50 {unpaid_p50:?}, blocks every {BLOCK_SECONDS} s",
        PAYERS * CALLS_PER_PAYER
    );
    // Settlement catches up: every payment final and settled, each
    // authorization spent on chain, every balance moved by its calls' prices.
    let ids = ids.lock().unwrap().clone();
    assert_eq!(ids.len(), PAYERS * CALLS_PER_PAYER);
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut statuses = Vec::new();
    for id in &ids {
        loop {
            let found = send(
                Method::GET,
                &stack.url(&format!("/api/payments/{id}")),
                None,
                &[],
            )
            .await;
            assert_eq!(found.status, StatusCode::OK, "{}", found.body);
            if found.body["final"] == true {
                statuses.push(found.body["status"].as_str().unwrap().to_string());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never settled: {}",
                found.body
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    assert!(
        statuses.iter().all(|status| status == "settled"),
        "{statuses:?}"
    );
    for (buyer, calls) in buyers.iter().zip(&signed) {
        for (_, nonce) in calls {
            assert!(
                stack
                    .chain
                    .authorization_used(buyer.address(), *nonce)
                    .await
            );
        }
    }
    let price = U256::from(PRICE);
    the_spender_is_a_debtor_then_settles_first(&stack, &spender, spender_served).await;
    for (buyer, was) in buyers.iter().zip(before) {
        assert_eq!(
            stack.balance(buyer.address()).await,
            was - price * U256::from(CALLS_PER_PAYER),
            "each payer paid exactly its calls"
        );
    }
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        // The spender's one settled payment: its call after the top-up.
        pay_to_before + price * U256::from(PAYERS * CALLS_PER_PAYER + 1),
        "payTo received exactly every price once"
    );
    let settled_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payments WHERE id = ANY($1) AND status = 'settled'",
    )
    .bind(&ids)
    .fetch_one(stack.payments.ledger().pool())
    .await
    .unwrap();
    assert_eq!(settled_rows as usize, ids.len());
}

/// A paid call by `buyer`, now.
async fn paid_call(stack: &PaidStack, buyer: &PrivateKeySigner) -> tessera_tests::paid::Reply {
    let (header, _) = payment(stack, buyer);
    send(
        Method::POST,
        &stack.url("/api/memory/incr"),
        Some(json!({"key": "spender"})),
        &[("PAYMENT-SIGNATURE", header)],
    )
    .await
}

fn assert_pending(reply: &tessera_tests::paid::Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let settlement = decode(reply.headers.get("payment-response").unwrap());
    assert_eq!(
        settlement["errorReason"], "settlement_pending",
        "{settlement}"
    );
}

/// While the others call: the payer empties its wallet under pending
/// calls, settlement starts, and it calls on until refused. How many calls
/// it was served.
async fn empties_its_wallet_mid_run(stack: &PaidStack, spender: &PrivateKeySigner) -> usize {
    empties_its_wallet_under_pending_calls(stack, spender).await;
    // Detached: it runs until the stack shuts down.
    let _settler = stack.start_settler();
    calls_until_refused(stack, spender).await
}

/// Before the settler runs: three calls served pending, then the payer
/// moves every token away, so that their settlements fail.
async fn empties_its_wallet_under_pending_calls(stack: &PaidStack, spender: &PrivateKeySigner) {
    for _ in 0..3 {
        assert_pending(&paid_call(stack, spender).await);
    }
    let left = stack.balance(spender.address()).await;
    assert_eq!(left, U256::from(10 * PRICE), "nothing settled yet");
    let sink = PrivateKeySigner::random().address();
    stack.chain.transfer_plain(spender, sink, left).await;
    assert_eq!(stack.balance(spender.address()).await, U256::ZERO);
}

/// The emptied payer calls on until refused (a 402: the exposure bound on
/// a fresh balance). How many calls it was served, the three before
/// included.
async fn calls_until_refused(stack: &PaidStack, spender: &PrivateKeySigner) -> usize {
    for served in 3..43 {
        let reply = paid_call(stack, spender).await;
        if reply.status == StatusCode::PAYMENT_REQUIRED {
            return served;
        }
        assert_pending(&reply);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a payer with an empty wallet was never refused");
}

/// Once settlement caught up: the spender's served calls are each its debt
/// (its wallet was empty before any settled), so it is a debtor, refused
/// while its wallet is empty, and after a top-up served only with
/// settle-before (its call answered settled, with the transaction, not
/// pending).
async fn the_spender_is_a_debtor_then_settles_first(
    stack: &PaidStack,
    spender: &PrivateKeySigner,
    served: usize,
) {
    let me = namespace(spender);
    let ledger = stack.payments.ledger();
    let deadline = Instant::now() + Duration::from_secs(120);
    let rows = loop {
        let rows = ledger.payments_of(&me).await.unwrap();
        let open = rows
            .iter()
            .filter(|row| row.served && !matches!(row.status.as_str(), "settled" | "failed"))
            .count();
        if open == 0 {
            break rows;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let served_rows: Vec<_> = rows.iter().filter(|row| row.served).collect();
    assert_eq!(served_rows.len(), served, "{rows:?}");
    assert!(
        served_rows.iter().all(|row| row.status == "failed"),
        "every served call's settlement failed: {rows:?}"
    );
    let account = stack.account(&me).await;
    assert_eq!(account.debt, U256::from(PRICE * served as u64), "{rows:?}");
    assert_eq!(account.outstanding, U256::ZERO);
    assert_eq!(account.settled_total, U256::ZERO);

    let refused = paid_call(stack, spender).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    stack.chain.mint(spender.address(), U256::from(PRICE)).await;
    let first = paid_call(stack, spender).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let settlement = decode(first.headers.get("payment-response").unwrap());
    assert_eq!(
        settlement["success"], true,
        "settled before it ran: {settlement}"
    );
    assert!(
        settlement["transaction"]
            .as_str()
            .is_some_and(|tx| tx.starts_with("0x") && tx.len() == 66),
        "{settlement}"
    );
}
