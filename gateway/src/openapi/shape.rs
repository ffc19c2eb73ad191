//! What one paid operation takes and answers ([`Shape`]), and the refusals
//! every paid call shares, as component responses: what the memory and
//! tool operations are built from, and what the free routes refer to.

use super::schemas::error_response;
use crate::errors::Family;
use utoipa::openapi::path::Parameter;
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::{Ref, RefOr, Response};

/// The refusals any paid call may get, by status: component responses,
/// one per error body (the per-agent face's are named `agents.*`).
pub(super) const SHARED_ERRORS: &[(&str, &str, &str)] = &[
    ("409", "IdempotencyKeyInFlight", "A call with this Idempotency-Key is still running; retry to get its answer"),
    ("413", "BodyTooLarge", "The body (or a value) is too large"),
    ("422", "IdempotencyKeyReused", "This Idempotency-Key was used for another request (other query or body)"),
    ("429", "RateLimited", "Too many requests: retry after `Retry-After` seconds"),
    ("431", "PaymentHeaderTooLarge", "The payment header is too large"),
    ("503", "Unavailable", "The gateway is at its concurrency limit, or a service it calls is unavailable; retry shortly"),
    ("504", "DeadlineExceeded", "The call did not finish within the gateway's deadline (not charged)"),
    ("default", "OtherError", "Another error (500 internal, 502 bad gateway)"),
];

fn shared_error_name(family: Family, name: &str) -> String {
    match family {
        Family::Agents => format!("agents.{name}"),
        Family::Agent402 | Family::TwoS | Family::Grpc => name.to_string(),
    }
}

/// A reference to the shared refusal `name` in `family`'s body.
pub(super) fn shared_error(family: Family, name: &str) -> RefOr<Response> {
    RefOr::Ref(Ref::from_response_name(shared_error_name(family, name)))
}

/// The shared refusals, as component responses.
pub(super) fn shared_errors() -> Vec<(String, Response)> {
    [Family::Agent402, Family::Agents]
        .into_iter()
        .flat_map(|family| {
            SHARED_ERRORS
                .iter()
                .map(move |(status, name, description)| {
                    let status = status.parse().unwrap_or(500);
                    (
                        shared_error_name(family, name),
                        error_response(family, status, description),
                    )
                })
        })
        .collect()
}

/// What one paid operation takes and answers, besides what every paid call
/// shares.
pub(super) struct Shape {
    pub(super) tag: &'static str,
    pub(super) summary: String,
    pub(super) description: Option<String>,
    /// Query, path and header parameters.
    pub(super) parameters: Vec<Parameter>,
    pub(super) body: Option<RequestBody>,
    /// The success status and answer.
    pub(super) ok: (&'static str, Response),
    /// Error statuses particular to the operation, with what they mean.
    pub(super) errors: Vec<(u16, &'static str)>,
    /// Other successful answers (a long poll's 204).
    pub(super) extra: Vec<(&'static str, Response)>,
}
