//! Error bodies. Handlers fail with one internal [`Error`]; the route family a
//! request came through renders it in the body of the API that family mirrors.
//! The status always comes from [`Error::http_status`], the one shared table.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tessera_error::{Error, ErrorKind};

/// The REST faces, each with its own error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// agent402.tools: `{"error": "<message>"}`.
    Agent402,
    /// 2s.io: `{"error": "<message>"}`.
    TwoS,
    /// `/agents/{id}/memory`: `{"error": {"category", "message", "details"?}}`.
    Agents,
    /// The public gRPC API: a gRPC status with a `google.rpc.ErrorInfo`, no
    /// JSON body.
    Grpc,
}

impl From<tessera_catalog::Face> for Family {
    fn from(face: tessera_catalog::Face) -> Self {
        match face {
            tessera_catalog::Face::Agent402 => Family::Agent402,
            tessera_catalog::Face::TwoS => Family::TwoS,
            tessera_catalog::Face::Agents => Family::Agents,
            tessera_catalog::Face::Grpc => Family::Grpc,
        }
    }
}

impl Family {
    pub fn body(self, error: &Error) -> Value {
        match self {
            Family::Agent402 | Family::TwoS | Family::Grpc => json!({ "error": error.message }),
            Family::Agents => {
                let mut inner = json!({
                    "category": category(error.kind),
                    "message": error.message,
                });
                if !error.details.is_empty() {
                    inner["details"] = json!(error.details);
                }
                json!({ "error": inner })
            }
        }
    }

    pub fn response(self, error: &Error) -> Response {
        match self {
            Family::Grpc => crate::grpc::status_response(error),
            _ => (status_of(error), Json(self.body(error))).into_response(),
        }
    }

    /// Whether a call answered `response` failed (is cancelled, not charged).
    pub fn failed(self, response: &Response) -> bool {
        match self {
            Family::Grpc => crate::grpc::failed(response),
            _ => response.status().as_u16() >= 400,
        }
    }

    /// The HTTP status `response` counts as (a gRPC failure as its code's).
    pub fn outcome_status(self, response: &Response) -> u16 {
        match self {
            Family::Grpc => crate::grpc::http_equivalent(response),
            _ => response.status().as_u16(),
        }
    }
}

/// The error an internal gRPC service (`service`) answered. A refused
/// service token is the gateway's misconfiguration, not the client's: 500,
/// logged, never a 401 the client could act on.
pub fn from_internal_status(service: &str, status: &tonic::Status) -> Error {
    let error = Error::from_status(status);
    if error.reason != tessera_runtime::grpc_auth::REASON {
        return error;
    }
    let env = tessera_runtime::grpc_auth::ENV;
    tracing::error!(
        "the {service} service refused this gateway's internal token: set the same {env} on both"
    );
    Error::internal(format!(
        "{service} service: the gateway's internal service token is missing or wrong ({env})"
    ))
}

/// The per-agent API's category for an error kind.
pub fn category(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidArgument | ErrorKind::HeaderTooLarge | ErrorKind::Unprocessable => {
            "InvalidInput"
        }
        ErrorKind::Unauthenticated | ErrorKind::PaymentRequired => "Unauthenticated",
        ErrorKind::PermissionDenied => "MemoryViolation",
        ErrorKind::NotFound => "NotFound",
        ErrorKind::Conflict | ErrorKind::PreconditionFailed => "PreconditionFailed",
        ErrorKind::QuotaExceeded | ErrorKind::RateLimited => "QuotaExceeded",
        ErrorKind::BadGateway | ErrorKind::Unavailable | ErrorKind::Timeout => "Unavailable",
        ErrorKind::Internal | ErrorKind::Unimplemented => "Internal",
    }
}

fn status_of(error: &Error) -> StatusCode {
    StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A handler or extractor failure. It does not know its family: it travels in
/// the response's extensions and [`render`], layered on each face's routes,
/// writes the family's body. Without that layer it falls back to
/// `{"error": message}`, so a bare axum text body can never leak.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

#[derive(Clone)]
struct Unrendered(Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        if error.http_status() >= 500 {
            tracing::warn!(kind = error.kind.name(), reason = %error.reason, "{}", error.message);
        }
        let mut response = Family::Agent402.response(&error);
        response.extensions_mut().insert(Unrendered(error));
        response
    }
}

/// Middleware (`map_response_with_state`) that renders an [`ApiError`] in the
/// body of `family`.
pub async fn render(State(family): State<Family>, mut response: Response) -> Response {
    match response.extensions_mut().remove::<Unrendered>() {
        Some(Unrendered(error)) => family.response(&error),
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cross_agent() -> Error {
        Error::new(
            ErrorKind::PermissionDenied,
            "MEMORY_VIOLATION",
            "Cross-agent memory access denied",
        )
        .with_detail("caller", "agent-a")
        .with_detail("scope_owner", "agent-b")
    }

    #[test]
    fn agent402_and_2s_bodies_are_a_bare_message() {
        let error = Error::not_found("key not found");
        for family in [Family::Agent402, Family::TwoS] {
            assert_eq!(family.body(&error), json!({ "error": "key not found" }));
            assert_eq!(
                family.body(&cross_agent()),
                json!({ "error": "Cross-agent memory access denied" })
            );
        }
    }

    #[test]
    fn agents_body_has_category_and_details_only_when_present() {
        let error = Error::not_found("Key 'nonexistent' not found in agent memory");
        assert_eq!(
            Family::Agents.body(&error),
            json!({ "error": { "category": "NotFound", "message": "Key 'nonexistent' not found in agent memory" } })
        );
        assert_eq!(
            Family::Agents.body(&cross_agent()),
            json!({ "error": {
                "category": "MemoryViolation",
                "message": "Cross-agent memory access denied",
                "details": { "caller": "agent-a", "scope_owner": "agent-b" },
            } })
        );
    }

    #[test]
    fn every_kind_has_a_documented_category() {
        let documented = [
            "NotFound",
            "MemoryViolation",
            "InvalidInput",
            "PreconditionFailed",
            "QuotaExceeded",
            "Unauthenticated",
            "Unavailable",
            "Internal",
        ];
        for kind in ErrorKind::ALL {
            assert!(documented.contains(&category(kind)), "{kind:?}");
        }
        assert_eq!(category(ErrorKind::InvalidArgument), "InvalidInput");
    }

    #[test]
    fn status_comes_from_the_shared_table() {
        for kind in ErrorKind::ALL {
            let error = Error::new(kind, "R", "m");
            let response = Family::Agents.response(&error);
            assert_eq!(response.status().as_u16(), kind.http_status(), "{kind:?}");
        }
    }

    #[tokio::test]
    async fn the_family_layer_re_renders_an_api_error() {
        let response = ApiError(cross_agent()).into_response();
        let rendered = render(State(Family::Agents), response).await;
        assert_eq!(rendered.status(), StatusCode::FORBIDDEN);
        let body = axum::body::to_bytes(rendered.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["category"], "MemoryViolation");
    }
}
