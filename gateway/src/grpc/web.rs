//! grpc-web (browsers, HTTP/1.1) translated to native gRPC before anything
//! else sees the request, and back on the way out (trailers into the body).
//! Only grpc-web requests go through the translation: tonic-web refuses any
//! other HTTP/1.1 request, and REST must not be touched.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::Version;
use axum::middleware::Next;
use axum::response::Response;
use tessera_error::Error;
use tower::{Layer, ServiceBuilder, ServiceExt};

fn content_type(request: &Request) -> &str {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// Middleware: a grpc-web request runs the rest of the stack as gRPC. Native
/// gRPC over HTTP/1.1 is refused before anything runs: its trailers (the
/// status, `payment-response`) cannot be delivered there, so a paid call
/// would be charged and look failed.
pub(crate) async fn translate(request: Request, next: Next) -> Response {
    let kind = content_type(&request);
    if !kind.starts_with("application/grpc-web") {
        if kind.starts_with("application/grpc") && request.version() < Version::HTTP_2 {
            return super::status_response(&Error::invalid(
                "GRPC_NEEDS_HTTP2",
                "gRPC needs HTTP/2 (h2c on this port); from a browser, use grpc-web",
            ));
        }
        return next.run(request).await;
    }
    let native = ServiceBuilder::new()
        .map_request(|request: http::Request<tonic::body::Body>| request.map(Body::new))
        .service(next);
    let web = tonic_web::GrpcWebLayer::new().layer(native);
    match web.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}
