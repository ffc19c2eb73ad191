//! How the gateway's gRPC clients reach their services: a network channel
//! made on first use, or (in the all-in-one) the service itself, called in
//! the same process with no socket in between. Requests are encoded and
//! decoded alike either way, and each call carries its trace context
//! ([`GrpcClientLayer`]).

use std::time::Duration;
use tessera_runtime::trace::GrpcClientLayer;
use tonic::transport::Endpoint;
use tower::util::BoxCloneSyncService;
use tower::{Layer as _, ServiceExt};

pub type Transport = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    tonic::transport::Error,
>;

/// A gRPC server of this process (a tonic `...Server<_>`), as a transport.
pub trait LocalService:
    tower::Service<
        http::Request<tonic::body::Body>,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> LocalService for S where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// A channel to `url`, connected on first use (so the gateway starts while
/// the service is still down), each call bounded by `call_timeout`.
pub fn lazy(
    url: &str,
    connect_timeout: Duration,
    call_timeout: Duration,
) -> anyhow::Result<Transport> {
    let endpoint = Endpoint::from_shared(url.to_string())?
        .connect_timeout(connect_timeout)
        .timeout(call_timeout);
    Ok(BoxCloneSyncService::new(
        GrpcClientLayer.layer(endpoint.connect_lazy()),
    ))
}

/// `service` called in process.
pub fn in_process(service: impl LocalService) -> Transport {
    BoxCloneSyncService::new(GrpcClientLayer.layer(service.map_err(|never| match never {})))
}

/// A unary reply's message, or the service's error.
pub fn answer<T>(
    reply: Result<tonic::Response<T>, tonic::Status>,
) -> Result<T, tessera_error::Error> {
    Ok(reply
        .map_err(|status| tessera_error::Error::from_status(&status))?
        .into_inner())
}
