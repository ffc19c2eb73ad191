//! Tessera payment service (`tessera.payment.v1.PaymentService`).
//!
//! Payment verification for the gateway: x402 quotes, payment-payload
//! checks, durable nonce reservation and settlement through a facilitator.
//!
//! The gRPC API is designed now so clients and the gateway can be written
//! against it. Every RPC answers `UNIMPLEMENTED` with a message saying it
//! lands with issue #3 (x402 payments).
//! The server still carries health and reflection (through
//! `tessera_runtime::grpc::GrpcServer`), so it can be deployed and probed like
//! any other service.

use pb::payment_service_server::{PaymentService, PaymentServiceServer};
use tessera_proto::payment::v1 as pb;
use tonic::{Request, Response, Status};

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = pb::payment_service_server::SERVICE_NAME;

/// Environment variable holding the standalone binary's listen address.
pub const ADDR_ENV: &str = "PAYMENT_GRPC_ADDR";

/// Listen address of the standalone binary when `PAYMENT_GRPC_ADDR` is unset.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50052";

/// Where the real implementation comes from.
pub const LANDS_WITH: &str = "issue #3 (x402 payments)";

/// The planned payment service: every RPC answers `UNIMPLEMENTED`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentPlanned;

/// The tonic server for [`PaymentPlanned`], ready for `GrpcServer::new`/`add`.
pub fn server() -> PaymentServiceServer<PaymentPlanned> {
    PaymentServiceServer::new(PaymentPlanned)
}

fn planned(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "payment.{rpc} is planned: it lands with {LANDS_WITH}"
    ))
}

#[tonic::async_trait]
impl PaymentService for PaymentPlanned {
    async fn quote(
        &self,
        _request: Request<pb::QuoteRequest>,
    ) -> Result<Response<pb::QuoteResponse>, Status> {
        Err(planned("Quote"))
    }

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

    async fn cancel(
        &self,
        _request: Request<pb::CancelRequest>,
    ) -> Result<Response<pb::CancelResponse>, Status> {
        Err(planned("Cancel"))
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
            PaymentPlanned
                .quote(Request::new(pb::QuoteRequest::default()))
                .await,
            "payment.Quote is planned: it lands with issue #3 (x402 payments)",
        );
        assert_planned(
            PaymentPlanned
                .verify(Request::new(pb::VerifyRequest::default()))
                .await,
            "payment.Verify is planned: it lands with issue #3 (x402 payments)",
        );
        assert_planned(
            PaymentPlanned
                .settle(Request::new(pb::SettleRequest::default()))
                .await,
            "payment.Settle is planned: it lands with issue #3 (x402 payments)",
        );
        assert_planned(
            PaymentPlanned
                .cancel(Request::new(pb::CancelRequest::default()))
                .await,
            "payment.Cancel is planned: it lands with issue #3 (x402 payments)",
        );
        assert_eq!(
            <PaymentServiceServer<PaymentPlanned> as NamedService>::NAME,
            SERVICE_NAME
        );
        assert_eq!(SERVICE_NAME, "tessera.payment.v1.PaymentService");
    }
}
