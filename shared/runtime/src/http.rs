//! What every Tessera HTTP face shares: a span, a log line and the request
//! metrics per call, and JSON answers for unknown routes and methods.

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use std::time::Instant;
use tracing::Instrument;

pub use crate::trace::Edge;

/// Wraps `router` so each request gets a server span (continuing or linking
/// the caller's trace as `edge` says, see [`crate::trace`]) and a log line
/// (ERROR for a 5xx only: a 404, 409 or 412 is an answer, not a fault) and
/// is counted in `tessera_requests_total` / `tessera_request_duration_seconds`
/// under `service`, by route pattern (`unmatched` for the fallback, so raw
/// paths cannot grow the number of series).
pub fn traced(router: Router, service: &'static str, edge: Edge) -> Router {
    router.layer(from_fn_with_state((service, edge), trace_request))
}

async fn trace_request(
    State((service, edge)): State<(&'static str, Edge)>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route_label = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = if !crate::trace::enabled() {
        // Only what log lines need while nothing is traced: each field
        // costs on every request.
        tracing::info_span!("http", method = %request.method(), url.path = %request.uri().path())
    } else {
        tracing::info_span!(
            "http",
            otel.name = %format_args!("{} {route_label}", request.method()),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %request.method(),
            http.route = route_label,
            url.path = %request.uri().path(),
            http.response.status_code = tracing::field::Empty,
        )
    };
    crate::trace::continue_from(&span, request.headers(), edge);
    async move {
        let started = Instant::now();
        let response = next.run(request).await;
        let elapsed = started.elapsed();
        let status = response.status();
        crate::metrics::record_request(
            service,
            route_label,
            grpc_failure(&response).unwrap_or(status.as_str()),
            elapsed,
        );
        let span = tracing::Span::current();
        span.record("http.response.status_code", status.as_u16());
        let elapsed_ms = elapsed.as_millis() as u64;
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
            tracing::error!(status = status.as_u16(), elapsed_ms, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), elapsed_ms, "request");
        }
        response
    }
    .instrument(span)
    .await
}

/// The `status` label of a gRPC call that failed in its headers
/// (trailers-only): its code's name, as the gRPC servers label it. A gRPC
/// success sends its status in the trailers, after this: it counts as its
/// HTTP 200.
fn grpc_failure(response: &Response) -> Option<&'static str> {
    let code = response
        .headers()
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(crate::grpc::code_name(tonic::Code::from_i32(code)))
}

/// `404 {"error": "not found"}`.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "not found" })),
    )
        .into_response()
}

/// `405 {"error": "method not allowed"}`.
pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(serde_json::json!({ "error": "method not allowed" })),
    )
        .into_response()
}

/// Serves `router` on `listener` until `shutdown` fires, then lets in-flight
/// requests finish. `name` labels the log lines.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: crate::Shutdown,
    name: &'static str,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "{name} HTTP listening");
    // Small JSON replies must not wait on Nagle's algorithm.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // The peer address reaches handlers (`ConnectInfo`), e.g. for per-IP
    // rate limits.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await?;
    tracing::info!(%addr, "{name} HTTP stopped");
    Ok(())
}
