//! `GET /api/reliability` over real HTTP against real dependencies: the
//! shared Redis and PostgreSQL answer, a closed port does not, and with
//! payments on the facilitator and chain RPC are probed through the payment
//! service, so a stalled facilitator shows as down and then up again.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;
use tessera_gateway::{GatewayConfig, ReliabilityConfig};
use tessera_tests::harness::{database_url, in_process_backends, redis_url, spawn_gateway};
use tessera_tests::paid::{send, Options, PaidStack};

async fn report(url: &str) -> Value {
    let reply = send(Method::GET, url, None, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

fn entry<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report[kind]
        .as_array()
        .unwrap_or_else(|| panic!("{kind} in {report}"))
        .iter()
        .find(|entry| entry["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {report}"))
}

/// Polls until `done` holds for the report, or fails after 10 s.
async fn until(url: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let report = report(url).await;
        if done(&report) {
            return report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {what}: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every configured dependency and service probed at least once (each
/// probe is recorded as it ends, so one may lag the others).
fn everything_probed(report: &Value) -> bool {
    ["dependencies", "services"].iter().all(|kind| {
        report[kind].as_array().is_some_and(|entries| {
            entries.iter().all(|entry| {
                entry["state"] == "not_configured" || entry["probes"].as_u64() > Some(0)
            })
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_dependencies_are_up_and_a_closed_port_is_down() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    for (redis, up) in [
        (redis_url(), true),
        (format!("redis://127.0.0.1:{closed_port}"), false),
    ] {
        let config = GatewayConfig {
            free_mode: true,
            reliability: ReliabilityConfig {
                redis_url: Some(redis),
                database_url: Some(database_url()),
                every: Duration::from_millis(200),
                timeout: Duration::from_secs(2),
            },
            ..Default::default()
        };
        let base = spawn_gateway(config, in_process_backends().await)
            .await
            .unwrap();
        let url = format!("{base}/api/reliability");
        let report = until(&url, "probed", everything_probed).await;
        let redis = entry(&report, "dependencies", "redis");
        if up {
            assert_eq!(redis["state"], "up", "{report}");
            assert_eq!(redis["error"], Value::Null);
            assert!(redis["upSince"].is_string());
            assert!(redis["latencyMs"].as_f64().unwrap() >= 0.0);
            assert_eq!(report["status"], "ok", "{report}");
        } else {
            assert_eq!(redis["state"], "down", "{report}");
            assert!(redis["error"].as_str().unwrap().len() > 3);
            assert_eq!(redis["upSince"], Value::Null);
            assert_eq!(redis["availability"], 0.0);
            assert_eq!(report["status"], "degraded");
        }
        assert_eq!(entry(&report, "dependencies", "postgresql")["state"], "up");
        for unused in ["facilitator", "chain_rpc"] {
            let seen = entry(&report, "dependencies", unused);
            assert_eq!(seen["state"], "not_configured", "{unused}");
            assert_eq!(seen["probes"], 0);
        }
        assert_eq!(
            entry(&report, "services", "payment")["state"],
            "not_configured"
        );
        for service in ["memory", "tools", "pow"] {
            assert_eq!(
                entry(&report, "services", service)["state"],
                "up",
                "{service}: {report}"
            );
        }
        assert!(report["gateway"]["uptimeSeconds"].is_u64());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_facilitator_is_probed_through_the_payment_service() {
    let stack = PaidStack::start_with(Options {
        adjust_gateway: |config| {
            config.reliability.every = Duration::from_millis(200);
            config.reliability.timeout = Duration::from_millis(1500);
        },
        ..Options::default()
    })
    .await;
    let url = stack.url("/api/reliability");
    let report = until(&url, "facilitator up", |report| {
        everything_probed(report) && entry(report, "dependencies", "facilitator")["state"] == "up"
    })
    .await;
    assert_eq!(entry(&report, "dependencies", "chain_rpc")["state"], "up");
    assert_eq!(entry(&report, "services", "payment")["state"], "up");

    stack.facilitator_proxy.pause();
    let report = until(&url, "facilitator down", |report| {
        entry(report, "dependencies", "facilitator")["state"] == "down"
    })
    .await;
    assert_eq!(report["status"], "degraded");
    assert_eq!(entry(&report, "dependencies", "chain_rpc")["state"], "up");

    stack.facilitator_proxy.resume();
    let report = until(&url, "facilitator up again", |report| {
        entry(report, "dependencies", "facilitator")["state"] == "up"
    })
    .await;
    let availability = entry(&report, "dependencies", "facilitator")["availability"]
        .as_f64()
        .unwrap();
    assert!(availability < 1.0, "{report}");
}
