//! Tessera facilitator service (`tessera.facilitator.v1.FacilitatorService`).
//!
//! An x402 facilitator: verifies payment payloads and settles them on
//! chain.
//!
//! The gRPC API is designed now so clients and the gateway can be written
//! against it. Every RPC answers `UNIMPLEMENTED` with a message saying it
//! lands with issue #3 (x402 payments).
//! The server still carries health and reflection (through
//! `tessera_runtime::grpc::GrpcServer`), so it can be deployed and probed like
//! any other service.

use pb::facilitator_service_server::{FacilitatorService, FacilitatorServiceServer};
use tessera_proto::facilitator::v1 as pb;
use tonic::{Request, Response, Status};

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = pb::facilitator_service_server::SERVICE_NAME;

/// Environment variable holding the standalone binary's listen address.
pub const ADDR_ENV: &str = "FACILITATOR_GRPC_ADDR";

/// Listen address of the standalone binary when `FACILITATOR_GRPC_ADDR` is unset.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50053";

/// Where the real implementation comes from.
pub const LANDS_WITH: &str = "issue #3 (x402 payments)";

/// The planned facilitator service: every RPC answers `UNIMPLEMENTED`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FacilitatorPlanned;

/// The tonic server for [`FacilitatorPlanned`], ready for `GrpcServer::new`/`add`.
pub fn server() -> FacilitatorServiceServer<FacilitatorPlanned> {
    FacilitatorServiceServer::new(FacilitatorPlanned)
}

fn planned(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "facilitator.{rpc} is planned: it lands with {LANDS_WITH}"
    ))
}

#[tonic::async_trait]
impl FacilitatorService for FacilitatorPlanned {
    async fn verify(
        &self,
        _request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        Err(planned("Verify"))
    }

    async fn settle(
        &self,
        _request: Request<pb::SettleRequest>,
    ) -> Result<Response<pb::SettleResponse>, Status> {
        Err(planned("Settle"))
    }

    async fn supported(
        &self,
        _request: Request<pb::SupportedRequest>,
    ) -> Result<Response<pb::SupportedResponse>, Status> {
        Err(planned("Supported"))
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
            FacilitatorPlanned
                .verify(Request::new(pb::VerifyRequest::default()))
                .await,
            "facilitator.Verify is planned: it lands with issue #3 (x402 payments)",
        );
        assert_planned(
            FacilitatorPlanned
                .settle(Request::new(pb::SettleRequest::default()))
                .await,
            "facilitator.Settle is planned: it lands with issue #3 (x402 payments)",
        );
        assert_planned(
            FacilitatorPlanned
                .supported(Request::new(pb::SupportedRequest::default()))
                .await,
            "facilitator.Supported is planned: it lands with issue #3 (x402 payments)",
        );
        assert_eq!(
            <FacilitatorServiceServer<FacilitatorPlanned> as NamedService>::NAME,
            SERVICE_NAME
        );
        assert_eq!(SERVICE_NAME, "tessera.facilitator.v1.FacilitatorService");
    }
}
