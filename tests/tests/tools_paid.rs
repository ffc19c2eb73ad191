//! Tools paid with x402 on real parts (anvil, our facilitator, the payment
//! service, the tools service over gRPC), bought by the official
//! `@x402/fetch` client: the seed's `POST /api/hash` costs its catalog price
//! and answers the digest; a GET tool is paid the same way; an input the
//! tool refuses is 400 and not charged.

use alloy::primitives::U256;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_tests::chain::chain_dir;
use tessera_tests::paid::{decode, send, PaidStack};

/// Runs the official client against `path`; its JSON line.
async fn buy(
    stack: &PaidStack,
    path: &str,
    method: &str,
    body: Option<Value>,
    buyer: usize,
) -> Value {
    let signer = &stack.chain.buyers[buyer];
    let mut command = tokio::process::Command::new("node");
    command
        .arg(chain_dir().join("pay.mjs"))
        .args(["--url", &stack.url(path), "--method", method])
        .args(["--key", &format!("{}", signer.to_bytes())])
        .args(["--allow-asset", &stack.chain.token.to_checksum(None)]);
    if let Some(body) = body {
        command.args(["--body", &body.to_string()]);
    }
    let output = command
        .output()
        .await
        .expect("node runs tests/chain/pay.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pay.mjs failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tools_are_bought_with_x402_at_their_catalog_price() {
    let stack = PaidStack::start().await;
    let hash_price = tessera_catalog::tool_route("hash").unwrap().price;
    let convert_price = tessera_catalog::tool_route("convert").unwrap().price;

    // Unpaid: 402 with the catalog price in the quote.
    let unpaid = send(
        reqwest::Method::POST,
        &stack.url("/api/hash"),
        Some(json!({"text": "hello world"})),
        &[],
    )
    .await;
    assert_eq!(unpaid.status, StatusCode::PAYMENT_REQUIRED);
    let quote = decode(
        unpaid
            .headers
            .get("payment-required")
            .expect("a quote header"),
    );
    assert_eq!(
        quote["accepts"][0]["amount"],
        hash_price.to_string(),
        "{quote}"
    );

    let buyer = stack.chain.buyers[0].address();
    let (buyer_before, pay_to_before) = (
        stack.balance(buyer).await,
        stack.balance(stack.chain.pay_to).await,
    );

    let hash = buy(
        &stack,
        "/api/hash",
        "POST",
        Some(json!({"text": "hello world"})),
        0,
    )
    .await;
    assert_eq!(hash["status"], 200, "{hash}");
    assert_eq!(
        hash["body"]["hex"],
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    assert_eq!(hash["paymentResponse"]["success"], true, "{hash}");

    let miles = buy(
        &stack,
        "/api/convert/kilometers-to-miles?value=42",
        "GET",
        None,
        0,
    )
    .await;
    assert_eq!(miles["status"], 200, "{miles}");
    assert!((miles["body"]["result"].as_f64().unwrap() - 26.097_590_073_968_1).abs() < 1e-9);

    // Refused input: the tool's 400 reaches the client, and nothing is charged.
    let refused = buy(&stack, "/api/hash", "POST", Some(json!({"txt": "typo"})), 0).await;
    assert_eq!(refused["status"], 400, "{refused}");
    assert!(
        refused["body"]["error"].as_str().unwrap().contains("txt"),
        "{refused}"
    );

    let spent = U256::from(hash_price + convert_price);
    assert_eq!(
        stack.balance(buyer).await,
        buyer_before - spent,
        "exactly the two served calls"
    );
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        pay_to_before + spent
    );
}
