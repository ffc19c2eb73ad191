//! Issuing challenges and redeeming solutions.

use crate::claims::ClaimStore;
use crate::config::{PowConfig, Store};
use crate::payable::pow_route;
use crate::token::{parse_solution, refused, solves, Signer};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_catalog::Tier;
use tessera_error::{Error, ErrorKind};
use tessera_proto::pow::v1 as pb;
use tessera_proto::pow::v1::pow_service_server::PowService;
use tonic::{Request, Response, Status};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// The pow service's state: the signer, the difficulties, the claim store.
#[derive(Debug, Clone)]
pub struct Pow {
    signer: Signer,
    difficulty: u32,
    difficulties: BTreeMap<String, u32>,
    ttl: Duration,
    claims: ClaimStore,
}

impl Pow {
    pub async fn open(config: &PowConfig) -> anyhow::Result<Self> {
        let claims = match &config.store {
            Store::Embedded { path } => ClaimStore::embedded(path).await?,
            Store::Redis { url } => ClaimStore::redis(url).await?,
        };
        Ok(Pow {
            signer: Signer::new(config.secret.expose().as_bytes()),
            difficulty: config.difficulty,
            difficulties: config.difficulties.clone(),
            ttl: config.challenge_ttl,
            claims,
        })
    }

    pub fn difficulty_of(&self, slug: &str) -> u32 {
        self.difficulties
            .get(slug)
            .copied()
            .unwrap_or(self.difficulty)
    }

    pub fn describe(&self) -> pb::DescribeResponse {
        let tools = tessera_catalog::routes()
            .iter()
            .filter(|route| route.tier == Tier::Cpu)
            .filter_map(|route| route.tool)
            .map(|slug| pb::PowTool {
                slug: slug.to_string(),
                difficulty: self.difficulty_of(slug),
            })
            .collect();
        pb::DescribeResponse {
            tools,
            default_difficulty: self.difficulty,
            challenge_ttl_seconds: self.ttl.as_secs(),
        }
    }

    pub fn issue(&self, slug: &str) -> Result<pb::Challenge, Error> {
        if pow_route(slug).is_none() {
            // Every tool is cpu tier: what is not payable is memory, or nothing.
            let message = if tessera_catalog::route(slug).is_some() || slug.starts_with("memory") {
                format!("{slug:?} is paid with a wallet (x402) only, not with proof of work")
            } else {
                format!(
                    "no tool is named {slug:?}; GET /api/pow lists those proof of work pays for"
                )
            };
            return Err(Error::new(ErrorKind::NotFound, "POW_UNKNOWN_TOOL", message));
        }
        let expires_at = (now_ms() + self.ttl.as_millis() as i64) / 1000;
        let (claims, token) = self.signer.mint(slug, self.difficulty_of(slug), expires_at);
        Ok(pb::Challenge {
            challenge: claims.challenge,
            difficulty: claims.difficulty,
            token,
            expires_at,
        })
    }

    /// Checks `solution` for `slug` and claims it; the claim's name.
    pub async fn redeem(&self, slug: &str, solution: &str) -> Result<String, Error> {
        let (token, nonce) = parse_solution(solution)?;
        let claims = self.signer.open(token)?;
        let now = now_ms();
        if claims.expires_at * 1000 <= now {
            return Err(refused(
                "POW_EXPIRED",
                "the challenge has expired; ask for a new one",
            ));
        }
        if claims.slug != slug {
            return Err(refused(
                "POW_WRONG_TOOL",
                format!(
                    "the challenge was issued for {:?}, not {slug:?}",
                    claims.slug
                ),
            ));
        }
        if !solves(&claims.challenge, nonce, claims.difficulty) {
            return Err(refused(
                "POW_INSUFFICIENT_WORK",
                format!(
                    "sha256(challenge \":\" nonce) does not have {} leading zero bits",
                    claims.difficulty
                ),
            ));
        }
        let claim = format!("{:032x}", rand::random::<u128>());
        if !self
            .claims
            .claim(&claims.challenge, &claim, claims.expires_at * 1000, now)
            .await?
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                "POW_ALREADY_USED",
                "this solution has been used (or is paying for a call still running)",
            ));
        }
        Ok(format!("{}.{claim}", claims.challenge))
    }

    /// Gives back the claim `redeem` named.
    pub async fn release(&self, claim: &str) -> Result<bool, Error> {
        let (challenge, id) = claim
            .split_once('.')
            .ok_or_else(|| Error::invalid("POW_MALFORMED", "not a claim"))?;
        self.claims.release(challenge, id).await
    }
}

/// The gRPC face of [`Pow`].
#[derive(Debug, Clone)]
pub struct PowServer {
    pow: Pow,
}

impl PowServer {
    pub fn new(pow: Pow) -> Self {
        PowServer { pow }
    }
}

#[tonic::async_trait]
impl PowService for PowServer {
    async fn describe(
        &self,
        _request: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        Ok(Response::new(self.pow.describe()))
    }

    #[tracing::instrument(skip_all, fields(slug = %request.get_ref().slug))]
    async fn issue_challenge(
        &self,
        request: Request<pb::IssueChallengeRequest>,
    ) -> Result<Response<pb::Challenge>, Status> {
        let challenge = self
            .pow
            .issue(&request.get_ref().slug)
            .map_err(|e| e.to_status())?;
        Ok(Response::new(challenge))
    }

    #[tracing::instrument(skip_all, fields(slug = %request.get_ref().slug))]
    async fn redeem(
        &self,
        request: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::RedeemResponse>, Status> {
        let request = request.into_inner();
        let claim = self
            .pow
            .redeem(&request.slug, &request.solution)
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(pb::RedeemResponse { claim }))
    }

    async fn release(
        &self,
        request: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::ReleaseResponse>, Status> {
        let released = self
            .pow
            .release(&request.get_ref().claim)
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(pb::ReleaseResponse { released }))
    }
}
