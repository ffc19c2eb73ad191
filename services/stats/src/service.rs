//! The stats service: records call batches, answers the summary and the
//! leaderboard.

use crate::config::StatsConfig;
use crate::event::check_batch;
use crate::indexer::{token_of, Indexer};
use crate::store::sellers::Token;
use crate::store::StatsStore;
use tessera_error::Error;
use tessera_proto::stats::v1 as pb;
use tessera_proto::stats::v1::stats_service_server::StatsService;
use tessera_runtime::Shutdown;
use tonic::{Request, Response, Status};

/// The most sellers a leaderboard answers.
pub const MAX_TOP: u32 = 100;
/// The sellers a leaderboard answers when `top` is 0 (absent).
pub const DEFAULT_TOP: u32 = 10;
/// The error reason of a refused `top`.
pub const INVALID_TOP: &str = "INVALID_TOP";

/// The stats service's state: the store, and the token the leaderboard
/// counts (None: no chain is configured).
#[derive(Debug, Clone)]
pub struct Stats {
    store: StatsStore,
    token: Option<Token>,
}

impl Stats {
    /// Opens the store and, when a chain is configured, starts its
    /// leaderboard indexer, which stops on `shutdown`.
    pub async fn open(config: &StatsConfig, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let store = StatsStore::open(&config.store).await?;
        store.register_pool("stats");
        let token = match &config.chain {
            Some(chain) => {
                let indexer = Indexer::new(store.clone(), chain)?;
                tokio::spawn(indexer.run(shutdown.clone()));
                Some(token_of(chain))
            }
            None => None,
        };
        Ok(Stats::new(store, token))
    }

    /// Over `store`, with no indexer of its own; `token` names what the
    /// leaderboard answers.
    pub fn new(store: StatsStore, token: Option<Token>) -> Self {
        Stats { store, token }
    }

    pub fn store(&self) -> &StatsStore {
        &self.store
    }

    /// Checks and records a batch (all or nothing); the events recorded.
    pub async fn record(&self, events: Vec<pb::CallEvent>) -> Result<u32, Error> {
        let calls = check_batch(events)?;
        self.store.record(&calls).await?;
        Ok(calls.len() as u32)
    }

    pub async fn summary(&self) -> Result<pb::SummaryResponse, Error> {
        self.store.summary().await
    }

    /// The `top` sellers (0: [`DEFAULT_TOP`]; at most [`MAX_TOP`]).
    pub async fn leaderboard(&self, top: u32) -> Result<pb::LeaderboardResponse, Error> {
        let top = match top {
            0 => DEFAULT_TOP,
            1..=MAX_TOP => top,
            _ => {
                return Err(Error::invalid(
                    INVALID_TOP,
                    format!("top is {top}; it must be between 1 and {MAX_TOP}"),
                )
                .with_detail("field", "top"))
            }
        };
        let Some(token) = &self.token else {
            return Ok(pb::LeaderboardResponse::default());
        };
        let checkpoint = self.store.indexed(token).await?;
        let sellers = self.store.top_sellers(token, top).await?;
        let (through, head) = checkpoint.map_or((0, 0), |c| (c.through_block, c.head_block));
        Ok(pb::LeaderboardResponse {
            sellers,
            asset: token.asset.clone(),
            network: token.network.clone(),
            indexed_through_block: u64::try_from(through).unwrap_or(0),
            chain_head_block: u64::try_from(head).unwrap_or(0),
        })
    }
}

#[tonic::async_trait]
impl StatsService for Stats {
    async fn record_calls(
        &self,
        request: Request<pb::RecordCallsRequest>,
    ) -> Result<Response<pb::RecordCallsResponse>, Status> {
        let recorded = self
            .record(request.into_inner().events)
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(pb::RecordCallsResponse { recorded }))
    }

    async fn summary(
        &self,
        _request: Request<pb::SummaryRequest>,
    ) -> Result<Response<pb::SummaryResponse>, Status> {
        Ok(Response::new(
            Stats::summary(self).await.map_err(|e| e.to_status())?,
        ))
    }

    async fn leaderboard(
        &self,
        request: Request<pb::LeaderboardRequest>,
    ) -> Result<Response<pb::LeaderboardResponse>, Status> {
        Ok(Response::new(
            Stats::leaderboard(self, request.into_inner().top)
                .await
                .map_err(|e| e.to_status())?,
        ))
    }
}
