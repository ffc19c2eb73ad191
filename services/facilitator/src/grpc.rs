//! `tessera.facilitator.v1.FacilitatorService`: the HTTP API's documents
//! over gRPC, answered by the same [`Facilitator`]. With API keys configured,
//! `Verify` and `Settle` need metadata `authorization: Bearer <one of the
//! keys>` (`UNAUTHENTICATED` otherwise), as the HTTP API does; `Supported`
//! stays open.

use crate::config::ApiKeys;
use crate::{Facilitator, Urgency, URGENCY_HEADER};
use pb::facilitator_service_server::{FacilitatorService, FacilitatorServiceServer};
use std::sync::Arc;
use tessera_proto::facilitator::v1 as pb;
use tessera_x402::facilitator::{FacilitatorRequest, SettleResponse, VerifyResponse};
use tonic::{Request, Response, Status};

pub const SERVICE_NAME: &str = pb::facilitator_service_server::SERVICE_NAME;

/// The gRPC adapter.
#[derive(Debug, Clone)]
pub struct FacilitatorGrpc {
    facilitator: Arc<Facilitator>,
    api_keys: ApiKeys,
}

/// The tonic server, ready for `GrpcServer::new`/`add`: `Verify` and
/// `Settle` require one of `api_keys` when any is set.
pub fn server(
    facilitator: Arc<Facilitator>,
    api_keys: ApiKeys,
) -> FacilitatorServiceServer<FacilitatorGrpc> {
    FacilitatorServiceServer::new(FacilitatorGrpc {
        facilitator,
        api_keys,
    })
}

impl FacilitatorGrpc {
    fn require_key<T>(&self, call: &Request<T>) -> Result<(), Status> {
        let authorization = call.metadata().get("authorization");
        if self
            .api_keys
            .admits(authorization.map(|value| value.as_bytes()))
        {
            return Ok(());
        }
        Err(Status::unauthenticated(if authorization.is_some() {
            "the API key is not one this facilitator accepts"
        } else {
            "this facilitator requires `authorization: Bearer <API key>`"
        }))
    }
}

fn request(
    x402_version: u32,
    payload: &str,
    requirements: &str,
) -> Result<FacilitatorRequest, Status> {
    let json = |field: &str, text: &str| {
        serde_json::from_str(text)
            .map_err(|e| Status::invalid_argument(format!("{field} is not JSON: {e}")))
    };
    Ok(FacilitatorRequest {
        x402_version,
        payment_payload: json("payment_payload_json", payload)?,
        payment_requirements: json("payment_requirements_json", requirements)?,
    })
}

pub fn verify_to_pb(response: VerifyResponse) -> pb::VerifyResponse {
    pb::VerifyResponse {
        is_valid: response.is_valid,
        invalid_reason: response.invalid_reason.unwrap_or_default(),
        payer: response.payer.unwrap_or_default(),
        invalid_message: response.invalid_message.unwrap_or_default(),
    }
}

pub fn settle_to_pb(response: SettleResponse) -> pb::SettleResponse {
    pb::SettleResponse {
        success: response.success,
        error_reason: response.error_reason.unwrap_or_default(),
        payer: response.payer.unwrap_or_default(),
        transaction: response.transaction,
        network: response.network,
        error_message: response.error_message.unwrap_or_default(),
        amount: response.amount.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl FacilitatorService for FacilitatorGrpc {
    async fn verify(
        &self,
        call: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        self.require_key(&call)?;
        let call = call.into_inner();
        let request = request(
            call.x402_version,
            &call.payment_payload_json,
            &call.payment_requirements_json,
        )?;
        Ok(Response::new(verify_to_pb(
            self.facilitator.verify(&request).await,
        )))
    }

    async fn settle(
        &self,
        call: Request<pb::SettleRequest>,
    ) -> Result<Response<pb::SettleResponse>, Status> {
        self.require_key(&call)?;
        let urgency = Urgency::from_header(
            call.metadata()
                .get(URGENCY_HEADER)
                .map(|value| value.as_bytes()),
        );
        let call = call.into_inner();
        let request = request(
            call.x402_version,
            &call.payment_payload_json,
            &call.payment_requirements_json,
        )?;
        Ok(Response::new(settle_to_pb(
            self.facilitator.settle_with(&request, urgency).await,
        )))
    }

    async fn supported(
        &self,
        _call: Request<pb::SupportedRequest>,
    ) -> Result<Response<pb::SupportedResponse>, Status> {
        let supported = self.facilitator.supported();
        Ok(Response::new(pb::SupportedResponse {
            kinds: supported
                .kinds
                .into_iter()
                .map(|kind| pb::SupportedKind {
                    x402_version: kind.x402_version,
                    scheme: kind.scheme,
                    network: kind.network,
                    extra_json: kind.extra.map(|e| e.to_string()).unwrap_or_default(),
                })
                .collect(),
            extensions: supported.extensions,
            signers: supported
                .signers
                .into_iter()
                .map(|(family, addresses)| (family, pb::SignerAddresses { addresses }))
                .collect(),
        }))
    }
}
