//! The REST long poll, `GET /api/memory/watch`, on both backends: the first
//! change after a revision or a cursor, 204 with the position when nothing
//! comes, and a poller that follows a prefix through a burst of writes from
//! cursor to cursor without missing one.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tessera_tests::gateway_http::GatewayHarness;
use tessera_tests::harness::{durable_memory, embedded_memory, unique_namespace};

async fn poll(h: &GatewayHarness, agent: &str, query: &str) -> (StatusCode, Value, Option<String>) {
    let url = format!("{}/api/memory/watch?{query}", h.url());
    let response = reqwest::Client::new()
        .get(url)
        .header("x-agent-id", agent)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let cursor = response
        .headers()
        .get("x-watch-cursor")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body, cursor)
}

async fn set(h: &GatewayHarness, agent: &str, key: &str, value: Value) {
    let reply = h
        .post("/api/memory", agent, json!({ "key": key, "value": value }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

async fn the_first_change_after_a_revision_or_204(h: GatewayHarness) {
    let agent = unique_namespace("poll");
    set(&h, &agent, "k", json!(1)).await;
    // From 0: the current state.
    let (status, body, _) = poll(&h, &agent, "key=k").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "put");
    assert_eq!(
        (body["revision"].clone(), body["value"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(body["compacted"], true);
    assert_eq!(body["owner"], agent.as_str());

    // Up to date: nothing within a second.
    let (status, body, cursor) = poll(&h, &agent, "key=k&sinceRevision=1&timeoutSeconds=1").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(cursor.is_some_and(|c| !c.is_empty()));

    // A change while the poll waits.
    let waiting = {
        let url = format!(
            "{}/api/memory/watch?key=k&sinceRevision=1&timeoutSeconds=10",
            h.url()
        );
        let agent = agent.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .get(url)
                .header("x-agent-id", agent)
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let reply = h
        .send(
            Method::POST,
            "/api/memory",
            &[("x-agent-id", &agent)],
            Some(json!({"key": "k", "delete": true})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let (status, body) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["kind"].clone(), body["revision"].clone()),
        (json!("delete"), json!(2))
    );
    assert_eq!(body["compacted"], false);

    for bad in [
        "timeoutSeconds=0",
        "timeoutSeconds=51",
        "key=a&prefix=b",
        "sinceRevision=-1",
    ] {
        let (status, body, _) = poll(&h, &agent, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
}

async fn a_prefix_poller_follows_a_burst_from_cursor_to_cursor(h: GatewayHarness) {
    let agent = unique_namespace("poll-burst");
    let (status, _, cursor) = poll(&h, &agent, "prefix=job/&timeoutSeconds=1").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut cursor = cursor.unwrap();
    const WRITES: u64 = 40;
    let writer = {
        let url = h.url().to_string();
        let agent = agent.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 1..=WRITES {
                for key in ["job/a", "job/b", "other"] {
                    let response = client
                        .post(format!("{url}/api/memory"))
                        .header("x-agent-id", &agent)
                        .json(&json!({ "key": key, "value": n }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                }
            }
        })
    };
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    while seen.values().map(Vec::len).sum::<usize>() < 2 * WRITES as usize {
        let query = format!("prefix=job/&sinceCursor={cursor}&timeoutSeconds=5");
        let (status, body, quiet_cursor) = poll(&h, &agent, &query).await;
        match status {
            StatusCode::OK => {
                assert_eq!(body["kind"], "put", "{body}");
                assert_eq!(body["value"], body["revision"], "{body}");
                seen.entry(body["key"].as_str().unwrap().to_string())
                    .or_default()
                    .push(body["revision"].as_u64().unwrap());
                cursor = body["cursor"].as_str().unwrap().to_string();
            }
            StatusCode::NO_CONTENT => cursor = quiet_cursor.unwrap(),
            other => panic!("{other}: {body}"),
        }
    }
    writer.await.unwrap();
    let expected: Vec<u64> = (1..=WRITES).collect();
    assert_eq!(seen["job/a"], expected);
    assert_eq!(seen["job/b"], expected);
    assert_eq!(seen.len(), 2);
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let memory = embedded_memory(Default::default()).await;
                    super::$case(GatewayHarness::start_in_process(memory).await).await;
                }
            )*
        }
        mod redis_postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let memory = durable_memory(Default::default()).await;
                    super::$case(GatewayHarness::start(memory).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    the_first_change_after_a_revision_or_204,
    a_prefix_poller_follows_a_burst_from_cursor_to_cursor,
);

/// Long polls wait on a budget of their own: when it is full, another long
/// poll is refused at once (503) while every other call is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_cannot_take_every_other_calls_place() {
    let config = tessera_gateway::GatewayConfig {
        free_mode: true,
        max_long_polls: 1,
        max_concurrent_requests: 1,
        ..Default::default()
    };
    let backends = tessera_tests::harness::in_process_backends().await;
    let url = tessera_tests::harness::spawn_gateway(config, backends)
        .await
        .unwrap();
    let agent = unique_namespace("poll-budget");
    let client = reqwest::Client::new();
    let poll = || {
        client
            .get(format!(
                "{url}/api/memory/watch?key=k&sinceRevision=0&timeoutSeconds=3"
            ))
            .header("x-agent-id", &agent)
            .send()
    };
    let waiting = tokio::spawn(poll());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let refused = poll().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The one slot for other calls is free: a write goes through.
    let write = client
        .post(format!("{url}/api/memory"))
        .header("x-agent-id", &agent)
        .json(&json!({ "key": "k", "value": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::OK);
    let answered = waiting.await.unwrap().unwrap();
    assert_eq!(answered.status(), StatusCode::OK, "the write ends the poll");
}
