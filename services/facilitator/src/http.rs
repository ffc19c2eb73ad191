//! The standard facilitator HTTP API:
//!
//! - `POST /verify`, `POST /settle`: body `{x402Version, paymentPayload,
//!   paymentRequirements}`; always 200 with a `VerifyResponse` /
//!   `SettleResponse` once the body is such a document (a failed check is
//!   `isValid: false` / `success: false` with the reason). A body that is
//!   not JSON or lacks a field: 400 `{"error": "…"}`. With API keys
//!   configured (`FACILITATOR_API_KEYS`), both need `Authorization: Bearer
//!   <one of the keys>`; without it: 401 `{"error": "…"}` and
//!   `WWW-Authenticate: Bearer`, before the body is read.
//! - `GET /supported`: the kinds served and our settling address.
//! - `GET /health`: `{"status": "ok", "network", "settles"}` (no chain call).
//! - `GET /metrics`: Prometheus (`service="facilitator"`).
//!
//! `/supported`, `/health` and `/metrics` never need a key.

use crate::config::ApiKeys;
use crate::{Facilitator, Urgency, URGENCY_HEADER};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use tessera_runtime::Shutdown;
use tessera_x402::facilitator::FacilitatorRequest;
use tokio::net::TcpListener;

/// Largest request body: a payload and its requirements are a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The API: `/verify` and `/settle` require one of `api_keys` when any is
/// set ([`ApiKeys::open`]: nobody needs one).
pub fn router(facilitator: Arc<Facilitator>, api_keys: ApiKeys) -> Router {
    let keyed = Router::new()
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .route_layer(axum::middleware::from_fn_with_state(api_keys, require_key));
    let router = Router::new()
        .merge(keyed)
        .route("/supported", get(supported))
        .route("/health", get(health))
        .merge(tessera_runtime::metrics::routes())
        .fallback(tessera_runtime::http::not_found)
        .method_not_allowed_fallback(tessera_runtime::http::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(facilitator);
    // Its callers are payment services holding an API key: their trace
    // continues here.
    tessera_runtime::http::traced(router, "facilitator", tessera_runtime::http::Edge::Internal)
}

/// Serves `router` on `listener` until `shutdown` fires, letting in-flight
/// requests (a settle waiting for its receipt) finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    tessera_runtime::http::serve(listener, router, shutdown, "facilitator").await
}

/// Reads a facilitator request, or the 400 answer.
pub fn parse_request(body: &[u8]) -> Result<FacilitatorRequest, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    serde_json::from_value(value).map_err(|e| {
        format!("the body is not a facilitator request {{x402Version, paymentPayload, paymentRequirements}}: {e}")
    })
}

/// Lets a call through only with an accepted API key (always, when none is
/// configured).
async fn require_key(State(api_keys): State<ApiKeys>, request: Request, next: Next) -> Response {
    let authorization = request.headers().get(AUTHORIZATION);
    if api_keys.admits(authorization.map(|value| value.as_bytes())) {
        return next.run(request).await;
    }
    let message = if authorization.is_some() {
        "the API key is not one this facilitator accepts"
    } else {
        "this facilitator requires `Authorization: Bearer <API key>`"
    };
    // Debug only: refused calls must not flood the log (the HTTP metrics
    // count the 401s).
    tracing::debug!(path = %request.uri().path(), "{message}");
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": message })),
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

async fn verify(State(facilitator): State<Arc<Facilitator>>, body: Bytes) -> Response {
    match parse_request(&body) {
        Ok(request) => Json(facilitator.verify(&request).await).into_response(),
        Err(message) => bad_request(message),
    }
}

async fn settle(
    State(facilitator): State<Arc<Facilitator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let urgency = Urgency::from_header(headers.get(URGENCY_HEADER).map(|v| v.as_bytes()));
    match parse_request(&body) {
        Ok(request) => Json(facilitator.settle_with(&request, urgency).await).into_response(),
        Err(message) => bad_request(message),
    }
}

async fn supported(State(facilitator): State<Arc<Facilitator>>) -> Response {
    Json(facilitator.supported()).into_response()
}

async fn health(State(facilitator): State<Arc<Facilitator>>) -> Response {
    Json(json!({
        "status": "ok",
        "network": facilitator.network().caip2(),
        "settles": facilitator.settlement_address().is_some(),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_errors_say_what_is_wrong() {
        assert!(parse_request(b"{").unwrap_err().contains("not JSON"));
        let missing = parse_request(br#"{"x402Version":2,"paymentPayload":{}}"#).unwrap_err();
        assert!(missing.contains("paymentRequirements"), "{missing}");
        let request = parse_request(
            br#"{"x402Version":2,"paymentPayload":{"a":1},"paymentRequirements":{"b":2}}"#,
        )
        .unwrap();
        assert_eq!(request.x402_version, 2);
    }
}
