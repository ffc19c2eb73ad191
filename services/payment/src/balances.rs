//! Payer balances recently read from the chain, for verifications of calls
//! whose settlement comes later (`settle_later`).
//!
//! The exposure bound judges
//! `outstanding + (settled_total − settled_before) + amount ≤ balance`,
//! where `settled_before` is the ledger's
//! `settled_total` read *before* the balance. A cached entry keeps the pair
//! it was read with, so settlements recorded since the read are still
//! subtracted: a cached balance is never more generous than a fresh one
//! because of our own settlements. What it can miss, for at most `max_age`,
//! is the payer spending elsewhere, the exposure an operator accepts with
//! `PAYMENT_BALANCE_MAX_AGE_MS`, and a top-up, which a refusal re-reads
//! before answering.
//!
//! Concurrent calls of one payer wait for one chain read (one lock per
//! payer), so a burst costs one `balanceOf` per payer per `max_age`.

use alloy::primitives::{Address, U256};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries kept before stale ones are swept.
const SWEEP_ABOVE: usize = 100_000;

/// A balance and the ledger's `settled_total` read just before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub balance: U256,
    pub settled_before: U256,
}

#[derive(Debug, Default)]
struct Slot {
    read: Option<(Reading, Instant)>,
}

/// Per-payer readings, each used for at most `max_age`.
#[derive(Debug)]
pub struct Balances {
    max_age: Duration,
    slots: Mutex<HashMap<Address, Arc<tokio::sync::Mutex<Slot>>>>,
}

/// Where a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Chain,
}

impl Balances {
    pub fn new(max_age: Duration) -> Self {
        Balances {
            max_age,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The payer's reading: a cached one younger than `max_age`, else
    /// `read()` (which reads the ledger's `settled_total`, then the chain)
    /// stored for the next calls. A failed read is not stored.
    pub async fn get<F, Fut, E>(&self, payer: Address, read: F) -> Result<(Reading, Source), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Reading, E>>,
    {
        let slot = self.slot(payer);
        let mut slot = slot.lock().await;
        if let Some((reading, at)) = slot.read {
            if at.elapsed() < self.max_age {
                return Ok((reading, Source::Cache));
            }
        }
        let started = Instant::now();
        let reading = read().await?;
        slot.read = Some((reading, started));
        Ok((reading, Source::Chain))
    }

    /// Forgets the payer's reading (after it refused a call: the next
    /// reading is fresh, so a top-up is seen at once).
    pub fn forget(&self, payer: Address) {
        self.slots.lock().expect("not poisoned").remove(&payer);
    }

    fn slot(&self, payer: Address) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().expect("not poisoned");
        if slots.len() >= SWEEP_ABOVE {
            let max_age = self.max_age;
            slots.retain(|_, slot| match slot.try_lock() {
                Ok(slot) => slot.read.is_some_and(|(_, at)| at.elapsed() < max_age),
                Err(_) => true,
            });
        }
        slots.entry(payer).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn reading(balance: u64) -> Reading {
        Reading {
            balance: U256::from(balance),
            settled_before: U256::ZERO,
        }
    }

    #[tokio::test]
    async fn a_reading_is_reused_until_it_is_too_old() {
        let balances = Balances::new(Duration::from_millis(200));
        let reads = AtomicUsize::new(0);
        let payer = Address::repeat_byte(1);
        let read = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(reading(5))
        };
        assert_eq!(
            balances.get(payer, read).await.unwrap(),
            (reading(5), Source::Chain)
        );
        assert_eq!(
            balances.get(payer, read).await.unwrap(),
            (reading(5), Source::Cache)
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(220)).await;
        assert_eq!(balances.get(payer, read).await.unwrap().1, Source::Chain);
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        balances.forget(payer);
        assert_eq!(balances.get(payer, read).await.unwrap().1, Source::Chain);
    }

    #[tokio::test]
    async fn concurrent_calls_of_one_payer_share_one_read_and_failures_are_not_kept() {
        let balances = Arc::new(Balances::new(Duration::from_secs(60)));
        let reads = Arc::new(AtomicUsize::new(0));
        let payer = Address::repeat_byte(2);
        let failed = balances
            .get(payer, || async { Err::<Reading, _>("rpc down") })
            .await;
        assert_eq!(failed, Err("rpc down"));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (balances, reads) = (balances.clone(), reads.clone());
                tokio::spawn(async move {
                    balances
                        .get(payer, || async {
                            reads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ()>(reading(7))
                        })
                        .await
                        .unwrap()
                        .0
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), reading(7));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let other = Address::repeat_byte(3);
        let (_, source) = balances
            .get(other, || async { Ok::<_, ()>(reading(1)) })
            .await
            .unwrap();
        assert_eq!(source, Source::Chain, "payers do not share readings");
    }
}
