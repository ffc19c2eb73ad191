//! Calls to the gateway's own REST routes, in process: an MCP tool that has
//! a REST route runs as an HTTP request to it through the gateway's router,
//! so the payment gate, identity, idempotency, rate limits, deadlines and
//! errors are the route's, not a copy of them. The request carries what the
//! route reads from the MCP request: the peer address (per-IP limits), and
//! the headers below.

use super::results::Failure;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http::header::{CONTENT_TYPE, HOST, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

/// The MCP request's headers a REST route reads: the host its quote names,
/// the caller (X-Agent-Id, FREE_MODE), the payment, and the hops a trusted
/// proxy forwarded.
const FORWARDED: &[&str] = &[
    "host",
    "x-agent-id",
    "payment-signature",
    "x-payment",
    "x-forwarded-for",
];

/// The most bytes of a route's answer read back (a page of entries is far
/// smaller).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// `method uri` (a path and query), with `body` as JSON, on behalf of the
/// MCP request `from`.
pub(crate) fn request(
    method: Method,
    uri: &str,
    body: Option<&Value>,
    from: &Parts,
) -> Request<Body> {
    let mut request = Request::new(match body {
        Some(body) => Body::from(body.to_string()),
        None => Body::empty(),
    });
    *request.method_mut() = method;
    *request.uri_mut() = uri
        .parse()
        .expect("a path and a URL-encoded query parse as a URI");
    let headers = request.headers_mut();
    for name in FORWARDED {
        for value in from.headers.get_all(*name) {
            headers.append(HeaderName::from_static(name), value.clone());
        }
    }
    // HTTP/2 names the host in the URI's authority, not in Host.
    if !headers.contains_key(HOST) {
        if let Some(host) = from
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            headers.insert(HOST, host);
        }
    }
    if body.is_some() {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Some(peer) = from.extensions.get::<ConnectInfo<SocketAddr>>() {
        request.extensions_mut().insert(*peer);
    }
    request
}

/// A route's answer: its status, headers, and body as JSON (`Null` when
/// empty, a string when not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The route's refusal, as a tool error: its message (`{"error":
    /// "…"}`, or the per-agent face's `{"error": {"message"}}`), status,
    /// and `Retry-After`.
    pub fn failure(&self) -> Failure {
        let error = &self.body["error"];
        let message = error
            .as_str()
            .or_else(|| error["message"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| match &self.body {
                Value::String(text) if !text.is_empty() => text.clone(),
                _ => format!("the call failed with HTTP {}", self.status),
            });
        Failure {
            retry_after_seconds: self
                .headers
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok()?.trim().parse().ok()),
            ..Failure::new(self.status.as_u16(), message)
        }
    }
}

/// Sends `request` through `api`, the gateway's routes.
pub(crate) async fn send(api: &Router, request: Request<Body>) -> Result<Answer, Failure> {
    let response = api
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
        .await
        .map_err(|error| {
            Failure::new(
                502,
                format!("the route's answer could not be read: {error}"),
            )
        })?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mcp_request() -> Parts {
        let (mut parts, ()) = Request::builder()
            .method(Method::POST)
            .uri("/mcp")
            .header("host", "gateway.example:8080")
            .header("x-agent-id", "agent-1")
            .header("payment-signature", "cGFpZA==")
            .header("mcp-session-id", "not forwarded")
            .header("authorization", "Bearer not forwarded")
            .body(())
            .unwrap()
            .into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([203, 0, 113, 7], 40000))));
        parts
    }

    #[test]
    fn the_route_sees_the_caller_payment_host_and_peer() {
        let body = json!({ "key": "k", "value": 1 });
        let request = request(
            Method::POST,
            "/api/agent/memory/put",
            Some(&body),
            &mcp_request(),
        );
        assert_eq!(request.uri(), "/api/agent/memory/put");
        let headers = request.headers();
        assert_eq!(headers["host"], "gateway.example:8080");
        assert_eq!(headers["x-agent-id"], "agent-1");
        assert_eq!(headers["payment-signature"], "cGFpZA==");
        assert_eq!(headers["content-type"], "application/json");
        assert!(!headers.contains_key("mcp-session-id"));
        assert!(!headers.contains_key("authorization"));
        let ConnectInfo(peer) = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .unwrap();
        assert_eq!(peer.to_string(), "203.0.113.7:40000");
    }

    #[test]
    fn a_refusal_keeps_its_message_status_and_retry_time() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("12"));
        let limited = Answer {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers,
            body: json!({ "error": "too many" }),
        };
        let failure = limited.failure();
        assert_eq!(
            (failure.status, failure.message.as_str()),
            (429, "too many")
        );
        assert_eq!(failure.retry_after_seconds, Some(12));
        let agents_face = Answer {
            status: StatusCode::FORBIDDEN,
            headers: HeaderMap::new(),
            body: json!({ "error": { "category": "forbidden", "message": "not yours" } }),
        };
        assert_eq!(agents_face.failure().message, "not yours");
    }
}
