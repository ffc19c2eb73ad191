//! Tessera stats service (`tessera.stats.v1.StatsService`).
//!
//! Call accounting: counts, revenue and the seller leaderboard.
//!
//! The gRPC API is designed now so clients and the gateway can be written
//! against it. Every RPC answers `UNIMPLEMENTED` with a message saying it
//! lands with a later issue (call accounting and stats).
//! The server still carries health and reflection (through
//! `tessera_runtime::grpc::GrpcServer`), so it can be deployed and probed like
//! any other service.

use pb::stats_service_server::{StatsService, StatsServiceServer};
use tessera_proto::stats::v1 as pb;
use tonic::{Request, Response, Status};

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = pb::stats_service_server::SERVICE_NAME;

/// Environment variable holding the standalone binary's listen address.
pub const ADDR_ENV: &str = "STATS_GRPC_ADDR";

/// Listen address of the standalone binary when `STATS_GRPC_ADDR` is unset.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50056";

/// Where the real implementation comes from.
pub const LANDS_WITH: &str = "a later issue (call accounting and stats)";

/// The planned stats service: every RPC answers `UNIMPLEMENTED`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatsPlanned;

/// The tonic server for [`StatsPlanned`], ready for `GrpcServer::new`/`add`.
pub fn server() -> StatsServiceServer<StatsPlanned> {
    StatsServiceServer::new(StatsPlanned)
}

fn planned(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "stats.{rpc} is planned: it lands with {LANDS_WITH}"
    ))
}

#[tonic::async_trait]
impl StatsService for StatsPlanned {
    async fn record_call(
        &self,
        _request: Request<pb::CallEvent>,
    ) -> Result<Response<pb::RecordCallResponse>, Status> {
        Err(planned("RecordCall"))
    }

    async fn summary(
        &self,
        _request: Request<pb::SummaryRequest>,
    ) -> Result<Response<pb::SummaryResponse>, Status> {
        Err(planned("Summary"))
    }

    async fn leaderboard(
        &self,
        _request: Request<pb::LeaderboardRequest>,
    ) -> Result<Response<pb::LeaderboardResponse>, Status> {
        Err(planned("Leaderboard"))
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
            StatsPlanned
                .record_call(Request::new(pb::CallEvent::default()))
                .await,
            "stats.RecordCall is planned: it lands with a later issue (call accounting and stats)",
        );
        assert_planned(
            StatsPlanned
                .summary(Request::new(pb::SummaryRequest::default()))
                .await,
            "stats.Summary is planned: it lands with a later issue (call accounting and stats)",
        );
        assert_planned(
            StatsPlanned
                .leaderboard(Request::new(pb::LeaderboardRequest::default()))
                .await,
            "stats.Leaderboard is planned: it lands with a later issue (call accounting and stats)",
        );
        assert_eq!(
            <StatsServiceServer<StatsPlanned> as NamedService>::NAME,
            SERVICE_NAME
        );
        assert_eq!(SERVICE_NAME, "tessera.stats.v1.StatsService");
    }
}
