//! Our facilitator behind an OFFICIAL x402 resource server: `@x402/express`'s
//! payment middleware with `@x402/core`'s HTTPFacilitatorClient pointed at
//! our facilitator (HTTP `GET /supported`, `POST /verify`, `POST /settle`),
//! paid by the official `@x402/fetch` client (tests/chain/interop-express.mjs).
//! Our facilitator requires an API key (FACILITATOR_API_KEYS): the official
//! client sends it with `createAuthHeaders`, and without it is refused.
//! Real parts only: anvil with our EIP-3009 token, our facilitator in process
//! on free ports, the npm packages as published.

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use std::time::Duration;
use tessera_facilitator::config::ApiKeys;
use tessera_facilitator::FacilitatorConfig;
use tessera_tests::chain::{self, chain_dir, Chain, FacilitatorServer};

const PRICE: u64 = 1_000; // 0.001 USDC
const API_KEY: &str = "interop-facilitator-key";

/// Our facilitator requiring `API_KEY` (or `other-key`) on /verify and
/// /settle.
async fn start_keyed_facilitator(chain: &Chain) -> FacilitatorServer {
    FacilitatorServer::start(FacilitatorConfig {
        api_keys: ApiKeys::parse(&format!("other-key,{API_KEY}")).unwrap(),
        ..chain.facilitator_config()
    })
    .await
}

/// Runs interop-express.mjs; its one line of JSON.
async fn interop(
    chain: &Chain,
    facilitator_url: &str,
    buyer: &PrivateKeySigner,
    api_key: Option<&str>,
) -> Value {
    let mut node = tokio::process::Command::new("node");
    node.arg(chain_dir().join("interop-express.mjs"))
        .args(["--facilitator", facilitator_url])
        .args(["--token", &chain.token.to_checksum(None)])
        .args(["--pay-to", &chain.pay_to.to_checksum(None)])
        .args(["--key", &format!("{}", buyer.to_bytes())])
        .args(["--price", &PRICE.to_string()])
        .kill_on_drop(true);
    if let Some(api_key) = api_key {
        node.args(["--api-key", api_key]);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), node.output())
        .await
        .expect("interop-express.mjs finishes within 120 s")
        .expect("node runs tests/chain/interop-express.mjs (npm ci --prefix tests/chain)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "interop-express.mjs failed ({}): {stdout}\n{stderr}",
        output.status
    );
    println!("{}\n{stderr}", stdout.trim());
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON line ({e}): {stdout}\n{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_official_express_resource_server_settles_through_our_facilitator() {
    let chain = Chain::start().await;
    let facilitator = start_keyed_facilitator(&chain).await;
    let facilitator_url = facilitator.http_url.clone();
    let buyer = &chain.buyers[0];
    let (buyer_before, pay_to_before) = (
        chain.balance_of(buyer.address()).await,
        chain.balance_of(chain.pay_to).await,
    );

    let result = interop(&chain, &facilitator_url, buyer, Some(API_KEY)).await;

    assert_eq!(
        result["unpaidStatus"], 402,
        "a bare GET is refused with the quote: {result}"
    );
    assert_eq!(result["status"], 200, "the paid GET is served: {result}");
    assert_eq!(result["body"]["report"]["weather"], "sunny", "{result}");
    let settlement = &result["paymentResponse"];
    assert_eq!(settlement["success"], true, "{result}");
    assert_eq!(settlement["network"], chain::NETWORK);
    assert_eq!(
        settlement["payer"].as_str().map(str::to_lowercase),
        Some(format!("{:#x}", buyer.address())),
        "the settlement names the buyer: {settlement}"
    );
    let transaction = settlement["transaction"]
        .as_str()
        .unwrap_or_else(|| panic!("a transaction hash: {settlement}"));
    assert!(
        transaction.starts_with("0x") && transaction.len() == 66,
        "a 0x transaction hash: {transaction}"
    );

    let hash: B256 = transaction.parse().unwrap();
    let receipt = chain
        .receipt(hash)
        .await
        .expect("the settlement transaction is mined");
    assert!(receipt.status(), "the settlement transaction succeeded");
    assert_eq!(
        receipt.from,
        chain.facilitator_key.address(),
        "our facilitator sent it"
    );
    assert_eq!(receipt.to, Some(chain.token), "to the token contract");

    let price = U256::from(PRICE);
    assert_eq!(
        chain.balance_of(buyer.address()).await,
        buyer_before - price,
        "the buyer paid exactly the price"
    );
    assert_eq!(
        chain.balance_of(chain.pay_to).await,
        pay_to_before + price,
        "payTo received exactly the price"
    );

    // Without the key the facilitator refuses: directly (401), and the
    // official resource server, unable to verify, serves nothing and
    // nothing moves.
    let refused = reqwest::Client::new()
        .post(format!("{facilitator_url}/verify"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let other = &chain.buyers[1];
    let other_before = chain.balance_of(other.address()).await;
    let pay_to_after = chain.balance_of(chain.pay_to).await;
    let keyless = interop(&chain, &facilitator_url, other, None).await;
    assert_ne!(
        keyless["status"], 200,
        "served without verification: {keyless}"
    );
    assert!(
        keyless["paymentResponse"].is_null(),
        "no settlement: {keyless}"
    );
    assert_eq!(chain.balance_of(other.address()).await, other_before);
    assert_eq!(chain.balance_of(chain.pay_to).await, pay_to_after);
    facilitator.stop().await;
}
