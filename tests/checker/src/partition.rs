//! P-compositionality: a history is linearizable iff each key's sub-history
//! is, so each key is checked on its own (and two at a time).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::history::{Indexed, Operation};
use crate::model::Model;
use crate::report::{CheckResult, Report};
use crate::search::check_until;

/// Threads that check keys at once.
const MAX_WORKERS: usize = 2;

/// One key's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyResult<K> {
    pub key: K,
    /// Operations on this key.
    pub operations: usize,
    /// Operations named in a report are indexes into the whole history.
    pub result: CheckResult,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionedResult<K> {
    /// In the order each key first appears in the history.
    pub keys: Vec<KeyResult<K>>,
    pub elapsed: Duration,
}

impl<K> PartitionedResult<K> {
    /// Every key's sub-history is linearizable.
    pub fn is_linearizable(&self) -> bool {
        self.keys.iter().all(|key| key.result.is_linearizable())
    }

    /// The first key (in history order) whose sub-history is not
    /// linearizable, with its report.
    pub fn first_failure(&self) -> Option<(&K, &Report)> {
        self.keys
            .iter()
            .find_map(|key| key.result.report().map(|report| (&key.key, report)))
    }

    /// Keys whose check ran out of time.
    pub fn unknown_keys(&self) -> impl Iterator<Item = &K> {
        self.keys
            .iter()
            .filter(|key| key.result == CheckResult::Unknown)
            .map(|key| &key.key)
    }

    pub fn operations(&self) -> usize {
        self.keys.iter().map(|key| key.operations).sum()
    }
}

impl<K: fmt::Debug> fmt::Display for PartitionedResult<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = format!(
            "{} keys, {} operations, checked in {:?}",
            self.keys.len(),
            self.operations(),
            self.elapsed
        );
        if let Some((key, report)) = self.first_failure() {
            return write!(f, "key {key:?} ({scope}): {report}");
        }
        let unknown: Vec<&K> = self.unknown_keys().collect();
        if unknown.is_empty() {
            write!(f, "linearizable ({scope})")
        } else {
            write!(
                f,
                "unknown ({scope}): the time budget ran out on keys {unknown:?}"
            )
        }
    }
}

/// Checks each key's sub-history of `history` separately, `key_of` naming
/// the key an input touches. `budget` bounds the whole check.
///
/// # Panics
///
/// If an operation returns before it was called.
pub fn check_partitioned<M, K>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    key_of: impl Fn(&M::Input) -> K,
    budget: Duration,
) -> PartitionedResult<K>
where
    M: Model + Sync,
    M::Input: Sync,
    M::Output: Sync,
    K: Hash + Eq + Clone,
{
    let started = Instant::now();
    let mut keys = Vec::new();
    let mut partitions: Vec<Vec<Indexed<'_, M::Input, M::Output>>> = Vec::new();
    let mut partition_of: HashMap<K, usize> = HashMap::new();
    for (index, op) in history.iter().enumerate() {
        let partition = *partition_of
            .entry(key_of(&op.input))
            .or_insert_with_key(|key| {
                keys.push(key.clone());
                partitions.push(Vec::new());
                partitions.len() - 1
            });
        partitions[partition].push((index, op));
    }

    let outcomes = check_all(model, &partitions, started.checked_add(budget));
    let keys = keys
        .into_iter()
        .zip(&partitions)
        .zip(outcomes)
        .map(|((key, ops), (result, elapsed))| KeyResult {
            key,
            operations: ops.len(),
            result,
            elapsed,
        })
        .collect();
    PartitionedResult {
        keys,
        elapsed: started.elapsed(),
    }
}

/// Checks every partition, biggest first so the threads finish together.
fn check_all<M>(
    model: &M,
    partitions: &[Vec<Indexed<'_, M::Input, M::Output>>],
    deadline: Option<Instant>,
) -> Vec<(CheckResult, Duration)>
where
    M: Model + Sync,
    M::Input: Sync,
    M::Output: Sync,
{
    let mut order: Vec<usize> = (0..partitions.len()).collect();
    order.sort_by_key(|&partition| std::cmp::Reverse(partitions[partition].len()));
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        while let Some(&partition) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let started = Instant::now();
            let result = check_until(model, &partitions[partition], deadline);
            done.push((partition, result, started.elapsed()));
        }
        done
    };

    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WORKERS)
        .min(partitions.len());
    let finished = if workers <= 1 {
        work()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                .flat_map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };

    let mut outcomes: Vec<Option<(CheckResult, Duration)>> = vec![None; partitions.len()];
    for (partition, result, elapsed) in finished {
        outcomes[partition] = Some((result, elapsed));
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every partition is checked"))
        .collect()
}
