//! Histories recorded from clients running against an in-process store:
//! a correct one must pass, stores broken on purpose must be caught.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use tessera_checker::memory_model::{key_of, MemoryModel};
use tessera_checker::{check_partitioned, Operation, PartitionedResult};

const SEEDS: [u64; 4] = [1, 2, 3, 4];

/// Checks with the memory model and, if `also_plain`, again without its
/// hints: the plain search must agree.
fn checked(history: &[MemoryOperation], also_plain: bool) -> PartitionedResult<String> {
    let budget = Duration::from_secs(60);
    let result = check_partitioned(&MemoryModel, history, key_of, budget);
    println!("{} operations: {result}", history.len());
    if !also_plain {
        return result;
    }
    let plain = check_partitioned(&PlainMemoryModel, history, key_of, budget);
    println!("without hints: {:?}", plain.elapsed);
    for (hinted, plain) in result.keys.iter().zip(&plain.keys) {
        assert_eq!(
            hinted.result.is_linearizable(),
            plain.result.is_linearizable(),
            "key {}: {} / without hints: {}",
            hinted.key,
            hinted.result,
            plain.result
        );
    }
    result
}

#[track_caller]
fn assert_caught(history: &[MemoryOperation]) {
    let result = checked(history, true);
    assert!(result.first_failure().is_some(), "{result}");
}

fn workload() -> Workload {
    Workload {
        timeout_percent: 2,
        ..Workload::new(10, 300, 3)
    }
}

#[test]
fn a_correct_store_under_random_interleavings_is_linearizable() {
    for seed in SEEDS {
        let history = simulate(&mut CorrectStore::default(), &workload(), seed);
        let indeterminate = history.iter().filter(|op| op.is_indeterminate()).count();
        assert!(indeterminate > 0, "the workload loses some replies");
        // Without hints, unknown outcomes make the search slow (seconds for
        // some seeds): one seed is enough.
        let result = checked(&history, seed == SEEDS[0]);
        assert!(result.is_linearizable(), "seed {seed}: {result}");
    }
}

#[test]
fn a_correct_store_shared_by_threads_is_linearizable() {
    const THREADS: u64 = 8;
    const OPS_PER_THREAD: u64 = 300;
    let keys: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
    let store = Mutex::new(CorrectStore::default());
    let clock = AtomicU64::new(0);
    let history: Vec<MemoryOperation> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (store, clock, keys) = (&store, &clock, &keys);
                scope.spawn(move || {
                    let mut rng = Rng::new(thread);
                    let mut client = Client::default();
                    let mut recorded = Vec::new();
                    for _ in 0..OPS_PER_THREAD {
                        let input = client.next_input(&mut rng, keys);
                        let call = clock.fetch_add(1, Ordering::SeqCst);
                        let output = {
                            let mut store = store.lock().unwrap();
                            store.step(&mut rng, &mut InFlight::new(input.clone()))
                        }
                        .expect("one step");
                        let ret = clock.fetch_add(1, Ordering::SeqCst);
                        client.observe(&input, &output);
                        recorded.push(Operation::completed(thread, input, output, call, ret));
                    }
                    recorded
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect()
    });
    let result = checked(&history, true);
    assert!(result.is_linearizable(), "{result}");
}

#[test]
fn a_cas_made_of_a_read_and_a_separate_write_is_caught() {
    for seed in SEEDS {
        let mut store = RacyCasStore::default();
        let history = simulate(&mut store, &workload(), seed);
        assert!(store.races > 0, "seed {seed}: the race never happened");
        assert_caught(&history);
    }
}

#[test]
fn a_store_that_drops_acknowledged_writes_is_caught() {
    for seed in SEEDS {
        let mut store = LossyStore::dropping_writes(1);
        let history = simulate(&mut store, &workload(), seed);
        assert!(store.losses > 0, "seed {seed}: nothing was lost");
        assert_caught(&history);
    }
}

#[test]
fn a_store_that_rolls_back_to_an_old_snapshot_is_caught() {
    for seed in SEEDS {
        let mut store = LossyStore::rolling_back(2);
        let history = simulate(&mut store, &workload(), seed);
        assert!(store.losses > 0, "seed {seed}: nothing was lost");
        assert_caught(&history);
    }
}
