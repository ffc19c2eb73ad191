//! Asynchronous settlement on a chain that mines a block a second, as a real
//! network does: 200 paid calls from 20 payers are each answered with a
//! pending settlement (not waiting for a block) while settlement catches up
//! behind them, and every authorization is settled exactly once with
//! balances moved by exactly the prices.
//!
//! The latencies are printed, not asserted (timing belongs to `make bench`):
//! on 2 cores, debug build, the paid p50 was 237 ms against 21 ms unpaid,
//! because verification still reads the chain about five times per call
//! (the payer's balance, the facilitator's checks and simulation).

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
        settle_concurrency: 32,
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
        .await
    };
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
    for (buyer, was) in buyers.iter().zip(before) {
        assert_eq!(
            stack.balance(buyer.address()).await,
            was - price * U256::from(CALLS_PER_PAYER),
            "each payer paid exactly its calls"
        );
    }
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        pay_to_before + price * U256::from(PAYERS * CALLS_PER_PAYER),
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
