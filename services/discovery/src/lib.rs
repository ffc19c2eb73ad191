//! Tessera discovery service (`tessera.discovery.v1.DiscoveryService`).
//!
//! Tool discovery: the priced catalog, lexical find and a cross-seller
//! router.
//!
//! The gRPC API is designed now so clients and the gateway can be written
//! against it. Every RPC answers `UNIMPLEMENTED` with a message saying it
//! lands with a later issue (tool discovery and routing).
//! The server still carries health and reflection (through
//! `tessera_runtime::grpc::GrpcServer`), so it can be deployed and probed like
//! any other service.

use pb::discovery_service_server::{DiscoveryService, DiscoveryServiceServer};
use tessera_proto::discovery::v1 as pb;
use tonic::{Request, Response, Status};

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = pb::discovery_service_server::SERVICE_NAME;

/// Environment variable holding the standalone binary's listen address.
pub const ADDR_ENV: &str = "DISCOVERY_GRPC_ADDR";

/// Listen address of the standalone binary when `DISCOVERY_GRPC_ADDR` is unset.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50055";

/// Where the real implementation comes from.
pub const LANDS_WITH: &str = "a later issue (tool discovery and routing)";

/// The planned discovery service: every RPC answers `UNIMPLEMENTED`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscoveryPlanned;

/// The tonic server for [`DiscoveryPlanned`], ready for `GrpcServer::new`/`add`.
pub fn server() -> DiscoveryServiceServer<DiscoveryPlanned> {
    DiscoveryServiceServer::new(DiscoveryPlanned)
}

fn planned(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "discovery.{rpc} is planned: it lands with {LANDS_WITH}"
    ))
}

#[tonic::async_trait]
impl DiscoveryService for DiscoveryPlanned {
    async fn find(
        &self,
        _request: Request<pb::FindRequest>,
    ) -> Result<Response<pb::FindResponse>, Status> {
        Err(planned("Find"))
    }

    async fn route(
        &self,
        _request: Request<pb::RouteRequest>,
    ) -> Result<Response<pb::RouteResponse>, Status> {
        Err(planned("Route"))
    }

    async fn pricing(
        &self,
        _request: Request<pb::PricingRequest>,
    ) -> Result<Response<pb::PricingResponse>, Status> {
        Err(planned("Pricing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::server::NamedService;

    fn assert_planned<T: std::fmt::Debug>(result: Result<T, Status>, message: &str) {
        let status = result.expect_err("a planned RPC must not succeed");
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        assert_eq!(status.message(), message);
    }

    #[tokio::test]
    async fn every_rpc_answers_unimplemented_naming_its_issue() {
        assert_planned(
            DiscoveryPlanned
                .find(Request::new(pb::FindRequest::default()))
                .await,
            "discovery.Find is planned: it lands with a later issue (tool discovery and routing)",
        );
        assert_planned(
            DiscoveryPlanned
                .route(Request::new(pb::RouteRequest::default()))
                .await,
            "discovery.Route is planned: it lands with a later issue (tool discovery and routing)",
        );
        assert_planned(
            DiscoveryPlanned.pricing(Request::new(pb::PricingRequest::default())).await,
            "discovery.Pricing is planned: it lands with a later issue (tool discovery and routing)",
        );
        assert_eq!(
            <DiscoveryServiceServer<DiscoveryPlanned> as NamedService>::NAME,
            SERVICE_NAME
        );
        assert_eq!(SERVICE_NAME, "tessera.discovery.v1.DiscoveryService");
    }
}
