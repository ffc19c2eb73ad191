//! The proof-of-work tier through the gateway, with payments on (x402 on
//! anvil): challenges, a tool paid with `X-Pow-Solution` (no charge, no
//! ledger row), single use, every refusal, spent only when served, wallet
//! routes still 402, and two gateways whose pow replicas share Redis
//! redeeming one solution at once: exactly one served.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_pow::token::{solve, solves, Signer};
use tessera_tests::harness::{self, POW_SECRET};
use tessera_tests::paid::{send, PaidStack, Reply};

const BITS: u32 = 8; // PaidStack's default difficulty

async fn challenge(stack: &PaidStack, slug: &str) -> Value {
    let reply = send(
        Method::GET,
        &stack.url(&format!("/api/pow/challenge?slug={slug}")),
        None,
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{slug}: {}", reply.body);
    reply.body
}

async fn hash_with(url: &str, solution: &str, body: Value) -> Reply {
    send(
        Method::POST,
        url,
        Some(body),
        &[("X-Pow-Solution", solution.to_string())],
    )
    .await
}

fn error_of(reply: &Reply) -> String {
    reply.body["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn challenges_are_described_and_issued_for_cpu_tools_only() {
    let stack = PaidStack::start().await;
    let described = send(Method::GET, &stack.url("/api/pow"), None, &[]).await;
    assert_eq!(described.status, StatusCode::OK);
    assert_eq!(described.body["header"], "X-Pow-Solution");
    assert_eq!(described.body["defaultDifficulty"], BITS);
    let tools = described.body["tools"].as_array().unwrap();
    assert!(tools.len() >= 60);
    assert!(tools
        .iter()
        .any(|t| t["slug"] == "hash" && t["route"] == "/api/hash" && t["method"] == "POST"));
    assert!(tools
        .iter()
        .all(|t| !t["route"].as_str().unwrap().contains("memory")));

    let issued = challenge(&stack, "hash").await;
    assert_eq!(issued["challenge"].as_str().unwrap().len(), 32);
    assert_eq!(issued["difficulty"], BITS);
    assert!(issued["token"].as_str().unwrap().len() > 40);
    assert!(issued["expiresAt"].as_i64().unwrap() > 1_700_000_000);

    for (query, status, needle) in [
        ("?slug=memory.cas", StatusCode::NOT_FOUND, "wallet"),
        ("?slug=no-such-tool", StatusCode::NOT_FOUND, "no tool"),
        ("", StatusCode::BAD_REQUEST, "slug"),
        ("?slug=", StatusCode::BAD_REQUEST, "slug"),
    ] {
        let reply = send(
            Method::GET,
            &stack.url(&format!("/api/pow/challenge{query}")),
            None,
            &[],
        )
        .await;
        assert_eq!(reply.status, status, "{query}");
        assert!(error_of(&reply).contains(needle), "{query}: {}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_solution_pays_for_one_served_call_and_nothing_is_charged() {
    let stack = PaidStack::start().await;
    let rows_before = stack.ledger_rows().await;
    let url = stack.url("/api/hash");
    let solution = stack.pow_solution("hash").await;

    // Refused input: 400, and the solution is not spent.
    let refused = hash_with(&url, &solution, json!({"txt": "typo"})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let served = hash_with(&url, &solution, json!({"text": "hello world"})).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    assert_eq!(
        served.body["hex"],
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    // Spent: the same solution again is 409, whatever the body.
    let replay = hash_with(&url, &solution, json!({"text": "hello world"})).await;
    assert_eq!(replay.status, StatusCode::CONFLICT, "{}", replay.body);
    assert!(error_of(&replay).contains("used"), "{}", replay.body);
    // A GET tool is paid the same way.
    let uuid_solution = stack.pow_solution("uuid").await;
    let uuid = send(
        Method::GET,
        &stack.url("/api/uuid?version=7"),
        None,
        &[("X-Pow-Solution", uuid_solution)],
    )
    .await;
    assert_eq!(uuid.status, StatusCode::OK, "{}", uuid.body);
    // No payment was asked for, reserved or settled.
    assert_eq!(stack.ledger_rows().await, rows_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_solution_is_refused_and_spends_nothing() {
    let stack = PaidStack::start().await;
    let url = stack.url("/api/hash");
    let good = json!({"text": "abc"});

    // Issued for another tool.
    let for_sha256 = stack.pow_solution("sha256").await;
    let wrong_tool = hash_with(&url, &for_sha256, good.clone()).await;
    assert_eq!(wrong_tool.status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&wrong_tool).contains("sha256"),
        "{}",
        wrong_tool.body
    );
    // ...and still good where it belongs.
    let sha = hash_with(&stack.url("/api/sha256"), &for_sha256, good.clone()).await;
    assert_eq!(sha.status, StatusCode::OK, "{}", sha.body);

    // Too little work.
    let issued = challenge(&stack, "hash").await;
    let lazy = (0u64..)
        .map(|n| n.to_string())
        .find(|n| !solves(issued["challenge"].as_str().unwrap(), n, BITS))
        .unwrap();
    let weak = hash_with(
        &url,
        &format!("{}:{lazy}", issued["token"].as_str().unwrap()),
        good.clone(),
    )
    .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&weak).contains("leading zero bits"),
        "{}",
        weak.body
    );

    // Expired, though signed with the right secret.
    let (claims, token) = Signer::new(POW_SECRET.as_bytes()).mint("hash", BITS, 1_000_000);
    let expired = hash_with(
        &url,
        &format!("{token}:{}", solve(&claims.challenge, BITS)),
        good.clone(),
    )
    .await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&expired).contains("expired"), "{}", expired.body);

    // Forged: another secret, an easier difficulty.
    let (claims, token) =
        Signer::new(b"someone else's secret, 32 chars!").mint("hash", 1, 4_000_000_000);
    let forged = hash_with(
        &url,
        &format!("{token}:{}", solve(&claims.challenge, 1)),
        good.clone(),
    )
    .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&forged).contains("signature"), "{}", forged.body);

    for junk in ["", "no-colon", "a:b", &"x".repeat(600)] {
        let reply = hash_with(&url, junk, good.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{junk:?}: {}",
            reply.body
        );
    }

    // Memory is wallet tier: a proof of work changes nothing, still 402.
    let solution = stack.pow_solution("hash").await;
    let memory = send(
        Method::POST,
        &stack.url("/api/memory/cas"),
        Some(json!({"key": "k", "value": 1})),
        &[("X-Pow-Solution", solution)],
    )
    .await;
    assert_eq!(memory.status, StatusCode::PAYMENT_REQUIRED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_presentations_of_one_solution_serve_exactly_one() {
    let stack = PaidStack::start().await;
    let solution = stack.pow_solution("hash").await;
    exactly_one_served(std::slice::from_ref(&stack.gateway_url), &solution).await;
}

/// Presents `solution` 24 times at once, spread over `gateways`: exactly one
/// call is served, every other is 409.
async fn exactly_one_served(gateways: &[String], solution: &str) {
    let calls: Vec<_> = (0..24)
        .map(|i| {
            let url = format!("{}/api/hash", gateways[i % gateways.len()]);
            let solution = solution.to_string();
            tokio::spawn(async move {
                hash_with(&url, &solution, json!({"text": "x"}))
                    .await
                    .status
            })
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
    let refused = |s: &StatusCode| *s == StatusCode::OK || *s == StatusCode::CONFLICT;
    assert!(statuses.iter().all(refused), "{statuses:?}");
}

/// A gateway of its own (payments through `stack`'s payment service) whose
/// pow replica keeps claims in the shared Redis.
async fn gateway_with_redis_pow(stack: &PaidStack) -> String {
    let store = tessera_pow::Store::Redis {
        url: harness::redis_url(),
    };
    let config = tessera_pow::PowConfig::for_tests(POW_SECRET, BITS, store);
    let pow = tessera_pow::Pow::open(&config).await.unwrap();
    let config = tessera_gateway::GatewayConfig {
        payment_url: Some(stack.payment_url.clone()),
        ..Default::default()
    };
    let backends = tessera_gateway::Backends {
        memory: tessera_gateway::MemoryClient::connect_lazy(
            &stack.memory.url(),
            Default::default(),
        )
        .unwrap(),
        tools: harness::tools_in_process(),
        pow: harness::pow_client(pow),
        discovery: tessera_tests::harness::discovery_in_process(),
        stats: tessera_tests::harness::stats_in_process().await,
    };
    harness::spawn_gateway(config, backends).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_sharing_redis_serve_one_solution_once() {
    let stack = PaidStack::start().await;
    let gateways = [
        gateway_with_redis_pow(&stack).await,
        gateway_with_redis_pow(&stack).await,
    ];
    // Issued by one, presented at both at once.
    let issued = send(
        Method::GET,
        &format!("{}/api/pow/challenge?slug=hash", gateways[0]),
        None,
        &[],
    )
    .await;
    let nonce = solve(issued.body["challenge"].as_str().unwrap(), BITS);
    let solution = format!("{}:{nonce}", issued.body["token"].as_str().unwrap());
    exactly_one_served(&gateways, &solution).await;
}
