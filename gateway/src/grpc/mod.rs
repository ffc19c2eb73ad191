//! The public gRPC API on the gateway's port: `tessera.memory.v1.MemoryService`
//! for agent fleets, paid with x402 exactly as REST is, beside gRPC health
//! and reflection (both versions). A gRPC call is an HTTP/2
//! `POST /<service>/<method>`, so each paid method is a catalog route of the
//! [`Face::Grpc`](tessera_catalog::Face::Grpc) face and passes the same gate
//! as every REST route (quote, verify, serve, settle or cancel, rate limits,
//! deadline, call events). What differs is only the envelope:
//!
//! - the payment travels in request metadata `payment-signature` (the same
//!   base64 v2 payload as the HTTP header; `x-payment` for v1);
//! - a refusal is a gRPC status (trailers-only) carrying a
//!   `google.rpc.ErrorInfo`: unpaid, its reason is `PAYMENT_REQUIRED` and its
//!   metadata carries `payment-required` (the base64 quote of HTTP's header);
//! - a served call's `payment-response` comes in its trailing metadata;
//! - grpc-web (HTTP/1.1, browsers) is translated to gRPC before the gate, so
//!   a browser pays the same way.

pub(crate) mod memory;
pub(crate) mod server;
mod trailers;
pub(crate) mod web;

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tessera_error::{Error, ErrorKind};

pub(crate) use trailers::add_trailer;

/// The gRPC status response of `error` (trailers-only: HTTP 200 with
/// `grpc-status` in the headers) with its `ErrorInfo`.
pub(crate) fn status_response(error: &Error) -> Response {
    let response: Response = error.to_status().into_http();
    response
}

/// A trailers-only refusal of an unpaid call, or of a payment (`refused`,
/// whose reason and message it carries): `ErrorInfo` reason
/// `PAYMENT_REQUIRED` and the quote in metadata `payment-required`.
pub(crate) fn payment_required(header: &str, refused: Option<&Error>) -> Response {
    let mut error = Error::new(
        ErrorKind::PaymentRequired,
        "PAYMENT_REQUIRED",
        "this method is paid with x402: sign the quote in the payment-required metadata and call again with payment-signature",
    );
    if let Some(refused) = refused {
        error.message = format!("payment refused: {}", refused.message);
        error = error.with_detail("x402Reason", refused.reason.clone());
    }
    let mut response = status_response(&error);
    if let Ok(value) = HeaderValue::from_str(header) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("payment-required"), value);
    }
    response
}

/// The status a response ends with when it is known from its headers: a
/// trailers-only status, or an HTTP failure (`None`: the status follows in
/// the trailers, which a unary handler sends only after success).
fn early_status(response: &Response) -> Option<tonic::Status> {
    if response.status() != axum::http::StatusCode::OK {
        return Some(tonic::Status::unavailable(format!(
            "HTTP {}",
            response.status().as_u16()
        )));
    }
    response.headers().get("grpc-status")?;
    // A grpc-status that does not parse is Unknown: a failure.
    Some(
        tonic::Status::from_header_map(response.headers())
            .unwrap_or_else(|| tonic::Status::unknown("unreadable grpc-status")),
    )
}

/// Whether a gRPC call failed (so is cancelled, not charged).
pub(crate) fn failed(response: &Response) -> bool {
    early_status(response).is_some_and(|status| status.code() != tonic::Code::Ok)
}

/// The HTTP status a gRPC response counts as in call events: its error's
/// (the ErrorInfo's kind, else the code's) in the shared table, 200 when it
/// succeeded.
pub(crate) fn http_equivalent(response: &Response) -> u16 {
    match early_status(response) {
        Some(status) if status.code() != tonic::Code::Ok => {
            Error::from_status(&status).http_status()
        }
        _ => 200,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_trailers_only_with_its_error_info() {
        let response = payment_required("eyJ4NDAyVmVyc2lvbiI6Mn0=", None);
        assert_eq!(response.status(), 200);
        assert!(failed(&response));
        let headers = response.headers();
        assert_eq!(headers["payment-required"], "eyJ4NDAyVmVyc2lvbiI6Mn0=");
        assert_eq!(headers["content-type"], "application/grpc");
        let status = tonic::Status::from_header_map(headers).expect("a status");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let error = Error::from_status(&status);
        assert_eq!(error.reason, "PAYMENT_REQUIRED");
        assert_eq!(error.kind, ErrorKind::PaymentRequired);
        assert_eq!(http_equivalent(&response), 402);
    }

    #[test]
    fn a_refused_payment_keeps_its_reason() {
        let refused = Error::new(
            ErrorKind::PaymentRequired,
            "insufficient_funds",
            "the payer cannot pay",
        );
        let response = payment_required("eyJ4NDAyVmVyc2lvbiI6Mn0=", Some(&refused));
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        let error = Error::from_status(&status);
        assert_eq!(error.reason, "PAYMENT_REQUIRED");
        assert_eq!(error.details["x402Reason"], "insufficient_funds");
        assert!(
            error.message.contains("the payer cannot pay"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_response_without_an_early_status_succeeded() {
        let response = Response::new(axum::body::Body::empty());
        assert!(!failed(&response));
        assert_eq!(http_equivalent(&response), 200);
        let mut refused = Response::new(axum::body::Body::empty());
        *refused.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
        assert!(failed(&refused));
        let not_found = status_response(&Error::not_found("no such key"));
        assert_eq!(http_equivalent(&not_found), 404);
    }
}
