//! Large histories must check quickly. Timings are printed; run with
//! `--nocapture` to see them.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tessera_checker::memory_model::{key_of, MemoryModel};
use tessera_checker::{check, check_partitioned, CheckResult};

const BUDGET: Duration = Duration::from_secs(120);

fn one_busy_key(timeout_percent: u64) -> Vec<MemoryOperation> {
    let workload = Workload {
        stickiness_percent: 90,
        timeout_percent,
        ..Workload::new(16, 2_000, 1)
    };
    simulate(&mut CorrectStore::default(), &workload, 16)
}

#[track_caller]
fn assert_quickly_linearizable(name: &str, history: &[MemoryOperation]) {
    let started = Instant::now();
    let result = check(&MemoryModel, history, BUDGET);
    println!(
        "{name}: {} operations checked in {:?}",
        history.len(),
        started.elapsed()
    );
    assert_eq!(result, CheckResult::Linearizable, "{result}");
}

#[test]
fn sixteen_clients_two_thousand_operations_each_on_one_key() {
    assert_quickly_linearizable("16 clients x 2000 ops, one key", &one_busy_key(0));
}

#[test]
fn one_key_with_some_replies_lost() {
    let history = one_busy_key(1);
    let lost = history.iter().filter(|op| op.is_indeterminate()).count();
    assert!(lost > 100, "{lost}");
    assert_quickly_linearizable("16 clients x 2000 ops, one key, 1% lost", &history);
}

#[track_caller]
fn assert_quickly_caught(name: &str, history: &[MemoryOperation]) {
    let started = Instant::now();
    let result = check(&MemoryModel, history, BUDGET);
    println!(
        "{name}: caught in {} operations in {:?}",
        history.len(),
        started.elapsed()
    );
    assert!(result.report().is_some(), "{result}");
}

fn one_busy_key_of(store: &mut impl Store) -> Vec<MemoryOperation> {
    let workload = Workload {
        stickiness_percent: 90,
        timeout_percent: 1,
        ..Workload::new(16, 2_000, 1)
    };
    simulate(store, &workload, 16)
}

#[test]
fn a_rollback_in_a_long_history_is_caught() {
    let history = one_busy_key_of(&mut LossyStore::rolling_back(1));
    assert_quickly_caught("a rollback", &history);
}

#[test]
fn a_cas_race_in_a_long_history_is_caught() {
    let history = one_busy_key_of(&mut RacyCasStore::default());
    assert_quickly_caught("a CAS race", &history);
}

#[test]
fn a_hundred_thousand_operations_over_twenty_keys() {
    let workload = Workload {
        stickiness_percent: 50,
        timeout_percent: 1,
        ..Workload::new(50, 2_000, 20)
    };
    let history = simulate(&mut CorrectStore::default(), &workload, 100);
    let result = check_partitioned(&MemoryModel, &history, key_of, BUDGET);
    println!("{result}");
    assert!(result.is_linearizable(), "{result}");
}
