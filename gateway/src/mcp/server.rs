//! The MCP server: lists the catalog's tools and runs a call, each request
//! on its own (no session): what a call needs arrives with it, in its HTTP
//! request (the peer, X-Agent-Id, a payment header) and its `_meta` (a
//! payment).

use super::catalog::{catalog, Entry, Kind};
use super::cpu;
use super::limit::McpLimit;
use super::results::Failure;
use crate::tools::ToolsClient;
use axum::Router;
use http::request::Parts;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value};

const INSTRUCTIONS: &str = "Tessera: coordination for agent fleets. agent.memory.* is a key-value memory of \
your own (get, put, list, delete, cas for locks and leases, incr for counters), paid per call with x402: a \
call without payment answers an error whose structuredContent is the x402 PaymentRequired quote; pay it and \
call again with the PaymentPayload in _meta[\"x402/payment\"]. The other tools are pure-CPU utilities, free \
here and rate limited per client. search_tools finds a tool by what it does, find_tool shows its input, \
call_tool calls any tool by name.";

/// What runs the tools: the gateway's own routes, the tools service, and
/// the MCP limit on free calls.
#[derive(Clone)]
pub(crate) struct Connector {
    api: Router,
    tools: ToolsClient,
    limit: McpLimit,
}

impl Connector {
    pub fn new(api: Router, tools: ToolsClient, limit: McpLimit) -> Self {
        Connector { api, tools, limit }
    }

    /// The gateway's routes.
    pub fn api(&self) -> &Router {
        &self.api
    }

    /// Runs a memory or CPU tool; refuses a meta tool (`call_tool` calls
    /// this; the meta tools' own calls are [`Self::run`]'s).
    pub async fn run_tool(
        &self,
        entry: &Entry,
        arguments: &Map<String, Value>,
        meta: &Map<String, Value>,
        from: &Parts,
    ) -> CallToolResult {
        match entry.kind {
            Kind::Memory(tool) => tool.call(&self.api, arguments, meta, from).await,
            Kind::Cpu(tool) => cpu::call(&self.tools, &self.limit, tool, arguments, from).await,
            Kind::Meta(meta_tool) => Failure::new(
                400,
                format!(
                    "call_tool calls the catalog's tools; call {} directly",
                    meta_tool.name()
                ),
            )
            .into_result(),
        }
    }

    async fn run(
        &self,
        entry: &Entry,
        arguments: &Map<String, Value>,
        meta: &Map<String, Value>,
        from: &Parts,
    ) -> CallToolResult {
        match entry.kind {
            Kind::Meta(meta_tool) => meta_tool.call(self, arguments, meta, from).await,
            _ => self.run_tool(entry, arguments, meta, from).await,
        }
    }
}

impl ServerHandler for Connector {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tessera", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(catalog().definitions()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        catalog().get(name).map(|entry| entry.definition.clone())
    }

    /// An unknown tool is a JSON-RPC error (-32602), as the MCP
    /// specification's tools page has it; everything that goes wrong with
    /// a known tool is a tool error the model reads.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(entry) = catalog().get(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "Unknown tool: {}. tools/list lists the tools; search_tools finds one by what it does",
                    request.name
                ),
                None,
            ));
        };
        let from = context
            .extensions
            .get::<Parts>()
            .ok_or_else(|| ErrorData::internal_error("the HTTP request is not known", None))?;
        // The service moves the call's `_meta` into the context.
        let mut meta = context.meta.0 .0.clone();
        if let Some(own) = &request.meta {
            meta.extend(own.0 .0.clone());
        }
        let arguments = request.arguments.unwrap_or_default();
        Ok(self.run(entry, &arguments, &meta, from).await.into())
    }
}
