//! The gateway's public faces beside REST, on the same free-mode gateway and
//! keys as the REST rows: the memory gRPC API on the gateway's port (h2c,
//! tonic clients, channels shared as the internal gRPC rows share theirs),
//! and an MCP `tools/call` of `agent.memory.get` over Streamable HTTP.

use super::driver::{run_shared, Outcome};
use super::gateway_http::GatewayHttp;
use super::memory_grpc::ClientKeys;
use super::Settings;
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use std::sync::Arc;
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

struct Shared {
    namespace: AsciiMetadataValue,
    clients: Vec<MemoryServiceClient<Channel>>,
    keys: Vec<ClientKeys>,
    /// Each client's lock key, its own (the REST rows' locks may be left
    /// held by their last call).
    locks: Vec<String>,
    http: reqwest::Client,
    mcp_url: String,
    /// Each client's `tools/call` body.
    mcp_calls: Vec<Vec<u8>>,
}

pub struct PublicApi {
    shared: Arc<Shared>,
}

impl PublicApi {
    pub async fn setup(settings: &Settings, gateway: &GatewayHttp) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(gateway.base_url().to_string())?;
        let per_channel = settings.clients_per_channel();
        let mut clients: Vec<MemoryServiceClient<Channel>> = Vec::new();
        for client in 0..settings.concurrency {
            if client % per_channel == 0 {
                let channel = endpoint
                    .connect()
                    .await
                    .context("connect to the gateway over h2c")?;
                clients.push(MemoryServiceClient::new(channel));
            } else {
                let shared = clients[client - client % per_channel].clone();
                clients.push(shared);
            }
        }
        let keys = ClientKeys::all(settings.concurrency);
        let locks = keys
            .iter()
            .map(|keys| format!("grpc-{}", keys.lock))
            .collect();
        let mcp_calls = keys
            .iter()
            .enumerate()
            .map(|(id, keys)| {
                let call = json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "method": "tools/call",
                    "params": { "name": "agent.memory.get", "arguments": { "key": keys.get } },
                });
                serde_json::to_vec(&call).expect("JSON")
            })
            .collect();
        Ok(PublicApi {
            shared: Arc::new(Shared {
                namespace: gateway.namespace().parse()?,
                clients,
                keys,
                locks,
                http: reqwest::Client::builder()
                    .pool_max_idle_per_host(settings.concurrency)
                    .build()?,
                mcp_url: format!("{}/mcp", gateway.base_url()),
                mcp_calls,
            }),
        })
    }

    fn request<M>(shared: &Shared, message: M) -> tonic::Request<M> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("x-agent-id", shared.namespace.clone());
        request
    }

    pub async fn get(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, _| async move {
                let mut memory = shared.clients[client].clone();
                let message = pb::GetRequest {
                    key: shared.keys[client].get.clone(),
                    ..Default::default()
                };
                memory.get(Self::request(&shared, message)).await?;
                Ok(())
            },
        )
        .await
    }

    /// Lock acquire and release pairs on the client's own key, as the
    /// internal gRPC and REST rows do.
    pub async fn compare_and_swap(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, call| async move {
                let mut memory = shared.clients[client].clone();
                let keys = &shared.keys[client];
                let acquire = call.is_multiple_of(2);
                let holder = Some(keys.holder.clone());
                let message = pb::CompareAndSwapRequest {
                    key: shared.locks[client].clone(),
                    expected_json: if acquire { None } else { holder.clone() },
                    value_json: if acquire { holder } else { None },
                    ..Default::default()
                };
                let reply = memory
                    .compare_and_swap(Self::request(&shared, message))
                    .await?
                    .into_inner();
                ensure!(reply.swapped, "CompareAndSwap did not swap");
                Ok(())
            },
        )
        .await
    }

    /// One MCP `tools/call` round trip (stateless: no session to open).
    pub async fn mcp_call(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, _| async move {
                let response = shared
                    .http
                    .post(&shared.mcp_url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("x-agent-id", shared.namespace.to_str()?)
                    .body(shared.mcp_calls[client].clone())
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "MCP answered {}",
                    response.status()
                );
                let answer: Value = response.json().await?;
                ensure!(
                    answer["result"]["isError"] != json!(true) && answer["result"].is_object(),
                    "tools/call failed: {answer}"
                );
                Ok(())
            },
        )
        .await
    }
}
