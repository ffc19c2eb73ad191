//! Rate limits over real HTTP, per surface: proof-of-work challenge
//! issuance, the free discovery routes and calls paid with proof of work per
//! client IP; x402-paid calls per paying wallet. Past a limit: 429 with
//! `Retry-After` and the `RateLimit` / `RateLimit-Policy` headers, and
//! nothing spent (a refused proof of work stays usable, a refused payment is
//! not charged). `X-Forwarded-For` names the client only when the peer is a
//! trusted proxy. With `RATE_LIMIT_STORE=redis` two gateways share one
//! budget; with the local store each counts alone. Every test picks fresh
//! client IPs, as the Redis cells outlive a run.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tessera_gateway::{GatewayConfig, RateLimitStore};
use tessera_tests::harness::{in_process_backends, redis_url, spawn_gateway};
use tessera_tests::paid::{send, Options, PaidStack, Reply};
use tessera_x402::{encode_header, Requirements};

/// A client address no other test or run uses (198.18.0.0/15 is for
/// benchmarks, never routed).
fn fresh_ip() -> String {
    let [a, b, c] = rand::random::<[u8; 3]>();
    format!("198.{}.{b}.{c}", 18 + (a & 1))
}

/// A free-mode gateway allowing 3 challenges and 2 free-route calls a
/// minute per IP, with `X-Forwarded-For` believed from `trusted_proxies`.
async fn gateway(trusted_proxies: &str, store: RateLimitStore) -> String {
    let config = GatewayConfig {
        free_mode: true,
        pow_challenges_per_minute: 3,
        free_per_minute: 2,
        rate_limit_store: store,
        trusted_proxies: trusted_proxies
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect(),
        ..Default::default()
    };
    let backends = in_process_backends().await;
    spawn_gateway(config, backends).await.unwrap()
}

async fn get(base: &str, path: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

async fn challenge(base: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    get(base, "/api/pow/challenge?slug=hash", forwarded_for).await
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// The 429's `Retry-After`, checked against its `RateLimit` header.
fn retry_after(headers: &reqwest::header::HeaderMap, surface: &str) -> u64 {
    let seconds: u64 = header(headers, "retry-after").parse().unwrap();
    assert_eq!(
        header(headers, "ratelimit"),
        format!("\"{surface}\";r=0;t={seconds}")
    );
    seconds
}

async fn past_the_limit_is_429_with_retry_after_and_each_ip_has_its_own_budget(
    store: RateLimitStore,
) {
    let base = gateway("127.0.0.1/32", store).await;
    let client = fresh_ip();
    for remaining in [2, 1, 0] {
        let ok = challenge(&base, Some(&client)).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            header(ok.headers(), "ratelimit-policy"),
            "\"pow-challenge\";q=3;w=60"
        );
        assert_eq!(
            header(ok.headers(), "ratelimit"),
            format!("\"pow-challenge\";r={remaining}")
        );
    }
    let limited = challenge(&base, Some(&client)).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let seconds = retry_after(limited.headers(), "pow-challenge");
    assert!((1..=20).contains(&seconds), "{seconds}");
    let body: serde_json::Value = limited.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("at most 3 a minute"), "{body}");

    // Another client behind the same proxy has its own budget.
    assert_eq!(
        challenge(&base, Some(&fresh_ip())).await.status(),
        StatusCode::OK
    );
    // The free routes are a surface of their own: 2 a minute.
    for _ in 0..2 {
        let described = get(&base, "/api/pow", Some(&client)).await;
        assert_eq!(described.status(), StatusCode::OK);
        assert_eq!(
            header(described.headers(), "ratelimit-policy"),
            "\"free\";q=2;w=60"
        );
    }
    let limited = get(&base, "/api/pow", Some(&client)).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    retry_after(limited.headers(), "free");
    // Probes are never limited.
    for _ in 0..5 {
        assert_eq!(
            get(&base, "/health", Some(&client)).await.status(),
            StatusCode::OK
        );
    }
}

async fn an_untrusted_peer_cannot_pick_its_budget_with_x_forwarded_for(store: RateLimitStore) {
    // No trusted proxy: the peer (127.0.0.1) is the client, whatever it
    // forwards. Its cell is shared with other tests on Redis, so it is only
    // asserted that the forwarded addresses do not add budget.
    let base = gateway("", store).await;
    let mut allowed = 0;
    for _ in 0..6 {
        if challenge(&base, Some(&fresh_ip())).await.status() == StatusCode::OK {
            allowed += 1;
        }
    }
    assert!(allowed <= 3, "{allowed} challenges for one peer");
}

mod local {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_limit_is_429_with_retry_after_and_each_ip_has_its_own_budget() {
        super::past_the_limit_is_429_with_retry_after_and_each_ip_has_its_own_budget(
            RateLimitStore::Local,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_untrusted_peer_cannot_pick_its_budget_with_x_forwarded_for() {
        super::an_untrusted_peer_cannot_pick_its_budget_with_x_forwarded_for(RateLimitStore::Local)
            .await;
    }
}

mod redis {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_limit_is_429_with_retry_after_and_each_ip_has_its_own_budget() {
        super::past_the_limit_is_429_with_retry_after_and_each_ip_has_its_own_budget(
            RateLimitStore::Redis(redis_url()),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_untrusted_peer_cannot_pick_its_budget_with_x_forwarded_for() {
        super::an_untrusted_peer_cannot_pick_its_budget_with_x_forwarded_for(
            RateLimitStore::Redis(redis_url()),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_budget_in_redis_and_not_locally() {
    for (store, shared) in [
        (RateLimitStore::Redis(redis_url()), true),
        (RateLimitStore::Local, false),
    ] {
        let one = gateway("127.0.0.1/32", store.clone()).await;
        let two = gateway("127.0.0.1/32", store.clone()).await;
        let client = fresh_ip();
        for base in [&one, &two, &one] {
            assert_eq!(
                challenge(base, Some(&client)).await.status(),
                StatusCode::OK
            );
        }
        let fourth = challenge(&two, Some(&client)).await.status();
        if shared {
            assert_eq!(fourth, StatusCode::TOO_MANY_REQUESTS, "{store:?}");
        } else {
            assert_eq!(
                fourth,
                StatusCode::OK,
                "{store:?}: each replica counts alone"
            );
        }
    }
}

// ---- paid surfaces ----

async fn hash_paid_with_work(stack: &PaidStack, solution: &str, client: &str) -> Reply {
    send(
        Method::POST,
        &stack.url("/api/hash"),
        Some(json!({"text": "hello"})),
        &[
            ("X-Pow-Solution", solution.to_string()),
            ("X-Forwarded-For", client.to_string()),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_paid_with_work_are_limited_per_ip_and_a_refused_solution_stays_usable() {
    let stack = PaidStack::start_with(Options {
        adjust_gateway: |config| {
            config.pow_calls_per_minute = 2;
            config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        },
        ..Default::default()
    })
    .await;
    let client = fresh_ip();
    for remaining in [1, 0] {
        let served = hash_paid_with_work(&stack, &stack.pow_solution("hash").await, &client).await;
        assert_eq!(served.status, StatusCode::OK, "{}", served.body);
        assert_eq!(
            served.headers["ratelimit"].to_str().unwrap(),
            format!("\"pow-call\";r={remaining}")
        );
    }
    let refused_solution = stack.pow_solution("hash").await;
    let limited = hash_paid_with_work(&stack, &refused_solution, &client).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    retry_after(&limited.headers, "pow-call");
    // The refused call did not spend its solution: another client uses it.
    let elsewhere = hash_paid_with_work(&stack, &refused_solution, &fresh_ip()).await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.body);
}

async fn quote(stack: &PaidStack, body: &serde_json::Value) -> Requirements {
    let reply = send(
        Method::POST,
        &stack.url("/api/memory/incr"),
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED);
    serde_json::from_value(reply.body["accepts"][0].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paid_calls_are_limited_per_wallet_and_a_refused_call_is_not_charged() {
    let stack = PaidStack::start_with(Options {
        adjust_gateway: |config| config.paid_calls_per_minute = 2,
        ..Default::default()
    })
    .await;
    let body = json!({"key": "limited"});
    let requirements = quote(&stack, &body).await;
    let (alice, bob) = (&stack.chain.buyers[0], &stack.chain.buyers[1]);
    let before = stack.balance(alice.address()).await;
    let pay = |signer| {
        let payload = stack.chain.pay(signer, &requirements);
        let nonce: alloy::primitives::B256 = payload["payload"]["authorization"]["nonce"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        (encode_header(&payload), nonce)
    };
    let incr = |payment: String| {
        let (url, body) = (stack.url("/api/memory/incr"), body.clone());
        async move {
            send(
                Method::POST,
                &url,
                Some(body),
                &[("PAYMENT-SIGNATURE", payment)],
            )
            .await
        }
    };
    for remaining in [1, 0] {
        let served = incr(pay(alice).0).await;
        assert_eq!(served.status, StatusCode::OK, "{}", served.body);
        assert_eq!(
            served.headers["ratelimit"].to_str().unwrap(),
            format!("\"paid-call\";r={remaining}")
        );
    }
    let (payment, nonce) = pay(alice);
    let limited = incr(payment).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    retry_after(&limited.headers, "paid-call");
    let error = limited.body["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("{:#x}", alice.address())),
        "{error}"
    );

    let price = alloy::primitives::U256::from(1000u64);
    assert_eq!(
        stack.balance(alice.address()).await,
        before - price * alloy::primitives::U256::from(2)
    );
    assert!(
        !stack.chain.authorization_used(alice.address(), nonce).await,
        "the refused call's authorization was never settled"
    );
    let statuses = stack
        .payments
        .ledger_statuses(&format!("{:#x}", alice.address()))
        .await
        .unwrap();
    assert_eq!(
        statuses
            .iter()
            .filter(|status| *status == "cancelled")
            .count(),
        1,
        "{statuses:?}"
    );
    // Another wallet has its own budget.
    let bobs = incr(pay(bob).0).await;
    assert_eq!(bobs.status, StatusCode::OK, "{}", bobs.body);
}
