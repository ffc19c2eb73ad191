//! Serves a set of tonic services with what every Tessera server carries:
//! gRPC health (one entry per service, plus the overall ""), reflection over
//! all Tessera protos, grpc-web, a server span per call that continues the
//! caller's trace (see [`crate::trace`]), request metrics
//! (`tessera_requests_total`, `tessera_request_duration_seconds`, see
//! [`crate::metrics`]), an ERROR log line for a call that failed on the
//! server's side (never for an answer such as `NotFound`), the internal
//! service token when required (see [`crate::grpc_auth`]) and a graceful
//! stop.

use crate::grpc_auth::{RequireTokenLayer, ServiceToken};
use crate::Shutdown;
use prost::Message as _;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::Code;
use tonic_health::ServingStatus;
use tracing::Instrument as _;

pub struct GrpcServer {
    routes: Routes,
    service_names: Vec<&'static str>,
    token: ServiceToken,
}

impl GrpcServer {
    /// `service_name` is the fully qualified proto name, e.g.
    /// `tessera.memory.v1.MemoryService` (use `NamedService::NAME`).
    pub fn new<S>(service_name: &'static str, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        GrpcServer {
            routes: Routes::new(service),
            service_names: vec![service_name],
            token: ServiceToken::none(),
        }
    }

    pub fn add<S>(mut self, service_name: &'static str, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes = self.routes.add_service(service);
        self.service_names.push(service_name);
        self
    }

    /// Requires `token` (`authorization: Bearer <token>`) on every call but
    /// the health service's; a call without it is `UNAUTHENTICATED`, reason
    /// `INTERNAL_TOKEN_REQUIRED`. [`ServiceToken::none`] (the default)
    /// requires nothing. Usually `require_token(ServiceToken::from_env()?)`.
    pub fn require_token(mut self, token: ServiceToken) -> Self {
        self.token = token;
        self
    }

    /// Serves on `listener` until `shutdown` fires, then drains and returns.
    pub async fn serve(self, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
        let addr: SocketAddr = listener.local_addr()?;
        let (reporter, health_service) = tonic_health::server::health_reporter();
        for name in &self.service_names {
            reporter
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;

        // Reflection in both versions: grpcurl and the newer clients speak
        // v1; Python's grpcio-reflection, older grpcurl and several GUI
        // clients only v1alpha. Each lists what this server serves (not
        // every service in the protos) and resolves both versions.
        let served: Vec<&'static str> = self
            .service_names
            .iter()
            .copied()
            .chain([
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ])
            .collect();
        let routes = self
            .routes
            .add_service(health_service)
            .add_service(reflection(tessera_proto::FILE_DESCRIPTOR_SET, &served).build_v1()?)
            .add_service(reflection(tessera_proto::FILE_DESCRIPTOR_SET, &served).build_v1alpha()?);
        tracing::info!(
            %addr,
            services = ?self.service_names,
            token_required = self.token.is_set(),
            "gRPC listening"
        );

        let drain = {
            let shutdown = shutdown.clone();
            let names = self.service_names.clone();
            async move {
                shutdown.wait().await;
                for name in names {
                    reporter
                        .set_service_status(name, ServingStatus::NotServing)
                        .await;
                }
                reporter
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
            }
        };

        // Small unary replies must not wait on Nagle's algorithm.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .accept_http1(true)
            .layer(tonic_web::GrpcWebLayer::new())
            // Inside grpc-web, so it sees native gRPC (grpc-status in the
            // headers or the trailers, never in a grpc-web body).
            .layer(CallLayer)
            // Inside metrics, so refused calls are counted (Unauthenticated).
            .layer(RequireTokenLayer::new(self.token.clone()))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, drain)
            .await?;
        tracing::info!(%addr, "gRPC server stopped");
        Ok(())
    }
}

/// A reflection service (build it as v1 or v1alpha) over `descriptors` (an
/// encoded FileDescriptorSet), health's and reflection's own protos,
/// listing only `served` (the services a server answers, reflection and
/// health included).
pub fn reflection(
    descriptors: &'static [u8],
    served: &[&'static str],
) -> tonic_reflection::server::Builder<'static> {
    served.iter().fold(
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(descriptors)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            ),
        |builder, name| builder.with_service_name(*name),
    )
}

/// Labels for a gRPC path: `/tessera.memory.v1.MemoryService/Get` →
/// (`memory`, `Get`); any other package (health, reflection) → (`grpc`,
/// method). `None` for what is not a gRPC path.
pub(crate) fn grpc_labels(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if method.is_empty() || method.contains('/') {
        return None;
    }
    let mut parts = service.split('.');
    let first = parts.next()?;
    let second = parts.next()?;
    // At least `package.Service`; empty segments are not proto names.
    if first.is_empty() || second.is_empty() || service.split('.').any(str::is_empty) {
        return None;
    }
    let short = if first == "tessera" && parts.next().is_some() {
        second
    } else {
        "grpc"
    };
    Some((short, method))
}

struct Labels {
    service: String,
    route: String,
    /// `package.Service/Method`: the span's name.
    full_method: String,
}

impl Labels {
    /// The server span of one call, per the RPC semantic conventions while
    /// tracing is on; else only the method, for log lines (each field costs
    /// on every call).
    fn span(&self) -> tracing::Span {
        if !crate::trace::enabled() {
            return tracing::info_span!("grpc", method = self.full_method.as_str());
        }
        let (rpc_service, rpc_method) = self
            .full_method
            .split_once('/')
            .unwrap_or((&self.full_method, ""));
        tracing::info_span!(
            "grpc",
            otel.name = self.full_method.as_str(),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = rpc_service,
            rpc.method = rpc_method,
            rpc.grpc.status_code = tracing::field::Empty,
        )
    }
}

/// Labels of every method in the protos a Tessera server can serve. A path
/// outside them gets `route="unmatched"`, so junk paths cannot grow the
/// number of series.
static METHOD_LABELS: LazyLock<HashMap<String, Arc<Labels>>> = LazyLock::new(|| {
    let sets = [
        tessera_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut table = HashMap::new();
    for set in sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
            tracing::error!("undecodable descriptor set; its methods count as unmatched");
            continue;
        };
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    if let Some((service, route)) = grpc_labels(&path) {
                        let labels = Labels {
                            service: service.to_string(),
                            route: route.to_string(),
                            full_method: path[1..].to_string(),
                        };
                        table.insert(path, Arc::new(labels));
                    }
                }
            }
        }
    }
    table
});

static UNMATCHED: LazyLock<Arc<Labels>> = LazyLock::new(|| {
    Arc::new(Labels {
        service: "grpc".to_string(),
        route: "unmatched".to_string(),
        full_method: "unmatched".to_string(),
    })
});

/// The gRPC code's name as the `status` label.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// Observes every call: a server span (a child of the caller's, when it
/// sent one) that lasts until the response ends, the request metrics, and
/// an ERROR line for a server-side failure. The status comes from
/// `grpc-status` in the response headers (trailers-only responses, e.g.
/// every tonic unary error) or in the trailers.
#[derive(Clone, Copy)]
struct CallLayer;

impl<S> tower::Layer<S> for CallLayer {
    type Service = CallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallService { inner }
    }
}

#[derive(Clone)]
struct CallService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for CallService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<CallBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let labels = METHOD_LABELS
            .get(request.uri().path())
            .unwrap_or(&UNMATCHED)
            .clone();
        let span = labels.span();
        crate::trace::continue_from(&span, request.headers(), crate::trace::Edge::Internal);
        let started = Instant::now();
        let response = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let call_span = span.clone();
        Box::pin(
            async move {
                match response.await {
                    Ok(response) => {
                        let call = Call {
                            labels,
                            started,
                            status: grpc_status(response.headers()),
                            span: call_span,
                        };
                        Ok(response.map(|inner| CallBody {
                            inner,
                            call: Some(call),
                        }))
                    }
                    Err(error) => {
                        Call {
                            labels,
                            started,
                            status: None,
                            span: call_span,
                        }
                        .finish(Code::Unknown);
                        Err(error)
                    }
                }
            }
            .instrument(span),
        )
    }
}

struct Call {
    labels: Arc<Labels>,
    started: Instant,
    status: Option<Code>,
    /// Kept open until the response ends (a stream's whole life).
    span: tracing::Span,
}

impl Call {
    /// `otherwise` is the status when none was sent.
    fn finish(self, otherwise: Code) {
        let code = self.status.unwrap_or(otherwise);
        let elapsed = self.started.elapsed();
        crate::metrics::record_request(
            &self.labels.service,
            &self.labels.route,
            code_name(code),
            elapsed,
        );
        crate::trace::record_grpc_status(&self.span, code);
        if crate::trace::server_fault(code) {
            let _entered = self.span.enter();
            tracing::error!(
                method = %self.labels.full_method,
                code = code_name(code),
                elapsed_ms = elapsed.as_millis() as u64,
                "call failed"
            );
        }
    }
}

/// A response body that records its call once it ends, or once it is
/// dropped unfinished (the client went away: `Cancelled` unless a status
/// was already sent).
struct CallBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B> http_body::Body for CallBody<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(call)) = (frame.trailers_ref(), &mut this.call) {
                    call.status = grpc_status(trailers).or(call.status);
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    call.finish(Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for CallBody<B> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish(Code::Cancelled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_paths_become_service_and_route() {
        assert_eq!(
            grpc_labels("/tessera.memory.v1.MemoryService/Get"),
            Some(("memory", "Get"))
        );
        assert_eq!(
            grpc_labels("/tessera.pow.v1.PowService/IssueChallenge"),
            Some(("pow", "IssueChallenge"))
        );
        assert_eq!(
            grpc_labels("/grpc.health.v1.Health/Check"),
            Some(("grpc", "Check"))
        );
        assert_eq!(
            grpc_labels("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Some(("grpc", "ServerReflectionInfo"))
        );
        // `tessera.Service` has no short name of its own.
        assert_eq!(grpc_labels("/tessera.Thing/Do"), Some(("grpc", "Do")));
        for junk in [
            "",
            "/",
            "/metrics",
            "/a/",
            "//Get",
            "/Service/Get",
            "/a..b/Get",
            "/a.b/c/d",
        ] {
            assert_eq!(grpc_labels(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn known_methods_are_labelled_and_the_rest_unmatched() {
        let get = &METHOD_LABELS["/tessera.memory.v1.MemoryService/Get"];
        assert_eq!(
            (get.service.as_str(), get.route.as_str()),
            ("memory", "Get")
        );
        let check = &METHOD_LABELS["/grpc.health.v1.Health/Check"];
        assert_eq!(
            (check.service.as_str(), check.route.as_str()),
            ("grpc", "Check")
        );
        assert!(
            METHOD_LABELS.contains_key("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
        );
        assert!(!METHOD_LABELS.contains_key("/tessera.memory.v1.MemoryService/Nope"));
    }

    #[test]
    fn status_labels_are_code_names() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::NotFound), "NotFound");
        assert_eq!(code_name(Code::from_bytes(b"12")), "Unimplemented");
    }
}
