//! Tessera discovery service (`tessera.discovery.v1.DiscoveryService`).
//!
//! Tool discovery over the catalog: every tool of the toolbox and every
//! memory route of `tessera_catalog`, each an [`Entry`] (slug, name,
//! description, category, tags, price, method, route, input schema, example
//! input, and a ready `curl` line).
//!
//! - `Find` ([`find`]): the best entries for a task in words, ranked by
//!   BM25 over slug, name, category, description and tags (the [`index`]
//!   module for the scoring and its field weights, [`query`] for the limits
//!   on `q` and `k`);
//! - `Pricing` ([`entries`]): every entry, in the catalog's order;
//! - `Route` (the cross-seller router) is planned: it answers
//!   `UNIMPLEMENTED` until it lands with [`LANDS_WITH`].
//!
//! The gateway may call the service over gRPC or, in process, use
//! [`entries`] and [`find`] directly and render the entries as JSON.

mod call;
mod entries;
pub mod index;
pub mod query;
mod service;
mod tokens;

pub use entries::{entries, Entry, MEMORY_CATEGORY};
pub use index::{Document, Hit, Index};
pub use query::Query;
pub use service::{proto_tool, Discovery, OWN_SELLER};

use pb::discovery_service_server::DiscoveryServiceServer;
use std::sync::LazyLock;
use tessera_error::Error;
use tessera_proto::discovery::v1 as pb;

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = pb::discovery_service_server::SERVICE_NAME;

/// Environment variable holding the standalone binary's listen address.
pub const ADDR_ENV: &str = "DISCOVERY_GRPC_ADDR";

/// Listen address of the standalone binary when `DISCOVERY_GRPC_ADDR` is unset.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50055";

/// Where the `Route` RPC's implementation comes from.
pub const LANDS_WITH: &str = "a later issue (cross-seller routing)";

/// The tonic server for [`Discovery`], ready for `GrpcServer::new`/`add`.
pub fn server() -> DiscoveryServiceServer<Discovery> {
    DiscoveryServiceServer::new(Discovery::new())
}

/// The find index over [`entries`], built once: a [`Hit::doc`] is a
/// position in [`entries`].
pub(crate) fn catalog_index() -> &'static Index {
    static INDEX: LazyLock<Index> =
        LazyLock::new(|| Index::new(entries().iter().map(Entry::document).collect()));
    &INDEX
}

/// The best `k` entries for the task `q` (`k` = 0: 5), best first; equal
/// scores by slug. Refused with `INVALID_QUERY` when `q` is empty, longer
/// than 500 characters or more than 32 terms, or `k` is above 25.
pub fn find(q: &str, k: u32) -> Result<Vec<&'static Entry>, Error> {
    let all = entries();
    Ok(catalog_index()
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
