//! The gRPC adapter over [`Payments`].

use crate::Payments;
use tessera_error::{Error, ErrorKind};
use tessera_proto::payment::v1 as pb;
use tessera_proto::payment::v1::payment_service_server::{PaymentService, PaymentServiceServer};
use tonic::{Request, Response, Status};

pub fn server(payments: Payments) -> PaymentServiceServer<PaymentGrpc> {
    PaymentServiceServer::new(PaymentGrpc { payments })
}

#[derive(Clone)]
pub struct PaymentGrpc {
    payments: Payments,
}

#[tonic::async_trait]
impl PaymentService for PaymentGrpc {
    async fn quote(
        &self,
        request: Request<pb::QuoteRequest>,
    ) -> Result<Response<pb::QuoteResponse>, Status> {
        let r = request.into_inner();
        let quote = self.payments.quote(&r.route, &r.resource_url, None)?;
        Ok(Response::new(pb::QuoteResponse {
            payment_required_header: tessera_x402::encode_header(&quote),
            payment_required_json: serde_json::to_string(&quote).expect("serializes"),
        }))
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let r = request.into_inner();
        let verified = self
            .payments
            .verify(&r.route, &r.resource_url, &r.payment_header, r.settle_later)
            .await?;
        Ok(Response::new(pb::VerifyResponse {
            payer: verified.payer,
            payment_id: verified.payment_id,
            settle_before: verified.settle_before,
            amount: self.payments.catalog().price(&r.route)?,
            network: self.payments.asset().network.caip2(),
        }))
    }

    async fn identify(
        &self,
        request: Request<pb::IdentifyRequest>,
    ) -> Result<Response<pb::IdentifyResponse>, Status> {
        let r = request.into_inner();
        let payer = self
            .payments
            .identify(&r.route, &r.resource_url, &r.payment_header)
            .await?;
        Ok(Response::new(pb::IdentifyResponse { payer }))
    }

    async fn settle(
        &self,
        request: Request<pb::SettleRequest>,
    ) -> Result<Response<pb::SettleResponse>, Status> {
        let r = request.into_inner();
        let settled = match (r.defer, r.before_execution) {
            (true, true) => {
                return Err(Error::invalid(
                    "DEFER_BEFORE_EXECUTION",
                    "a settlement before execution cannot be deferred: the call waits for it",
                )
                .into())
            }
            (true, false) => self.payments.queue(&r.payment_id).await?,
            (false, before_execution) => {
                self.payments
                    .settle(&r.payment_id, before_execution)
                    .await?
            }
        };
        Ok(Response::new(pb::SettleResponse {
            payment_response_header: settled.header(),
            success: settled.response.success,
            transaction: settled.response.transaction,
            network: settled.response.network,
            payer: settled.response.payer.unwrap_or_default(),
            pending: settled.pending,
            error_reason: settled.response.error_reason.unwrap_or_default(),
            queued: settled.queued,
        }))
    }

    async fn get_payment(
        &self,
        request: Request<pb::GetPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        let r = request.into_inner();
        let state = self.payments.payment(&r.payment_id).await?.ok_or_else(|| {
            Error::new(ErrorKind::NotFound, "PAYMENT_NOT_FOUND", "no such payment")
        })?;
        Ok(Response::new(pb::GetPaymentResponse {
            payment_id: state.id,
            status: state.status,
            route: state.route,
            payer: state.payer,
            amount: state.amount,
            network: state.network,
            asset: state.asset,
            transaction: state.transaction.unwrap_or_default(),
            error_reason: state.error_reason.unwrap_or_default(),
            served: state.served,
            created_at_ms: state.created_at_ms,
            updated_at_ms: state.updated_at_ms,
        }))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelRequest>,
    ) -> Result<Response<pb::CancelResponse>, Status> {
        let r = request.into_inner();
        self.payments.cancel(&r.payment_id, &r.reason).await?;
        Ok(Response::new(pb::CancelResponse {}))
    }

    async fn list_prices(
        &self,
        _request: Request<pb::ListPricesRequest>,
    ) -> Result<Response<pb::ListPricesResponse>, Status> {
        let asset = self.payments.asset();
        Ok(Response::new(pb::ListPricesResponse {
            prices: self
                .payments
                .catalog()
                .routes()
                .map(|(route, amount)| pb::RoutePrice {
                    route: route.to_string(),
                    amount,
                })
                .collect(),
            network: asset.network.caip2(),
            asset: asset.address.clone(),
            pay_to: self.payments.pay_to().to_string(),
            facilitator_url: self.payments.facilitator_url().to_string(),
            asset_name: asset.name.clone(),
            asset_version: asset.version.clone(),
            max_timeout_seconds: self.payments.max_timeout_seconds(),
        }))
    }

    async fn probe_dependency(
        &self,
        request: Request<pb::ProbeDependencyRequest>,
    ) -> Result<Response<pb::ProbeDependencyResponse>, Status> {
        let name = request.into_inner().name;
        let probed = self.payments.probe_dependency(&name).await?;
        Ok(Response::new(pb::ProbeDependencyResponse {
            up: probed.is_ok(),
            error: probed.err().unwrap_or_default(),
        }))
    }
}
