//! `tessera.memory.v1.MemoryService` for the public: each message is
//! forwarded to the memory service as it is, with its `caller` set to the
//! identity the gate proved (the payer's wallet behind x402; `x-agent-id`
//! metadata in FREE_MODE). An empty `namespace` is the caller's own; another
//! namespace needs its grant, as on REST. A `caller` field the client fills
//! in must be that identity (any case of the same address).

use crate::errors::from_internal_status;
use crate::identity::{same_namespace, Gate};
use crate::memory::MemoryClient;
use crate::AppState;
use axum::extract::{Request, State};
use axum::response::Response;
use futures::stream::{BoxStream, StreamExt};
use tessera_error::{Error, ErrorKind};
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_server::{MemoryService, MemoryServiceServer};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

/// Who the gate proved the caller is, for the service below.
#[derive(Debug, Clone)]
struct Identity(String);

/// The axum handler of every public memory method: identifies the caller,
/// then lets the tonic server decode, dispatch and encode.
pub(crate) async fn serve(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let gate: &Gate = &state.gate;
    let caller = match gate.caller(&parts).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return super::status_response(&gate.unidentified()),
        Err(error) => return super::status_response(&error),
    };
    parts.extensions.insert(Identity(caller));
    let request = Request::from_parts(parts, tonic::body::Body::new(body));
    let server = MemoryServiceServer::new(PublicMemory {
        memory: state.memory.clone(),
    })
    .max_decoding_message_size(crate::extract::MAX_BODY_BYTES);
    let response = tower::ServiceExt::oneshot(server, request)
        .await
        .unwrap_or_else(|never| match never {});
    response.map(axum::body::Body::new)
}

struct PublicMemory {
    memory: MemoryClient,
}

/// A request naming the namespace it acts on and the caller acting.
trait Addressed {
    fn namespace(&mut self) -> &mut String;
    fn caller(&mut self) -> &mut String;
}

macro_rules! addressed {
    ($($message:ty),* $(,)?) => {$(
        impl Addressed for $message {
            fn namespace(&mut self) -> &mut String {
                &mut self.namespace
            }
            fn caller(&mut self) -> &mut String {
                &mut self.caller
            }
        }
    )*};
}

addressed!(
    pb::GetRequest,
    pb::SetRequest,
    pb::DeleteRequest,
    pb::ListRequest,
    pb::CompareAndSwapRequest,
    pb::IncrementRequest,
    pb::GrantRequest,
    pb::RevokeRequest,
    pb::ListGrantsRequest,
    pb::WatchRequest,
);

/// The message of `request`, addressed by its proven caller.
fn addressed<M: Addressed>(request: GrpcRequest<M>) -> Result<M, Status> {
    let Some(Identity(caller)) = request.extensions().get::<Identity>().cloned() else {
        return Err(
            Error::internal("a public memory call reached the service unidentified").to_status(),
        );
    };
    let mut message = request.into_inner();
    let named = message.caller();
    if !named.is_empty() && !same_namespace(named, &caller) {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            "CALLER_MISMATCH",
            format!("caller must be empty or your own namespace ({caller}): the payment decides who calls"),
        )
        .with_detail("caller", named.clone())
        .to_status());
    }
    if message.namespace().is_empty() {
        *message.namespace() = caller.clone();
    }
    *message.caller() = caller;
    Ok(message)
}

/// The memory service's answer, its errors as the gateway reports them (a
/// refused internal token is the gateway's fault, not the caller's).
fn answered<T>(reply: Result<GrpcResponse<T>, Status>) -> Result<GrpcResponse<T>, Status> {
    reply
        .map(|response| GrpcResponse::new(response.into_inner()))
        .map_err(|status| from_internal_status("memory", &status).to_status())
}

#[tonic::async_trait]
impl MemoryService for PublicMemory {
    type WatchStream = BoxStream<'static, Result<pb::WatchEvent, Status>>;

    async fn watch(
        &self,
        request: GrpcRequest<pb::WatchRequest>,
    ) -> Result<GrpcResponse<Self::WatchStream>, Status> {
        let message = addressed(request)?;
        let events = answered(self.memory.grpc().watch(message).await)?.into_inner();
        let events = events.map(|event| {
            event.map_err(|status| from_internal_status("memory", &status).to_status())
        });
        Ok(GrpcResponse::new(events.boxed()))
    }

    async fn get(
        &self,
        request: GrpcRequest<pb::GetRequest>,
    ) -> Result<GrpcResponse<pb::Entry>, Status> {
        let message = addressed(request)?;
        answered(self.memory.grpc().get(message).await)
    }

    async fn set(
        &self,
        request: GrpcRequest<pb::SetRequest>,
    ) -> Result<GrpcResponse<pb::Entry>, Status> {
        let message = addressed(request)?;
        answered(self.memory.grpc().set(message).await)
    }

    async fn delete(
        &self,
        request: GrpcRequest<pb::DeleteRequest>,
    ) -> Result<GrpcResponse<pb::DeleteResponse>, Status> {
        let message = addressed(request)?;
        answered(self.memory.grpc().delete(message).await)
    }

    async fn list(
        &self,
        request: GrpcRequest<pb::ListRequest>,
    ) -> Result<GrpcResponse<pb::ListResponse>, Status> {
        let message = addressed(request)?;
        answered(self.memory.grpc().list(message).await)
    }

    async fn compare_and_swap(
        &self,
        request: GrpcRequest<pb::CompareAndSwapRequest>,
    ) -> Result<GrpcResponse<pb::CompareAndSwapResponse>, Status> {
        let message = addressed(request)?;
        answered(self.memory.grpc().compare_and_swap(message).await)
    }

    async fn increment(
        &self,
        request: GrpcRequest<pb::IncrementRequest>,
    ) -> Result<GrpcResponse<pb::Entry>, Status> {
        let message = addressed(request)?;
        answered(self.memory.grpc().increment(message).await)
    }

    async fn grant(
        &self,
        request: GrpcRequest<pb::GrantRequest>,
    ) -> Result<GrpcResponse<pb::GrantEntry>, Status> {
        let message = addressed(request)?;
        answered(self.memory.grpc().grant(message).await)
    }

    async fn revoke(
        &self,
        request: GrpcRequest<pb::RevokeRequest>,
    ) -> Result<GrpcResponse<pb::RevokeResponse>, Status> {
        let message = addressed(request)?;
        answered(self.memory.grpc().revoke(message).await)
    }

    async fn list_grants(
        &self,
        request: GrpcRequest<pb::ListGrantsRequest>,
    ) -> Result<GrpcResponse<pb::ListGrantsResponse>, Status> {
        let message = addressed(request)?;
        answered(self.memory.grpc().list_grants(message).await)
    }
}
