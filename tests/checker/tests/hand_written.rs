//! Small histories with a known answer.

mod common;

use std::time::Duration;

use common::*;
use tessera_checker::memory_model::{key_of, MemoryModel};
use tessera_checker::{check, check_partitioned, CheckResult, Operation, Report, Violation};

fn verdict(history: &[MemoryOperation]) -> CheckResult {
    check(&MemoryModel, history, Duration::from_secs(10))
}

#[track_caller]
fn assert_linearizable(history: &[MemoryOperation]) {
    let result = verdict(history);
    assert!(result.is_linearizable(), "{result}");
}

#[track_caller]
fn assert_not_linearizable(history: &[MemoryOperation]) -> Report {
    match verdict(history) {
        CheckResult::NotLinearizable(report) => report,
        other => panic!("expected a violation, got {other}"),
    }
}

// Linearizable.

#[test]
fn sequential_operations_of_every_kind() {
    assert_linearizable(&[
        op(1, 0, 1, get("k"), got(None)),
        op(1, 2, 3, set("k", "1"), written(1)),
        op(2, 4, 5, incr("k", 4), counted(5, 2)),
        op(
            1,
            6,
            7,
            cas("k", Some("5"), Some("x")),
            cas_reply(true, 3, Some("x")),
        ),
        op(
            2,
            8,
            9,
            cas("k", Some("5"), Some("y")),
            cas_reply(false, 3, Some("x")),
        ),
        op(1, 10, 11, get("k"), got(Some(("x", 3)))),
        op(2, 12, 13, delete("k"), deleted(true, 4)),
        op(1, 14, 15, delete("k"), deleted(false, 4)),
        op(2, 16, 17, cas("k", None, None), cas_reply(true, 4, None)),
        op(1, 18, 19, incr("k", -2), counted(-2, 5)),
    ]);
}

#[test]
fn overlapping_writes_are_ordered_by_what_they_returned_not_by_call_time() {
    assert_linearizable(&[
        // Called first, but its revision says it took effect second.
        op(1, 0, 10, set("k", "a"), written(2)),
        op(2, 1, 5, set("k", "b"), written(1)),
        op(3, 11, 12, get("k"), got(Some(("a", 2)))),
    ]);
}

#[test]
fn reads_overlapping_a_write_may_see_either_side_but_not_go_back() {
    let write = op(1, 0, 10, set("k", "new"), written(1));
    // The later-called read sees the old state: it went first.
    assert_linearizable(&[
        write.clone(),
        op(2, 1, 3, get("k"), got(Some(("new", 1)))),
        op(3, 2, 9, get("k"), got(None)),
    ]);
    // Called after a read saw the write, it cannot see the key absent.
    assert_not_linearizable(&[
        write,
        op(2, 1, 3, get("k"), got(Some(("new", 1)))),
        op(3, 4, 9, get("k"), got(None)),
    ]);
}

#[test]
fn an_indeterminate_incr_counts_as_applied_when_a_later_read_needs_it() {
    assert_linearizable(&[
        op(1, 0, 1, set("n", "10"), written(1)),
        Operation::indeterminate(2, incr("n", 5), 2),
        op(3, 20, 21, get("n"), got(Some(("15", 2)))),
    ]);
}

#[test]
fn an_indeterminate_incr_counts_as_not_applied_when_later_replies_need_that() {
    assert_linearizable(&[
        op(1, 0, 1, set("n", "10"), written(1)),
        Operation::indeterminate(2, incr("n", 5), 2),
        op(3, 20, 21, get("n"), got(Some(("10", 1)))),
        op(3, 22, 23, incr("n", 1), counted(11, 2)),
        op(1, 24, 25, get("n"), got(Some(("11", 2)))),
    ]);
}

#[test]
fn an_indeterminate_write_may_take_effect_long_after_its_call() {
    assert_linearizable(&[
        Operation::indeterminate(1, set("k", "late"), 0),
        op(2, 10, 11, get("k"), got(None)),
        op(2, 20, 21, get("k"), got(Some(("late", 1)))),
    ]);
}

#[test]
fn of_two_concurrent_lock_acquisitions_one_wins_and_the_other_sees_it() {
    assert_linearizable(&[
        op(
            1,
            0,
            5,
            cas("lock", None, Some("a")),
            cas_reply(false, 1, Some("b")),
        ),
        op(
            2,
            1,
            4,
            cas("lock", None, Some("b")),
            cas_reply(true, 1, Some("b")),
        ),
        op(
            2,
            6,
            7,
            cas("lock", Some("b"), None),
            cas_reply(true, 2, None),
        ),
        op(
            1,
            8,
            9,
            cas("lock", None, Some("a")),
            cas_reply(true, 3, Some("a")),
        ),
    ]);
}

// Not linearizable.

#[test]
fn a_stale_read_after_an_acknowledged_write() {
    let report = assert_not_linearizable(&[
        op(1, 0, 1, set("k", "1"), written(1)),
        op(1, 2, 3, set("k", "2"), written(2)),
        op(2, 4, 5, get("k"), got(Some(("1", 1)))),
    ]);
    // Found before any search: the read needs an older revision than the
    // write before it left.
    assert_eq!(
        report.violation,
        Violation::Regression {
            earlier: 1,
            later: 2
        }
    );
    let text = report.to_string();
    assert!(text.contains("#2 was called after #1 returned"), "{text}");
    assert!(
        text.contains("#2 client 2, called 4, returned 5: Get"),
        "{text}"
    );
}

#[test]
fn two_acknowledged_writes_with_the_same_revision() {
    assert_not_linearizable(&[
        op(1, 0, 10, set("k", "a"), written(1)),
        op(2, 1, 9, set("k", "b"), written(1)),
    ]);
}

#[test]
fn a_revision_that_goes_backwards() {
    assert_not_linearizable(&[
        op(1, 0, 1, set("k", "a"), written(1)),
        op(1, 2, 3, set("k", "b"), written(2)),
        op(2, 4, 5, delete("k"), deleted(true, 3)),
        op(2, 6, 7, set("k", "c"), written(2)),
    ]);
}

#[test]
fn an_incr_applied_twice() {
    assert_not_linearizable(&[
        op(1, 0, 1, incr("n", 1), counted(1, 1)),
        op(2, 2, 3, get("n"), got(Some(("2", 2)))),
    ]);
    // Not even an incr with an unknown outcome can count twice.
    assert_not_linearizable(&[
        op(1, 0, 1, set("n", "0"), written(1)),
        Operation::indeterminate(2, incr("n", 1), 2),
        op(3, 10, 11, get("n"), got(Some(("2", 3)))),
    ]);
}

#[test]
fn a_cas_that_did_not_swap_although_it_matched_in_every_order() {
    let report = assert_not_linearizable(&[
        op(1, 0, 1, set("k", "a"), written(1)),
        op(
            2,
            2,
            8,
            cas("k", Some("a"), Some("b")),
            cas_reply(false, 1, Some("a")),
        ),
        // Concurrent with the CAS, and changes nothing.
        op(3, 3, 7, get("k"), got(Some(("a", 1)))),
    ]);
    let Violation::NoLegalOrder {
        longest_prefix,
        unplaced,
        blocking,
        ..
    } = &report.violation
    else {
        panic!("only a search finds this: {report}");
    };
    assert_eq!(longest_prefix, &[0, 2]);
    assert_eq!(unplaced, &[1]);
    assert_eq!(*blocking, Some(1));
    let text = report.to_string();
    assert!(
        text.contains("state after it: MemoryState { value: Some(\"a\"), revision: 1 }"),
        "{text}"
    );
    assert!(
        text.contains("#1 client 2, called 2, returned 8: Cas"),
        "{text}"
    );
}

#[test]
fn a_lost_acknowledged_write() {
    assert_not_linearizable(&[
        op(1, 0, 2, set("k", "a"), written(1)),
        op(2, 1, 3, set("k", "b"), written(2)),
        op(3, 4, 5, get("k"), got(Some(("a", 1)))),
    ]);
}

#[test]
fn two_lock_holders_at_once() {
    assert_not_linearizable(&[
        op(
            1,
            0,
            5,
            cas("lock", None, Some("a")),
            cas_reply(true, 1, Some("a")),
        ),
        op(
            2,
            1,
            4,
            cas("lock", None, Some("b")),
            cas_reply(true, 2, Some("b")),
        ),
    ]);
}

// Partitioned.

#[test]
fn keys_are_checked_separately_and_a_failure_names_whole_history_indexes() {
    let history = [
        op(1, 0, 1, set("a", "1"), written(1)),
        op(1, 2, 3, set("b", "1"), written(1)),
        op(2, 4, 5, get("a"), got(Some(("1", 1)))),
        op(2, 6, 7, set("b", "2"), written(2)),
        // Stale: b's second write was acknowledged before this was called.
        op(3, 8, 9, get("b"), got(Some(("1", 1)))),
        Operation::indeterminate(3, incr("c", 1), 10),
    ];
    let result = check_partitioned(&MemoryModel, &history, key_of, Duration::from_secs(10));
    assert!(!result.is_linearizable());
    let keys: Vec<(&str, usize)> = result
        .keys
        .iter()
        .map(|key| (key.key.as_str(), key.operations))
        .collect();
    assert_eq!(keys, [("a", 2), ("b", 3), ("c", 1)]);
    let (key, report) = result.first_failure().expect("key b fails");
    assert_eq!(key, "b");
    assert_eq!(
        report.violation,
        Violation::Regression {
            earlier: 3,
            later: 4
        }
    );
    assert!(result.keys[0].result.is_linearizable());
    assert!(result.keys[2].result.is_linearizable());
    assert!(result.to_string().starts_with("key \"b\""), "{result}");
}
