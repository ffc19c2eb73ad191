//! Proof of work at the gateway: a client of the pow gRPC service, the free
//! routes that describe it and issue challenges (`GET /api/pow`,
//! `GET /api/pow/challenge?slug=`), and [`serve_with_pow`], which pays a
//! cpu-tier call with an `X-Pow-Solution` instead of x402.

use crate::errors::{ApiError, Family};
use crate::extract::QueryParams;
use crate::transport::{self, LocalService, Transport};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tessera_catalog::Route;
use tessera_error::Error;
use tessera_proto::pow::v1 as pb;
use tessera_proto::pow::v1::pow_service_client::PowServiceClient;
use tessera_runtime::grpc_auth::ServiceToken;
use tonic::service::interceptor::InterceptedService;

/// The header a proof-of-work solution travels in.
pub const SOLUTION_HEADER: &str = "x-pow-solution";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct PowClient {
    client: PowServiceClient<InterceptedService<Transport, ServiceToken>>,
}

impl PowClient {
    /// A client connecting on first use.
    pub fn connect_lazy(url: &str, token: ServiceToken) -> anyhow::Result<Self> {
        let transport = transport::lazy(url, CONNECT_TIMEOUT, CALL_TIMEOUT)?;
        Ok(Self::over(transport, token))
    }

    /// A client calling `service` (the pow gRPC server of this process).
    pub fn in_process(service: impl LocalService, token: ServiceToken) -> Self {
        Self::over(transport::in_process(service), token)
    }

    fn over(transport: Transport, token: ServiceToken) -> Self {
        PowClient {
            client: PowServiceClient::with_interceptor(transport, token),
        }
    }

    async fn describe(&self) -> Result<pb::DescribeResponse, Error> {
        let reply = self.client.clone().describe(pb::DescribeRequest {}).await;
        Ok(reply
            .map_err(|status| Error::from_status(&status))?
            .into_inner())
    }

    async fn issue(&self, slug: &str) -> Result<pb::Challenge, Error> {
        let request = pb::IssueChallengeRequest { slug: slug.into() };
        let reply = self.client.clone().issue_challenge(request).await;
        Ok(reply
            .map_err(|status| Error::from_status(&status))?
            .into_inner())
    }

    async fn redeem(&self, slug: &str, solution: &str) -> Result<String, Error> {
        let request = pb::RedeemRequest {
            slug: slug.into(),
            solution: solution.into(),
        };
        let reply = self.client.clone().redeem(request).await;
        Ok(reply
            .map_err(|status| Error::from_status(&status))?
            .into_inner()
            .claim)
    }

    async fn release(&self, claim: String) -> Result<bool, Error> {
        let reply = self
            .client
            .clone()
            .release(pb::ReleaseRequest { claim })
            .await;
        Ok(reply
            .map_err(|status| Error::from_status(&status))?
            .into_inner()
            .released)
    }
}

/// `GET /api/pow`: which tools proof of work pays for, and how.
pub(crate) async fn describe(State(pow): State<PowClient>) -> Result<Json<Value>, ApiError> {
    let described = pow.describe().await?;
    let tools: Vec<Value> = described
        .tools
        .iter()
        .filter_map(|tool| {
            let route = tessera_catalog::tool_route(&tool.slug)?;
            Some(json!({
                "slug": tool.slug,
                "difficulty": tool.difficulty,
                "method": route.method.as_str(),
                "route": route.path,
            }))
        })
        .collect();
    Ok(Json(json!({
        "header": "X-Pow-Solution",
        "format": "{token}:{nonce}",
        "work": "sha256(challenge + \":\" + nonce) must have at least `difficulty` leading zero bits",
        "challenge": "GET /api/pow/challenge?slug={slug}",
        "defaultDifficulty": described.default_difficulty,
        "challengeTtlSeconds": described.challenge_ttl_seconds,
        "singleUse": "a solution pays for one served call; a call that fails does not spend it",
        "tools": tools,
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChallengeQuery {
    slug: Option<String>,
}

/// `GET /api/pow/challenge?slug=`.
pub(crate) async fn challenge(
    State(pow): State<PowClient>,
    QueryParams(query): QueryParams<ChallengeQuery>,
) -> Result<Json<Value>, ApiError> {
    let slug = query
        .slug
        .filter(|slug| !slug.is_empty())
        .ok_or_else(|| Error::invalid("SLUG_REQUIRED", "slug is required: the tool to call"))?;
    if slug.len() > 64 {
        return Err(Error::invalid("INVALID_SLUG", "slug is at most 64 characters").into());
    }
    let challenge = pow.issue(&slug).await?;
    Ok(Json(json!({
        "challenge": challenge.challenge,
        "difficulty": challenge.difficulty,
        "token": challenge.token,
        "expiresAt": challenge.expires_at,
    })))
}

/// The Idempotency-Key credential of a proof-of-work call: its token.
pub(crate) fn credential(headers: &HeaderMap) -> Option<crate::idempotency::Credential> {
    let solution = headers.get(SOLUTION_HEADER)?.to_str().ok()?;
    let (token, _nonce) = solution.trim().split_once(':')?;
    Some(crate::idempotency::Credential(format!("pow:{token}")))
}

/// Serves a cpu-tier call paid with the request's `X-Pow-Solution`: the
/// solution is claimed, the call runs, and the claim is given back unless
/// the call was served (2xx), so a refused or failed call does not spend it.
pub(crate) async fn serve_with_pow(
    pow: PowClient,
    route: &'static Route,
    request: Request,
    next: Next,
) -> Response {
    let family = Family::from(route.face);
    let slug = route.tool.unwrap_or_default();
    let solution = match request.headers().get(SOLUTION_HEADER).map(|v| v.to_str()) {
        Some(Ok(solution)) => solution.to_string(),
        _ => {
            let error = Error::invalid(
                "POW_MALFORMED",
                "X-Pow-Solution must be visible ASCII: token:nonce",
            );
            return family.response(&error);
        }
    };
    let claim = match pow.redeem(slug, &solution).await {
        Ok(claim) => claim,
        Err(error) => return family.response(&error),
    };
    let mut response = next.run(request).await;
    if response.status().is_success() {
        response
            .extensions_mut()
            .insert(crate::idempotency::PaidFor);
    } else {
        if let Err(error) = pow.release(claim).await {
            // The solution stays spent until it expires: never served twice.
            tracing::warn!(%error, slug, "a failed call's proof of work could not be given back");
        }
    }
    response
}
