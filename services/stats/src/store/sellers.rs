//! The seller leaderboard: per token (network, asset), each recipient's
//! volume and transfer count, and the checkpoint they are counted through.
//!
//! A range of blocks is counted by [`StatsStore::advance`]: the checkpoint
//! moves from exactly the block the indexer started after to the range's
//! end, and the sellers' sums grow, in one transaction. A crash before the
//! commit counts nothing (the range is read again); after it, the range is
//! never read again. Two indexers on one database (two replicas) cannot
//! both count a range: the second finds the checkpoint moved and counts
//! nothing.

use super::{db_error, on_db, StatsStore};
use alloy::primitives::U256;
use std::collections::BTreeMap;
use tessera_error::Error;
use tessera_proto::stats::v1 as pb;

/// Digits of the largest U256: every volume is kept this wide.
const VOLUME_DIGITS: usize = 78;

/// The token a leaderboard counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token {
    /// CAIP-2.
    pub network: String,
    /// 0x-prefixed, lowercase.
    pub asset: String,
}

/// What one range adds to a seller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    pub volume: U256,
    pub transactions: u64,
}

/// How far a token is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last block counted; -1: none yet (indexing starts at block 0).
    pub through_block: i64,
    /// The highest chain head the indexer saw.
    pub head_block: i64,
}

fn padded(volume: U256) -> String {
    let digits = volume.to_string();
    format!("{digits:0>VOLUME_DIGITS$}")
}

fn unpadded(text: &str) -> String {
    let digits = text.trim_start_matches('0');
    if digits.is_empty() { "0" } else { digits }.to_string()
}

fn block(number: u64) -> i64 {
    i64::try_from(number).unwrap_or(i64::MAX)
}

const START: &str = "
INSERT INTO stats_checkpoints (network, asset, through_block, head_block)
VALUES ($1, $2, $3, 0) ON CONFLICT (network, asset) DO NOTHING";

const CHECKPOINT: &str = "
SELECT through_block, head_block FROM stats_checkpoints WHERE network = $1 AND asset = $2";

const MOVE_CHECKPOINT: &str = "
UPDATE stats_checkpoints SET through_block = $3,
    head_block = CASE WHEN $4 > head_block THEN $4 ELSE head_block END
WHERE network = $1 AND asset = $2 AND through_block = $5";

const SEEN_HEAD: &str = "
UPDATE stats_checkpoints SET head_block = $3
WHERE network = $1 AND asset = $2 AND head_block < $3";

const SELLER: &str = "
SELECT volume, transactions FROM stats_sellers
WHERE network = $1 AND asset = $2 AND pay_to = $3";

const PUT_SELLER: &str = "
INSERT INTO stats_sellers (network, asset, pay_to, volume, transactions)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (network, asset, pay_to) DO UPDATE SET
    volume = excluded.volume, transactions = excluded.transactions";

const TOP: &str = "
SELECT pay_to, volume, transactions FROM stats_sellers
WHERE network = $1 AND asset = $2 ORDER BY volume DESC, pay_to LIMIT $3";

impl StatsStore {
    /// `token`'s checkpoint, created at `from_block - 1` the first time
    /// (a stored checkpoint wins over a changed `from_block`).
    pub async fn checkpoint(&self, token: &Token, from_block: u64) -> Result<Checkpoint, Error> {
        on_db!(&self.db, "stats_checkpoint", pool => {
            sqlx::query(START)
                .bind(&token.network)
                .bind(&token.asset)
                .bind(block(from_block) - 1)
                .execute(pool)
                .await
                .map_err(db_error)?;
            let (through_block, head_block): (i64, i64) = sqlx::query_as(CHECKPOINT)
                .bind(&token.network)
                .bind(&token.asset)
                .fetch_one(pool)
                .await
                .map_err(db_error)?;
            Ok(Checkpoint { through_block, head_block })
        })
    }

    /// `token`'s checkpoint, None before its indexer first ran.
    pub async fn indexed(&self, token: &Token) -> Result<Option<Checkpoint>, Error> {
        on_db!(&self.db, "stats_indexed", pool => {
            let row: Option<(i64, i64)> = sqlx::query_as(CHECKPOINT)
                .bind(&token.network)
                .bind(&token.asset)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?;
            Ok(row.map(|(through_block, head_block)| Checkpoint { through_block, head_block }))
        })
    }

    /// Records that the chain head is at least `head`.
    pub async fn seen_head(&self, token: &Token, head: u64) -> Result<(), Error> {
        on_db!(&self.db, "stats_seen_head", pool => {
            sqlx::query(SEEN_HEAD)
                .bind(&token.network)
                .bind(&token.asset)
                .bind(block(head))
                .execute(pool)
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }

    /// Counts the blocks after `after` through `through`, which paid
    /// `received`, and moves the checkpoint there, in one transaction.
    /// `false` (nothing counted) when the checkpoint is no longer at
    /// `after`: another indexer counted the range.
    pub async fn advance(
        &self,
        token: &Token,
        after: i64,
        through: u64,
        head: u64,
        received: &BTreeMap<String, Received>,
    ) -> Result<bool, Error> {
        on_db!(&self.db, "stats_advance", pool => {
            let mut tx = pool.begin().await.map_err(db_error)?;
            // First, so the transaction holds the write lock (SQLite) or the
            // checkpoint's row (PostgreSQL) before it reads a seller.
            let moved = sqlx::query(MOVE_CHECKPOINT)
                .bind(&token.network)
                .bind(&token.asset)
                .bind(block(through))
                .bind(block(head))
                .bind(after)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?
                .rows_affected();
            if moved != 1 {
                return Ok(false);
            }
            for (pay_to, more) in received {
                let known: Option<(String, i64)> = sqlx::query_as(SELLER)
                    .bind(&token.network)
                    .bind(&token.asset)
                    .bind(pay_to)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let (volume, transactions) = match known {
                    Some((volume, transactions)) => (
                        U256::from_str_radix(&volume, 10).map_err(|e| {
                            Error::internal(format!("stats_sellers volume {volume:?}: {e}"))
                        })?,
                        u64::try_from(transactions).unwrap_or(0),
                    ),
                    None => (U256::ZERO, 0),
                };
                sqlx::query(PUT_SELLER)
                    .bind(&token.network)
                    .bind(&token.asset)
                    .bind(pay_to)
                    .bind(padded(volume.saturating_add(more.volume)))
                    .bind(block(transactions.saturating_add(more.transactions)))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        })
    }

    /// `token`'s `top` sellers, most volume first (ties by address).
    pub async fn top_sellers(&self, token: &Token, top: u32) -> Result<Vec<pb::Seller>, Error> {
        on_db!(&self.db, "stats_top_sellers", pool => {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(TOP)
                .bind(&token.network)
                .bind(&token.asset)
                .bind(i64::from(top))
                .fetch_all(pool)
                .await
                .map_err(db_error)?;
            Ok(rows
                .into_iter()
                .map(|(pay_to, volume, transactions)| pb::Seller {
                    pay_to,
                    volume: unpadded(&volume),
                    transactions: u64::try_from(transactions).unwrap_or(0),
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_sort_as_text_like_numbers() {
        let small = padded(U256::from(999u64));
        let large = padded(U256::from(1000u64));
        assert_eq!(small.len(), VOLUME_DIGITS);
        assert_eq!(padded(U256::MAX).len(), VOLUME_DIGITS);
        assert!(small < large);
        assert_eq!(unpadded(&large), "1000");
        assert_eq!(unpadded(&padded(U256::ZERO)), "0");
    }
}
