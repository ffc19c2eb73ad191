//! The gRPC face: `Find` and `Pricing` answer from our catalog; `Route`
//! ranks our catalog and the crawled sellers ([`crate::route`]).
//!
//! A [`Discovery`] is built one of four ways:
//!
//! - [`Discovery::new`] (also `Default`): our catalog only, no store, no
//!   crawler (the all-in-one and the test harness);
//! - [`Discovery::open`]: from a [`DiscoveryConfig`]; with registries
//!   configured it opens the store, loads what it kept (so a restart routes
//!   at once to the sellers crawled before) and spawns the crawler;
//!   [`Discovery::load`] does the same without spawning it, and
//!   [`Discovery::crawl`] crawls once, now;
//! - [`Discovery::with_entries`]: a synthetic catalog (benchmarks);
//! - [`Discovery::with_listings`]: our catalog and synthetic external
//!   listings, each taken as healthy and quoting what it lists, without
//!   any network (benchmarks).

use crate::catalog::Catalog;
use crate::config::{DiscoveryConfig, OwnOffer};
use crate::crawler::{unix_ms, CrawlReport, Crawler};
use crate::egress;
use crate::entries::Entry;
use crate::listing::Listing;
use crate::route::{self, RouteQuery};
use crate::sellers::Sellers;
use crate::snapshot::Published;
use crate::store::Store;
use std::sync::Arc;
use tessera_proto::discovery::v1 as pb;
use tessera_runtime::Shutdown;
use tonic::{Request, Response, Status};

/// The discovery service: our catalog, the routing snapshot, and the
/// crawler keeping it fresh (when configured). Clones share all three.
#[derive(Clone)]
pub struct Discovery {
    catalog: Arc<Catalog>,
    published: Arc<Published>,
    crawler: Option<Arc<Crawler>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("entries", &self.catalog.entries.len())
            .field("crawler", &self.crawler)
            .finish()
    }
}

impl Discovery {
    /// The service over [`crate::entries`] alone: `Route` answers our
    /// catalog only. Our candidates' network, asset and pay-to come from
    /// the environment ([`OwnOffer::from_env`]).
    pub fn new() -> Discovery {
        Discovery::over(Catalog::ours(), OwnOffer::from_env(), &Sellers::default())
    }

    /// The service over a synthetic catalog of `entries` (e.g. 10,000
    /// generated tools), without external sellers.
    pub fn with_entries(entries: Vec<Entry>) -> Discovery {
        Discovery::over(
            Arc::new(Catalog::new(entries)),
            OwnOffer::default(),
            &Sellers::default(),
        )
    }

    /// The service over our catalog and `listings` as external sellers,
    /// without any network: each listing counts as probed once, OK, just
    /// now, quoting its own `accepts`.
    pub fn with_listings(listings: Vec<Listing>) -> Discovery {
        Discovery::over(
            Catalog::ours(),
            OwnOffer::default(),
            &Sellers::healthy(listings, unix_ms()),
        )
    }

    fn over(catalog: Arc<Catalog>, own: OwnOffer, sellers: &Sellers) -> Discovery {
        Discovery {
            published: Arc::new(Published::new(catalog.clone(), own, sellers)),
            catalog,
            crawler: None,
        }
    }

    /// The service of `config`, its crawler not started: without
    /// registries, [`Discovery::new`] with `config`'s own offer; with
    /// them, the store opened and what it kept loaded (listings of
    /// registries no longer configured, or whose URL is no longer
    /// allowed, are left out).
    pub async fn load(config: &DiscoveryConfig) -> anyhow::Result<Discovery> {
        let catalog = Catalog::ours();
        if config.registries.is_empty() {
            return Ok(Discovery::over(
                catalog,
                config.own.clone(),
                &Sellers::default(),
            ));
        }
        let store = Store::open(&config.store).await?;
        let loaded = store.load(config.health_window).await?;
        let allow_private = config.allow_private;
        let sellers = Sellers::from_loaded(loaded, &config.registries, |listing| {
            egress::check_url(&listing.resource, allow_private).is_ok()
        });
        tracing::info!(
            sellers = sellers.by_resource.len(),
            registries = config.registries.len(),
            "discovery: sellers loaded"
        );
        let published = Arc::new(Published::new(
            catalog.clone(),
            config.own.clone(),
            &sellers,
        ));
        let crawler = Crawler::new(config.clone(), store, sellers, published.clone());
        Ok(Discovery {
            catalog,
            published,
            crawler: Some(Arc::new(crawler)),
        })
    }

    /// [`Discovery::load`], then the crawler started (when there are
    /// registries), stopping on `shutdown`.
    pub async fn open(config: &DiscoveryConfig, shutdown: &Shutdown) -> anyhow::Result<Discovery> {
        let discovery = Discovery::load(config).await?;
        discovery.spawn_crawler(shutdown);
        Ok(discovery)
    }

    /// Starts the background crawler (none without registries).
    pub fn spawn_crawler(&self, shutdown: &Shutdown) -> Option<tokio::task::JoinHandle<()>> {
        let crawler = self.crawler.clone()?;
        Some(crawler.spawn(shutdown.clone()))
    }

    /// Crawls once, now (after any crawl under way); an empty report
    /// without registries.
    pub async fn crawl(&self) -> CrawlReport {
        match &self.crawler {
            Some(crawler) => crawler.crawl().await,
            None => CrawlReport::default(),
        }
    }

    /// The route of `request` (see [`crate::route`]).
    pub fn route_request(
        &self,
        request: &pb::RouteRequest,
    ) -> Result<pb::RouteResponse, tessera_error::Error> {
        let query = RouteQuery::parse(request)?;
        Ok(route::route(&self.published.current(), &query))
    }
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery::new()
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
            .catalog
            .index
            .find(&request.q, request.k)
            .map_err(|error| error.to_status())?;
        let tools = hits
            .iter()
            .map(|hit| self.catalog.tools[hit.doc].clone())
            .collect();
        Ok(Response::new(pb::FindResponse { tools }))
    }

    async fn route(
        &self,
        request: Request<pb::RouteRequest>,
    ) -> Result<Response<pb::RouteResponse>, Status> {
        self.route_request(request.get_ref())
            .map(Response::new)
            .map_err(|error| error.to_status())
    }

    async fn pricing(
        &self,
        _request: Request<pb::PricingRequest>,
    ) -> Result<Response<pb::PricingResponse>, Status> {
        Ok(Response::new(pb::PricingResponse {
            tools: self.catalog.tools.clone(),
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
        assert_eq!(tool.seller, crate::OWN_SELLER);
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
        let memory: Vec<&tessera_catalog::Route> = tessera_catalog::rest_routes()
            .filter(|route| route.tier == tessera_catalog::Tier::Wallet)
            .collect();
        for route in &memory {
            let tool = tools.iter().find(|tool| tool.slug == route.id).unwrap();
            let schema: serde_json::Value = serde_json::from_str(&tool.input_schema_json).unwrap();
            assert_eq!(schema["type"], "object", "{}", route.id);
            let example: serde_json::Value = serde_json::from_str(&tool.example_json).unwrap();
            assert!(example.is_object(), "{}", route.id);
            assert!(tool.call.contains(route.path.split('{').next().unwrap()));
            assert!(
                tool.call.contains("-H 'X-Agent-Id: agent-1'"),
                "{}",
                tool.call
            );
            assert_eq!(tool.category, "memory");
            assert_eq!(tool.price, route.price.to_string());
            assert_eq!(tool.method, route.method.as_str());
        }
        assert_eq!(tools.len(), tessera_toolbox::all().count() + memory.len());
    }
}
