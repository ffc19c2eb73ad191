//! The leaderboard indexer: reads the asset's `Transfer` and EIP-3009
//! `AuthorizationUsed` logs through the chain's JSON-RPC, in ranges of at
//! most `STATS_BLOCK_RANGE` blocks from the checkpoint up to the head less
//! `STATS_CONFIRMATIONS`, and counts each range's x402 payments (the
//! transfers of a `transferWithAuthorization`, [`payments`]) by recipient
//! with the checkpoint in one transaction ([`StatsStore::advance`]).
//!
//! A node refusing a range as too large is asked for half of it, and the
//! width grows back after ranges it answers ([`width`]); any other failure
//! ends the pass. Each pass runs to the head, then the indexer sleeps
//! `STATS_INDEX_SECONDS`; it stops on shutdown, between two ranges.

pub mod payments;
pub mod width;

use crate::config::ChainConfig;
use crate::store::sellers::Token;
use crate::store::StatsStore;
use alloy::network::Ethereum;
use alloy::primitives::Address;
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::client::ClientBuilder;
use alloy::rpc::types::{Filter, Log};
use alloy::transports::http::reqwest;
use alloy::transports::TransportError;
use std::time::Duration;
use tessera_error::Error;
use tessera_runtime::dependency::{self, Dependency};
use tessera_runtime::Shutdown;

pub use payments::tally;
use width::{is_range_refusal, RangeWidth};

/// How long one JSON-RPC request may take.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Ranges this indexer counted (each one `eth_getLogs` answered).
    pub ranges: u32,
    /// The last block counted (-1: none yet).
    pub through_block: i64,
    /// The chain head this pass saw.
    pub chain_head: u64,
}

/// Indexes one token's x402 payments into a [`StatsStore`].
#[derive(Debug, Clone)]
pub struct Indexer {
    store: StatsStore,
    token: Token,
    asset: Address,
    chain: ChainConfig,
    provider: RootProvider<Ethereum>,
}

fn chain_unavailable(what: &str, error: impl std::fmt::Display) -> Error {
    Error::unavailable(
        "STATS_CHAIN_UNAVAILABLE",
        format!("the chain RPC did not answer {what}: {error}"),
    )
}

/// The token of `chain`.
pub fn token_of(chain: &ChainConfig) -> Token {
    Token {
        network: chain.network.clone(),
        asset: chain.asset.to_ascii_lowercase(),
    }
}

impl Indexer {
    /// No request is made here.
    pub fn new(store: StatsStore, chain: &ChainConfig) -> anyhow::Result<Self> {
        let asset: Address = chain
            .asset
            .parse()
            .map_err(|e| anyhow::anyhow!("STATS_ASSET {:?}: {e}", chain.asset))?;
        let url: reqwest::Url = chain
            .rpc_url
            .parse()
            .map_err(|e| anyhow::anyhow!("STATS_RPC_URL {:?}: {e}", chain.rpc_url))?;
        let client = reqwest::Client::builder()
            .timeout(RPC_TIMEOUT)
            .connect_timeout(RPC_TIMEOUT)
            .build()?;
        Ok(Indexer {
            store,
            token: token_of(chain),
            asset,
            chain: chain.clone(),
            provider: RootProvider::new(ClientBuilder::default().http_with_client(client, url)),
        })
    }

    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Counts every confirmed block not counted yet, a range at a time.
    pub async fn catch_up(&self, shutdown: &Shutdown) -> Result<Pass, Error> {
        let chain_head = dependency::call(
            Dependency::Chain,
            "eth_blockNumber",
            self.provider.get_block_number(),
        )
        .await
        .map_err(|e| chain_unavailable("eth_blockNumber", e))?;
        self.store.seen_head(&self.token, chain_head).await?;
        // The last confirmed block; -1 while none is.
        let last = chain_head
            .checked_sub(self.chain.confirmations)
            .map_or(-1, |block| i64::try_from(block).unwrap_or(i64::MAX));
        let mut after = self
            .store
            .checkpoint(&self.token, self.chain.from_block)
            .await?
            .through_block;
        let mut width = RangeWidth::new(self.chain.block_range);
        let mut ranges = 0;
        while after < last && !shutdown.is_triggered() {
            let from = (after + 1) as u64;
            let to = (from + width.blocks() - 1).min(last as u64);
            let logs = match self.logs(from, to).await {
                Ok(logs) => logs,
                Err(error) if is_range_refusal(&error) => {
                    if !width.narrow(from, to) {
                        return Err(Error::unavailable(
                            "STATS_CHAIN_UNAVAILABLE",
                            format!(
                                "the chain RPC refused the logs of block {from} alone: {error}"
                            ),
                        ));
                    }
                    tracing::warn!(%from, %to, %error, "eth_getLogs refused the range; asking for half of it");
                    continue;
                }
                Err(error) => return Err(chain_unavailable("eth_getLogs", error)),
            };
            width.widen();
            let received = tally(self.asset, &logs);
            if self
                .store
                .advance(&self.token, after, to, chain_head, &received)
                .await?
            {
                ranges += 1;
                after = to as i64;
            } else {
                // Another indexer on this store counted it: carry on from there.
                after = self
                    .store
                    .checkpoint(&self.token, self.chain.from_block)
                    .await?
                    .through_block;
            }
        }
        Ok(Pass {
            ranges,
            through_block: after,
            chain_head,
        })
    }

    /// The token's `Transfer` and `AuthorizationUsed` logs of `from..=to`.
    async fn logs(&self, from: u64, to: u64) -> Result<Vec<Log>, TransportError> {
        let filter = Filter::new()
            .address(self.asset)
            .event_signature(payments::EVENTS.to_vec())
            .from_block(from)
            .to_block(to);
        dependency::call(
            Dependency::Chain,
            "eth_getLogs",
            self.provider.get_logs(&filter),
        )
        .await
    }

    /// Passes every `STATS_INDEX_SECONDS` until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) {
        tracing::info!(
            network = %self.token.network,
            asset = %self.token.asset,
            from_block = self.chain.from_block,
            block_range = self.chain.block_range,
            "leaderboard indexer started"
        );
        loop {
            match self.catch_up(&shutdown).await {
                Ok(pass) if pass.ranges > 0 => tracing::debug!(?pass, "leaderboard indexed"),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(reason = %error.reason, "leaderboard indexer: {}", error.message)
                }
            }
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(self.chain.index_every) => {}
            }
        }
        tracing::info!("leaderboard indexer stopped");
    }
}
