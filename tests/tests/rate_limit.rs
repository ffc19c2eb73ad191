//! Per-IP rate limits over real HTTP: challenge issuance past its limit is
//! 429 with `Retry-After` and the `RateLimit` / `RateLimit-Policy` headers;
//! each client IP has its own budget; `X-Forwarded-For` names the client only
//! when the peer is a trusted proxy.

use reqwest::StatusCode;
use tessera_gateway::{Backends, GatewayConfig};
use tessera_runtime::grpc_auth::ServiceToken;
use tessera_tests::harness::{
    embedded_memory, pow_client, pow_service, spawn_gateway, tools_in_process,
};

/// A free-mode gateway allowing 3 challenges a minute per IP.
async fn gateway(trusted_proxies: &str) -> String {
    let config = GatewayConfig {
        free_mode: true,
        pow_challenges_per_minute: 3,
        trusted_proxies: trusted_proxies
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect(),
        ..Default::default()
    };
    let memory = embedded_memory(Default::default()).await;
    let backends = Backends {
        memory: tessera_gateway::MemoryClient::in_process(
            tessera_memory::grpc::server(memory),
            ServiceToken::none(),
        ),
        tools: tools_in_process(),
        pow: pow_client(pow_service(8).await),
    };
    spawn_gateway(config, backends).await.unwrap()
}

async fn challenge(base: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{base}/api/pow/challenge?slug=hash"));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_limit_is_429_with_retry_after_and_each_ip_has_its_own_budget() {
    let base = gateway("127.0.0.1/32").await;
    for remaining in [2, 1, 0] {
        let ok = challenge(&base, Some("198.51.100.7")).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            header(&ok, "ratelimit-policy"),
            "\"pow-challenge\";q=3;w=60"
        );
        assert_eq!(
            header(&ok, "ratelimit"),
            format!("\"pow-challenge\";r={remaining}")
        );
    }
    let limited = challenge(&base, Some("198.51.100.7")).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(&limited, "retry-after").parse().unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(
        header(&limited, "ratelimit"),
        format!("\"pow-challenge\";r=0;t={retry_after}")
    );
    let body: serde_json::Value = limited.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("at most 3 a minute"),
        "{body}"
    );

    // Another client behind the same proxy has its own budget.
    assert_eq!(
        challenge(&base, Some("198.51.100.8")).await.status(),
        StatusCode::OK
    );
    // Other free routes are not counted.
    let health = reqwest::get(format!("{base}/api/pow")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_peer_cannot_pick_its_budget_with_x_forwarded_for() {
    let base = gateway("").await;
    for (i, ip) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            challenge(&base, Some(ip)).await.status(),
            StatusCode::OK,
            "{i}"
        );
    }
    // A fourth "client" is still the same peer: limited.
    let limited = challenge(&base, Some("198.51.100.4")).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
}
