//! Tessera pow service (`tessera.pow.v1.PowService`).
//!
//! The free proof-of-work tier for pure-CPU tools: challenges and
//! single-use solution redemption.
//!
//! The gRPC API is designed now so clients and the gateway can be written
//! against it. Every RPC answers `UNIMPLEMENTED` with a message saying it
//! lands with a later issue (the free proof-of-work tier).
//! The server still carries health and reflection (through
//! `tessera_runtime::grpc::GrpcServer`), so it can be deployed and probed like
//! any other service.

use pb::pow_service_server::{PowService, PowServiceServer};
use tessera_proto::pow::v1 as pb;
use tonic::{Request, Response, Status};

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = pb::pow_service_server::SERVICE_NAME;

/// Environment variable holding the standalone binary's listen address.
pub const ADDR_ENV: &str = "POW_GRPC_ADDR";

/// Listen address of the standalone binary when `POW_GRPC_ADDR` is unset.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50054";

/// Where the real implementation comes from.
pub const LANDS_WITH: &str = "a later issue (the free proof-of-work tier)";

/// The planned pow service: every RPC answers `UNIMPLEMENTED`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PowPlanned;

/// The tonic server for [`PowPlanned`], ready for `GrpcServer::new`/`add`.
pub fn server() -> PowServiceServer<PowPlanned> {
    PowServiceServer::new(PowPlanned)
}

fn planned(rpc: &str) -> Status {
    Status::unimplemented(format!("pow.{rpc} is planned: it lands with {LANDS_WITH}"))
}

#[tonic::async_trait]
impl PowService for PowPlanned {
    async fn issue_challenge(
        &self,
        _request: Request<pb::IssueChallengeRequest>,
    ) -> Result<Response<pb::Challenge>, Status> {
        Err(planned("IssueChallenge"))
    }

    async fn redeem(
        &self,
        _request: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::RedeemResponse>, Status> {
        Err(planned("Redeem"))
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
            PowPlanned.issue_challenge(Request::new(pb::IssueChallengeRequest::default())).await,
            "pow.IssueChallenge is planned: it lands with a later issue (the free proof-of-work tier)",
        );
        assert_planned(
            PowPlanned
                .redeem(Request::new(pb::RedeemRequest::default()))
                .await,
            "pow.Redeem is planned: it lands with a later issue (the free proof-of-work tier)",
        );
        assert_eq!(
            <PowServiceServer<PowPlanned> as NamedService>::NAME,
            SERVICE_NAME
        );
        assert_eq!(SERVICE_NAME, "tessera.pow.v1.PowService");
    }
}
