//! The service token on internal gRPC: who may call memory and payment.
//!
//! The memory and payment gRPC services trust the `caller` / payer their
//! clients name, so only Tessera's own services may reach them. When
//! `INTERNAL_TOKEN` is set (any non-empty string of visible ASCII, no spaces;
//! the same value in every Tessera process), a server built with
//! [`crate::grpc::GrpcServer::require_token`] answers every call that does
//! not carry gRPC metadata `authorization: Bearer <INTERNAL_TOKEN>` with
//! `UNAUTHENTICATED`, its `google.rpc.ErrorInfo` reason
//! `INTERNAL_TOKEN_REQUIRED` (HTTP 401 once a gateway maps it). The gRPC
//! health service (`/grpc.health.v1.Health/…`) stays open, so Kubernetes
//! probes need no token. Clients attach the token with the [`ServiceToken`]
//! interceptor (`XClient::with_interceptor(channel, token)`).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `INTERNAL_TOKEN` | unset | shared secret of the internal gRPC services; unset or empty = no token required (the port must then be unreachable from outside) |
//!
//! The token is compared in constant time and never logged (`Debug` shows
//! only whether one is set).

use futures::future::Either;
use std::fmt;
use std::future::Ready;
use std::sync::Arc;
use std::task::{Context, Poll};
use tessera_error::{Error, ErrorKind};
use tonic::metadata::{Ascii, MetadataValue};

/// The environment variable holding the token.
pub const ENV: &str = "INTERNAL_TOKEN";
/// `ErrorInfo.reason` of a call refused for a missing or wrong token.
pub const REASON: &str = "INTERNAL_TOKEN_REQUIRED";
/// Calls under this path prefix never need the token (Kubernetes probes).
pub const OPEN_PREFIX: &str = "/grpc.health.v1.Health/";

/// The shared secret of the internal gRPC services, or none. A client
/// interceptor that sends it as `authorization: Bearer <token>` (nothing
/// when none), and what [`crate::grpc::GrpcServer::require_token`] expects.
#[derive(Clone, Default)]
pub struct ServiceToken {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    token: Box<str>,
    header: MetadataValue<Ascii>,
}

impl ServiceToken {
    /// No token: a client sends nothing, a server requires nothing.
    pub fn none() -> Self {
        ServiceToken::default()
    }

    /// `token`, trimmed; empty = [`ServiceToken::none`]. It must be visible
    /// ASCII without spaces (it travels in a header). The error never repeats
    /// the token.
    pub fn new(token: &str) -> anyhow::Result<Self> {
        let token = token.trim();
        if token.is_empty() {
            return Ok(Self::none());
        }
        anyhow::ensure!(
            token.bytes().all(|b| b.is_ascii_graphic()),
            "the service token must be visible ASCII without spaces"
        );
        let header = format!("Bearer {token}")
            .parse()
            .map_err(|_| anyhow::anyhow!("the service token is not a valid header value"))?;
        Ok(ServiceToken {
            inner: Some(Arc::new(Inner {
                token: token.into(),
                header,
            })),
        })
    }

    /// From `INTERNAL_TOKEN`; unset or empty = none.
    pub fn from_env() -> anyhow::Result<Self> {
        let raw = std::env::var(ENV).unwrap_or_default();
        Self::new(&raw).map_err(|e| anyhow::anyhow!("{ENV}: {e}"))
    }

    pub fn is_set(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether an `authorization` header value carries this token: `Bearer
    /// <token>` (the scheme in any case), compared in constant time. Always
    /// true when no token is set.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        authorization
            .and_then(bearer)
            .is_some_and(|presented| constant_time_eq(presented, inner.token.as_bytes()))
    }
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() {
            "ServiceToken(set)"
        } else {
            "ServiceToken(none)"
        })
    }
}

impl tonic::service::Interceptor for ServiceToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(inner) = &self.inner {
            request
                .metadata_mut()
                .insert("authorization", inner.header.clone());
        }
        Ok(request)
    }
}

/// The credentials of an `Authorization: Bearer <credentials>` value (the
/// scheme matched case-insensitively, RFC 9110 §11.1), if it is one.
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    if value.len() <= SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let credentials = value[SCHEME.len()..].trim_ascii();
    (!credentials.is_empty()).then_some(credentials)
}

/// Byte equality whose time depends on the lengths only, not on where the
/// first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// The refusal of a call without the right token.
pub fn refusal(presented: bool) -> Error {
    let message = if presented {
        "the internal service token is not the one this server requires"
    } else {
        "this internal gRPC service requires `authorization: Bearer <INTERNAL_TOKEN>`"
    };
    Error::new(ErrorKind::Unauthenticated, REASON, message)
}

/// Requires the token on every call but the health service's.
#[derive(Clone, Debug, Default)]
pub struct RequireTokenLayer {
    expected: ServiceToken,
}

impl RequireTokenLayer {
    /// With [`ServiceToken::none`] every call passes.
    pub fn new(expected: ServiceToken) -> Self {
        RequireTokenLayer { expected }
    }
}

impl<S> tower::Layer<S> for RequireTokenLayer {
    type Service = RequireToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireToken {
            inner,
            expected: self.expected.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RequireToken<S> {
    inner: S,
    expected: ServiceToken,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RequireToken<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    // No box: an admitted call costs one header comparison, nothing more.
    type Future = Either<S::Future, Ready<Result<Self::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let authorization = request.headers().get(http::header::AUTHORIZATION);
        let admitted = request.uri().path().starts_with(OPEN_PREFIX)
            || self
                .expected
                .admits(authorization.map(http::HeaderValue::as_bytes));
        if admitted {
            return Either::Left(self.inner.call(request));
        }
        let refused = refusal(authorization.is_some());
        // Debug only: refused calls must not flood the log (the request
        // metrics count them, status Unauthenticated).
        tracing::debug!(path = %request.uri().path(), reason = REASON, "{}", refused.message);
        let response = refused.to_status().into_http::<ResBody>();
        Either::Right(std::future::ready(Ok(response)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn tokens_are_trimmed_empty_is_none_and_junk_is_refused() {
        assert!(!ServiceToken::new("").unwrap().is_set());
        assert!(!ServiceToken::new("  ").unwrap().is_set());
        assert!(ServiceToken::new(" s3cret ").unwrap().is_set());
        for bad in ["two words", "tab\there", "é"] {
            let error = ServiceToken::new(bad).unwrap_err().to_string();
            assert!(!error.contains(bad), "{error}");
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = ServiceToken::new("s3cret-value").unwrap();
        assert_eq!(format!("{token:?}"), "ServiceToken(set)");
        assert_eq!(format!("{:?}", ServiceToken::none()), "ServiceToken(none)");
    }

    #[test]
    fn only_the_bearer_token_is_admitted() {
        let token = ServiceToken::new("s3cret").unwrap();
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(token.admits(Some(b"bearer s3cret")));
        assert!(token.admits(Some(b"BEARER  s3cret ")));
        for wrong in [
            &b"Bearer s3crex"[..],
            b"Bearer s3cret2",
            b"Bearer ",
            b"Basic s3cret",
            b"s3cret",
            b"Bearers3cret",
        ] {
            assert!(
                !token.admits(Some(wrong)),
                "{}",
                String::from_utf8_lossy(wrong)
            );
        }
        assert!(!token.admits(None));
        assert!(ServiceToken::none().admits(None));
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn the_interceptor_adds_the_header_only_when_set() {
        let mut token = ServiceToken::new("s3cret").unwrap();
        let request = token.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
        let request = ServiceToken::none().call(tonic::Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn refusals_carry_the_reason() {
        let status = refusal(false).to_status();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let error = Error::from_status(&status);
        assert_eq!(error.reason, REASON);
        assert_eq!(error.http_status(), 401);
    }
}
