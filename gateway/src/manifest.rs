//! `GET /.well-known/x402`: the service manifest. What an x402 client or a
//! registry needs before the first call: the x402 versions and schemes we
//! accept, the networks and assets (with their EIP-712 domain), where
//! payments go (`payTo`), the facilitator that settles them, proof of work,
//! and every paid resource with its price. Each resource is in the shape of
//! a Bazaar discovery item (`resource`, `type`, `x402Version`, `accepts`,
//! `lastUpdated`, `metadata`), so a crawler that reads registries reads it.
//!
//! With payments on, prices, network, asset and payTo come from the payment
//! service (`ListPrices`) on each request, so an operator's `PAYMENT_PRICES`
//! shows here as it is quoted. In FREE_MODE nobody pays: `payments.enabled`
//! is false, `accepts` is empty and the prices are the catalog's.

use crate::errors::ApiError;
use crate::settle_mode::SettleMode;
use crate::AppState;
use axum::extract::State;
use axum::http::header::HOST;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use tessera_catalog::{Route, Tier};
use tessera_proto::payment::v1 as pb;

/// USDC and every EIP-3009 token we quote: 6 decimals.
const DECIMALS: u32 = 6;

/// `GET /.well-known/x402`.
pub(crate) async fn manifest(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let origin = origin(&headers);
    let listed = match &state.payments {
        Some(payments) => Some((payments.list_prices().await?, payments.settle_mode())),
        None => None,
    };
    let listed = listed.as_ref().map(|(listed, mode)| (listed, *mode));
    Ok(Json(document(&origin, listed, state.free_mode)))
}

/// The origin resources are named under: the request's `Host`.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| !host.is_empty())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The manifest for `origin`, priced by `listed` and settled in its mode
/// (payments on) or by the catalog (FREE_MODE, `listed` = None).
fn document(
    origin: &str,
    listed: Option<(&pb::ListPricesResponse, SettleMode)>,
    free_mode: bool,
) -> Value {
    let settle_mode = listed.map(|(_, mode)| mode);
    let listed = listed.map(|(listed, _)| listed);
    let prices: HashMap<&str, u64> = listed
        .map(|listed| {
            listed
                .prices
                .iter()
                .map(|price| (price.route.as_str(), price.amount))
                .collect()
        })
        .unwrap_or_default();
    let resources: Vec<Value> = tessera_catalog::rest_routes()
        .map(|route| {
            let price = prices.get(route.id).copied().unwrap_or(route.price);
            resource(origin, route, price, listed)
        })
        .collect();
    let payments = match listed {
        Some(listed) => json!({
            "enabled": true,
            "x402Versions": [1, 2],
            "schemes": [tessera_x402::exact::SCHEME],
            "networks": [listed.network],
            "assets": [{
                "network": listed.network,
                "address": listed.asset,
                "name": listed.asset_name,
                "version": listed.asset_version,
                "decimals": DECIMALS,
                "transferMethod": "eip3009",
            }],
            "payTo": listed.pay_to,
            "facilitator": { "url": public_url(&listed.facilitator_url) },
            "maxTimeoutSeconds": listed.max_timeout_seconds,
            "headers": {
                "required": "PAYMENT-REQUIRED",
                "payment": "PAYMENT-SIGNATURE",
                "paymentV1": "X-PAYMENT",
                "response": "PAYMENT-RESPONSE",
            },
            // When a paid call is settled, and where a payment's state is
            // (the id a pending PAYMENT-RESPONSE names).
            "settlement": {
                "mode": settle_mode.unwrap_or_default().as_str(),
                "lookup": format!("{origin}/api/payments/{{id}}"),
            },
        }),
        None => {
            json!({ "enabled": false, "x402Versions": [1, 2], "schemes": [], "networks": [], "assets": [] })
        }
    };
    json!({
        "x402Version": 2,
        "name": "Tessera",
        "description": "Paid coordination for AI agent fleets: wallet-scoped memory (compare-and-swap locks, counters, TTL leases, etags, grants) and pure-CPU tools, paid per call with x402 or, for tools, proof of work.",
        "freeMode": free_mode,
        "payments": payments,
        "proofOfWork": {
            "enabled": listed.is_some(),
            "appliesTo": "tools (tier cpu)",
            "describe": format!("{origin}/api/pow"),
            "challenge": format!("{origin}/api/pow/challenge?slug={{slug}}"),
            "header": crate::pow::SOLUTION_HEADER,
        },
        "idempotency": { "header": "Idempotency-Key", "replayHeader": "X-Idempotent-Replay" },
        "discovery": {
            "find": format!("{origin}/api/find"),
            "route": format!("{origin}/api/route"),
            "pricing": format!("{origin}/api/pricing"),
            "openapi": format!("{origin}/openapi.json"),
            "llms": format!("{origin}/llms.txt"),
        },
        "resources": resources,
    })
}

/// One paid route as a Bazaar-style discovery item.
fn resource(
    origin: &str,
    route: &Route,
    price: u64,
    listed: Option<&pb::ListPricesResponse>,
) -> Value {
    let url = format!("{origin}{}", template(route.path));
    let accepts: Vec<Value> = listed
        .map(|listed| {
            vec![json!({
                "scheme": tessera_x402::exact::SCHEME,
                "network": listed.network,
                "amount": price.to_string(),
                "asset": listed.asset,
                "payTo": listed.pay_to,
                "maxTimeoutSeconds": listed.max_timeout_seconds,
                "extra": { "name": listed.asset_name, "version": listed.asset_version },
            })]
        })
        .unwrap_or_default();
    let mut payable_with = vec!["x402"];
    if route.tier == Tier::Cpu && listed.is_some() {
        payable_with.push("pow");
    }
    json!({
        "resource": url,
        "type": "http",
        "x402Version": 2,
        "accepts": accepts,
        "metadata": {
            "id": route.id,
            "method": route.method.as_str(),
            "description": route.description(),
            "tier": route.tier.as_str(),
            "price": price.to_string(),
            "payableWith": payable_with,
            "tool": route.tool,
        },
    })
}

/// An axum path pattern as a URI template: `{*key}` → `{key}`.
fn template(path: &str) -> String {
    path.replace("{*", "{")
}

/// `url` without credentials or query: the facilitator's address may be
/// configured with either, and neither is the public's business.
fn public_url(url: &str) -> String {
    let Ok(uri) = url.parse::<axum::http::Uri>() else {
        return String::new();
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return String::new();
    };
    let host = authority.as_str().rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}{}", uri.path().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed() -> pb::ListPricesResponse {
        pb::ListPricesResponse {
            prices: vec![pb::RoutePrice {
                route: "memory.cas".into(),
                amount: 4242,
            }],
            network: "eip155:84532".into(),
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            pay_to: "0x1111111111111111111111111111111111111111".into(),
            facilitator_url: "http://user:secret@facilitator:8402/?key=k".into(),
            asset_name: "USDC".into(),
            asset_version: "2".into(),
            max_timeout_seconds: 60,
        }
    }

    fn item<'a>(manifest: &'a Value, id: &str) -> &'a Value {
        manifest["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["metadata"]["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing"))
    }

    #[test]
    fn paid_manifest_quotes_what_the_payment_service_lists() {
        let manifest = document(
            "http://example.test",
            Some((&listed(), SettleMode::Async)),
            false,
        );
        let payments = &manifest["payments"];
        assert_eq!(payments["enabled"], true);
        assert_eq!(payments["settlement"]["mode"], "async");
        assert_eq!(
            payments["settlement"]["lookup"],
            "http://example.test/api/payments/{id}"
        );
        assert_eq!(payments["networks"], json!(["eip155:84532"]));
        assert_eq!(payments["payTo"], listed().pay_to);
        assert_eq!(payments["assets"][0]["name"], "USDC");
        assert_eq!(payments["facilitator"]["url"], "http://facilitator:8402");
        let cas = item(&manifest, "memory.cas");
        assert_eq!(cas["resource"], "http://example.test/api/memory/cas");
        assert_eq!(cas["accepts"][0]["amount"], "4242", "the listed price wins");
        assert_eq!(cas["accepts"][0]["payTo"], listed().pay_to);
        assert_eq!(cas["metadata"]["payableWith"], json!(["x402"]));
        let sha = item(&manifest, "tools.sha256");
        let default = tessera_catalog::route("tools.sha256").unwrap().price;
        assert_eq!(sha["accepts"][0]["amount"], default.to_string());
        assert_eq!(sha["metadata"]["payableWith"], json!(["x402", "pow"]));
        let delete = item(&manifest, "agents.memory.delete");
        assert_eq!(
            delete["resource"],
            "http://example.test/agents/{id}/memory/{key}"
        );
        assert_eq!(
            manifest["resources"].as_array().unwrap().len(),
            tessera_catalog::rest_routes().count()
        );
    }

    #[test]
    fn free_mode_manifest_accepts_nothing() {
        let manifest = document("http://localhost:8080", None, true);
        assert_eq!(manifest["freeMode"], true);
        assert_eq!(manifest["payments"]["enabled"], false);
        assert_eq!(manifest["proofOfWork"]["enabled"], false);
        let cas = item(&manifest, "memory.cas");
        assert_eq!(cas["accepts"], json!([]));
        assert_eq!(
            cas["metadata"]["price"],
            tessera_catalog::route("memory.cas")
                .unwrap()
                .price
                .to_string()
        );
    }

    #[test]
    fn public_urls_drop_credentials_and_queries() {
        assert_eq!(
            public_url("https://k:s@fac.example/x402/?token=1"),
            "https://fac.example/x402"
        );
        assert_eq!(public_url("http://127.0.0.1:8402"), "http://127.0.0.1:8402");
        assert_eq!(public_url("not a url"), "");
    }
}
