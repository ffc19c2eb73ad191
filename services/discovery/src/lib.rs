//! Tessera discovery service (`tessera.discovery.v1.DiscoveryService`).
//!
//! Tool discovery over the catalog: every tool of the toolbox and every
//! memory route of `tessera_catalog`, each an [`Entry`] (slug, name,
//! description, category, tags, price, method, route, input schema, example
//! input, and a ready `curl` line); and a cross-seller router over our
//! catalog and the x402 sellers listed by Bazaar-style registries.
//!
//! - `Find` ([`find`]): the best entries for a task in words, ranked by
//!   BM25 over slug, name, category, description and tags (the [`index`]
//!   module for the scoring and its field weights, [`query`] for the limits
//!   on `q` and `k`);
//! - `Pricing` ([`entries`]): every entry, in the catalog's order;
//! - `Route` ([`route`]): the cheapest healthy tool for a task across our
//!   catalog and the crawled sellers: relevance in bands, then health, then
//!   price, then slug, at most ⌈top/3⌉ per seller, every external result
//!   marked untrusted.
//!
//! The sellers come from the [`crawler`]: it pages through each registry
//! of `DISCOVERY_REGISTRIES` ([`registry`], [`listing`]), drops listings
//! whose text reads like instructions to an agent ([`injection`]), probes
//! each seller with an unpaid call that must answer a readable 402 quote
//! ([`probe`], [`quote`]; only public addresses, capped reads: [`egress`]),
//! keeps each seller's health and each failing origin's backoff
//! ([`health`]), and stores it all in SQLite or PostgreSQL ([`store`]) so
//! a restart does not forget it. Settings: [`config`].
//!
//! The gateway may call the service over gRPC or, in process, use
//! [`entries`] and [`find`] directly and render the entries as JSON.

mod call;
pub mod catalog;
pub mod config;
pub mod crawler;
pub mod egress;
mod entries;
pub mod health;
pub mod index;
pub mod injection;
pub mod listing;
mod memory_input;
pub mod probe;
pub mod query;
pub mod quote;
pub mod registry;
pub mod route;
pub mod sellers;
mod service;
pub mod snapshot;
pub mod store;
mod tokens;

pub use catalog::{proto_tool, OWN_SELLER};
pub use config::{DiscoveryConfig, OwnOffer, StoreConfig};
pub use crawler::CrawlReport;
pub use entries::{entries, Entry, MEMORY_CATEGORY};
pub use index::{Document, Hit, Index};
pub use listing::Listing;
pub use query::Query;
pub use service::Discovery;

use pb::discovery_service_server::DiscoveryServiceServer;
use tessera_error::Error;
use tessera_proto::discovery::v1 as pb;

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = pb::discovery_service_server::SERVICE_NAME;

/// Environment variable holding the standalone binary's listen address.
pub const ADDR_ENV: &str = "DISCOVERY_GRPC_ADDR";

/// Listen address of the standalone binary when `DISCOVERY_GRPC_ADDR` is unset.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50055";

/// The tonic server for [`Discovery::new`] (our catalog only), ready for
/// `GrpcServer::new`/`add`.
pub fn server() -> DiscoveryServiceServer<Discovery> {
    DiscoveryServiceServer::new(Discovery::new())
}

/// The best `k` entries for the task `q` (`k` = 0: 5), best first; equal
/// scores by slug. Refused with `INVALID_QUERY` when `q` is empty, longer
/// than 500 characters or more than 32 terms, or `k` is above 25.
pub fn find(q: &str, k: u32) -> Result<Vec<&'static Entry>, Error> {
    let all = entries();
    Ok(catalog::Catalog::ours()
        .index
        .find(q, k)?
        .into_iter()
        .map(|hit| &all[hit.doc])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::server::NamedService;

    #[test]
    fn the_server_serves_the_discovery_service() {
        assert_eq!(
            <DiscoveryServiceServer<Discovery> as NamedService>::NAME,
            SERVICE_NAME
        );
        assert_eq!(SERVICE_NAME, "tessera.discovery.v1.DiscoveryService");
        let _server: DiscoveryServiceServer<Discovery> = server();
    }
}
