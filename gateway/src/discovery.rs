//! Discovery at the gateway, free of charge: a client of the discovery gRPC
//! service and the routes over it. `GET /api/find?q=&k=` (or `POST` with
//! `{"q", "k"}`) ranks the catalog for a task and answers a JSON array of
//! tools; `GET /api/pricing` lists every catalog entry with its price, input
//! schema and example.

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

    async fn find(&self, q: String, k: u32) -> Result<Vec<pb::Tool>, Error> {
        let request = pb::FindRequest { q, k };
        let found = answer(match &self.calls {
            Calls::Grpc(client) => client.clone().find(request).await,
            Calls::Direct(service) => service.find(tonic::Request::new(request)).await,
        })?;
        Ok(found.tools)
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
