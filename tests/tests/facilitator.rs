//! The facilitator against a real chain: anvil from `tests/chain` with our
//! EIP-3009 token, payments signed here as a client would, the facilitator
//! served over HTTP and gRPC on free ports. No mocks.

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tessera_facilitator::FacilitatorConfig;
use tessera_proto::facilitator::v1 as pb;
use tessera_proto::facilitator::v1::facilitator_service_client::FacilitatorServiceClient;
use tessera_tests::chain::{
    exact_payload, facilitator_request, payload_v2, unix_now, Chain, FacilitatorServer,
};
use tessera_tests::proxy::PausableProxy;
use tessera_x402::facilitator::Urgency;
use tessera_x402::reason;
use tessera_x402::{Requirements, ResourceInfo};

const PRICE: u64 = 1_000; // 0.001 USDC

async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    post_raw(base, path, body.to_string()).await
}

async fn post_raw(base: &str, path: &str, body: String) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, body)
}

async fn verify(server: &FacilitatorServer, request: &Value) -> Value {
    let (status, body) = post(&server.http_url, "/verify", request).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn settle(server: &FacilitatorServer, request: &Value) -> Value {
    let (status, body) = post(&server.http_url, "/settle", request).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn grpc(server: &FacilitatorServer) -> FacilitatorServiceClient<tonic::transport::Channel> {
    FacilitatorServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap()
}

async fn verify_grpc(server: &FacilitatorServer, request: &Value) -> pb::VerifyResponse {
    grpc(server)
        .await
        .verify(pb::VerifyRequest {
            x402_version: request["x402Version"].as_u64().unwrap() as u32,
            payment_payload_json: request["paymentPayload"].to_string(),
            payment_requirements_json: request["paymentRequirements"].to_string(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn checksum(address: Address) -> String {
    address.to_checksum(None)
}

/// Asserts an `isValid: false` answer with `reason` on both faces.
async fn assert_invalid(server: &FacilitatorServer, case: &str, request: &Value, reason: &str) {
    let body = verify(server, request).await;
    assert_eq!(body["isValid"], false, "{case}: {body}");
    assert_eq!(body["invalidReason"], reason, "{case}: {body}");
    assert!(
        body["invalidMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{case}: a message says why: {body}"
    );
    let over_grpc = verify_grpc(server, request).await;
    assert!(!over_grpc.is_valid, "{case} (gRPC)");
    assert_eq!(over_grpc.invalid_reason, reason, "{case} (gRPC)");
    // (Not always the same text: time-window messages name "now".)
    assert!(
        !over_grpc.invalid_message.is_empty(),
        "{case}: a message over gRPC too"
    );
}

#[tokio::test]
async fn a_valid_payment_verifies_over_http_and_grpc_and_moves_nothing() {
    let chain = Chain::start().await;
    let server = chain.start_facilitator().await;
    let buyer = &chain.buyers[0];
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let request = facilitator_request(&chain.pay(buyer, &requirements), &requirements);

    let body = verify(&server, &request).await;
    assert_eq!(
        body,
        json!({ "isValid": true, "payer": checksum(buyer.address()) })
    );
    let over_grpc = verify_grpc(&server, &request).await;
    assert_eq!(
        over_grpc,
        pb::VerifyResponse {
            is_valid: true,
            payer: checksum(buyer.address()),
            ..Default::default()
        }
    );
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::ZERO);
    assert_eq!(
        chain.balance_of(buyer.address()).await,
        U256::from(tessera_tests::chain::BUYER_FUNDS)
    );
}

#[tokio::test]
async fn each_bad_payment_gets_its_reason() {
    let chain = Chain::start().await;
    let server = chain.start_facilitator().await;
    let buyer = &chain.buyers[0];
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let signed = |authorization: &tessera_x402::eip3009::TransferWithAuthorization| {
        let signature = chain.sign(buyer, authorization);
        facilitator_request(
            &payload_v2(&requirements, authorization, &signature),
            &requirements,
        )
    };
    let base = chain.authorization(buyer.address(), &requirements);

    // Recipient: the buyer signed a transfer to someone else.
    let mut auth = base.clone();
    auth.to = Address::repeat_byte(0x42);
    assert_invalid(
        &server,
        "wrong payTo",
        &signed(&auth),
        reason::RECIPIENT_MISMATCH,
    )
    .await;

    // Value: exactly the amount, neither less nor more.
    for (case, value) in [("value too low", PRICE - 1), ("value too high", PRICE + 1)] {
        let mut auth = base.clone();
        auth.value = U256::from(value);
        assert_invalid(&server, case, &signed(&auth), reason::VALUE_MISMATCH).await;
    }

    // Time window.
    let now = unix_now();
    let mut auth = base.clone();
    auth.validAfter = U256::from(now + 60);
    assert_invalid(
        &server,
        "not yet valid",
        &signed(&auth),
        reason::VALID_AFTER,
    )
    .await;
    for (case, before) in [("expired", now - 10), ("expires within 6 s", now + 3)] {
        let mut auth = base.clone();
        auth.validBefore = U256::from(before);
        assert_invalid(&server, case, &signed(&auth), reason::VALID_BEFORE).await;
    }

    // Signatures.
    let other = PrivateKeySigner::random();
    let by_other = chain.sign(&other, &base);
    let request = facilitator_request(&payload_v2(&requirements, &base, &by_other), &requirements);
    assert_invalid(
        &server,
        "signed by another key",
        &request,
        reason::SIGNATURE,
    )
    .await;
    for (case, bytes) in [
        ("4 signature bytes", vec![0xde, 0xad, 0xbe, 0xef]),
        ("65 garbage bytes", vec![0x11; 65]),
        ("empty signature", vec![]),
    ] {
        let request = facilitator_request(
            &payload_v2(&requirements, &base, &Bytes::from(bytes)),
            &requirements,
        );
        assert_invalid(&server, case, &request, reason::SIGNATURE).await;
    }
    let wrong_domain = chain.sign_for(buyer, &base, chain.token, "USD Coin", "2");
    let request = facilitator_request(
        &payload_v2(&requirements, &base, &wrong_domain),
        &requirements,
    );
    assert_invalid(
        &server,
        "signed for another token name",
        &request,
        reason::SIGNATURE,
    )
    .await;
    let mut payload = payload_v2(&requirements, &base, &chain.sign(buyer, &base));
    payload["payload"]["signature"] = json!("0xnothex");
    let request = facilitator_request(&payload, &requirements);
    assert_invalid(
        &server,
        "signature not hex",
        &request,
        reason::INVALID_PAYLOAD,
    )
    .await;

    // Asset: accepted names another token than the requirements ...
    let mut accepted = requirements.clone();
    accepted.asset = checksum(Address::repeat_byte(0x77));
    let request = facilitator_request(
        &payload_v2(&accepted, &base, &chain.sign(buyer, &base)),
        &requirements,
    );
    assert_invalid(
        &server,
        "accepted another asset",
        &request,
        reason::INVALID_PAYMENT_REQUIREMENTS,
    )
    .await;
    // ... or both name a token the signature was not made for.
    let request = facilitator_request(
        &payload_v2(&accepted, &base, &chain.sign(buyer, &base)),
        &accepted,
    );
    assert_invalid(
        &server,
        "another asset throughout",
        &request,
        reason::SIGNATURE,
    )
    .await;

    // ... or both name an address without a token, and the client signed for it.
    let mut no_token = requirements.clone();
    no_token.asset = checksum(Address::repeat_byte(0x78));
    let authorization = chain.authorization(buyer.address(), &no_token);
    let signature = chain.sign_for(
        buyer,
        &authorization,
        Address::repeat_byte(0x78),
        "USDC",
        "2",
    );
    let request = facilitator_request(
        &payload_v2(&no_token, &authorization, &signature),
        &no_token,
    );
    assert_invalid(
        &server,
        "an asset that is no token",
        &request,
        reason::INVALID_PAYMENT_REQUIREMENTS,
    )
    .await;

    // Accepted amount / payTo differ from the requirements.
    let mut accepted = requirements.clone();
    accepted.amount = (PRICE / 2).to_string();
    let request = facilitator_request(&chain.pay(buyer, &accepted), &requirements);
    assert_invalid(
        &server,
        "accepted another amount",
        &request,
        reason::INVALID_PAYMENT_REQUIREMENTS,
    )
    .await;

    let mut accepted = requirements.clone();
    accepted.pay_to = checksum(Address::repeat_byte(0x43));
    let request = facilitator_request(&chain.pay(buyer, &accepted), &requirements);
    assert_invalid(
        &server,
        "accepted another payTo",
        &request,
        reason::INVALID_PAYMENT_REQUIREMENTS,
    )
    .await;

    // Network: not ours, or payload and requirements disagree.
    let mut mainnet = requirements.clone();
    mainnet.network = "eip155:8453".into();
    let request = facilitator_request(&chain.pay(buyer, &mainnet), &mainnet);
    assert_invalid(&server, "another chain", &request, reason::INVALID_NETWORK).await;
    let request = facilitator_request(&chain.pay(buyer, &mainnet), &requirements);
    assert_invalid(
        &server,
        "payload on another network",
        &request,
        reason::INVALID_NETWORK,
    )
    .await;

    // Scheme and requirements.
    let mut upto = requirements.clone();
    upto.scheme = "upto".into();
    let request = facilitator_request(&chain.pay(buyer, &upto), &upto);
    assert_invalid(
        &server,
        "unsupported scheme",
        &request,
        reason::UNSUPPORTED_SCHEME,
    )
    .await;
    let mut bare = requirements.clone();
    bare.extra = None;
    let request = facilitator_request(&chain.pay(buyer, &bare), &bare);
    assert_invalid(
        &server,
        "no EIP-712 domain in extra",
        &request,
        reason::INVALID_PAYMENT_REQUIREMENTS,
    )
    .await;

    // Balance: a payer without tokens.
    let poor = PrivateKeySigner::random();
    let request = facilitator_request(&chain.pay(&poor, &requirements), &requirements);
    let body = verify(&server, &request).await;
    assert_eq!(body["invalidReason"], reason::INSUFFICIENT_FUNDS, "{body}");
    assert_eq!(body["payer"], checksum(poor.address()));
    assert_invalid(
        &server,
        "insufficient balance",
        &request,
        reason::INSUFFICIENT_FUNDS,
    )
    .await;

    // Versions and shapes.
    let mut request = signed(&base);
    request["x402Version"] = json!(3);
    assert_invalid(
        &server,
        "x402Version 3",
        &request,
        reason::INVALID_X402_VERSION,
    )
    .await;
    let mut request = signed(&base);
    request["x402Version"] = json!(1);
    assert_invalid(
        &server,
        "request v1, payload v2",
        &request,
        reason::INVALID_X402_VERSION,
    )
    .await;
    let mut request = signed(&base);
    request["paymentPayload"]["payload"] = json!({ "signature": "0x00" });
    assert_invalid(
        &server,
        "no authorization",
        &request,
        reason::INVALID_PAYLOAD,
    )
    .await;
    let mut request = signed(&base);
    request["paymentPayload"]["payload"]["authorization"]["value"] = json!("1e3");
    assert_invalid(
        &server,
        "value not decimal",
        &request,
        reason::INVALID_PAYLOAD,
    )
    .await;

    // The one good payment among them still verifies.
    assert_eq!(verify(&server, &signed(&base)).await["isValid"], true);
}

#[tokio::test]
async fn settle_moves_exactly_the_value_and_a_replay_is_refused() {
    let chain = Chain::start().await;
    let server = chain.start_facilitator().await;
    let buyer = &chain.buyers[0];
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let payload = chain.pay(buyer, &requirements);
    let request = facilitator_request(&payload, &requirements);
    let buyer_before = chain.balance_of(buyer.address()).await;
    let sender = chain.facilitator_key.address();
    let sent_before = chain.transaction_count(sender).await;

    let body = settle(&server, &request).await;
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["payer"], checksum(buyer.address()));
    assert_eq!(body["network"], "eip155:84532");
    assert_eq!(body["amount"], PRICE.to_string());
    assert!(body.get("errorReason").is_none(), "{body}");
    let hash = body["transaction"].as_str().unwrap().parse().unwrap();
    let receipt = chain.receipt(hash).await.expect("the transaction is mined");
    assert!(receipt.status());
    assert_eq!(receipt.from, sender, "sent from the facilitator's key");
    assert_eq!(receipt.to, Some(chain.token));
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(PRICE));
    assert_eq!(
        chain.balance_of(buyer.address()).await,
        buyer_before - U256::from(PRICE)
    );
    assert_eq!(chain.transaction_count(sender).await, sent_before + 1);
    let nonce = payload["payload"]["authorization"]["nonce"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(chain.authorization_used(buyer.address(), nonce).await);

    // The same payment again: spent on chain.
    assert_invalid(
        &server,
        "replay",
        &request,
        reason::INVALID_TRANSACTION_STATE,
    )
    .await;
    // Settling it again reconciles with the transfer that paid it (how a
    // settle that timed out is retried): the same hash, nothing sent.
    let replay = settle(&server, &request).await;
    assert_eq!(replay["success"], true, "{replay}");
    assert_eq!(
        replay["transaction"], body["transaction"],
        "the original transfer"
    );
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(PRICE));
    assert_eq!(
        chain.transaction_count(sender).await,
        sent_before + 1,
        "a settle of a settled payment sends nothing"
    );

    // One payment settled twice at once: one transfer, and both answer it
    // (the second follows the first while it is being settled, or
    // reconciles with its transfer once mined).
    let request = facilitator_request(&chain.pay(buyer, &requirements), &requirements);
    let (a, b) = tokio::join!(settle(&server, &request), settle(&server, &request));
    assert_eq!(a["success"], true, "{a}");
    assert_eq!(b["success"], true, "{b}");
    assert_eq!(a["transaction"], b["transaction"], "{a} {b}");
    assert_eq!(
        chain.transaction_count(sender).await,
        sent_before + 2,
        "one transaction for the pair"
    );
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(2 * PRICE));

    // Over gRPC, another payment settles the same way.
    let payload = chain.pay(buyer, &requirements);
    let settled = grpc(&server)
        .await
        .settle(pb::SettleRequest {
            x402_version: 2,
            payment_payload_json: payload.to_string(),
            payment_requirements_json: serde_json::to_string(&requirements).unwrap(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(settled.success, "{settled:?}");
    assert_eq!(settled.payer, checksum(buyer.address()));
    assert_eq!(settled.network, "eip155:84532");
    assert!(chain
        .receipt(settled.transaction.parse().unwrap())
        .await
        .unwrap()
        .status());
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(3 * PRICE));
}

#[tokio::test]
async fn v1_payloads_with_v1_requirements_verify_and_settle() {
    let chain = Chain::start().await;
    let server = chain.start_facilitator().await;
    let buyer = &chain.buyers[1];
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let resource = ResourceInfo {
        url: "http://127.0.0.1/api/memory".into(),
        description: Some("memory set".into()),
        mime_type: Some("application/json".into()),
    };
    let v1 = requirements.to_v1(&resource).unwrap();
    assert_eq!(v1.network, "base-sepolia");
    let authorization = chain.authorization(buyer.address(), &requirements);
    let signature = chain.sign(buyer, &authorization);
    let payload = json!({
        "x402Version": 1,
        "scheme": "exact",
        "network": "base-sepolia",
        "payload": exact_payload(&authorization, &signature),
    });
    let request = facilitator_request(&payload, &v1);
    assert_eq!(
        request["paymentRequirements"]["maxAmountRequired"],
        PRICE.to_string()
    );

    let body = verify(&server, &request).await;
    assert_eq!(
        body,
        json!({ "isValid": true, "payer": checksum(buyer.address()) })
    );
    let settled = settle(&server, &request).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(
        settled["network"], "base-sepolia",
        "v1 answers name the network"
    );
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(PRICE));

    // v1 with a value that is not maxAmountRequired.
    let mut low = v1.clone();
    low.max_amount_required = (PRICE * 2).to_string();
    let request = facilitator_request(&chain_v1_payload(&chain, buyer, &requirements), &low);
    assert_invalid(
        &server,
        "v1 value mismatch",
        &request,
        reason::VALUE_MISMATCH,
    )
    .await;
}

fn chain_v1_payload(chain: &Chain, buyer: &PrivateKeySigner, requirements: &Requirements) -> Value {
    let authorization = chain.authorization(buyer.address(), requirements);
    let signature = chain.sign(buyer, &authorization);
    json!({
        "x402Version": 1,
        "scheme": "exact",
        "network": "base-sepolia",
        "payload": exact_payload(&authorization, &signature),
    })
}

#[tokio::test]
async fn malformed_bodies_are_400_and_supported_has_its_shape() {
    let chain = Chain::start_with_buyers(0).await;
    let server = chain.start_facilitator().await;

    for (case, body) in [
        ("not JSON", "{".to_string()),
        ("empty", String::new()),
        (
            "no requirements",
            json!({"x402Version": 2, "paymentPayload": {}}).to_string(),
        ),
        ("an array", "[]".to_string()),
    ] {
        for path in ["/verify", "/settle"] {
            let (status, reply) = post_raw(&server.http_url, path, body.clone()).await;
            assert_eq!(status, 400, "{case} {path}: {reply}");
            assert!(
                reply["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{case}: {reply}"
            );
            assert_eq!(reply.as_object().unwrap().len(), 1, "{case}: only error");
        }
    }
    let status = grpc(&server)
        .await
        .verify(pb::VerifyRequest {
            x402_version: 2,
            payment_payload_json: "{".into(),
            payment_requirements_json: "{}".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("payment_payload_json"),
        "{}",
        status.message()
    );

    let supported: Value = reqwest::get(format!("{}/supported", server.http_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let signer = checksum(chain.facilitator_key.address());
    assert_eq!(
        supported,
        json!({
            "kinds": [
                { "x402Version": 1, "scheme": "exact", "network": "base-sepolia" },
                { "x402Version": 2, "scheme": "exact", "network": "eip155:84532" },
            ],
            "extensions": [],
            "signers": { "eip155:*": [signer] },
        })
    );
    let over_grpc = grpc(&server)
        .await
        .supported(pb::SupportedRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(over_grpc.kinds.len(), 2);
    assert_eq!(
        (
            over_grpc.kinds[0].x402_version,
            over_grpc.kinds[0].network.as_str()
        ),
        (1, "base-sepolia")
    );
    assert_eq!(over_grpc.kinds[1].network, "eip155:84532");
    assert_eq!(over_grpc.signers["eip155:*"].addresses, [signer]);

    let health: Value = reqwest::get(format!("{}/health", server.http_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health,
        json!({ "status": "ok", "network": "eip155:84532", "settles": true })
    );
    let missing = reqwest::get(format!("{}/nope", server.http_url))
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // Without a key: verify-only, no signers, settle says why.
    let verifier = FacilitatorServer::start(FacilitatorConfig {
        settlement_key: None,
        ..chain.facilitator_config()
    })
    .await;
    let supported: Value = reqwest::get(format!("{}/supported", verifier.http_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(supported["signers"], json!({}));
    let buyer = chain.new_buyer(PRICE).await;
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let request = facilitator_request(&chain.pay(&buyer, &requirements), &requirements);
    assert_eq!(verify(&verifier, &request).await["isValid"], true);
    let refused = settle(&verifier, &request).await;
    assert_eq!(refused["success"], false);
    assert_eq!(refused["errorReason"], reason::UNEXPECTED_SETTLE_ERROR);
    assert!(refused["errorMessage"]
        .as_str()
        .unwrap()
        .contains("FACILITATOR_PRIVATE_KEY"));
}

#[tokio::test]
async fn twenty_concurrent_settles_all_land_with_consecutive_nonces() {
    const PAYERS: usize = 20;
    let chain = Chain::start_with_buyers(PAYERS).await;
    let server = chain.start_facilitator().await;
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let sender = chain.facilitator_key.address();
    let first_nonce = chain.transaction_count(sender).await;

    let settles = chain.buyers.iter().map(|buyer| {
        let request = facilitator_request(&chain.pay(buyer, &requirements), &requirements);
        let server = &server;
        async move { settle(server, &request).await }
    });
    let results = futures::future::join_all(settles).await;

    let mut nonces = Vec::new();
    for (buyer, body) in chain.buyers.iter().zip(&results) {
        assert_eq!(body["success"], true, "{body}");
        assert_eq!(body["payer"], checksum(buyer.address()));
        let hash = body["transaction"].as_str().unwrap().parse().unwrap();
        assert!(chain.receipt(hash).await.unwrap().status());
        nonces.push(chain.transaction_nonce(hash).await);
    }
    nonces.sort_unstable();
    let expected: Vec<u64> = (first_nonce..first_nonce + PAYERS as u64).collect();
    assert_eq!(nonces, expected, "distinct and consecutive");
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        U256::from(PRICE * PAYERS as u64)
    );
    assert_eq!(
        server.facilitator.next_settlement_nonce().await,
        Some(first_nonce + PAYERS as u64)
    );
}

#[tokio::test]
async fn a_restarted_facilitator_continues_after_a_pending_settlement() {
    let chain = Chain::start().await;
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let sender = chain.facilitator_key.address();
    let mut config = chain.facilitator_config();
    config.receipt_timeout = Duration::from_secs(1);

    // Instance A settles once normally, then once while the chain does not
    // mine: no receipt within its timeout, so the outcome is unknown and
    // the answer carries the hash.
    let first = FacilitatorServer::start(config.clone()).await;
    let settled = settle(
        &first,
        &facilitator_request(&chain.pay(&chain.buyers[0], &requirements), &requirements),
    )
    .await;
    assert_eq!(settled["success"], true, "{settled}");
    chain.set_automine(false).await;
    let pending_request =
        facilitator_request(&chain.pay(&chain.buyers[1], &requirements), &requirements);
    let started = Instant::now();
    let pending = settle(&first, &pending_request).await;
    let waited = started.elapsed();
    assert_eq!(pending["success"], false, "{pending}");
    assert_eq!(pending["errorReason"], reason::UNEXPECTED_SETTLE_ERROR);
    assert!(
        pending["errorMessage"]
            .as_str()
            .unwrap()
            .contains("may still be mined"),
        "{pending}"
    );
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(4),
        "settle waited {waited:?} for a 1 s receipt timeout"
    );
    let pending_hash = pending["transaction"].as_str().unwrap().parse().unwrap();
    assert!(
        chain.receipt(pending_hash).await.is_none(),
        "still in the pool"
    );
    first.stop().await;

    // Instance B starts while A's transaction is still pooled: it counts it.
    let second = FacilitatorServer::start(config).await;
    assert_eq!(chain.transaction_count(sender).await, 1, "one mined");
    assert_eq!(
        second.facilitator.next_settlement_nonce().await,
        Some(2),
        "the pooled transaction's nonce is taken"
    );
    chain.mine().await;
    chain.set_automine(true).await;
    assert!(
        chain.receipt(pending_hash).await.unwrap().status(),
        "A's settlement landed"
    );

    for buyer in &chain.buyers[2..4] {
        let body = settle(
            &second,
            &facilitator_request(&chain.pay(buyer, &requirements), &requirements),
        )
        .await;
        assert_eq!(
            body["success"], true,
            "no nonce error after the restart: {body}"
        );
    }
    // Settling A's pending payment again reconciles with A's transfer:
    // success with its hash, never a second charge.
    let again = settle(&second, &pending_request).await;
    assert_eq!(again["success"], true, "{again}");
    assert_eq!(again["transaction"], pending_hash.to_string(), "{again}");
    assert_eq!(chain.transaction_count(sender).await, 4);
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(4 * PRICE));
}

#[tokio::test]
async fn an_erc1271_smart_wallet_pays() {
    let chain = Chain::start_with_buyers(0).await;
    let server = chain.start_facilitator().await;
    let owner = PrivateKeySigner::random();
    let wallet = chain.deploy_smart_wallet(owner.address()).await;
    chain.mint(wallet, U256::from(10 * PRICE)).await;
    let requirements = chain.requirements(chain.pay_to, PRICE);

    // Someone else's signature for the wallet is refused by the wallet.
    let authorization = chain.authorization(wallet, &requirements);
    let stranger = PrivateKeySigner::random();
    let request = facilitator_request(
        &payload_v2(
            &requirements,
            &authorization,
            &chain.sign(&stranger, &authorization),
        ),
        &requirements,
    );
    assert_invalid(
        &server,
        "wallet, stranger's signature",
        &request,
        reason::SIGNATURE,
    )
    .await;

    // The owner's signature is the wallet's.
    let signature = chain.sign(&owner, &authorization);
    let request = facilitator_request(
        &payload_v2(&requirements, &authorization, &signature),
        &requirements,
    );
    assert_eq!(
        verify(&server, &request).await,
        json!({ "isValid": true, "payer": checksum(wallet) })
    );
    let settled = settle(&server, &request).await;
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(settled["payer"], checksum(wallet));
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(PRICE));
    assert_eq!(chain.balance_of(wallet).await, U256::from(9 * PRICE));
    assert_invalid(
        &server,
        "wallet replay",
        &request,
        reason::INVALID_TRANSACTION_STATE,
    )
    .await;
}

#[tokio::test]
async fn chain_down_is_an_unexpected_error_and_nothing_hangs() {
    let mut chain = Chain::start().await;
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let anvil_addr = chain.rpc_url.trim_start_matches("http://").parse().unwrap();
    let proxy = PausableProxy::start(anvil_addr).await;
    let mut config = chain.facilitator_config();
    config.rpc_url = format!("http://{}", proxy.addr);
    config.rpc_timeout = Duration::from_secs(1);
    config.receipt_timeout = Duration::from_secs(2);
    let server = FacilitatorServer::start(config).await;
    let request = facilitator_request(&chain.pay(&chain.buyers[0], &requirements), &requirements);
    assert_eq!(verify(&server, &request).await["isValid"], true);

    // The chain hangs (answers nothing): each RPC gives up after 1 s.
    proxy.pause();
    let started = Instant::now();
    let body = verify(&server, &request).await;
    assert_eq!(body["isValid"], false);
    assert_eq!(
        body["invalidReason"],
        reason::UNEXPECTED_VERIFY_ERROR,
        "{body}"
    );
    assert!(
        body["invalidMessage"]
            .as_str()
            .unwrap()
            .starts_with("chain RPC unavailable"),
        "{body}"
    );
    assert_eq!(body["payer"], checksum(chain.buyers[0].address()));
    let settled = settle(&server, &request).await;
    assert_eq!(settled["success"], false);
    assert_eq!(
        settled["errorReason"],
        reason::UNEXPECTED_SETTLE_ERROR,
        "{settled}"
    );
    assert_eq!(settled["transaction"], "");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "verify + settle on a hung chain took {:?}",
        started.elapsed()
    );
    proxy.resume();

    // The chain is gone: refused at once.
    chain.stop().await;
    let started = Instant::now();
    let body = verify(&server, &request).await;
    assert_eq!(
        body["invalidReason"],
        reason::UNEXPECTED_VERIFY_ERROR,
        "{body}"
    );
    let over_grpc = verify_grpc(&server, &request).await;
    assert_eq!(over_grpc.invalid_reason, reason::UNEXPECTED_VERIFY_ERROR);
    assert!(over_grpc
        .invalid_message
        .starts_with("chain RPC unavailable"));
    let settled = settle(&server, &request).await;
    assert_eq!(
        settled["errorReason"],
        reason::UNEXPECTED_SETTLE_ERROR,
        "{settled}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Reconciliation must not be fooled: a payer who spends the payment's
/// nonce on another transfer (to itself, for 1 unit) between verify and
/// settle has not paid, and settle says so.
#[tokio::test]
async fn a_nonce_spent_on_another_transfer_does_not_count_as_payment() {
    let chain = Chain::start().await;
    let server = chain.start_facilitator().await;
    let buyer = &chain.buyers[0];
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let payment = chain.authorization(buyer.address(), &requirements);
    let signature = chain.sign(buyer, &payment);
    let request = facilitator_request(
        &payload_v2(&requirements, &payment, &signature),
        &requirements,
    );
    assert_eq!(verify(&server, &request).await["isValid"], true);

    let elsewhere = chain.requirements(buyer.address(), 1);
    let mut diversion = chain.authorization(buyer.address(), &elsewhere);
    diversion.nonce = payment.nonce;
    let diverted = chain.sign(buyer, &diversion);
    let spent = settle(
        &server,
        &facilitator_request(&payload_v2(&elsewhere, &diversion, &diverted), &elsewhere),
    )
    .await;
    assert_eq!(spent["success"], true, "{spent}");

    let body = settle(&server, &request).await;
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["errorReason"], reason::INVALID_TRANSACTION_STATE);
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        U256::ZERO,
        "payTo got nothing"
    );
}

/// `POST` with an optional `Authorization` header: status, body, and the
/// `WWW-Authenticate` header.
async fn post_authorized(
    base: &str,
    path: &str,
    body: &Value,
    authorization: Option<&str>,
) -> (u16, Value, Option<String>) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, body, challenge)
}

fn grpc_call<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(authorization) = authorization {
        request
            .metadata_mut()
            .insert("authorization", authorization.parse().unwrap());
    }
    request
}

/// With FACILITATOR_API_KEYS set, `/verify` and `/settle` (HTTP and gRPC)
/// need `Bearer <one of the keys>`: none or a wrong one is 401 /
/// UNAUTHENTICATED and nothing is verified or moved; `/supported`,
/// `/health` and `/metrics` stay open. Our payment service's client sends
/// its key.
#[tokio::test]
async fn api_keys_guard_verify_and_settle_on_http_and_grpc() {
    let chain = Chain::start().await;
    let server = FacilitatorServer::start(FacilitatorConfig {
        api_keys: tessera_facilitator::config::ApiKeys::parse("key-one-s3cret, key-two-s3cret")
            .unwrap(),
        ..chain.facilitator_config()
    })
    .await;
    let buyer = &chain.buyers[0];
    let requirements = chain.requirements(chain.pay_to, PRICE);
    let request = facilitator_request(&chain.pay(buyer, &requirements), &requirements);
    let refused = [
        None,
        Some("Bearer key-three-s3cret"),
        Some("Bearer key-one-s3cre"),
        Some("key-one-s3cret"),
        Some("Basic key-one-s3cret"),
    ];

    for path in ["/verify", "/settle"] {
        for authorization in refused {
            let (status, body, challenge) =
                post_authorized(&server.http_url, path, &request, authorization).await;
            assert_eq!(status, 401, "{path} with {authorization:?}: {body}");
            assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{body}"
            );
            assert_eq!(challenge.as_deref(), Some("Bearer"));
        }
    }
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        U256::ZERO,
        "nothing moved"
    );

    let mut client = FacilitatorServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    let verify_request = || pb::VerifyRequest {
        x402_version: 2,
        payment_payload_json: request["paymentPayload"].to_string(),
        payment_requirements_json: request["paymentRequirements"].to_string(),
    };
    let settle_request = || pb::SettleRequest {
        x402_version: 2,
        payment_payload_json: request["paymentPayload"].to_string(),
        payment_requirements_json: request["paymentRequirements"].to_string(),
    };
    for authorization in refused {
        let status = client
            .verify(grpc_call(verify_request(), authorization))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{authorization:?}"
        );
        let status = client
            .settle(grpc_call(settle_request(), authorization))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{authorization:?}"
        );
    }
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        U256::ZERO,
        "nothing moved"
    );

    // Open routes.
    let supported = client
        .supported(pb::SupportedRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!supported.kinds.is_empty());
    for path in ["/supported", "/health", "/metrics"] {
        let status = reqwest::get(format!("{}{path}", server.http_url))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{path} needs no key");
    }

    // Either key works, with the scheme in any case.
    let valid = json!({ "isValid": true, "payer": checksum(buyer.address()) });
    for authorization in ["Bearer key-one-s3cret", "bearer key-two-s3cret"] {
        let (status, body, _) =
            post_authorized(&server.http_url, "/verify", &request, Some(authorization)).await;
        assert_eq!((status, &body), (200, &valid), "{authorization}");
    }
    let over_grpc = client
        .verify(grpc_call(verify_request(), Some("Bearer key-two-s3cret")))
        .await
        .unwrap()
        .into_inner();
    assert!(over_grpc.is_valid, "{over_grpc:?}");

    // Our payment service's facilitator client: no key is refused (the
    // facilitator counts as unreachable), its key is served.
    let typed: tessera_x402::facilitator::FacilitatorRequest =
        serde_json::from_value(request.clone()).unwrap();
    let timeout = Duration::from_secs(20);
    let keyless =
        tessera_payment::facilitator_client::FacilitatorClient::new(&server.http_url, None);
    let unreachable = keyless.verify(&typed, timeout).await.unwrap_err();
    assert!(unreachable.0.contains("401"), "{}", unreachable.0);
    let keyed = tessera_payment::facilitator_client::FacilitatorClient::new(
        &server.http_url,
        Some(tessera_runtime::config::Secret::new("key-one-s3cret")),
    );
    let verified = keyed.verify(&typed, timeout).await.unwrap();
    assert!(verified.is_valid, "{verified:?}");
    let settled = keyed.settle(&typed, timeout, Urgency::Now).await.unwrap();
    assert!(settled.success, "{settled:?}");
    assert_eq!(chain.balance_of(chain.pay_to).await, U256::from(PRICE));
}
