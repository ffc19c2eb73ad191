//! Cross-origin calls from browsers (REST and grpc-web): which origins, and
//! which request and response headers a page may use. The x402 headers must
//! be both sent and read by a page that pays; no credentials (cookies) are
//! ever allowed, since a payment is the only authentication.

use crate::config::Cors;
use axum::http::header::ACCESS_CONTROL_REQUEST_METHOD;
use axum::http::{HeaderName, Method, Request};
use futures::future::Either;
use std::task::{Context, Poll};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Headers a page may send.
const REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "payment-signature",
    "x-payment",
    "x-agent-id",
    "idempotency-key",
    "if-match",
    "x-pow-solution",
    // grpc-web
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "connect-protocol-version",
    "connect-timeout-ms",
    // MCP over Streamable HTTP
    "mcp-protocol-version",
    "mcp-session-id",
    "last-event-id",
];

/// Headers a page may read.
const RESPONSE_HEADERS: &[&str] = &[
    "payment-required",
    "payment-response",
    "x-payment-response",
    "etag",
    "retry-after",
    "x-watch-cursor",
    "x-idempotent-replay",
    "ratelimit",
    "ratelimit-policy",
    // grpc-web (trailers-only answers carry the status as headers)
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
];

fn names(names: &[&'static str]) -> Vec<HeaderName> {
    names
        .iter()
        .map(|name| HeaderName::from_static(name))
        .collect()
}

/// The CORS layer for `cors`; `None` when CORS is off. Only a real
/// preflight (OPTIONS naming `Access-Control-Request-Method`) is answered by
/// it; any other OPTIONS reaches the routes (405, like every method a path
/// does not serve).
pub(crate) fn layer(cors: &Cors) -> Option<PreflightOnly> {
    cors_layer(cors).map(|cors| PreflightOnly { cors })
}

fn cors_layer(cors: &Cors) -> Option<CorsLayer> {
    let origin = match cors {
        Cors::Off => return None,
        Cors::AnyOrigin => AllowOrigin::any(),
        Cors::Origins(origins) => AllowOrigin::list(origins.iter().cloned()),
    };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers(names(REQUEST_HEADERS))
            .expose_headers(names(RESPONSE_HEADERS))
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[derive(Clone)]
pub(crate) struct PreflightOnly {
    cors: CorsLayer,
}

impl<S: Clone> Layer<S> for PreflightOnly {
    type Service = Steer<S>;

    fn layer(&self, inner: S) -> Steer<S> {
        Steer {
            cors: self.cors.layer(inner.clone()),
            plain: inner,
        }
    }
}

/// Sends OPTIONS without `Access-Control-Request-Method` past CORS.
#[derive(Clone)]
pub(crate) struct Steer<S> {
    cors: tower_http::cors::Cors<S>,
    plain: S,
}

impl<S, B, R> Service<Request<B>> for Steer<S>
where
    S: Service<Request<B>, Response = axum::http::Response<R>> + Clone,
    R: Default,
{
    type Response = axum::http::Response<R>;
    type Error = S::Error;
    type Future = Either<<tower_http::cors::Cors<S> as Service<Request<B>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        std::task::ready!(self.cors.poll_ready(cx))?;
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let plain_options = request.method() == Method::OPTIONS
            && !request
                .headers()
                .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        if plain_options {
            Either::Right(self.plain.call(request))
        } else {
            Either::Left(self.cors.call(request))
        }
    }
}
