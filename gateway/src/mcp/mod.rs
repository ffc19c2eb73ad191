//! The MCP connector at `/mcp`: a Streamable HTTP MCP server (rmcp) whose
//! tools are Tessera's.
//!
//! | tools | how they run | paid |
//! |---|---|---|
//! | `agent.memory.{get,put,list,delete,cas,incr}` | an in-process call to the REST route ([`memory`]): `GET /api/agent/memory/get?key=…`, `POST /api/agent/memory/put`, … `POST /api/memory/cas`, `POST /api/memory/incr` | x402, as the route: a quote is a tool error, a payment goes in `_meta["x402/payment"]` or the `PAYMENT-SIGNATURE` header ([`payment`]) |
//! | the catalog's pure-CPU tools, by slug | the tools service, directly ([`cpu`]) | free, under the MCP rate limit per client IP ([`limit`]) |
//! | `search_tools`, `find_tool`, `call_tool` | over the two above ([`meta`]) | as the tool called |
//!
//! Stateless: no `Mcp-Session-Id`, every POST carries all it needs and
//! answers one JSON message, so any replica behind a load balancer serves
//! any request; there is no server-to-client stream (`GET` is 405).
//! Settings: [`McpConfig`].

mod catalog;
mod config;
mod cpu;
mod input;
mod limit;
mod memory;
mod meta;
mod meta_tools;
mod payment;
mod rest;
mod results;
mod server;

pub use config::McpConfig;

use crate::tools::ToolsClient;
use crate::GatewayConfig;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;

/// Room in an MCP request for the JSON-RPC envelope and a payment, beyond
/// the largest REST body a tool's arguments may become.
const ENVELOPE_BYTES: usize = 64 * 1024;

/// The `/mcp` service over `api` (the gateway's routes, called in process)
/// and `tools` (the tools service).
pub(crate) fn service(
    api: axum::Router,
    tools: ToolsClient,
    config: &GatewayConfig,
) -> StreamableHttpService<server::Connector, NeverSessionManager> {
    let limit = limit::McpLimit::new(
        &config.mcp,
        &config.rate_limit_store,
        &config.trusted_proxies,
    );
    let connector = server::Connector::new(api, tools, limit);
    let transport = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(crate::extract::MAX_BODY_BYTES + ENVELOPE_BYTES);
    // The REST routes beside `/mcp` answer any Host (and any origin, by
    // default): checking it here would protect nothing they expose.
    let transport = match config.mcp.allowed_hosts.as_slice() {
        [] => transport.disable_allowed_hosts(),
        hosts => transport.with_allowed_hosts(hosts.iter().cloned()),
    };
    StreamableHttpService::new(
        move || Ok(connector.clone()),
        Arc::new(NeverSessionManager::default()),
        transport,
    )
}
