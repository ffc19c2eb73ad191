//! The gRPC face: `Find` and `Pricing` answer from the catalog's entries;
//! `Route` (the cross-seller router) is still planned and answers
//! `UNIMPLEMENTED`.

use crate::entries::{entries, Entry};
use crate::index::Index;
use crate::{catalog_index, LANDS_WITH};
use std::sync::Arc;
use tessera_proto::discovery::v1 as pb;
use tonic::{Request, Response, Status};

/// Our own catalog's seller: empty (a crawled seller will be named).
pub const OWN_SELLER: &str = "";

/// The discovery service over the catalog's entries and their find index.
#[derive(Debug, Clone)]
pub struct Discovery {
    index: &'static Index,
    /// The entries as proto `Tool`s, built once, in entry order.
    tools: Arc<[pb::Tool]>,
}

impl Discovery {
    /// The service over [`entries`] and the global index.
    pub fn new() -> Discovery {
        Discovery {
            index: catalog_index(),
            tools: entries().iter().map(proto_tool).collect(),
        }
    }
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery::new()
    }
}

/// `entry` as the proto `Tool`: the price as a decimal string of atomic
/// units, the input schema and example as JSON text (empty when it has
/// none).
pub fn proto_tool(entry: &Entry) -> pb::Tool {
    pb::Tool {
        slug: entry.slug.clone(),
        name: entry.name.clone(),
        description: entry.description.clone(),
        price: entry.price.to_string(),
        method: entry.method.to_string(),
        route: entry.route.to_string(),
        input_schema_json: json_text(&entry.input_schema),
        seller: OWN_SELLER.to_string(),
        category: entry.category.clone(),
        tags: entry.tags.clone(),
        example_json: json_text(&entry.example),
        call: entry.call.clone(),
    }
}

/// `value` as JSON text; empty for null (none).
fn json_text(value: &serde_json::Value) -> String {
    if value.is_null() {
        String::new()
    } else {
        value.to_string()
    }
}

#[tonic::async_trait]
impl pb::discovery_service_server::DiscoveryService for Discovery {
    async fn find(
        &self,
        request: Request<pb::FindRequest>,
    ) -> Result<Response<pb::FindResponse>, Status> {
        let request = request.into_inner();
        let hits = self
            .index
            .find(&request.q, request.k)
            .map_err(|error| error.to_status())?;
        let tools = hits.iter().map(|hit| self.tools[hit.doc].clone()).collect();
        Ok(Response::new(pb::FindResponse { tools }))
    }

    async fn route(
        &self,
        _request: Request<pb::RouteRequest>,
    ) -> Result<Response<pb::RouteResponse>, Status> {
        Err(Status::unimplemented(format!(
            "discovery.Route is planned: it lands with {LANDS_WITH}"
        )))
    }

    async fn pricing(
        &self,
        _request: Request<pb::PricingRequest>,
    ) -> Result<Response<pb::PricingResponse>, Status> {
        Ok(Response::new(pb::PricingResponse {
            tools: self.tools.to_vec(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::discovery_service_server::DiscoveryService;
    use std::collections::HashSet;
    use tessera_error::{Error, ErrorKind};

    #[tokio::test]
    async fn find_answers_proto_tools() {
        let discovery = Discovery::new();
        let request = pb::FindRequest {
            q: "convert kilometers to miles".to_string(),
            k: 3,
        };
        let tools = discovery
            .find(Request::new(request))
            .await
            .unwrap()
            .into_inner()
            .tools;
        assert!(!tools.is_empty() && tools.len() <= 3, "{tools:?}");
        let tool = &tools[0];
        let declared = tessera_toolbox::find("convert").unwrap();
        assert_eq!(tool.slug, "convert");
        assert_eq!(tool.name, declared.name);
        assert_eq!(tool.description, declared.description);
        assert_eq!(tool.price, declared.price.to_string());
        assert_eq!(
            (tool.method.as_str(), tool.route.as_str()),
            ("GET", declared.path)
        );
        assert_eq!(tool.seller, OWN_SELLER);
        assert_eq!(tool.category, "units");
        let schema: serde_json::Value = serde_json::from_str(&tool.input_schema_json).unwrap();
        assert_eq!(&schema, tessera_toolbox::input_schema("convert").unwrap());
        let tags: Vec<&str> = tool.tags.iter().map(String::as_str).collect();
        assert_eq!(tags, declared.tags);
        let example: serde_json::Value = serde_json::from_str(&tool.example_json).unwrap();
        assert_eq!(example, (declared.example)());
        assert_eq!(
            tool.call,
            "curl 'http://localhost:8080/api/convert/kilometers-to-miles?value=42'"
        );
    }

    #[tokio::test]
    async fn find_refusals_are_invalid_argument_naming_the_parameter() {
        let discovery = Discovery::new();
        for (q, k, parameter) in [("", 5, "q"), ("hash", 26, "k")] {
            let request = pb::FindRequest {
                q: q.to_string(),
                k,
            };
            let status = discovery.find(Request::new(request)).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            let error = Error::from_status(&status);
            assert_eq!(error.kind, ErrorKind::InvalidArgument);
            assert_eq!(error.reason, "INVALID_QUERY");
            assert_eq!(
                error.details.get("field").map(String::as_str),
                Some(parameter)
            );
        }
    }

    #[tokio::test]
    async fn pricing_lists_every_tool_and_memory_route_once() {
        let tools = Discovery::new()
            .pricing(Request::new(pb::PricingRequest {}))
            .await
            .unwrap()
            .into_inner()
            .tools;
        let slugs: Vec<&str> = tools.iter().map(|tool| tool.slug.as_str()).collect();
        assert_eq!(
            slugs.iter().collect::<HashSet<_>>().len(),
            slugs.len(),
            "a slug twice"
        );
        for declared in tessera_toolbox::all() {
            let tool = tools
                .iter()
                .find(|tool| tool.slug == declared.slug)
                .unwrap_or_else(|| panic!("{} missing", declared.slug));
            let schema: serde_json::Value = serde_json::from_str(&tool.input_schema_json).unwrap();
            assert_eq!(
                &schema,
                tessera_toolbox::input_schema(declared.slug).unwrap()
            );
            assert_eq!(tool.price, declared.price.to_string());
        }
        let memory: Vec<&tessera_catalog::Route> = tessera_catalog::routes()
            .iter()
            .filter(|route| route.tier == tessera_catalog::Tier::Wallet)
            .collect();
        for route in &memory {
            let tool = tools.iter().find(|tool| tool.slug == route.id).unwrap();
            assert_eq!(tool.input_schema_json, "");
            assert_eq!(tool.example_json, "");
            assert!(tool.call.contains(route.path.split('{').next().unwrap()));
            assert_eq!(tool.category, "memory");
            assert_eq!(tool.price, route.price.to_string());
            assert_eq!(tool.method, route.method.as_str());
        }
        assert_eq!(tools.len(), tessera_toolbox::all().count() + memory.len());
    }

    #[tokio::test]
    async fn route_is_still_planned() {
        let status = Discovery::new()
            .route(Request::new(pb::RouteRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        assert_eq!(
            status.message(),
            format!("discovery.Route is planned: it lands with {LANDS_WITH}")
        );
    }
}
