//! Call accounting through the gateway over real HTTP: every paid-route
//! request becomes one call event (queued, batched, never in the call's
//! way), and `GET /api/stats` shows them by tool and by rail (free, proof of
//! work, USDC by network, Idempotency-Key replay), with revenue and the
//! calls charged but failed. `GET /api/leaderboard` ranks the stack's payTo
//! from the token's Transfer logs on anvil once a payment settles.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tessera_gateway::GatewayConfig;
use tessera_tests::harness::{in_process_backends, spawn_gateway};
use tessera_tests::paid::{decode, send, Options, PaidStack, Reply};
use tessera_x402::{encode_header, Requirements};

/// Polls `GET /api/stats` until `done` holds, or fails after 10 s.
async fn stats_until(base: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = send(Method::GET, &format!("{base}/api/stats"), None, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        if done(&reply.body) {
            return reply.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {what}: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rail<'a>(stats: &'a Value, rail: &str) -> &'a Value {
    stats["byRail"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["rail"] == rail)
        .unwrap_or_else(|| panic!("no {rail} rail in {stats}"))
}

fn tool<'a>(stats: &'a Value, route: &str) -> &'a Value {
    stats["byTool"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["route"] == route)
        .unwrap_or_else(|| panic!("no {route} in {stats}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_calls_replays_and_failures_are_counted() {
    let config = GatewayConfig {
        free_mode: true,
        stats_flush: Duration::from_millis(50),
        ..Default::default()
    };
    let base = spawn_gateway(config, in_process_backends().await)
        .await
        .unwrap();
    let agent = [("X-Agent-Id", "stats-agent".to_string())];
    for text in ["a", "b", "c"] {
        let reply = send(
            Method::POST,
            &format!("{base}/api/sha256"),
            Some(json!({ "text": text })),
            &agent,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let refused = send(
        Method::POST,
        &format!("{base}/api/sha256"),
        Some(json!({ "nope": 1 })),
        &agent,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let keyed = [
        ("X-Agent-Id", "stats-agent".to_string()),
        ("Idempotency-Key", "stats-key-1".to_string()),
    ];
    for _ in 0..2 {
        let reply = send(
            Method::POST,
            &format!("{base}/api/memory/incr"),
            Some(json!({ "key": "visits" })),
            &keyed,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    // Discovery and other free routes are not calls of a paid route; a
    // last paid call after them shows whether they were counted.
    let _ = send(Method::GET, &format!("{base}/api/pricing"), None, &[]).await;
    let _ = send(Method::GET, &format!("{base}/health"), None, &[]).await;
    let last = send(
        Method::POST,
        &format!("{base}/api/sha256"),
        Some(json!({ "text": "last" })),
        &agent,
    )
    .await;
    assert_eq!(last.status, StatusCode::OK);

    let stats = stats_until(&base, "the last call", |stats| {
        stats["recent"][0]["route"] == "tools.sha256" && stats["totalCalls"].as_u64() >= Some(7)
    })
    .await;
    assert_eq!(stats["totalCalls"], 7, "only paid-route calls: {stats}");
    assert_eq!(stats["totalRevenue"], "0");
    assert_eq!(stats["chargedButFailed"], 0);
    assert_eq!(rail(&stats, "free")["calls"], 6, "{stats}");
    assert_eq!(rail(&stats, "replay")["calls"], 1, "{stats}");
    let sha = tool(&stats, "tools.sha256");
    assert_eq!(
        (sha["calls"].as_u64(), sha["errors"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(tool(&stats, "memory.incr")["calls"], 2);
    let recent = stats["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 7);
    assert_eq!(recent[1]["route"], "memory.incr", "newest first: {stats}");
    assert_eq!(recent[1]["rail"], "replay");
    assert!(recent.iter().any(|call| call["status"] == 400));
    let day = &stats["daily"].as_array().unwrap()[0];
    assert_eq!(day["calls"], 7);
    assert!(stats["since"].is_string());

    let board = send(Method::GET, &format!("{base}/api/leaderboard"), None, &[]).await;
    assert_eq!(board.status, StatusCode::OK);
    assert_eq!(board.body["sellers"], json!([]));
    assert!(board.body["note"]
        .as_str()
        .unwrap()
        .contains("STATS_RPC_URL"));
    for top in ["0", "101", "x", "-1"] {
        let bad = send(
            Method::GET,
            &format!("{base}/api/leaderboard?top={top}"),
            None,
            &[],
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "top={top}");
        assert!(bad.body["error"].as_str().unwrap().contains("top"));
    }
    let post = send(Method::POST, &format!("{base}/api/stats"), None, &[]).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// The quote of an unpaid call, and the reply.
async fn quoted(stack: &PaidStack, path: &str, body: Value) -> (Requirements, Reply) {
    let unpaid = send(Method::POST, &stack.url(path), Some(body), &[]).await;
    assert_eq!(unpaid.status, StatusCode::PAYMENT_REQUIRED);
    let quote = decode(unpaid.headers.get("payment-required").unwrap());
    let requirements = serde_json::from_value(quote["accepts"][0].clone()).unwrap();
    (requirements, unpaid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usdc_and_proof_of_work_calls_are_counted_and_the_payee_leads_the_board() {
    let stack = PaidStack::start().await;
    let base = stack.gateway_url.clone();
    let body = json!({ "key": "stats/lock", "expected": null, "value": "me" });
    let (requirements, _) = quoted(&stack, "/api/memory/cas", body.clone()).await;
    let price: u64 = requirements.amount.parse().unwrap();
    let payment = encode_header(&stack.chain.pay(&stack.chain.buyers[0], &requirements));
    let paid = send(
        Method::POST,
        &stack.url("/api/memory/cas"),
        Some(body),
        &[("PAYMENT-SIGNATURE", payment)],
    )
    .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    let solution = stack.pow_solution("sha256").await;
    let pow = send(
        Method::POST,
        &stack.url("/api/sha256"),
        Some(json!({ "text": "pow" })),
        &[("X-Pow-Solution", solution)],
    )
    .await;
    assert_eq!(pow.status, StatusCode::OK, "{}", pow.body);

    let stats = stats_until(&base, "three calls", |stats| stats["totalCalls"] == 3).await;
    let usdc = rail(&stats, "usdc");
    assert_eq!(usdc["network"], requirements.network);
    assert_eq!(usdc["calls"], 2, "the 402 and the paid call: {stats}");
    assert_eq!(usdc["revenue"], price.to_string());
    assert_eq!(stats["totalRevenue"], price.to_string());
    assert_eq!(rail(&stats, "pow")["calls"], 1);
    assert_eq!(rail(&stats, "pow")["revenue"], "0");
    let cas = tool(&stats, "memory.cas");
    assert_eq!(
        (cas["calls"].as_u64(), cas["errors"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(stats["chargedButFailed"], 0);

    let pay_to = stack.chain.pay_to.to_string().to_lowercase();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let board = loop {
        let reply = send(Method::GET, &stack.url("/api/leaderboard?top=5"), None, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        if reply.body["sellers"]
            .as_array()
            .is_some_and(|sellers| sellers.iter().any(|s| s["payTo"] == pay_to))
        {
            break reply.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the payee never showed: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seller = board["sellers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["payTo"] == pay_to)
        .unwrap();
    assert_eq!(seller["volume"], price.to_string(), "{board}");
    assert_eq!(seller["transactions"], 1);
    assert_eq!(
        board["asset"].as_str().unwrap().to_lowercase(),
        stack.chain.token.to_string().to_lowercase()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_settled_before_it_failed_is_charged_but_failed() {
    let stack = PaidStack::start_with(Options {
        settle_mode: tessera_gateway::SettleMode::Before,
        ..Options::default()
    })
    .await;
    // No `key`: the memory route refuses the body, after the payment
    // settled (settle-before's known exposure).
    let body = json!({ "value": 1 });
    let (requirements, _) = quoted(&stack, "/api/memory/cas", body.clone()).await;
    let payment = encode_header(&stack.chain.pay(&stack.chain.buyers[0], &requirements));
    let failed = send(
        Method::POST,
        &stack.url("/api/memory/cas"),
        Some(body),
        &[("PAYMENT-SIGNATURE", payment)],
    )
    .await;
    assert_eq!(failed.status, StatusCode::BAD_REQUEST, "{}", failed.body);
    assert!(failed.headers.contains_key("payment-response"));
    let stats = stats_until(&stack.gateway_url, "two calls", |stats| {
        stats["totalCalls"] == 2
    })
    .await;
    assert_eq!(stats["chargedButFailed"], 1, "{stats}");
    assert_eq!(stats["totalRevenue"], requirements.amount);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_still_queued_when_the_gateway_stops_are_sent() {
    let path = std::env::temp_dir()
        .join(format!("tessera-stats-stop-{:016x}", rand::random::<u64>()))
        .join("stats.db");
    let stats = tessera_stats::Stats::new(
        tessera_stats::StatsStore::sqlite(&path).await.unwrap(),
        None,
    );
    let mut backends = in_process_backends().await;
    backends.stats = tessera_gateway::StatsClient::direct(stats.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = GatewayConfig {
        listen_addr: listener.local_addr().unwrap(),
        free_mode: true,
        // Nothing leaves before the queue closes.
        stats_flush: Duration::from_secs(3600),
        ..Default::default()
    };
    let base = format!("http://{}", config.listen_addr);
    let router = tessera_gateway::router_with(&config, backends)
        .await
        .unwrap();
    let shutdown = tessera_runtime::Shutdown::new();
    let server = tokio::spawn(tessera_gateway::serve(listener, router, shutdown.clone()));
    for text in ["a", "b", "c"] {
        let reply = send(
            Method::POST,
            &format!("{base}/api/sha256"),
            Some(json!({ "text": text })),
            &[],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(
        stats.summary().await.unwrap().total_calls,
        0,
        "still queued"
    );
    shutdown.trigger();
    server.await.unwrap().unwrap();
    tessera_gateway::flush_call_events(Duration::from_secs(5)).await;
    assert_eq!(stats.summary().await.unwrap().total_calls, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_charged_after_its_client_hung_up_is_still_counted() {
    let stack = PaidStack::start().await;
    let body = json!({ "key": "stats/hangup", "expected": null, "value": "me" });
    let (requirements, _) = quoted(&stack, "/api/memory/cas", body.clone()).await;
    let payment = encode_header(&stack.chain.pay(&stack.chain.buyers[0], &requirements));
    // The settlement stalls at the facilitator; the client gives up.
    stack.facilitator_proxy.hold_on(b"/settle");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let gave_up = client
        .post(stack.url("/api/memory/cas"))
        .header("PAYMENT-SIGNATURE", payment)
        .json(&body)
        .send()
        .await;
    assert!(gave_up.is_err(), "the client hung up: {gave_up:?}");
    assert!(
        stack
            .facilitator_proxy
            .held_within(Duration::from_secs(5))
            .await
    );
    stack.facilitator_proxy.resume();
    let stats = stats_until(&stack.gateway_url, "the charge counted", |stats| {
        stats["totalRevenue"] == requirements.amount
    })
    .await;
    assert_eq!(rail(&stats, "usdc")["revenue"], requirements.amount);
}
