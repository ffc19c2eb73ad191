//! The pure-CPU tools over MCP: every catalog route of tier `cpu`, under
//! its tool's slug, with the tool's input schema. Free here, under the MCP
//! rate limit per client IP, so they run on the tools service directly,
//! not through the paid REST route; the tools service checks the input
//! (size, schema) as it does for every caller.

use super::limit::McpLimit;
use super::results::{self, Failure};
use crate::tools::ToolsClient;
use http::request::Parts;
use rmcp::model::CallToolResult;
use serde_json::{Map, Value};
use tessera_catalog::Tier;
use tessera_toolbox::Tool;

/// Every pure-CPU tool of the catalog, in its order.
pub(crate) fn tools() -> impl Iterator<Item = &'static Tool> {
    tessera_catalog::routes()
        .iter()
        .filter(|route| route.tier == Tier::Cpu)
        .filter_map(|route| route.tool.and_then(tessera_toolbox::find))
}

/// Runs `tool` on `arguments` for the client of `from`, if its budget
/// allows.
pub(crate) async fn call(
    tools: &ToolsClient,
    limit: &McpLimit,
    tool: &Tool,
    arguments: &Map<String, Value>,
    from: &Parts,
) -> CallToolResult {
    if let Err(refused) = limit.check(from).await {
        return Failure {
            reason: Some("RATE_LIMITED".into()),
            retry_after_seconds: Some(refused.retry_after_seconds()),
            ..Failure::new(429, refused.message())
        }
        .into_result();
    }
    let input = Value::Object(arguments.clone()).to_string();
    match tools.invoke(tool.slug, input).await {
        Ok(output) => results::answer(output),
        Err(error) => Failure::from(error).into_result(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cpu_route_is_a_tool_once() {
        let slugs: Vec<&str> = tools().map(|tool| tool.slug).collect();
        let cpu_routes = tessera_catalog::routes()
            .iter()
            .filter(|route| route.tier == Tier::Cpu)
            .count();
        assert_eq!(slugs.len(), cpu_routes);
        assert!(slugs.contains(&"sha256"), "{slugs:?}");
        let unique: std::collections::HashSet<_> = slugs.iter().collect();
        assert_eq!(unique.len(), slugs.len());
    }
}
