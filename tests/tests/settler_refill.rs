//! The settler refills the places of settlements that ended together (a
//! batch mined) with one claim, not one claim each: refilled one at a time,
//! a claim's round trip each, the settler capped settlement at about 270
//! items a second in `make bench` while thousands waited in its queue.
//!
//! Its own test binary: it reads the process's claim-size metric, which no
//! other test here may move.

use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use tessera_gateway::SettleMode;
use tessera_tests::chain;
use tessera_tests::paid::{decode, namespace, send, Options, PaidStack};

const PAYERS: usize = 4;
const CALLS_PER_PAYER: usize = 50;
const CONCURRENCY: usize = 100;

/// The claim-size histogram's count and sum (claims that took rows, and
/// the rows they took).
fn claims() -> (u64, u64) {
    let text = tessera_runtime::metrics::render();
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    (
        value("tessera_settlement_claim_size_count"),
        value("tessera_settlement_claim_size_sum"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settlements_that_end_together_are_replaced_in_one_claim() {
    let stack = PaidStack::start_with(Options {
        settle_mode: SettleMode::Async,
        settler: false,
        settle_concurrency: CONCURRENCY,
        buyers: PAYERS,
        ..Options::default()
    })
    .await;
    // Twice the settler's concurrency queued before it starts: its first
    // claim fills every place, the rest wait for places to free.
    let required = stack.payments.requirements("memory.incr").unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for buyer in stack.chain.buyers.clone() {
        let headers: Vec<String> = (0..CALLS_PER_PAYER)
            .map(|_| {
                let authorization = stack.chain.authorization(buyer.address(), &required);
                let signature = stack.chain.sign(&buyer, &authorization);
                tessera_x402::encode_header(&chain::payload_v2(
                    &required,
                    &authorization,
                    &signature,
                ))
            })
            .collect();
        let url = stack.url("/api/memory/incr");
        calls.spawn(async move {
            for header in headers {
                let reply = send(
                    Method::POST,
                    &url,
                    Some(json!({"key": "refill"})),
                    &[("PAYMENT-SIGNATURE", header)],
                )
                .await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                let settlement = decode(reply.headers.get("payment-response").unwrap());
                assert_eq!(settlement["errorReason"], "settlement_pending");
            }
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }

    let (claims_before, rows_before) = claims();
    let _settler = stack.start_settler();
    let payers: Vec<String> = stack.chain.buyers.iter().map(namespace).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut settled = 0;
        for payer in &payers {
            let statuses = stack.payments.ledger().statuses_of(payer).await.unwrap();
            assert!(
                statuses.iter().all(|s| s != "failed"),
                "{payer}: {statuses:?}"
            );
            settled += statuses.iter().filter(|s| *s == "settled").count();
        }
        if settled == PAYERS * CALLS_PER_PAYER {
            break;
        }
        assert!(Instant::now() < deadline, "{settled} settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (claims_after, rows_after) = claims();
    let (claims, rows) = (claims_after - claims_before, rows_after - rows_before);
    println!("{rows} settlements taken in {claims} claims");
    assert_eq!(rows as usize, PAYERS * CALLS_PER_PAYER);
    // The first claim takes CONCURRENCY; each batch that ends frees its
    // places together. One claim per settlement would be 100 more.
    assert!(
        claims <= 30,
        "{rows} settlements taken in {claims} claims: places refilled one at a time"
    );
}
