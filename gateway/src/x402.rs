//! x402 on the paid routes: the payment IS the authentication.
//!
//! An unpaid call gets 402 with a `PAYMENT-REQUIRED` header and the same
//! `PaymentRequired` JSON as the body (agent402 clients read the body). A
//! paid call (`PAYMENT-SIGNATURE`, or v1 `X-PAYMENT`) is verified by the
//! payment service, which reserves its nonce; the verified payer becomes the
//! caller's namespace; the call runs; a call that succeeded (< 400) is
//! settled and answered with `PAYMENT-RESPONSE`, one that failed is
//! cancelled and not charged. With `settle_before`, settlement happens before
//! the call runs instead.

use crate::errors::Family;
use crate::identity::IdentityGate;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CACHE_CONTROL, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tessera_error::{Error, ErrorKind};
use tessera_proto::payment::v1 as pb;
use tessera_proto::payment::v1::payment_service_client::PaymentServiceClient;
use tessera_x402::headers;
use tonic::transport::Channel;

/// The payer a verified payment proved, for the identity gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidCaller(pub String);

/// The identity gate behind x402: the caller is whoever paid.
#[derive(Debug, Default, Clone, Copy)]
pub struct X402Gate;

#[async_trait::async_trait]
impl IdentityGate for X402Gate {
    async fn caller(&self, parts: &Parts) -> Result<Option<String>, Error> {
        Ok(parts
            .extensions
            .get::<PaidCaller>()
            .map(|paid| paid.0.clone()))
    }

    fn unidentified(&self) -> Error {
        Error::new(
            ErrorKind::PaymentRequired,
            "PAYMENT_REQUIRED",
            "this route is paid with x402",
        )
    }
}

#[derive(Clone)]
pub struct PaymentGate {
    payments: PaymentServiceClient<Channel>,
    settle_before: bool,
}

impl PaymentGate {
    pub fn connect_lazy(url: &str, settle_before: bool) -> anyhow::Result<Self> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())?
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(60))
            .connect_lazy();
        Ok(PaymentGate {
            payments: PaymentServiceClient::new(channel),
            settle_before,
        })
    }
}

/// The catalog route a request buys, if it is paid.
pub fn route_id(method: &Method, path: &str, query: Option<&str>) -> Option<&'static str> {
    let has_key = query.is_some_and(|q| q.split('&').any(|pair| pair.starts_with("key=")));
    Some(match (method.as_str(), path) {
        ("POST", "/api/memory") => "memory.set",
        ("GET", "/api/memory") if has_key => "memory.get",
        ("GET", "/api/memory") => "memory.list",
        ("POST", "/api/memory/cas") => "memory.cas",
        ("POST", "/api/memory/incr") => "memory.incr",
        ("POST", "/api/memory/grant") => "memory.grant",
        ("POST", "/api/memory/revoke") => "memory.revoke",
        ("GET", "/api/memory/grants") => "memory.grants",
        ("POST", "/api/agent/memory/put") => "agent.memory.put",
        ("GET", "/api/agent/memory/get") => "agent.memory.get",
        ("GET", "/api/agent/memory/list") => "agent.memory.list",
        ("POST", "/api/agent/memory/delete") => "agent.memory.delete",
        ("GET", "/agents/{id}/memory") => "agents.memory.list",
        ("GET", "/agents/{id}/memory/{*key}") => "agents.memory.get",
        ("PUT", "/agents/{id}/memory/{*key}") => "agents.memory.put",
        ("DELETE", "/agents/{id}/memory/{*key}") => "agents.memory.delete",
        _ => return None,
    })
}

fn family_of(path: &str) -> Family {
    if path.starts_with("/agents/") {
        Family::Agents
    } else if path.starts_with("/api/agent/") {
        Family::TwoS
    } else {
        Family::Agent402
    }
}

/// The payment header and its version: v2 `PAYMENT-SIGNATURE`, v1 `X-PAYMENT`.
fn payment_header(headers: &HeaderMap) -> Option<(String, u32)> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    get(headers::PAYMENT_SIGNATURE)
        .map(|h| (h, 2))
        .or_else(|| get(headers::X_PAYMENT).map(|h| (h, 1)))
}

fn resource_url(request: &Request) -> String {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let path = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    format!("http://{host}{path}")
}

/// A 402 carrying `PaymentRequired` (base64 header) in header and body.
fn payment_required(header: &str) -> Response {
    let body: serde_json::Value = tessera_x402::decode_header(header).unwrap_or_default();
    let mut response = (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(header) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("payment-required"), value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn refusal(family: Family, error: Error) -> Response {
    match error.details.get("paymentRequired") {
        Some(header) if error.kind == ErrorKind::PaymentRequired => payment_required(header),
        _ => {
            if error.http_status() >= 500 {
                tracing::warn!(reason = %error.reason, "{}", error.message);
            }
            family.response(&error)
        }
    }
}

fn attach_settlement(response: &mut Response, settled: &pb::SettleResponse, version: u32) {
    let name = if version == 1 {
        "x-payment-response"
    } else {
        "payment-response"
    };
    if let Ok(value) = HeaderValue::from_str(&settled.payment_response_header) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

/// The middleware on paid routes (a `route_layer`, so the route is matched).
pub async fn charge(State(gate): State<PaymentGate>, mut request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let Some(route) = route_id(request.method(), &path, request.uri().query()) else {
        return next.run(request).await;
    };
    let family = family_of(&path);
    let resource = resource_url(&request);
    let mut payments = gate.payments.clone();

    let Some((header, version)) = payment_header(request.headers()) else {
        let quote = payments
            .quote(pb::QuoteRequest {
                route: route.into(),
                resource_url: resource,
            })
            .await;
        return match quote {
            Ok(quote) => payment_required(&quote.into_inner().payment_required_header),
            Err(status) => refusal(family, Error::from_status(&status)),
        };
    };
    let verified = payments
        .verify(pb::VerifyRequest {
            route: route.into(),
            resource_url: resource,
            payment_header: header,
            x402_version: version,
        })
        .await;
    let verified = match verified {
        Ok(verified) => verified.into_inner(),
        Err(status) => return refusal(family, Error::from_status(&status)),
    };
    let payment_id = verified.payment_id.clone();
    tracing::info!(route, payer = %verified.payer, payment_id, "payment verified");
    request.extensions_mut().insert(PaidCaller(verified.payer));

    let settle = |mut payments: PaymentServiceClient<Channel>, payment_id: String| async move {
        payments
            .settle(pb::SettleRequest { payment_id })
            .await
            .map(|s| s.into_inner())
    };

    if gate.settle_before {
        let settled = match settle(payments.clone(), payment_id.clone()).await {
            Ok(settled) if settled.success || settled.pending => settled,
            Ok(settled) => {
                let error = Error::new(
                    ErrorKind::PaymentRequired,
                    settled.error_reason.clone(),
                    "the payment could not be settled",
                );
                let mut response = refusal(family, error);
                attach_settlement(&mut response, &settled, version);
                return response;
            }
            Err(status) => return refusal(family, Error::from_status(&status)),
        };
        let mut response = next.run(request).await;
        attach_settlement(&mut response, &settled, version);
        return response;
    }

    let mut response = next.run(request).await;
    if response.status().as_u16() >= 400 {
        let reason = format!("the call failed with {}", response.status().as_u16());
        if let Err(status) = payments
            .cancel(pb::CancelRequest { payment_id, reason })
            .await
        {
            tracing::warn!(error = %status.message(), "could not cancel a payment whose call failed");
        }
        return response;
    }
    match settle(payments, payment_id.clone()).await {
        Ok(settled) => {
            if !settled.success {
                tracing::warn!(payment_id, reason = %settled.error_reason, pending = settled.pending, "payment not settled");
            }
            attach_settlement(&mut response, &settled, version);
        }
        Err(status) => {
            tracing::error!(payment_id, error = %status.message(), "settle failed after the call was served")
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_memory_route_is_priced_and_others_are_free() {
        assert_eq!(
            route_id(&Method::GET, "/api/memory", Some("key=a")),
            Some("memory.get")
        );
        assert_eq!(
            route_id(&Method::GET, "/api/memory", Some("prefix=a")),
            Some("memory.list")
        );
        assert_eq!(
            route_id(&Method::GET, "/api/memory", None),
            Some("memory.list")
        );
        assert_eq!(
            route_id(&Method::POST, "/api/memory/cas", None),
            Some("memory.cas")
        );
        assert_eq!(
            route_id(&Method::GET, "/api/agent/memory/get", Some("key=a")),
            Some("agent.memory.get")
        );
        assert_eq!(
            route_id(&Method::PUT, "/agents/{id}/memory/{*key}", None),
            Some("agents.memory.put")
        );
        assert_eq!(route_id(&Method::GET, "/health", None), None);
        assert_eq!(route_id(&Method::GET, "/metrics", None), None);
    }

    #[test]
    fn v2_header_wins_over_v1() {
        let mut headers = HeaderMap::new();
        headers.insert("x-payment", HeaderValue::from_static("v1"));
        assert_eq!(payment_header(&headers), Some(("v1".into(), 1)));
        headers.insert("payment-signature", HeaderValue::from_static("v2"));
        assert_eq!(payment_header(&headers), Some(("v2".into(), 2)));
    }

    #[test]
    fn every_priced_route_is_in_the_payment_catalog() {
        let catalog = tessera_payment_routes();
        for (method, path, query) in [
            (Method::POST, "/api/memory", None),
            (Method::GET, "/api/memory", Some("key=a")),
            (Method::GET, "/api/memory", None),
            (Method::POST, "/api/memory/cas", None),
            (Method::POST, "/api/memory/incr", None),
            (Method::POST, "/api/memory/grant", None),
            (Method::POST, "/api/memory/revoke", None),
            (Method::GET, "/api/memory/grants", None),
            (Method::POST, "/api/agent/memory/put", None),
            (Method::GET, "/api/agent/memory/get", None),
            (Method::GET, "/api/agent/memory/list", None),
            (Method::POST, "/api/agent/memory/delete", None),
            (Method::GET, "/agents/{id}/memory", None),
            (Method::GET, "/agents/{id}/memory/{*key}", None),
            (Method::PUT, "/agents/{id}/memory/{*key}", None),
            (Method::DELETE, "/agents/{id}/memory/{*key}", None),
        ] {
            let route = route_id(&method, path, query).unwrap();
            assert!(catalog.contains(&route), "{route} has no price");
        }
    }

    fn tessera_payment_routes() -> Vec<&'static str> {
        tessera_payment::catalog::DEFAULT_PRICES
            .iter()
            .map(|(route, _)| *route)
            .collect()
    }
}
