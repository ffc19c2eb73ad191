//! The leaderboard indexer: reads the asset's `Transfer(address,address,
//! uint256)` logs through the chain's JSON-RPC, in ranges of at most
//! `STATS_BLOCK_RANGE` blocks from the checkpoint up to the head less
//! `STATS_CONFIRMATIONS`, and counts each range's transfers by recipient
//! with the checkpoint in one transaction ([`StatsStore::advance`]).
//!
//! Mints (from the zero address) and burns (to it) are not payments and are
//! not counted; nor are logs a node marks `removed` (reorged out). A node
//! refusing a range (too many logs) is asked again for half of it, down to
//! one block. Each pass runs to the head, then the indexer sleeps
//! `STATS_INDEX_SECONDS`; it stops on shutdown, between two ranges.

use crate::config::ChainConfig;
use crate::store::sellers::{Received, Token};
use crate::store::StatsStore;
use alloy::network::Ethereum;
use alloy::primitives::Address;
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::client::ClientBuilder;
use alloy::rpc::types::{Filter, Log};
use alloy::sol;
use alloy::sol_types::SolEvent;
use alloy::transports::http::reqwest;
use std::collections::BTreeMap;
use std::time::Duration;
use tessera_error::Error;
use tessera_runtime::Shutdown;

/// How long one JSON-RPC request may take.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

sol! {
    /// ERC-20's transfer event (USDC's, and every EIP-3009 token's).
    event Transfer(address indexed from, address indexed to, uint256 value);
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Ranges this indexer counted (each one `eth_getLogs`).
    pub ranges: u32,
    /// The last block counted (-1: none yet).
    pub through_block: i64,
    /// The chain head this pass saw.
    pub chain_head: u64,
}

/// Indexes one token's transfers into a [`StatsStore`].
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
        let chain_head = self
            .provider
            .get_block_number()
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
        let mut width = self.chain.block_range.max(1);
        let mut ranges = 0;
        while after < last && !shutdown.is_triggered() {
            let from = (after + 1) as u64;
            let to = (from + width - 1).min(last as u64);
            let logs = match self.logs(from, to).await {
                Ok(logs) => logs,
                Err(error) if width > 1 => {
                    tracing::warn!(%from, %to, %error, "eth_getLogs failed; asking for half the range");
                    width = (width / 2).max(1);
                    continue;
                }
                Err(error) => return Err(chain_unavailable("eth_getLogs", error)),
            };
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

    async fn logs(&self, from: u64, to: u64) -> Result<Vec<Log>, String> {
        let filter = Filter::new()
            .address(self.asset)
            .event_signature(Transfer::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        self.provider
            .get_logs(&filter)
            .await
            .map_err(|e| e.to_string())
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

/// `logs`' transfers of `asset` summed by recipient (0x, lowercase),
/// without mints, burns and removed logs.
pub fn tally(asset: Address, logs: &[Log]) -> BTreeMap<String, Received> {
    let mut received: BTreeMap<String, Received> = BTreeMap::new();
    for log in logs {
        if log.removed || log.address() != asset {
            continue;
        }
        let Ok(transfer) = log.log_decode::<Transfer>() else {
            tracing::debug!(?log, "not an ERC-20 Transfer log; skipped");
            continue;
        };
        let Transfer { from, to, value } = transfer.inner.data;
        if from == Address::ZERO || to == Address::ZERO {
            continue;
        }
        let seller = received.entry(alloy::hex::encode_prefixed(to)).or_default();
        seller.volume = seller.volume.saturating_add(value);
        seller.transactions += 1;
    }
    received
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, U256};

    fn transfer_log(asset: Address, from: Address, to: Address, value: u64) -> Log {
        let event = Transfer {
            from,
            to,
            value: U256::from(value),
        };
        Log {
            inner: alloy::primitives::Log {
                address: asset,
                data: event.encode_log_data(),
            },
            ..Log::default()
        }
    }

    #[test]
    fn transfers_are_summed_by_recipient_without_mints_burns_or_other_tokens() {
        let asset = address!("0x1111111111111111111111111111111111111111");
        let other = address!("0x2222222222222222222222222222222222222222");
        let payer = address!("0x3333333333333333333333333333333333333333");
        let seller = address!("0xABCDEFabcdefABCDEFabcdefABCDEFabcdefABCD");
        let mut removed = transfer_log(asset, payer, seller, 1000);
        removed.removed = true;
        let logs = [
            transfer_log(asset, payer, seller, 5),
            transfer_log(asset, payer, seller, 7),
            transfer_log(asset, Address::ZERO, seller, 1_000_000),
            transfer_log(asset, seller, Address::ZERO, 3),
            transfer_log(other, payer, seller, 100),
            removed,
        ];
        let received = tally(asset, &logs);
        assert_eq!(received.len(), 1);
        assert_eq!(
            received["0xabcdefabcdefabcdefabcdefabcdefabcdefabcd"],
            Received {
                volume: U256::from(12u64),
                transactions: 2
            }
        );
    }
}
