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
//! payer), so a burst costs one `balanceOf` per payer per `max_age`. A
//! reading past half of `max_age` is still served, and read again behind
//! the call: a payer calling steadily never waits for the chain, which
//! answers slowest while it mines a block (about 100 ms on anvil in the
//! batch-100 bench, against a few for the ledger). A reading is only ever
//! replaced by one taken after it.

use alloy::primitives::{Address, U256};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

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
    /// The reading, and when its read started.
    read: Option<(Reading, Instant)>,
    /// When the read behind the calls that is running started. One older
    /// than `max_age` no longer holds back another: its task may have been
    /// dropped (at shutdown) or hung, and its reading would be replaced
    /// anyway.
    refreshing: Option<Instant>,
}

impl Slot {
    /// Keeps `reading`, whose read started at `started`, unless the slot
    /// holds a newer one.
    fn keep(&mut self, reading: Reading, started: Instant) {
        if self.read.is_none_or(|(_, at)| at < started) {
            self.read = Some((reading, started));
        }
    }
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

    /// The payer's reading: a cached one younger than `max_age` (past half
    /// of it, `read()` runs behind the call for the next ones), else
    /// `read()` (which reads the ledger's `settled_total`, then the chain)
    /// stored for the next calls. A failed read is not stored.
    pub async fn get<F, Fut, E>(&self, payer: Address, read: F) -> Result<(Reading, Source), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Reading, E>> + Send + 'static,
        E: Send + 'static,
    {
        let shared = self.slot(payer);
        let mut slot = shared.lock().await;
        if let Some((reading, at)) = slot.read {
            let age = at.elapsed();
            if age < self.max_age {
                let refresh_running = slot
                    .refreshing
                    .is_some_and(|since| since.elapsed() < self.max_age);
                if age >= self.max_age / 2 && !refresh_running {
                    let started = Instant::now();
                    slot.refreshing = Some(started);
                    let reading = read();
                    let refreshed = shared.clone();
                    tokio::spawn(async move {
                        let read = reading.await;
                        let mut slot = refreshed.lock().await;
                        if slot.refreshing == Some(started) {
                            slot.refreshing = None;
                        }
                        if let Ok(reading) = read {
                            slot.keep(reading, started);
                        }
                    });
                }
                return Ok((reading, Source::Cache));
            }
        }
        let started = Instant::now();
        let reading = read().await?;
        slot.keep(reading, started);
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
        let reads = Arc::new(AtomicUsize::new(0));
        let payer = Address::repeat_byte(1);
        let read = || slow_read(&reads, 5, Duration::ZERO);
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

    /// A read of the chain that answers `balance` after `takes`, counted.
    fn slow_read(
        reads: &Arc<AtomicUsize>,
        balance: u64,
        takes: Duration,
    ) -> impl Future<Output = Result<Reading, ()>> + Send + 'static {
        let reads = reads.clone();
        async move {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(takes).await;
            Ok(reading(balance))
        }
    }

    /// The payer's reading, any read it makes answering `balance` at once.
    async fn get_quick(
        balances: &Balances,
        payer: Address,
        reads: &Arc<AtomicUsize>,
        balance: u64,
    ) -> (Reading, Source) {
        balances
            .get(payer, || slow_read(reads, balance, Duration::ZERO))
            .await
            .unwrap()
    }

    /// Readings kept for a second, a read counter, and a payer.
    fn one_second_max_age(payer: u8) -> (Balances, Arc<AtomicUsize>, Address) {
        let balances = Balances::new(Duration::from_millis(1000));
        (
            balances,
            Arc::new(AtomicUsize::new(0)),
            Address::repeat_byte(payer),
        )
    }

    /// [`one_second_max_age`] with the payer's balance, 1, read at once.
    async fn read_once_at_one_second_max_age(payer: u8) -> (Balances, Arc<AtomicUsize>, Address) {
        let (balances, reads, payer) = one_second_max_age(payer);
        get_quick(&balances, payer, &reads, 1).await;
        (balances, reads, payer)
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_payer_is_served_from_readings_refreshed_behind_its_calls() {
        let (balances, reads, payer) = one_second_max_age(4);
        let read = |balance| slow_read(&reads, balance, Duration::from_millis(100));
        assert_eq!(
            balances.get(payer, || read(1)).await.unwrap(),
            (reading(1), Source::Chain)
        );
        // Under half its age (its read started 400 ms ago): served,
        // nothing read.
        tokio::time::advance(Duration::from_millis(300)).await;
        assert_eq!(
            balances.get(payer, || read(2)).await.unwrap(),
            (reading(1), Source::Cache)
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Past half: still served at once, and read again behind the call,
        // once however many calls come meanwhile.
        tokio::time::advance(Duration::from_millis(200)).await;
        for _ in 0..3 {
            assert_eq!(
                balances.get(payer, || read(3)).await.unwrap(),
                (reading(1), Source::Cache)
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // Past the first reading's age, the refreshed one serves: the call
        // does not wait for the chain.
        tokio::time::advance(Duration::from_millis(350)).await;
        assert_eq!(
            balances.get(payer, || read(4)).await.unwrap(),
            (reading(3), Source::Cache)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_never_replaces_a_reading_taken_after_it_started() {
        let (balances, reads, payer) = read_once_at_one_second_max_age(5).await;
        // At 600 ms a refresh starts that takes 700 ms.
        tokio::time::advance(Duration::from_millis(600)).await;
        let (_, source) = balances
            .get(payer, || slow_read(&reads, 99, Duration::from_millis(700)))
            .await
            .unwrap();
        assert_eq!(source, Source::Cache);
        // (The refresh starts once this task waits.)
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // At 1.1 s the first reading is too old: read in the call.
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(
            get_quick(&balances, payer, &reads, 2).await,
            (reading(2), Source::Chain)
        );
        // At 1.3 s the slow refresh (started at 600 ms) ends: the reading of
        // 1.1 s stays.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (served, _) = get_quick(&balances, payer, &reads, 3).await;
        assert_eq!(served, reading(2));
        assert_eq!(reads.load(Ordering::SeqCst), 3, "nothing else was read");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_that_never_ends_does_not_hold_back_the_next_one() {
        let (balances, reads, payer) = read_once_at_one_second_max_age(6).await;
        // At 600 ms a refresh starts that never answers.
        tokio::time::advance(Duration::from_millis(600)).await;
        let (_, source) = balances
            .get(payer, std::future::pending::<Result<Reading, ()>>)
            .await
            .unwrap();
        assert_eq!(source, Source::Cache);
        // At 1.1 s the reading is too old: read in the call.
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(
            get_quick(&balances, payer, &reads, 2).await,
            (reading(2), Source::Chain)
        );
        // At 1.7 s that reading is past half its age, and the hung refresh
        // is older than max_age: a new one runs behind the call...
        tokio::time::advance(Duration::from_millis(600)).await;
        let (served, _) = get_quick(&balances, payer, &reads, 3).await;
        assert_eq!(served, reading(2));
        tokio::time::sleep(Duration::from_millis(10)).await;
        // ...so at 2.2 s its reading serves, and the call does not wait.
        tokio::time::advance(Duration::from_millis(490)).await;
        assert_eq!(
            get_quick(&balances, payer, &reads, 4).await,
            (reading(3), Source::Cache)
        );
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
                        .get(payer, || slow_read(&reads, 7, Duration::from_millis(20)))
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
