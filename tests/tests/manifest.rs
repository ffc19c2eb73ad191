//! `GET /.well-known/x402` over real HTTP: with payments on, the manifest
//! quotes exactly what a 402 on the same route quotes (amount, asset,
//! network, payTo) and names the facilitator; in FREE_MODE it says nobody
//! pays. Free (never 402), GET only.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_gateway::GatewayConfig;
use tessera_tests::harness::{in_process_backends, spawn_gateway};
use tessera_tests::paid::{decode, send, PaidStack};

fn resource<'a>(manifest: &'a Value, id: &str) -> &'a Value {
    manifest["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|item| item["metadata"]["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the manifest"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paid_manifest_quotes_what_a_402_quotes() {
    let stack = PaidStack::start().await;
    let reply = send(Method::GET, &stack.url("/.well-known/x402"), None, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let manifest = reply.body;
    let payments = &manifest["payments"];
    assert_eq!(payments["enabled"], true);
    assert_eq!(
        payments["payTo"].as_str().unwrap().to_lowercase(),
        stack.chain.pay_to.to_string().to_lowercase()
    );
    assert_eq!(
        payments["facilitator"]["url"],
        format!("http://{}", stack.facilitator_proxy.addr)
    );
    assert_eq!(manifest["proofOfWork"]["enabled"], true);

    for (id, method, path, body) in [
        (
            "memory.cas",
            Method::POST,
            "/api/memory/cas",
            Some(json!({"key": "k", "value": 1})),
        ),
        (
            "tools.sha256",
            Method::POST,
            "/api/sha256",
            Some(json!({"text": "a"})),
        ),
    ] {
        let unpaid = send(method, &stack.url(path), body, &[]).await;
        assert_eq!(unpaid.status, StatusCode::PAYMENT_REQUIRED, "{path}");
        let quote = decode(unpaid.headers.get("payment-required").unwrap());
        let quoted = &quote["accepts"][0];
        let listed = &resource(&manifest, id)["accepts"][0];
        for field in ["amount", "asset", "network", "payTo", "scheme"] {
            assert_eq!(listed[field], quoted[field], "{id}: {field}");
        }
        assert_eq!(
            resource(&manifest, id)["resource"],
            stack.url(path),
            "{id}: resource URL"
        );
    }

    let post = send(Method::POST, &stack.url("/.well-known/x402"), None, &[]).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_free_mode_manifest_says_nobody_pays() {
    let config = GatewayConfig {
        free_mode: true,
        ..Default::default()
    };
    let base = spawn_gateway(config, in_process_backends().await)
        .await
        .unwrap();
    let reply = send(Method::GET, &format!("{base}/.well-known/x402"), None, &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let manifest = reply.body;
    assert_eq!(manifest["freeMode"], true);
    assert_eq!(manifest["payments"]["enabled"], false);
    let cas = resource(&manifest, "memory.cas");
    assert_eq!(cas["accepts"], json!([]));
    assert_eq!(
        manifest["resources"].as_array().unwrap().len(),
        tessera_catalog::rest_routes().count()
    );
}
