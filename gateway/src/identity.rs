//! Who is calling, and which namespace they may use.
//!
//! An [`IdentityGate`] turns a request into the caller's namespace: the
//! payer's wallet behind x402 ([`crate::x402::X402Gate`]), or, in FREE_MODE
//! only, whatever `X-Agent-Id` says ([`FreeModeGate`]).

use crate::errors::ApiError;
use crate::extract::PathParams;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use serde::Deserialize;
use std::sync::Arc;
use tessera_error::{Error, ErrorKind};

pub const AGENT_ID_HEADER: &str = "x-agent-id";

#[async_trait::async_trait]
pub trait IdentityGate: Send + Sync + 'static {
    /// The namespace the request proves it may act as; `None` when it names
    /// no caller.
    async fn caller(&self, parts: &Parts) -> Result<Option<String>, Error>;

    /// The refusal for a request that names no caller where one is required.
    fn unidentified(&self) -> Error;
}

pub type Gate = Arc<dyn IdentityGate>;

/// Development only: the caller's word is its identity, and nobody pays.
#[derive(Debug, Default, Clone, Copy)]
pub struct FreeModeGate;

#[async_trait::async_trait]
impl IdentityGate for FreeModeGate {
    async fn caller(&self, parts: &Parts) -> Result<Option<String>, Error> {
        agent_id_header(parts)
    }

    fn unidentified(&self) -> Error {
        Error::new(
            ErrorKind::Unauthenticated,
            "AGENT_ID_REQUIRED",
            "no caller identity: send the header X-Agent-Id: <namespace> naming your memory namespace",
        )
    }
}

fn agent_id_header(parts: &Parts) -> Result<Option<String>, Error> {
    let Some(raw) = parts.headers.get(AGENT_ID_HEADER) else {
        return Ok(None);
    };
    let id = raw
        .to_str()
        .map_err(|_| Error::invalid("INVALID_AGENT_ID", "X-Agent-Id must be visible ASCII"))?
        .trim();
    Ok(Some(id.to_string()).filter(|id| !id.is_empty()))
}

/// The caller's own namespace; a request that names none is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

impl<S> FromRequestParts<S> for Caller
where
    Gate: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let gate = Gate::from_ref(state);
        match gate.caller(parts).await? {
            Some(namespace) => Ok(Caller(namespace)),
            None => Err(gate.unidentified().into()),
        }
    }
}

/// The namespace of an `/agents/{id}/...` route: the path's agent, which a
/// caller who identifies itself must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentScope(pub String);

#[derive(Deserialize)]
struct AgentPath {
    id: String,
}

impl<S> FromRequestParts<S> for AgentScope
where
    Gate: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let PathParams(AgentPath { id }) = PathParams::from_request_parts(parts, state).await?;
        let caller = Gate::from_ref(state).caller(parts).await?;
        Ok(AgentScope(scope(caller, id)?))
    }
}

/// Whether two namespaces are the same: equal, or the same EVM address
/// spelled in another case (a payer is lower-case; a path may checksum it).
pub fn same_namespace(a: &str, b: &str) -> bool {
    // As the memory service reads them: `0x` (or `0X`) and 40 hex digits.
    let is_address = |text: &str| {
        text.len() == 42
            && (text.starts_with("0x") || text.starts_with("0X"))
            && text[2..].bytes().all(|byte| byte.is_ascii_hexdigit())
    };
    a == b || (is_address(a) && is_address(b) && a.eq_ignore_ascii_case(b))
}

/// `owner` when the caller is anonymous or is `owner` itself.
pub fn scope(caller: Option<String>, owner: String) -> Result<String, Error> {
    match caller {
        Some(caller) if !same_namespace(&caller, &owner) => Err(Error::new(
            ErrorKind::PermissionDenied,
            "MEMORY_VIOLATION",
            "Cross-agent memory access denied",
        )
        .with_detail("caller", caller)
        .with_detail("scope_owner", owner)),
        _ => Ok(owner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(agent_id: Option<&str>) -> Parts {
        let mut request = Request::builder().uri("/");
        if let Some(id) = agent_id {
            request = request.header(AGENT_ID_HEADER, id);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[tokio::test]
    async fn free_mode_takes_the_agent_id_header() {
        let gate = FreeModeGate;
        assert_eq!(
            gate.caller(&parts(Some(" agent-a "))).await.unwrap(),
            Some("agent-a".into())
        );
        assert_eq!(gate.caller(&parts(Some(""))).await.unwrap(), None);
        assert_eq!(gate.caller(&parts(None)).await.unwrap(), None);
        let refusal = gate.unidentified();
        assert_eq!(refusal.http_status(), 401);
        assert!(refusal.message.contains("X-Agent-Id"));
    }

    #[test]
    fn an_agent_may_only_reach_its_own_scope() {
        assert_eq!(scope(None, "agent-b".into()).unwrap(), "agent-b");
        assert_eq!(
            scope(Some("agent-b".into()), "agent-b".into()).unwrap(),
            "agent-b"
        );
        let error = scope(Some("agent-a".into()), "agent-b".into()).unwrap_err();
        assert_eq!(error.http_status(), 403);
        assert_eq!(error.message, "Cross-agent memory access denied");
        assert_eq!(error.details["caller"], "agent-a");
        assert_eq!(error.details["scope_owner"], "agent-b");
    }

    #[test]
    fn an_address_is_the_same_namespace_in_any_case() {
        let payer = "0x857b06519e91e3a54538791bdbb0e22373e36b66";
        let checksummed = "0x857b06519E91e3A54538791bDbb0E22373e36b66";
        assert!(same_namespace(payer, checksummed));
        assert_eq!(
            scope(Some(payer.into()), checksummed.into()).unwrap(),
            checksummed
        );
        assert!(
            !same_namespace("Agent-A", "agent-a"),
            "only addresses fold case"
        );
        assert!(!same_namespace(
            payer,
            "0x857b06519e91e3a54538791bdbb0e22373e36b67"
        ));
    }
}
