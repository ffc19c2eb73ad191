//! A thin client over the tools gRPC service: run a tool by slug on a JSON
//! input, get its JSON output.

use crate::transport::{self, answer, LocalService, Transport};
use serde_json::Value;
use std::time::Duration;
use tessera_error::Error;
use tessera_proto::tools::v1 as pb;
use tessera_proto::tools::v1::tools_service_client::ToolsServiceClient;
use tessera_runtime::grpc_auth::ServiceToken;
use tonic::service::interceptor::InterceptedService;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct ToolsClient {
    client: ToolsServiceClient<InterceptedService<Transport, ServiceToken>>,
}

impl ToolsClient {
    /// A client connecting on first use (the gateway starts while the tools
    /// service is still down).
    pub fn connect_lazy(url: &str, token: ServiceToken) -> anyhow::Result<Self> {
        let transport = transport::lazy(url, CONNECT_TIMEOUT, CALL_TIMEOUT)?;
        Ok(Self::over(transport, token))
    }

    /// A client calling `service` (the tools gRPC server of this process).
    pub fn in_process(service: impl LocalService, token: ServiceToken) -> Self {
        Self::over(transport::in_process(service), token)
    }

    fn over(transport: Transport, token: ServiceToken) -> Self {
        ToolsClient {
            client: ToolsServiceClient::with_interceptor(transport, token),
        }
    }

    /// Whether the tools service answers (it lists its tools).
    pub async fn ping(&self) -> Result<(), Error> {
        answer(
            self.client
                .clone()
                .list_tools(pb::ListToolsRequest {})
                .await,
        )
        .map(|_| ())
    }

    /// Runs the tool `slug` on `input_json` (a JSON object, as text).
    pub async fn invoke(&self, slug: &str, input_json: String) -> Result<Value, Error> {
        let request = pb::InvokeRequest {
            slug: slug.to_string(),
            input_json,
        };
        let reply = answer(self.client.clone().invoke(request).await)?;
        serde_json::from_str(&reply.output_json).map_err(|error| {
            Error::internal(format!("the tools service answered bad JSON: {error}"))
        })
    }
}
