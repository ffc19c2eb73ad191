//! Proof of work at the gateway: a client of the pow gRPC service, the free
//! routes that describe it and issue challenges (`GET /api/pow`,
//! `GET /api/pow/challenge?slug=`), and [`serve_with_pow`], which pays a
//! cpu-tier call with an `X-Pow-Solution` instead of x402.

use crate::errors::{ApiError, Family};
use crate::extract::QueryParams;
use crate::transport::{self, answer, Transport};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tessera_catalog::Route;
use tessera_error::Error;
use tessera_proto::pow::v1 as pb;
use tessera_proto::pow::v1::pow_service_client::PowServiceClient;
use tessera_proto::pow::v1::pow_service_server::PowService;
use tessera_runtime::grpc_auth::ServiceToken;
use tonic::service::interceptor::InterceptedService;

/// The header a proof-of-work solution travels in.
pub const SOLUTION_HEADER: &str = "x-pow-solution";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The pow service, over gRPC or (in the all-in-one) called directly.
#[derive(Clone)]
pub struct PowClient {
    calls: Calls,
}

#[derive(Clone)]
enum Calls {
    Grpc(PowServiceClient<InterceptedService<Transport, ServiceToken>>),
    /// The service's own implementation, in this process: no encoding, no
    /// HTTP framing (a solution's redemption is on every call it pays for).
    Direct(Arc<dyn PowService>),
}

impl std::fmt::Debug for PowClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.calls {
            Calls::Grpc(_) => f.write_str("PowClient::Grpc"),
            Calls::Direct(_) => f.write_str("PowClient::Direct"),
        }
    }
}

impl PowClient {
    /// A client connecting on first use.
    pub fn connect_lazy(url: &str, token: ServiceToken) -> anyhow::Result<Self> {
        let transport = transport::lazy(url, CONNECT_TIMEOUT, CALL_TIMEOUT)?;
        Ok(Self::over(transport, token))
    }

    /// A client calling `service` (the pow service of this process)
    /// directly.
    pub fn direct(service: impl PowService) -> Self {
        PowClient {
            calls: Calls::Direct(Arc::new(service)),
        }
    }

    fn over(transport: Transport, token: ServiceToken) -> Self {
        PowClient {
            calls: Calls::Grpc(PowServiceClient::with_interceptor(transport, token)),
        }
    }

    /// Whether the pow service answers (it describes what it pays for).
    pub(crate) async fn ping(&self) -> Result<(), Error> {
        self.describe().await.map(|_| ())
    }

    async fn describe(&self) -> Result<pb::DescribeResponse, Error> {
        let request = pb::DescribeRequest {};
        answer(match &self.calls {
            Calls::Grpc(client) => client.clone().describe(request).await,
            Calls::Direct(service) => service.describe(tonic::Request::new(request)).await,
        })
    }

    async fn issue(&self, slug: &str) -> Result<pb::Challenge, Error> {
        let request = pb::IssueChallengeRequest { slug: slug.into() };
        answer(match &self.calls {
            Calls::Grpc(client) => client.clone().issue_challenge(request).await,
            Calls::Direct(service) => service.issue_challenge(tonic::Request::new(request)).await,
        })
    }

    async fn redeem(&self, slug: &str, solution: &str) -> Result<String, Error> {
        let request = pb::RedeemRequest {
            slug: slug.into(),
            solution: solution.into(),
        };
        let redeemed = answer(match &self.calls {
            Calls::Grpc(client) => client.clone().redeem(request).await,
            Calls::Direct(service) => service.redeem(tonic::Request::new(request)).await,
        })?;
        Ok(redeemed.claim)
    }

    async fn release(&self, claim: String) -> Result<bool, Error> {
        let request = pb::ReleaseRequest { claim };
        let released = answer(match &self.calls {
            Calls::Grpc(client) => client.clone().release(request).await,
            Calls::Direct(service) => service.release(tonic::Request::new(request)).await,
        })?;
        Ok(released.released)
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
/// A call dropped half-way (the client hung up) gives it back too.
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
        Ok(claim) => Claimed {
            pow,
            claim: Some(claim),
            slug,
        },
        Err(error) => return family.response(&error),
    };
    let mut response = next.run(request).await;
    if response.status().is_success() {
        claim.spend();
        response
            .extensions_mut()
            .insert(crate::idempotency::PaidFor);
    } else {
        claim.give_back().await;
    }
    response
}

/// A claimed solution: given back unless spent, also when dropped.
struct Claimed {
    pow: PowClient,
    claim: Option<String>,
    slug: &'static str,
}

impl Claimed {
    fn spend(mut self) {
        self.claim = None;
    }

    async fn give_back(mut self) {
        if let Some(claim) = self.claim.take() {
            release(self.pow.clone(), claim, self.slug).await;
        }
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if let Some(claim) = self.claim.take() {
            tokio::spawn(release(self.pow.clone(), claim, self.slug));
        }
    }
}

async fn release(pow: PowClient, claim: String, slug: &str) {
    if let Err(error) = pow.release(claim).await {
        // The solution stays spent until it expires: never served twice.
        tracing::warn!(%error, slug, "a failed call's proof of work could not be given back");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pow_and_solution() -> (PowClient, String) {
        let path = std::env::temp_dir().join(format!("tessera-gateway-pow-{}.db", rand_suffix()));
        let config = tessera_pow::PowConfig::for_tests(
            "tessera-gateway-tests-pow-secret-0123456789",
            4,
            tessera_pow::Store::Embedded { path },
        );
        let pow = tessera_pow::Pow::open(&config).await.unwrap();
        let issued = pow.issue("hash").unwrap();
        let nonce = tessera_pow::token::solve(&issued.challenge, issued.difficulty);
        let client = PowClient::direct(tessera_pow::PowServer::new(pow));
        (client, format!("{}:{nonce}", issued.token))
    }

    fn rand_suffix() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }

    async fn usable_within(pow: &PowClient, solution: &str) -> bool {
        for _ in 0..50 {
            if let Ok(claim) = pow.redeem("hash", solution).await {
                pow.release(claim).await.unwrap();
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_call_dropped_half_way_gives_its_solution_back() {
        let (pow, solution) = pow_and_solution().await;
        let claim = pow.redeem("hash", &solution).await.unwrap();
        assert!(pow.redeem("hash", &solution).await.is_err(), "claimed");
        drop(Claimed {
            pow: pow.clone(),
            claim: Some(claim),
            slug: "hash",
        });
        assert!(usable_within(&pow, &solution).await, "given back on drop");
    }

    #[tokio::test]
    async fn a_served_call_keeps_its_solution_spent() {
        let (pow, solution) = pow_and_solution().await;
        let claim = pow.redeem("hash", &solution).await.unwrap();
        Claimed {
            pow: pow.clone(),
            claim: Some(claim),
            slug: "hash",
        }
        .spend();
        assert!(!usable_within(&pow, &solution).await, "still spent");
    }
}
