//! Discovery at the gateway, free of charge: a client of the discovery gRPC
//! service and the routes over it. `GET /api/find?q=&k=` (or `POST` with
//! `{"q", "k"}`) ranks the catalog for a task and answers a JSON array of
//! tools; `GET /api/pricing` lists every catalog entry with its price, input
//! schema and example; `POST /api/route` with `{"query", "top", "include",
//! "network"}` answers the cheapest healthy tools for a task across our
//! catalog and the crawled x402 sellers:
//!
//! ```json
//! {"query": "…", "include": "all", "network": "eip155:8453" | null,
//!  "neutrality": "Ranked by relevance …", "sellersKnown": 8,
//!  "results": [{"slug", "name", "description",
//!               "price": 1000 | null (atomic units; null: unknown),
//!               "method", "route": "/api/sha256" | "https://seller/…",
//!               "seller": "tessera" | "https://seller",
//!               "network", "asset", "payTo" (null when not known),
//!               "x402Version", "health", "healthy",
//!               "lastProbe": "2025-06-15T08:30:00.000Z" | null,
//!               "untrustedContent", "score", "inputSchema" (ours; else null),
//!               "call"}]}
//! ```
//!
//! `seller` is `"tessera"` for our own catalog, else the seller's origin.
//! An external result's text is a third party's: `untrustedContent` is
//! true on every one of them.

use crate::errors::ApiError;
use crate::extract::{JsonBody, QueryParams};
use crate::transport::{self, answer, Transport};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tessera_error::Error;
use tessera_proto::discovery::v1 as pb;
use tessera_proto::discovery::v1::discovery_service_client::DiscoveryServiceClient;
use tessera_proto::discovery::v1::discovery_service_server::DiscoveryService;
use tessera_runtime::grpc_auth::ServiceToken;
use tonic::service::interceptor::InterceptedService;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The discovery service, over gRPC or (in the all-in-one) called directly.
#[derive(Clone)]
pub struct DiscoveryClient {
    calls: Calls,
}

#[derive(Clone)]
enum Calls {
    Grpc(DiscoveryServiceClient<InterceptedService<Transport, ServiceToken>>),
    Direct(Arc<dyn DiscoveryService>),
}

impl std::fmt::Debug for DiscoveryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.calls {
            Calls::Grpc(_) => f.write_str("DiscoveryClient::Grpc"),
            Calls::Direct(_) => f.write_str("DiscoveryClient::Direct"),
        }
    }
}

impl DiscoveryClient {
    /// A client connecting on first use.
    pub fn connect_lazy(url: &str, token: ServiceToken) -> anyhow::Result<Self> {
        let transport = transport::lazy(url, CONNECT_TIMEOUT, CALL_TIMEOUT)?;
        Ok(DiscoveryClient {
            calls: Calls::Grpc(DiscoveryServiceClient::with_interceptor(transport, token)),
        })
    }

    /// A client calling `service` (the discovery service of this process)
    /// directly.
    pub fn direct(service: impl DiscoveryService) -> Self {
        DiscoveryClient {
            calls: Calls::Direct(Arc::new(service)),
        }
    }

    /// Whether the discovery service answers (a one-result find).
    pub(crate) async fn ping(&self) -> Result<(), Error> {
        self.find("health".into(), 1).await.map(|_| ())
    }

    async fn find(&self, q: String, k: u32) -> Result<Vec<pb::Tool>, Error> {
        let request = pb::FindRequest { q, k };
        let found = answer(match &self.calls {
            Calls::Grpc(client) => client.clone().find(request).await,
            Calls::Direct(service) => service.find(tonic::Request::new(request)).await,
        })?;
        Ok(found.tools)
    }

    async fn route(&self, request: pb::RouteRequest) -> Result<pb::RouteResponse, Error> {
        answer(match &self.calls {
            Calls::Grpc(client) => client.clone().route(request).await,
            Calls::Direct(service) => service.route(tonic::Request::new(request)).await,
        })
    }

    async fn pricing(&self) -> Result<Vec<pb::Tool>, Error> {
        let request = pb::PricingRequest {};
        let priced = answer(match &self.calls {
            Calls::Grpc(client) => client.clone().pricing(request).await,
            Calls::Direct(service) => service.pricing(tonic::Request::new(request)).await,
        })?;
        Ok(priced.tools)
    }
}

/// `q` and `k`, from the query string or a JSON body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FindParams {
    q: Option<String>,
    k: Option<u32>,
}

/// `GET /api/find?q=&k=`.
pub(crate) async fn find_by_query(
    State(discovery): State<DiscoveryClient>,
    QueryParams(params): QueryParams<FindParams>,
) -> Result<Json<Value>, ApiError> {
    find(discovery, params).await
}

/// `POST /api/find` with `{"q": …, "k": …}`.
pub(crate) async fn find_by_body(
    State(discovery): State<DiscoveryClient>,
    JsonBody(params): JsonBody<FindParams>,
) -> Result<Json<Value>, ApiError> {
    find(discovery, params).await
}

async fn find(discovery: DiscoveryClient, params: FindParams) -> Result<Json<Value>, ApiError> {
    let q = params.q.unwrap_or_default();
    let tools = discovery.find(q, params.k.unwrap_or(0)).await?;
    Ok(Json(Value::Array(tools.iter().map(render).collect())))
}

/// `GET /api/pricing`.
pub(crate) async fn pricing(
    State(discovery): State<DiscoveryClient>,
) -> Result<Json<Value>, ApiError> {
    let tools = discovery.pricing().await?;
    Ok(Json(json!({
        "currency": "USDC",
        "decimals": 6,
        "unit": "atomic units of the payment asset (1000 = $0.001)",
        "tools": tools.iter().map(render).collect::<Vec<_>>(),
    })))
}

/// How our own catalog is named as a seller in `/api/route`'s results.
pub const OWN_SELLER_NAME: &str = "tessera";

/// `POST /api/route`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteParams {
    query: Option<String>,
    top: Option<u32>,
    include: Option<String>,
    network: Option<String>,
}

/// `POST /api/route` with `{"query", "top", "include", "network"}`.
pub(crate) async fn route(
    State(discovery): State<DiscoveryClient>,
    JsonBody(params): JsonBody<RouteParams>,
) -> Result<Json<Value>, ApiError> {
    let request = pb::RouteRequest {
        query: params.query.unwrap_or_default(),
        top: params.top.unwrap_or(0),
        include: params.include.unwrap_or_default(),
        network: params.network.unwrap_or_default(),
    };
    let routed = discovery.route(request.clone()).await?;
    let include = match request.include.trim() {
        "" => "all".to_string(),
        include => include.to_ascii_lowercase(),
    };
    let network = match request.network.trim() {
        "" => Value::Null,
        network => Value::from(
            tessera_x402::Network::parse(network).map_or(network.to_string(), |n| n.caip2()),
        ),
    };
    Ok(Json(json!({
        "query": request.query,
        "include": include,
        "network": network,
        "neutrality": routed.neutrality,
        "sellersKnown": routed.sellers_known,
        "results": routed.candidates.iter().map(render_candidate).collect::<Vec<_>>(),
    })))
}

fn render_candidate(candidate: &pb::RouteCandidate) -> Value {
    let tool = candidate.tool.clone().unwrap_or_default();
    let known = |text: &str| {
        if text.is_empty() {
            Value::Null
        } else {
            Value::from(text)
        }
    };
    let seller = if tool.seller.is_empty() {
        OWN_SELLER_NAME
    } else {
        tool.seller.as_str()
    };
    json!({
        "slug": tool.slug,
        "name": tool.name,
        "description": tool.description,
        "price": tool.price.parse::<u64>().map_or(Value::Null, Value::from),
        "method": tool.method,
        "route": tool.route,
        "seller": seller,
        "network": known(&candidate.network),
        "asset": known(&candidate.asset),
        "payTo": known(&candidate.pay_to),
        "x402Version": candidate.x402_version,
        "health": candidate.health,
        "healthy": candidate.healthy,
        "lastProbe": iso_time(candidate.last_probe_ms),
        "untrustedContent": candidate.untrusted_content,
        "score": candidate.score,
        "inputSchema": parsed(&tool.input_schema_json),
        "call": tool.call,
    })
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds; null for 0 (never).
fn iso_time(unix_ms: i64) -> Value {
    if unix_ms <= 0 {
        return Value::Null;
    }
    Value::from(crate::timestamps::rfc3339_millis(unix_ms))
}

fn parsed(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::Null)
}

fn render(tool: &pb::Tool) -> Value {
    json!({
        "slug": tool.slug,
        "name": tool.name,
        "description": tool.description,
        "category": tool.category,
        "tags": tool.tags,
        "price": tool.price.parse::<u64>().map_or(Value::String(tool.price.clone()), Value::from),
        "method": tool.method,
        "route": tool.route,
        "inputSchema": parsed(&tool.input_schema_json),
        "example": parsed(&tool.example_json),
        "call": tool.call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_times_are_rfc3339_utc() {
        assert_eq!(iso_time(0), Value::Null);
        assert_eq!(iso_time(1), json!("1970-01-01T00:00:00.001Z"));
        assert_eq!(
            iso_time(1_703_123_456_789),
            json!("2023-12-21T01:50:56.789Z")
        );
        assert_eq!(iso_time(951_782_400_000), json!("2000-02-29T00:00:00.000Z"));
        assert_eq!(
            iso_time(1_750_000_000_000),
            json!("2025-06-15T15:06:40.000Z")
        );
    }
}
