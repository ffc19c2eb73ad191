//! Transaction nonces of the settling keys.
//!
//! Every settlement is a transaction from one key, and each needs the next
//! account nonce: two settles that read the chain's count at the same moment
//! would send two transactions with the same nonce, and one would be lost.
//! So allocation is serialized: a mutex holds "the next nonce", and the
//! transaction is signed and handed to the node *inside* the lock. The lock
//! is released as soon as the node has accepted it (not when it is mined),
//! so concurrent settles queue only for the submission round trip.
//!
//! **Why no database.** The chain is the record. At start, and after any
//! failed submission, the next nonce is read from
//! `eth_getTransactionCount(address, "pending")`, which counts the mined
//! transactions and those the node holds in its pool. A facilitator that
//! restarts therefore continues after the transactions its predecessor sent,
//! mined or still pending. A transaction that was never accepted (the send
//! failed) left no trace, and the re-sync reuses its nonce, which is exactly
//! right: a stored counter would have to be corrected from the chain in the
//! same way, so it adds nothing but a second source of truth. What a store
//! could add, idempotency of *payments*, is already on chain: a settled
//! EIP-3009 authorization's nonce is spent, so replaying it reverts (and the
//! payment service keeps the ledger).
//!
//! **Several keys** (`FACILITATOR_PRIVATE_KEY` and
//! `FACILITATOR_PRIVATE_KEYS`): each has its own allocator, synced from its
//! own pending count at start, so each key's nonces are sequential on their
//! own. When batching ([`crate::batch`]), a key's one worker sends its
//! batches one after another through its allocator (several may then await
//! their receipts at once, `FACILITATOR_BATCHES_IN_FLIGHT`, but the next
//! batch is allocated only once the previous send is answered); otherwise
//! concurrent settles share the allocators of the keys they are given in
//! turn.
//!
//! **Several transactions in flight.** A send refused while earlier ones of
//! the key are still in the pool re-syncs to the pending count, which counts
//! those (they are pooled) and not the refused one: the refused nonce is
//! reused, no gap. A send whose answer was lost re-syncs too: the count
//! says whether the node took it. A transaction with no receipt in time
//! makes the next send re-sync as well ([`NonceAllocator::resync`]): if the
//! node dropped it from its pool, the count falls back to its nonce and the
//! gap that would hold up every later transaction of the key is filled; if
//! not, nothing changes.
//!
//! **Limits.** One process per key. Two replicas sharing a key collide on
//! nonces; the loser's node answers "nonce too low" / "already known",
//! which re-syncs and retries (see [`is_nonce_conflict`]), so they still
//! work, but give each replica its own key. A node that loses its pool (a
//! restart) drops pending transactions; the next failed send re-syncs.

use tokio::sync::Mutex;

/// Serializes nonce allocation for one sending address.
#[derive(Debug)]
pub struct NonceAllocator {
    /// `None` = unknown: read from the chain before the next use.
    next: Mutex<Option<u64>>,
}

impl NonceAllocator {
    /// Starts from `next` (the chain's pending transaction count).
    pub fn new(next: u64) -> Self {
        NonceAllocator {
            next: Mutex::new(Some(next)),
        }
    }

    /// Makes the next submission read the chain's pending count first
    /// (after a transaction of this key got no receipt in time).
    pub async fn resync(&self) {
        *self.next.lock().await = None;
    }

    /// The nonce the next submission gets, if known.
    pub async fn peek(&self) -> Option<u64> {
        *self.next.lock().await
    }

    /// Runs `submit` with the next nonce while holding the allocation lock.
    ///
    /// - `sync` reads the chain's pending count; it runs when the next
    ///   nonce is unknown (after a failure).
    /// - On success the nonce is consumed.
    /// - On failure the next nonce becomes unknown, so the following call
    ///   re-syncs from the chain (the failed nonce may or may not have been
    ///   used; only the chain knows).
    pub async fn submit<T, E, S, SF, F, FF>(&self, sync: S, submit: F) -> Result<(u64, T), E>
    where
        S: FnOnce() -> SF,
        SF: std::future::Future<Output = Result<u64, E>>,
        F: FnOnce(u64) -> FF,
        FF: std::future::Future<Output = Result<T, E>>,
    {
        let mut next = self.next.lock().await;
        let nonce = match *next {
            Some(nonce) => nonce,
            None => {
                let synced = sync().await?;
                tracing::info!(nonce = synced, "settlement nonce re-synced from chain");
                *next = Some(synced);
                synced
            }
        };
        match submit(nonce).await {
            Ok(value) => {
                *next = Some(nonce + 1);
                Ok((nonce, value))
            }
            Err(error) => {
                *next = None;
                Err(error)
            }
        }
    }
}

/// Whether a node's rejection of a raw transaction means our nonce was
/// stale (someone else used it), so a re-sync and a new attempt can succeed.
/// The spellings of geth, reth, anvil and the public RPC proxies.
pub fn is_nonce_conflict(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "nonce too low",
        "already known",
        "replacement transaction underpriced",
        "nonce has already been used",
        "invalid nonce",
        "known transaction",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_submissions_get_distinct_consecutive_nonces() {
        let allocator = Arc::new(NonceAllocator::new(7));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let allocator = allocator.clone();
                tokio::spawn(async move {
                    allocator
                        .submit(
                            || async { Ok::<u64, ()>(0) },
                            |nonce| async move {
                                tokio::task::yield_now().await;
                                Ok::<u64, ()>(nonce)
                            },
                        )
                        .await
                        .unwrap()
                        .0
                })
            })
            .collect();
        let mut nonces = Vec::new();
        for task in tasks {
            nonces.push(task.await.unwrap());
        }
        nonces.sort_unstable();
        assert_eq!(nonces, (7..57).collect::<Vec<_>>());
        assert_eq!(allocator.peek().await, Some(57));
    }

    #[tokio::test]
    async fn a_failed_submission_resyncs_from_the_chain() {
        let allocator = NonceAllocator::new(3);
        let failed = allocator
            .submit(|| async { Ok(0) }, |_| async { Err::<(), _>("rejected") })
            .await;
        assert_eq!(failed, Err("rejected"));
        assert_eq!(allocator.peek().await, None);

        let chain_count = AtomicU64::new(3);
        let (nonce, ()) = allocator
            .submit(
                || async { Ok::<_, &str>(chain_count.fetch_add(0, Ordering::SeqCst)) },
                |_| async { Ok(()) },
            )
            .await
            .unwrap();
        assert_eq!(nonce, 3);
        assert_eq!(allocator.peek().await, Some(4));
    }

    #[tokio::test]
    async fn resync_makes_the_next_submission_read_the_chain() {
        let allocator = NonceAllocator::new(5);
        allocator.resync().await;
        assert_eq!(allocator.peek().await, None);
        // The chain says 4: a transaction the allocator counted was dropped.
        let (nonce, ()) = allocator
            .submit(|| async { Ok::<_, ()>(4) }, |_| async { Ok(()) })
            .await
            .unwrap();
        assert_eq!(nonce, 4);
        assert_eq!(allocator.peek().await, Some(5));
    }

    #[test]
    fn nonce_conflicts_are_recognized() {
        assert!(is_nonce_conflict("nonce too low: next nonce 5, tx nonce 4"));
        assert!(is_nonce_conflict("Already known"));
        assert!(!is_nonce_conflict(
            "insufficient funds for gas * price + value"
        ));
    }
}
