//! x402 through the gateway on real parts: anvil with our EIP-3009 token,
//! our facilitator, the payment service, memory on Redis + PostgreSQL. The
//! outside client is the official `@x402/fetch` package (tests/chain/pay.mjs).

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tessera_tests::chain::{self, chain_dir, exact_payload};
use tessera_tests::paid::{decode, namespace, send, Options, PaidStack, Reply};
use tessera_x402::{encode_header, Requirements};

async fn post(url: &str, body: Value, headers: &[(&str, String)]) -> Reply {
    send(reqwest::Method::POST, url, Some(body), headers).await
}

/// A `PAYMENT-SIGNATURE` paying `requirements` from `signer`.
fn pay(
    stack: &PaidStack,
    signer: &PrivateKeySigner,
    requirements: &Requirements,
) -> (&'static str, String) {
    (
        "PAYMENT-SIGNATURE",
        encode_header(&stack.chain.pay(signer, requirements)),
    )
}

/// Reads a key through the memory service directly (no payment), to check
/// what a refused call did not write.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_official_client_pays_a_memory_cas_end_to_end() {
    let stack = PaidStack::start().await;
    let buyer = &stack.chain.buyers[0];
    let (buyer_before, pay_to_before) = (
        stack.balance(buyer.address()).await,
        stack.balance(stack.chain.pay_to).await,
    );
    let body =
        json!({"key": "locks/import", "expected": null, "value": "agent-7", "ttlSeconds": 30});

    let output = tokio::process::Command::new("node")
        .arg(chain_dir().join("pay.mjs"))
        .args(["--url", &stack.url("/api/memory/cas"), "--method", "POST"])
        .args(["--body", &body.to_string()])
        .args(["--key", &format!("{}", buyer.to_bytes())])
        .args(["--allow-asset", &stack.chain.token.to_checksum(None)])
        .output()
        .await
        .expect("node runs tests/chain/pay.mjs (npm ci --prefix tests/chain)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pay.mjs failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["body"]["swapped"], true);
    assert_eq!(result["body"]["value"], "agent-7");
    assert_eq!(
        result["body"]["owner"],
        namespace(buyer),
        "the payer's wallet is the namespace"
    );
    let settlement = &result["paymentResponse"];
    assert_eq!(settlement["success"], true, "{settlement}");
    assert_eq!(settlement["network"], chain::NETWORK);
    let transaction = settlement["transaction"].as_str().unwrap();
    assert!(transaction.starts_with("0x") && transaction.len() == 66);

    let price = U256::from(1000u64);
    assert_eq!(
        stack.balance(buyer.address()).await,
        buyer_before - price,
        "the buyer paid exactly the price"
    );
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        pay_to_before + price,
        "payTo received exactly the price"
    );
    assert_eq!(
        stack
            .stored(&namespace(buyer), "locks/import")
            .await
            .as_deref(),
        Some("\"agent-7\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unpaid_call_gets_402_with_the_quote_in_header_and_body() {
    let stack = PaidStack::start().await;
    for (path, method, body, price) in [
        (
            "/api/memory/cas",
            reqwest::Method::POST,
            Some(json!({"key": "k", "value": 1})),
            "1000",
        ),
        (
            "/api/memory",
            reqwest::Method::POST,
            Some(json!({"key": "k", "value": 1})),
            "2000",
        ),
        (
            "/api/agent/memory/get?key=k",
            reqwest::Method::GET,
            None,
            "1200",
        ),
        ("/agents/0xabc/memory/k", reqwest::Method::GET, None, "1000"),
    ] {
        let reply = send(method, &stack.url(path), body, &[]).await;
        assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED, "{path}");
        let header = decode(
            reply
                .headers
                .get("payment-required")
                .expect("PAYMENT-REQUIRED header"),
        );
        assert_eq!(
            header, reply.body,
            "{path}: the body is the same PaymentRequired"
        );
        assert_eq!(header["x402Version"], 2);
        assert_eq!(header["resource"]["url"], stack.url(path));
        let accepts = &header["accepts"][0];
        assert_eq!(accepts["scheme"], "exact");
        assert_eq!(accepts["network"], chain::NETWORK);
        assert_eq!(accepts["amount"], price, "{path}");
        assert_eq!(accepts["asset"], stack.chain.token.to_checksum(None));
        assert_eq!(accepts["payTo"], stack.chain.pay_to.to_checksum(None));
        assert_eq!(accepts["extra"], json!({"name": "USDC", "version": "2"}));
        assert_eq!(reply.headers.get("cache-control").unwrap(), "no-store");
    }
    let free = send(reqwest::Method::GET, &stack.url("/health"), None, &[]).await;
    assert_eq!(
        free.status,
        StatusCode::OK,
        "discovery and health stay free"
    );
}

/// Every refused payment: the documented status and reason, nothing
/// written, nothing charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_payments_are_refused_and_nothing_is_written_or_charged() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let stranger = PrivateKeySigner::random();
    let poor = stack.chain.new_buyer(10).await;
    let required = stack.payments.requirements("memory.set").unwrap();
    let token = stack.chain.token;

    let mut cases: Vec<(&str, String, &str)> = Vec::new();
    let header = |payload: &Value| encode_header(payload);
    cases.push((
        "malformed base64",
        "%%% not base64 %%%".into(),
        "invalid_payload",
    ));
    cases.push((
        "malformed JSON",
        base64_of("{\"x402Version\": 2,"),
        "invalid_payload",
    ));
    let mut wrong_version = stack.chain.pay(&buyer, &required);
    wrong_version["x402Version"] = 3.into();
    cases.push((
        "wrong version",
        header(&wrong_version),
        "invalid_x402_version",
    ));
    let mut on_mainnet = required.clone();
    on_mainnet.network = "eip155:8453".into();
    cases.push((
        "wrong network",
        header(&stack.chain.pay(&buyer, &on_mainnet)),
        "invalid_network",
    ));
    let mut other_pay_to = required.clone();
    other_pay_to.pay_to = stranger.address().to_checksum(None);
    cases.push((
        "wrong payTo",
        header(&stack.chain.pay(&buyer, &other_pay_to)),
        "invalid_payment_requirements",
    ));
    let mut to_stranger = stack.chain.authorization(buyer.address(), &required);
    to_stranger.to = stranger.address();
    let signed = stack.chain.sign(&buyer, &to_stranger);
    cases.push((
        "authorization to another payee",
        header(&chain::payload_v2(&required, &to_stranger, &signed)),
        "invalid_exact_evm_payload_recipient_mismatch",
    ));
    let mut other_asset = required.clone();
    other_asset.asset = Address::repeat_byte(0x11).to_checksum(None);
    cases.push((
        "wrong asset",
        header(&stack.chain.pay(&buyer, &other_asset)),
        "invalid_payment_requirements",
    ));
    let mut too_little = stack.chain.authorization(buyer.address(), &required);
    too_little.value = U256::from(1999u64);
    let signed = stack.chain.sign(&buyer, &too_little);
    cases.push((
        "too little value",
        header(&chain::payload_v2(&required, &too_little, &signed)),
        "invalid_exact_evm_payload_authorization_value_mismatch",
    ));
    let mut expired = stack.chain.authorization(buyer.address(), &required);
    expired.validBefore = U256::from(chain::unix_now() - 10);
    let signed = stack.chain.sign(&buyer, &expired);
    cases.push((
        "expired",
        header(&chain::payload_v2(&required, &expired, &signed)),
        "invalid_exact_evm_payload_authorization_valid_before",
    ));
    let mut early = stack.chain.authorization(buyer.address(), &required);
    early.validAfter = U256::from(chain::unix_now() + 3600);
    let signed = stack.chain.sign(&buyer, &early);
    cases.push((
        "not yet valid",
        header(&chain::payload_v2(&required, &early, &signed)),
        "invalid_exact_evm_payload_authorization_valid_after",
    ));
    let authorization = stack.chain.authorization(buyer.address(), &required);
    let mut garbled = stack.chain.sign(&buyer, &authorization).to_vec();
    garbled[10] ^= 0xff;
    cases.push((
        "bad signature",
        header(&chain::payload_v2(
            &required,
            &authorization,
            &garbled.into(),
        )),
        "invalid_exact_evm_payload_signature",
    ));
    let authorization = stack.chain.authorization(buyer.address(), &required);
    let by_stranger = stack.chain.sign(&stranger, &authorization);
    cases.push((
        "signature by another key",
        header(&chain::payload_v2(&required, &authorization, &by_stranger)),
        "invalid_exact_evm_payload_signature",
    ));
    let authorization = stack.chain.authorization(buyer.address(), &required);
    let wrong_domain = stack
        .chain
        .sign_for(&buyer, &authorization, token, "USD Coin", "2");
    cases.push((
        "signed for another EIP-712 domain",
        header(&chain::payload_v2(&required, &authorization, &wrong_domain)),
        "invalid_exact_evm_payload_signature",
    ));
    cases.push((
        "insufficient balance",
        header(&stack.chain.pay(&poor, &required)),
        "insufficient_funds",
    ));
    let mut unsupported = stack.chain.pay(&buyer, &required);
    unsupported["accepted"]["scheme"] = "upto".into();
    cases.push((
        "unsupported scheme",
        header(&unsupported),
        "unsupported_scheme",
    ));

    let before = stack.balance(buyer.address()).await;
    for (i, (case, payment, reason)) in cases.into_iter().enumerate() {
        let key = format!("refused/{i}");
        let reply = post(
            &stack.url("/api/memory"),
            json!({"key": key, "value": case}),
            &[("PAYMENT-SIGNATURE", payment)],
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::PAYMENT_REQUIRED,
            "{case}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"], reason, "{case}: {}", reply.body);
        assert_eq!(
            decode(reply.headers.get("payment-required").unwrap())["error"],
            reason,
            "{case}"
        );
        for namespace in [namespace(&buyer), namespace(&poor)] {
            assert_eq!(
                stack.stored(&namespace, &key).await,
                None,
                "{case}: nothing written"
            );
        }
    }
    assert_eq!(
        stack.balance(buyer.address()).await,
        before,
        "nothing charged"
    );
    assert_eq!(stack.balance(stack.chain.pay_to).await, U256::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_serves_exactly_one_call() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let required = stack.payments.requirements("memory.incr").unwrap();
    let price = U256::from(1000u64);

    // Replay after settle.
    let payment = pay(&stack, &buyer, &required);
    let first = post(
        &stack.url("/api/memory/incr"),
        json!({"key": "n"}),
        std::slice::from_ref(&payment),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let settled = decode(
        first
            .headers
            .get("payment-response")
            .expect("PAYMENT-RESPONSE"),
    );
    assert_eq!(settled["success"], true);
    let replay = post(
        &stack.url("/api/memory/incr"),
        json!({"key": "n"}),
        &[payment],
    )
    .await;
    assert_eq!(replay.status, StatusCode::CONFLICT, "{}", replay.body);
    assert!(
        replay.body["error"].as_str().unwrap().contains("already"),
        "{}",
        replay.body
    );

    // 50 concurrent presentations of one payment.
    let payment = pay(&stack, &buyer, &required);
    let before = stack.balance(buyer.address()).await;
    let url = stack.url("/api/memory/incr");
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let (url, payment) = (url.clone(), payment.clone());
            tokio::spawn(async move { post(&url, json!({"key": "n"}), &[payment]).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        49,
        "{statuses:?}"
    );
    assert_eq!(
        stack.stored(&namespace(&buyer), "n").await.as_deref(),
        Some("2"),
        "served once"
    );
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - price,
        "charged once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_call_is_not_charged_and_the_payer_owns_its_namespace_on_every_face() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let before = stack.balance(buyer.address()).await;

    let get = stack.payments.requirements("memory.get").unwrap();
    let absent = send(
        reqwest::Method::GET,
        &stack.url("/api/memory?key=nope"),
        None,
        &[pay(&stack, &buyer, &get)],
    )
    .await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert!(absent.headers.get("payment-response").is_none());
    let other = stack.payments.requirements("agents.memory.get").unwrap();
    let violation = send(
        reqwest::Method::GET,
        &stack.url("/agents/0xabc/memory/k"),
        None,
        &[pay(&stack, &buyer, &other)],
    )
    .await;
    assert_eq!(violation.status, StatusCode::FORBIDDEN);
    assert_eq!(violation.body["error"]["category"], "MemoryViolation");
    assert_eq!(
        stack.balance(buyer.address()).await,
        before,
        "failed calls are not charged"
    );

    let set = stack.payments.requirements("memory.set").unwrap();
    let written = post(
        &stack.url("/api/memory"),
        json!({"key": "notes", "value": {"a": 1}}),
        &[pay(&stack, &buyer, &set)],
    )
    .await;
    assert_eq!(written.status, StatusCode::OK, "{}", written.body);
    assert_eq!(written.body["owner"], me);
    let twos = stack.payments.requirements("agent.memory.get").unwrap();
    let read = send(
        reqwest::Method::GET,
        &stack.url("/api/agent/memory/get?key=notes"),
        None,
        &[pay(&stack, &buyer, &twos)],
    )
    .await;
    assert_eq!(
        read.body["value"],
        json!({"a": 1}),
        "2s.io face reads the payer's namespace"
    );
    let agents = stack.payments.requirements("agents.memory.get").unwrap();
    let read = send(
        reqwest::Method::GET,
        &stack.url(&format!("/agents/{me}/memory/notes")),
        None,
        &[pay(&stack, &buyer, &agents)],
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(
        read.body["value"],
        json!({"a": 1}),
        "per-agent face: the payer's own id"
    );
    let spent = U256::from(2000u64 + 1200 + 1000);
    assert_eq!(stack.balance(buyer.address()).await, before - spent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v1_x_payment_is_accepted_and_answered_with_x_payment_response() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let required = stack.payments.requirements("memory.cas").unwrap();
    let authorization = stack.chain.authorization(buyer.address(), &required);
    let signature = stack.chain.sign(&buyer, &authorization);
    let v1 = json!({"x402Version": 1, "scheme": "exact", "network": "base-sepolia",
                    "payload": exact_payload(&authorization, &signature)});
    let reply = post(
        &stack.url("/api/memory/cas"),
        json!({"key": "v1lock", "value": "me"}),
        &[("X-PAYMENT", encode_header(&v1))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["swapped"], true);
    let settled = decode(
        reply
            .headers
            .get("x-payment-response")
            .expect("X-PAYMENT-RESPONSE"),
    );
    assert_eq!(settled["success"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settle_before_execution_charges_before_the_call_runs() {
    let stack = PaidStack::start_with(Options {
        settle_mode: tessera_gateway::SettleMode::Before,
        ..Options::default()
    })
    .await;
    let buyer = stack.chain.buyers[0].clone();
    let before = stack.balance(buyer.address()).await;
    let required = stack.payments.requirements("memory.set").unwrap();
    let reply = post(
        &stack.url("/api/memory"),
        json!({"key": "k", "value": 1}),
        &[pay(&stack, &buyer, &required)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        decode(reply.headers.get("payment-response").unwrap())["success"],
        true
    );
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - U256::from(2000u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn facilitator_down_is_503_and_chain_down_is_502_and_nothing_is_charged() {
    let mut stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let before = stack.balance(buyer.address()).await;
    let required = stack.payments.requirements("memory.set").unwrap();

    stack.facilitator_proxy.pause();
    let reply = post(
        &stack.url("/api/memory"),
        json!({"key": "down", "value": 1}),
        &[pay(&stack, &buyer, &required)],
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("facilitator"),
        "{}",
        reply.body
    );
    stack.facilitator_proxy.resume();
    assert_eq!(stack.stored(&namespace(&buyer), "down").await, None);
    assert_eq!(stack.balance(buyer.address()).await, before);

    let payment = pay(&stack, &buyer, &required);
    stack.chain.stop().await;
    let reply = post(
        &stack.url("/api/memory"),
        json!({"key": "down", "value": 1}),
        &[payment],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert_eq!(
        stack.stored(&namespace(&buyer), "down").await,
        None,
        "nothing written"
    );
}

/// The facilitator broadcasts the transfer but the receipt is late (anvil
/// mines nothing): the settle times out and is recorded pending, the call is
/// still served. Once the block is mined, the background retry finds the
/// nonce spent by that very transfer and records it settled: one charge,
/// never two, never "failed" for a payment that was made.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settle_that_times_out_is_pending_and_reconciled_once_in_the_background() {
    let stack = PaidStack::start_with(Options {
        settle_timeout: Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    let buyer = stack.chain.buyers[0].clone();
    let before = stack.balance(buyer.address()).await;
    let required = stack.payments.requirements("memory.set").unwrap();

    stack.chain.set_automine(false).await;
    let reply = post(
        &stack.url("/api/memory"),
        json!({"key": "slow", "value": 1}),
        &[pay(&stack, &buyer, &required)],
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the call is served: {}",
        reply.body
    );
    let settlement = decode(
        reply
            .headers
            .get("payment-response")
            .expect("PAYMENT-RESPONSE"),
    );
    assert_eq!(settlement["success"], false, "{settlement}");
    assert_eq!(
        settlement["errorReason"], "settlement_pending",
        "{settlement}"
    );
    assert_eq!(
        stack.stored(&namespace(&buyer), "slow").await.as_deref(),
        Some("1")
    );

    stack.chain.mine().await;
    stack.chain.set_automine(true).await;
    let mut settled = false;
    for _ in 0..50 {
        stack.payments.retry_pending().await.unwrap();
        let ledger = stack
            .payments
            .ledger_statuses(&namespace(&buyer))
            .await
            .unwrap();
        assert!(
            !ledger.iter().any(|s| s == "failed"),
            "a made payment is never recorded failed: {ledger:?}"
        );
        if ledger.iter().all(|s| s == "settled") {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(settled, "the pending settlement was reconciled");
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - U256::from(2000u64),
        "charged exactly once"
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
