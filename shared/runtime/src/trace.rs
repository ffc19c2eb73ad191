//! One trace across processes: W3C `traceparent` / `tracestate` read from
//! the calls a server receives and written into the calls it makes, and the
//! span shapes of the OpenTelemetry semantic conventions for RPC and HTTP.
//!
//! Nothing here costs anything while tracing is off (see
//! [`crate::telemetry`]): no context is read or written and client calls get
//! no span of their own.
//!
//! Where a trace may start: a hop between Tessera's own services always
//! continues the caller's trace. A public face ([`Edge::Public`]) starts
//! its own trace and only links the client's context, so a client cannot
//! choose which of its calls are sampled or join our spans to its trace,
//! unless `TRACE_TRUST_CLIENT_CONTEXT=true`.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Set to `true` to let a public face continue the trace a client sends.
pub const TRUST_CLIENT_CONTEXT_ENV: &str = "TRACE_TRUST_CLIENT_CONTEXT";

static ENABLED: AtomicBool = AtomicBool::new(false);
static TRUST_CLIENT_CONTEXT: AtomicBool = AtomicBool::new(false);

/// Called once the OpenTelemetry layer is installed.
pub(crate) fn enable(trust_client_context: bool) {
    TRUST_CLIENT_CONTEXT.store(trust_client_context, Ordering::Relaxed);
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether spans go to OpenTelemetry (and contexts travel between
/// processes).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Where a server's calls come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// Tessera's own services: their trace is continued.
    Internal,
    /// Anyone: a new trace, linked to the client's (see the module doc).
    Public,
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` continue the trace `headers` carry (or, from a public
/// edge, link to it), if they carry a valid one.
pub fn continue_from(span: &tracing::Span, headers: &http::HeaderMap, edge: Edge) {
    if !enabled() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    let remote = parent.span().span_context().clone();
    if !remote.is_valid() {
        return;
    }
    if edge == Edge::Internal || TRUST_CLIENT_CONTEXT.load(Ordering::Relaxed) {
        let _ = span.set_parent(parent);
    } else {
        span.add_link(remote);
    }
}

/// Writes the trace context of `span` into `headers` (outgoing call).
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    if !enabled() {
        return;
    }
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers))
    });
}

/// The ids of the trace and span being recorded now, in hex, if any.
pub fn current_ids() -> Option<(String, String)> {
    let context = opentelemetry::Context::current();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

/// Whether a gRPC status is the server's fault (logged at ERROR, the span
/// marked as an error), as opposed to an answer about the request
/// (`NotFound`, `FailedPrecondition`, `InvalidArgument`, ...).
pub fn server_fault(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unknown
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
            | tonic::Code::DeadlineExceeded
    )
}

/// The span of a gRPC call this process makes, a child of the current span,
/// per the RPC conventions: named `package.Service/Method`, kind client,
/// `rpc.system`, `rpc.service`, `rpc.method`, and later
/// `rpc.grpc.status_code`.
pub fn grpc_client_span(path: &str) -> tracing::Span {
    let name = path.strip_prefix('/').unwrap_or(path);
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    tracing::info_span!(
        "grpc_client",
        otel.name = name,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
    )
}

/// Records a finished gRPC call's status on its span (client or server).
pub fn record_grpc_status(span: &tracing::Span, code: tonic::Code) {
    span.record("rpc.grpc.status_code", code as i32);
    if server_fault(code) {
        span.record("otel.status_code", "ERROR");
    }
}

/// A tower layer for gRPC clients: each call gets a client span and carries
/// its context (`traceparent`) to the server. Does nothing while tracing is
/// off.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcClientLayer;

impl<S> tower::Layer<S> for GrpcClientLayer {
    type Service = GrpcClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcClient { inner }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcClient<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcClient<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if !enabled() {
            return Box::pin(self.inner.call(request));
        }
        let span = grpc_client_span(request.uri().path());
        inject(&span, request.headers_mut());
        let called = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let recorded = span.clone();
        Box::pin(
            async move {
                let response = called.await;
                match &response {
                    // A failure in the headers (trailers-only); a status in the
                    // trailers arrives after this span ends and counts as OK.
                    Ok(response) => {
                        let code = response
                            .headers()
                            .get("grpc-status")
                            .map_or(tonic::Code::Ok, |value| {
                                tonic::Code::from_bytes(value.as_bytes())
                            });
                        record_grpc_status(&recorded, code);
                    }
                    Err(_) => record_grpc_status(&recorded, tonic::Code::Unavailable),
                }
                response
            }
            .instrument(span),
        )
    }
}
