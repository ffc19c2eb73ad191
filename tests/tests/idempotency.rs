//! `Idempotency-Key` through the gateway over real HTTP.
//!
//! In FREE_MODE, on the embedded default (SQLite entries, embedded memory)
//! and on Redis + PostgreSQL (Redis entries, durable memory): a replay
//! answers the first call's status, headers and body with
//! `X-Idempotent-Replay: true` without running it again; the same key with
//! another body or query is 422; a call that failed is not kept; concurrent
//! duplicates run once; a duplicate in flight waits, then 409 past the wait;
//! two gateways sharing Redis replay each other's answers.
//!
//! With x402 on anvil: a replay is not charged, whether the client resends
//! the payment it used or signs a new one (which is neither reserved nor
//! settled); a duplicate in flight waits and is not charged; another payer
//! with the same key is served and charged on its own; a signature that does
//! not prove the payer gets no replay; an answer whose settlement is still
//! pending is not kept. With proof of work: a spent solution still gets its
//! call's replay, and nothing else.

use alloy::signers::local::PrivateKeySigner;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tessera_gateway::{Backends, GatewayConfig, IdempotencyBackend, IdempotencyConfig};
use tessera_memory::Memory;
use tessera_runtime::grpc_auth::ServiceToken;
use tessera_tests::harness::{
    durable_memory, embedded_memory, pow_client, pow_service, redis_url, spawn_gateway,
    tools_in_process, unique_namespace, MemoryServer,
};
use tessera_tests::paid::{send, Options, PaidStack, Reply};
use tessera_tests::proxy::PausableProxy;
use tessera_x402::{encode_header, Requirements};

const REPLAY: &str = "x-idempotent-replay";

/// Free-mode gateways over one memory server, reached through a proxy that
/// can hold calls in flight.
struct Free {
    bases: Vec<String>,
    proxy: PausableProxy,
    _server: MemoryServer,
}

async fn free_gateways(memory: Memory, backend: IdempotencyBackend, count: usize) -> Free {
    let server = MemoryServer::start(memory).await;
    let proxy = PausableProxy::start(server.addr).await;
    let mut bases = Vec::new();
    for _ in 0..count {
        let config = GatewayConfig {
            free_mode: true,
            idempotency: IdempotencyConfig {
                backend: backend.clone(),
                wait: Duration::from_secs(1),
                ..Default::default()
            },
            ..Default::default()
        };
        let backends = Backends {
            memory: tessera_gateway::MemoryClient::connect_lazy(
                &format!("http://{}", proxy.addr),
                ServiceToken::none(),
            )
            .unwrap(),
            tools: tools_in_process(),
            pow: pow_client(pow_service(8).await),
            discovery: tessera_tests::harness::discovery_in_process(),
            stats: tessera_tests::harness::stats_in_process().await,
        };
        bases.push(spawn_gateway(config, backends).await.unwrap());
    }
    Free {
        bases,
        proxy,
        _server: server,
    }
}

async fn embedded(count: usize) -> Free {
    let path = std::env::temp_dir().join(format!("{}.db", unique_namespace("tessera-idem")));
    let memory = embedded_memory(Default::default()).await;
    free_gateways(memory, IdempotencyBackend::Embedded(path), count).await
}

async fn redis_postgres(count: usize) -> Free {
    let memory = durable_memory(Default::default()).await;
    free_gateways(memory, IdempotencyBackend::Redis(redis_url()), count).await
}

async fn call(
    base: &str,
    method: Method,
    path: &str,
    agent: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut headers = vec![("X-Agent-Id", agent.to_string())];
    if let Some(key) = key {
        headers.push(("Idempotency-Key", key.to_string()));
    }
    send(method, &format!("{base}{path}"), body, &headers).await
}

async fn incr(base: &str, agent: &str, key: Option<&str>, body: Value) -> Reply {
    call(
        base,
        Method::POST,
        "/api/memory/incr",
        agent,
        key,
        Some(body),
    )
    .await
}

async fn counter(base: &str, agent: &str, name: &str) -> Value {
    let path = format!("/api/memory?key={name}");
    let reply = call(base, Method::GET, &path, agent, None, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["value"].clone()
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.get(name).map(|value| value.to_str().unwrap())
}

fn error_of(reply: &Reply) -> String {
    reply.body["error"].as_str().unwrap_or_default().to_string()
}

async fn a_replay_answers_the_first_call_without_running_it(free: Free) {
    let base = &free.bases[0];
    let agent = unique_namespace("idem-agent");
    let key = unique_namespace("key");

    let first = incr(base, &agent, Some(&key), json!({"key": "n"})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["value"], 1);
    assert_eq!(header(&first, REPLAY), None);

    // The same key, quoted as a structured-field string: the same key.
    for spelling in [key.clone(), format!("\"{key}\"")] {
        let again = incr(base, &agent, Some(&spelling), json!({"key": "n"})).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body, first.body, "the stored body");
        assert_eq!(header(&again, REPLAY), Some("true"));
        assert_eq!(
            header(&again, "content-type"),
            header(&first, "content-type")
        );
    }
    // Without the key every request is unique.
    let fresh = incr(base, &agent, None, json!({"key": "n"})).await;
    assert_eq!(fresh.body["value"], 2);
    // Another namespace's key is its own.
    let other = unique_namespace("idem-other");
    let theirs = incr(base, &other, Some(&key), json!({"key": "n"})).await;
    assert_eq!(theirs.body["value"], 1);
    assert_eq!(header(&theirs, REPLAY), None);

    // The same key with another body: 422, and nothing runs.
    let reused = incr(base, &agent, Some(&key), json!({"key": "n", "by": 5})).await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reused.body
    );
    assert!(
        error_of(&reused).contains("Idempotency-Key"),
        "{}",
        reused.body
    );
    assert_eq!(counter(base, &agent, "n").await, 2);

    // A GET tool: the query is the request.
    let convert = |query: &'static str, key: String| {
        let path = format!("/api/convert/kilometers-to-miles?value={query}");
        async move { call(base, Method::GET, &path, "", Some(&key), None).await }
    };
    let tool_key = unique_namespace("tool-key");
    let five = convert("5", tool_key.clone()).await;
    assert_eq!(five.status, StatusCode::OK, "{}", five.body);
    let replayed = convert("5", tool_key.clone()).await;
    assert_eq!(header(&replayed, REPLAY), Some("true"));
    assert_eq!(replayed.body, five.body);
    let six = convert("6", tool_key).await;
    assert_eq!(six.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A key too long, or empty: 400 before anything runs.
    for bad in ["k".repeat(256), "\"\"".to_string()] {
        let refused = incr(base, &agent, Some(&bad), json!({"key": "n"})).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(error_of(&refused).contains("Idempotency-Key"));
    }
    assert_eq!(counter(base, &agent, "n").await, 2);
}

async fn a_failed_call_is_not_kept(free: Free) {
    let base = &free.bases[0];
    let agent = unique_namespace("idem-fail");
    let key = unique_namespace("key");
    let set = |value: Value| {
        let body = json!({"key": "c", "value": value});
        let agent = agent.clone();
        async move {
            let reply = call(base, Method::POST, "/api/memory", &agent, None, Some(body)).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
    };
    set(json!("not a number")).await;
    let failed = incr(base, &agent, Some(&key), json!({"key": "c"})).await;
    assert!(failed.status.is_client_error(), "{}", failed.status);
    set(json!(41)).await;
    // The retry runs: the failure was not kept.
    let retried = incr(base, &agent, Some(&key), json!({"key": "c"})).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.body["value"], 42);
    assert_eq!(header(&retried, REPLAY), None);
    // And the success is.
    let replayed = incr(base, &agent, Some(&key), json!({"key": "c"})).await;
    assert_eq!(header(&replayed, REPLAY), Some("true"));
    assert_eq!(counter(base, &agent, "c").await, 42);
}

async fn concurrent_duplicates_run_once(free: Free) {
    let agent = unique_namespace("idem-race");
    let key = unique_namespace("key");
    let replies = futures::future::join_all((0..16).map(|i| {
        let base = free.bases[i % free.bases.len()].clone();
        let (agent, key) = (agent.clone(), key.clone());
        async move { incr(&base, &agent, Some(&key), json!({"key": "n"})).await }
    }))
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(
            reply.body["value"], 1,
            "every duplicate gets the one answer"
        );
    }
    let ran = replies
        .iter()
        .filter(|reply| header(reply, REPLAY).is_none())
        .count();
    assert_eq!(ran, 1, "exactly one call ran");
    assert_eq!(counter(&free.bases[0], &agent, "n").await, 1);
}

async fn a_duplicate_in_flight_waits_then_is_409(free: Free) {
    let base = free.bases[0].clone();
    let agent = unique_namespace("idem-wait");
    let key = unique_namespace("key");
    // Held at memory: the first call is claimed and running.
    free.proxy.pause();
    let first = tokio::spawn({
        let (base, agent, key) = (base.clone(), agent.clone(), key.clone());
        async move { incr(&base, &agent, Some(&key), json!({"key": "n"})).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waited = incr(&base, &agent, Some(&key), json!({"key": "n"})).await;
    assert_eq!(waited.status, StatusCode::CONFLICT, "{}", waited.body);
    assert_eq!(header(&waited, "retry-after"), Some("1"));
    assert!(
        error_of(&waited).contains("still running"),
        "{}",
        waited.body
    );
    // Another body is refused even while the first runs.
    let reused = incr(&base, &agent, Some(&key), json!({"key": "m"})).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A duplicate that arrives while it runs gets its answer when it ends.
    let second = tokio::spawn({
        let (base, agent, key) = (base.clone(), agent.clone(), key.clone());
        async move { incr(&base, &agent, Some(&key), json!({"key": "n"})).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    free.proxy.resume();
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body, first.body);
    assert_eq!(header(&second, REPLAY), Some("true"));
    assert_eq!(counter(&base, &agent, "n").await, 1);
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded_default {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::embedded(1).await).await;
                }
            )*
        }
        mod redis_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::redis_postgres(1).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_replay_answers_the_first_call_without_running_it,
    a_failed_call_is_not_kept,
    concurrent_duplicates_run_once,
    a_duplicate_in_flight_waits_then_is_409,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_sharing_redis_replay_each_others_answers() {
    let free = redis_postgres(2).await;
    let agent = unique_namespace("idem-two");
    let key = unique_namespace("key");
    let first = incr(&free.bases[0], &agent, Some(&key), json!({"key": "n"})).await;
    assert_eq!(first.body["value"], 1);
    let replayed = incr(&free.bases[1], &agent, Some(&key), json!({"key": "n"})).await;
    assert_eq!(header(&replayed, REPLAY), Some("true"));
    assert_eq!(replayed.body, first.body);
    concurrent_duplicates_run_once(free).await;
}

// ---- x402 ----

async fn quote(stack: &PaidStack, path: &str, body: &Value) -> Requirements {
    let reply = send(Method::POST, &stack.url(path), Some(body.clone()), &[]).await;
    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED);
    serde_json::from_value(reply.body["accepts"][0].clone()).unwrap()
}

async fn paid_incr(url: &str, payment: &str, key: &str, body: &Value) -> Reply {
    send(
        Method::POST,
        url,
        Some(body.clone()),
        &[
            ("PAYMENT-SIGNATURE", payment.to_string()),
            ("Idempotency-Key", key.to_string()),
        ],
    )
    .await
}

fn signed(stack: &PaidStack, buyer: &PrivateKeySigner, requirements: &Requirements) -> String {
    encode_header(&stack.chain.pay(buyer, requirements))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_replay_is_not_charged() {
    let stack = PaidStack::start().await;
    let url = stack.url("/api/memory/incr");
    let body = json!({"key": "paid-n"});
    let requirements = quote(&stack, "/api/memory/incr", &body).await;
    let (alice, bob) = (&stack.chain.buyers[0], &stack.chain.buyers[1]);
    let alice_before = stack.balance(alice.address()).await;
    let key = unique_namespace("key");

    let used = signed(&stack, alice, &requirements);
    let first = paid_incr(&url, &used, &key, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["value"], 1);
    let settlement = first.headers.get("payment-response").expect("settled");
    let price = alloy::primitives::U256::from(1000u64);
    assert_eq!(stack.balance(alice.address()).await, alice_before - price);
    assert_eq!(stack.ledger_rows().await, 1);

    // The same payment again, then a new one: both replays, neither charged.
    let unused = signed(&stack, alice, &requirements);
    for payment in [&used, &unused] {
        let again = paid_incr(&url, payment, &key, &body).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        assert_eq!(header(&again, REPLAY), Some("true"));
        assert_eq!(again.body, first.body);
        assert_eq!(again.headers.get("payment-response"), Some(settlement));
    }
    assert_eq!(stack.balance(alice.address()).await, alice_before - price);
    assert_eq!(stack.ledger_rows().await, 1, "a replay reserves nothing");
    // The unused authorization is still Alice's to spend.
    let unused_pays = send(
        Method::POST,
        &url,
        Some(body.clone()),
        &[("PAYMENT-SIGNATURE", unused.clone())],
    )
    .await;
    assert_eq!(unused_pays.status, StatusCode::OK, "{}", unused_pays.body);
    assert_eq!(unused_pays.body["value"], 2);

    // Another body with the key: 422, not charged.
    let rows = stack.ledger_rows().await;
    let other_body = json!({"key": "paid-n", "by": 3});
    let reused = paid_incr(
        &url,
        &signed(&stack, alice, &requirements),
        &key,
        &other_body,
    )
    .await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reused.body
    );
    assert_eq!(stack.ledger_rows().await, rows);

    // Bob's key is his own: served in his namespace and charged to him.
    let bob_before = stack.balance(bob.address()).await;
    let bobs = paid_incr(&url, &signed(&stack, bob, &requirements), &key, &body).await;
    assert_eq!(bobs.status, StatusCode::OK, "{}", bobs.body);
    assert_eq!(header(&bobs, REPLAY), None);
    assert_eq!(bobs.body["value"], 1);
    assert_eq!(stack.balance(bob.address()).await, bob_before - price);

    // Naming Alice as `from` without her signature gets no replay.
    let mut authorization = stack.chain.authorization(alice.address(), &requirements);
    authorization.nonce = tessera_tests::chain::random_nonce();
    let forged_signature = stack.chain.sign(bob, &authorization);
    let forged = encode_header(&tessera_tests::chain::payload_v2(
        &requirements,
        &authorization,
        &forged_signature,
    ));
    let refused = paid_incr(&url, &forged, &key, &body).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    assert_eq!(header(&refused, REPLAY), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_across_two_gateways_wait_for_the_first_and_are_not_charged() {
    let stack = PaidStack::start_with(Options {
        adjust_gateway: |config| {
            config.idempotency.backend = IdempotencyBackend::Redis(redis_url());
        },
        ..Default::default()
    })
    .await;
    let second_gateway = stack.another_gateway().await;
    let body = json!({"key": "paid-race"});
    let requirements = quote(&stack, "/api/memory/incr", &body).await;
    let alice = stack.chain.buyers[0].clone();
    let before = stack.balance(alice.address()).await;
    let key = unique_namespace("key");

    // The first call is held at memory, after its payment was verified.
    stack.memory_proxy.pause();
    let first = tokio::spawn({
        let (url, payment) = (
            stack.url("/api/memory/incr"),
            signed(&stack, &alice, &requirements),
        );
        let (key, body) = (key.clone(), body.clone());
        async move { paid_incr(&url, &payment, &key, &body).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let duplicates: Vec<_> = (0..4)
        .map(|i| {
            let base = if i % 2 == 0 {
                stack.gateway_url.clone()
            } else {
                second_gateway.clone()
            };
            let payment = signed(&stack, &alice, &requirements);
            let (key, body) = (key.clone(), body.clone());
            tokio::spawn(async move {
                paid_incr(&format!("{base}/api/memory/incr"), &payment, &key, &body).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.memory_proxy.resume();
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    for duplicate in duplicates {
        let duplicate = duplicate.await.unwrap();
        assert_eq!(duplicate.status, StatusCode::OK, "{}", duplicate.body);
        assert_eq!(header(&duplicate, REPLAY), Some("true"));
        assert_eq!(duplicate.body, first.body);
    }
    let price = alloy::primitives::U256::from(1000u64);
    assert_eq!(
        stack.balance(alice.address()).await,
        before - price,
        "charged once"
    );
    assert_eq!(stack.ledger_rows().await, 1);
}

// ---- proof of work ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spent_solution_gets_its_calls_replay_and_nothing_else() {
    let stack = PaidStack::start().await;
    let solution = stack.pow_solution("hash").await;
    let hash = |key: Option<&str>, text: &str| {
        let mut headers = vec![("X-Pow-Solution", solution.clone())];
        if let Some(key) = key {
            headers.push(("Idempotency-Key", key.to_string()));
        }
        let body = json!({"text": text});
        let url = stack.url("/api/hash");
        async move { send(Method::POST, &url, Some(body), &headers).await }
    };
    let key = unique_namespace("key");
    let first = hash(Some(&key), "hello").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let replayed = hash(Some(&key), "hello").await;
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.body);
    assert_eq!(header(&replayed, REPLAY), Some("true"));
    assert_eq!(replayed.body, first.body);
    // The solution is spent: without the key, or with another key or body,
    // it pays for nothing.
    for (key, text) in [
        (None, "hello"),
        (Some("another-key"), "hello"),
        (Some(key.as_str()), "other"),
    ] {
        let refused = hash(key, text).await;
        assert!(
            refused.status.is_client_error(),
            "{key:?} {text}: {}",
            refused.status
        );
        assert_eq!(header(&refused, REPLAY), None);
    }
    assert_eq!(
        stack.ledger_rows().await,
        0,
        "proof of work makes no payment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_whose_settlement_is_pending_is_not_kept() {
    let stack = PaidStack::start_with(Options {
        settle_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let url = stack.url("/api/memory/incr");
    let body = json!({"key": "pending-n"});
    let requirements = quote(&stack, "/api/memory/incr", &body).await;
    let alice = &stack.chain.buyers[0];
    let key = unique_namespace("key");

    // The settlement is held at the facilitator past the settle timeout.
    stack.facilitator_proxy.hold_on(b"/settle");
    let first = paid_incr(&url, &signed(&stack, alice, &requirements), &key, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let settlement = tessera_tests::paid::decode(first.headers.get("payment-response").unwrap());
    assert_eq!(settlement["success"], false, "{settlement}");
    assert_eq!(
        settlement["errorReason"], "settlement_pending",
        "{settlement}"
    );
    stack.facilitator_proxy.resume();

    // Not kept: the retry runs (and pays) again.
    let retried = paid_incr(&url, &signed(&stack, alice, &requirements), &key, &body).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(header(&retried, REPLAY), None);
    assert_eq!(retried.body["value"], 2);
    // Settled, this one is kept.
    let replayed = paid_incr(&url, &signed(&stack, alice, &requirements), &key, &body).await;
    assert_eq!(header(&replayed, REPLAY), Some("true"));
    assert_eq!(replayed.body["value"], 2);
}
