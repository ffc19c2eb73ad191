//! The memory conformance suite, written once and run against every backend
//! (`tests/conformance_embedded.rs`, `tests/conformance_redis_postgres.rs`).
//! Each case gets a fresh namespace, so backends can be shared servers.

use crate::harness::unique_namespace;
use std::collections::HashSet;
use std::time::Duration;
use tessera_error::ErrorKind;
use tessera_memory::{AccessMode, Limits, Memory};

/// Generates one `#[tokio::test]` per case for a backend factory
/// `async fn(Limits) -> Memory`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@cases $factory;
            get_of_absent_key_is_not_found,
            values_round_trip_as_typed_json,
            overwrite_grows_revision_and_keeps_created_at,
            ttl_expires_entries,
            if_match_guards_writes,
            delete_reports_and_bumps_revision,
            revision_grows_across_delete_expiry_and_recreate,
            cas_acquires_and_releases_a_lock,
            cas_equality_ignores_object_key_order,
            cas_lease_can_be_taken_after_expiry,
            incr_is_exact_and_typed,
            incr_by_a_whole_float_stays_an_exact_integer,
            incr_keeps_ttl_unless_given,
            concurrent_increments_all_count,
            concurrent_cas_admits_one_winner,
            list_is_newest_first_with_prefix_and_cursor,
            bad_input_is_rejected_and_nothing_is_written,
            key_quota_is_enforced,
            byte_quota_is_enforced,
            expired_keys_free_their_quota,
            namespaces_are_isolated,
            read_grant_allows_reads_only,
            readwrite_grant_allows_every_op,
            without_a_grant_every_op_is_denied,
            revoke_removes_access,
            grant_ttl_expires,
            granting_again_replaces_mode_and_expiry,
            list_grants_shows_active_grants,
            self_grant_is_rejected,
            a_grant_reaches_only_its_owner,
            grants_are_listed_only_to_their_owner,
            grant_quota_is_enforced,
            evm_address_namespaces_ignore_case,
            grants_between_evm_addresses_ignore_case,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let memory = $factory($crate::conformance::limits_for(stringify!($case))).await;
                $crate::conformance::$case(memory).await;
            }
        )*
    };
}

/// Small quotas for the quota cases, the defaults elsewhere.
pub fn limits_for(case: &str) -> Limits {
    match case {
        "key_quota_is_enforced" | "expired_keys_free_their_quota" => Limits {
            max_keys: 3,
            ..Limits::default()
        },
        "byte_quota_is_enforced" => Limits {
            max_bytes: 100,
            ..Limits::default()
        },
        "bad_input_is_rejected_and_nothing_is_written" => Limits {
            max_value_bytes: 64,
            ..Limits::default()
        },
        "grant_quota_is_enforced" => Limits {
            max_grants: 2,
            ..Limits::default()
        },
        _ => Limits::default(),
    }
}

fn ns(label: &str) -> String {
    unique_namespace(label)
}

fn kind<T: std::fmt::Debug>(result: tessera_error::Result<T>) -> (ErrorKind, String) {
    let error = result.expect_err("expected an error");
    (error.kind, error.reason)
}

pub async fn get_of_absent_key_is_not_found(memory: Memory) {
    let ns = ns("absent");
    assert_eq!(kind(memory.get(&ns, "nope").await).0, ErrorKind::NotFound);
}

pub async fn values_round_trip_as_typed_json(memory: Memory) {
    let ns = ns("typed");
    for (key, value) in [
        ("string", r#""123""#),
        ("int", "9223372036854775807"),
        ("neg", "-42"),
        ("float", "2.5"),
        ("bool", "false"),
        ("array", r#"[1,"two",{"three":3}]"#),
        ("object", r#"{"a":{"b":[true,null]},"z":"é"}"#),
    ] {
        let written = memory.set(&ns, key, value, None, None).await.unwrap();
        assert_eq!(written.value, value, "{key}");
        let read = memory.get(&ns, key).await.unwrap();
        assert_eq!(read.value, value, "{key}");
        assert_eq!(read.revision, written.revision);
        assert_eq!(read.etag(), written.etag());
        assert_eq!(read.size_bytes(), value.len() as u64);
        assert_eq!(read.expires_at_ms, None);
    }
}

pub async fn overwrite_grows_revision_and_keeps_created_at(memory: Memory) {
    let ns = ns("overwrite");
    let first = memory.set(&ns, "k", "1", None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = memory.set(&ns, "k", "2", None, None).await.unwrap();
    assert!(second.revision > first.revision);
    assert_ne!(second.etag(), first.etag());
    assert_eq!(second.created_at_ms, first.created_at_ms);
    assert!(second.updated_at_ms > first.updated_at_ms);
    assert_eq!(memory.get(&ns, "k").await.unwrap().value, "2");
}

pub async fn ttl_expires_entries(memory: Memory) {
    let ns = ns("ttl");
    let entry = memory
        .set(&ns, "lease", r#""me""#, Some(1), None)
        .await
        .unwrap();
    let expires = entry.expires_at_ms.expect("expiry set");
    assert!(
        (expires - entry.updated_at_ms - 1000).abs() <= 5,
        "expires one second after the write"
    );
    assert!(memory.get(&ns, "lease").await.is_ok());
    tokio::time::sleep(Duration::from_millis(1150)).await;
    assert_eq!(kind(memory.get(&ns, "lease").await).0, ErrorKind::NotFound);
    // A set without ttl clears it.
    memory.set(&ns, "k", "1", Some(100), None).await.unwrap();
    assert_eq!(
        memory
            .set(&ns, "k", "2", None, None)
            .await
            .unwrap()
            .expires_at_ms,
        None
    );
}

pub async fn if_match_guards_writes(memory: Memory) {
    let ns = ns("ifmatch");
    let (k, r) = kind(memory.set(&ns, "k", "1", None, Some("1")).await);
    assert_eq!(
        (k, r.as_str()),
        (ErrorKind::PreconditionFailed, "ETAG_MISMATCH"),
        "absent never matches"
    );
    let v1 = memory.set(&ns, "k", "1", None, None).await.unwrap();
    let v2 = memory
        .set(&ns, "k", "2", None, Some(&v1.etag()))
        .await
        .unwrap();
    assert_eq!(
        kind(memory.set(&ns, "k", "3", None, Some(&v1.etag())).await).0,
        ErrorKind::PreconditionFailed
    );
    assert_eq!(memory.get(&ns, "k").await.unwrap().value, "2");
    let quoted = format!("\"{}\"", v2.etag());
    assert_eq!(
        kind(memory.delete(&ns, "k", Some(&v1.etag())).await).0,
        ErrorKind::PreconditionFailed
    );
    assert!(
        memory
            .delete(&ns, "k", Some(&quoted))
            .await
            .unwrap()
            .deleted
    );
    assert_eq!(
        kind(memory.set(&ns, "k", "1", None, Some("garbage")).await).0,
        ErrorKind::InvalidArgument
    );
}

pub async fn delete_reports_and_bumps_revision(memory: Memory) {
    let ns = ns("delete");
    let absent = memory.delete(&ns, "k", None).await.unwrap();
    assert!(!absent.deleted);
    let written = memory.set(&ns, "k", "1", None, None).await.unwrap();
    let deleted = memory.delete(&ns, "k", None).await.unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.revision, written.revision + 1);
    assert_eq!(kind(memory.get(&ns, "k").await).0, ErrorKind::NotFound);
    let again = memory.delete(&ns, "k", None).await.unwrap();
    assert!(!again.deleted);
    assert_eq!(
        again.revision, deleted.revision,
        "a no-op delete does not bump"
    );
}

pub async fn revision_grows_across_delete_expiry_and_recreate(memory: Memory) {
    let ns = ns("revision");
    let mut seen = Vec::new();
    seen.push(
        memory
            .set(&ns, "k", "1", Some(1), None)
            .await
            .unwrap()
            .revision,
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    seen.push(
        memory
            .set(&ns, "k", "2", None, None)
            .await
            .unwrap()
            .revision,
    );
    seen.push(memory.delete(&ns, "k", None).await.unwrap().revision);
    seen.push(
        memory
            .set(&ns, "k", "3", None, None)
            .await
            .unwrap()
            .revision,
    );
    seen.push(memory.incr(&ns, "k", "1", None).await.unwrap().revision);
    seen.push(
        memory
            .cas(&ns, "k", Some("4"), None, None)
            .await
            .unwrap()
            .revision,
    );
    seen.push(
        memory
            .cas(&ns, "k", None, Some("1"), None)
            .await
            .unwrap()
            .revision,
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "revisions only grow: {seen:?}"
    );
}

pub async fn cas_acquires_and_releases_a_lock(memory: Memory) {
    let ns = ns("cas");
    let acquired = memory
        .cas(&ns, "locks/import", None, Some(r#""agent-7""#), Some(30))
        .await
        .unwrap();
    assert!(acquired.swapped);
    let current = acquired.current.clone().unwrap();
    assert_eq!(current.value, r#""agent-7""#);
    assert!(current.expires_at_ms.is_some());
    assert_eq!(acquired.revision, current.revision);

    let contended = memory
        .cas(
            &ns,
            "locks/import",
            Some("null"),
            Some(r#""agent-8""#),
            Some(30),
        )
        .await
        .unwrap();
    assert!(!contended.swapped, "JSON null expected means absent");
    assert_eq!(
        contended.current.unwrap().value,
        r#""agent-7""#,
        "reports the holder"
    );
    assert_eq!(contended.revision, acquired.revision);

    let wrong = memory
        .cas(&ns, "locks/import", Some(r#""agent-8""#), None, None)
        .await
        .unwrap();
    assert!(!wrong.swapped);
    let released = memory
        .cas(&ns, "locks/import", Some(r#""agent-7""#), None, None)
        .await
        .unwrap();
    assert!(released.swapped);
    assert!(released.current.is_none());
    assert!(released.revision > acquired.revision);
    assert_eq!(
        kind(memory.get(&ns, "locks/import").await).0,
        ErrorKind::NotFound
    );

    let updated = memory.set(&ns, "n", "1", None, None).await.unwrap();
    let swapped = memory
        .cas(&ns, "n", Some("1"), Some("2"), None)
        .await
        .unwrap();
    assert!(swapped.swapped);
    assert_eq!(swapped.current.unwrap().value, "2");
    assert!(swapped.revision > updated.revision);
}

pub async fn cas_equality_ignores_object_key_order(memory: Memory) {
    let ns = ns("casjson");
    memory
        .set(&ns, "doc", r#"{"a":1,"b":{"c":[1,2],"d":"x"}}"#, None, None)
        .await
        .unwrap();
    let outcome = memory
        .cas(
            &ns,
            "doc",
            Some(r#"{ "b": {"d":"x", "c":[1,2]}, "a": 1.0 }"#),
            Some(r#"{"v":2}"#),
            None,
        )
        .await
        .unwrap();
    assert!(
        outcome.swapped,
        "equal JSON in another key order and number spelling"
    );
    let arrays_differ = memory
        .cas(&ns, "doc", Some(r#"{"v":[2]}"#), Some("1"), None)
        .await
        .unwrap();
    assert!(!arrays_differ.swapped);
    let strings_differ = memory
        .cas(&ns, "doc", Some(r#"{"v":"2"}"#), Some("1"), None)
        .await
        .unwrap();
    assert!(
        !strings_differ.swapped,
        "the string \"2\" is not the number 2"
    );
}

pub async fn cas_lease_can_be_taken_after_expiry(memory: Memory) {
    let ns = ns("lease");
    let first = memory
        .cas(&ns, "lock", None, Some(r#""a""#), Some(1))
        .await
        .unwrap();
    assert!(first.swapped);
    assert!(
        !memory
            .cas(&ns, "lock", None, Some(r#""b""#), Some(1))
            .await
            .unwrap()
            .swapped
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = memory
        .cas(&ns, "lock", None, Some(r#""b""#), Some(5))
        .await
        .unwrap();
    assert!(second.swapped, "an expired lease is absent");
    assert!(
        second.revision > first.revision,
        "the new holder's fencing token is larger"
    );
    // The old holder's release no longer matches.
    assert!(
        !memory
            .cas(&ns, "lock", Some(r#""a""#), None, None)
            .await
            .unwrap()
            .swapped
    );
}

pub async fn incr_is_exact_and_typed(memory: Memory) {
    let ns = ns("incr");
    assert_eq!(
        memory.incr(&ns, "c", "", None).await.unwrap().value,
        "1",
        "by defaults to 1, created at 0"
    );
    assert_eq!(memory.incr(&ns, "c", "5", None).await.unwrap().value, "6");
    assert_eq!(
        memory.incr(&ns, "c", "-10", None).await.unwrap().value,
        "-4"
    );
    memory
        .set(&ns, "big", "9223372036854775806", None, None)
        .await
        .unwrap();
    assert_eq!(
        memory.incr(&ns, "big", "1", None).await.unwrap().value,
        "9223372036854775807"
    );
    let (k, reason) = kind(memory.incr(&ns, "big", "1", None).await);
    assert_eq!(
        (k, reason.as_str()),
        (ErrorKind::InvalidArgument, "INCR_OVERFLOW")
    );
    assert_eq!(
        memory.get(&ns, "big").await.unwrap().value,
        "9223372036854775807",
        "unchanged after overflow"
    );
    memory
        .set(&ns, "min", "-9223372036854775808", None, None)
        .await
        .unwrap();
    assert_eq!(
        kind(memory.incr(&ns, "min", "-1", None).await).1,
        "INCR_OVERFLOW"
    );

    assert_eq!(
        memory.incr(&ns, "f", "0.5", None).await.unwrap().value,
        "0.5"
    );
    assert_eq!(memory.incr(&ns, "f", "2", None).await.unwrap().value, "2.5");
    assert_eq!(memory.incr(&ns, "f", "0.5", None).await.unwrap().value, "3");

    memory.set(&ns, "s", r#""123""#, None, None).await.unwrap();
    let (k, reason) = kind(memory.incr(&ns, "s", "1", None).await);
    assert_eq!(
        (k, reason.as_str()),
        (ErrorKind::InvalidArgument, "NOT_A_NUMBER"),
        "a string stays a string"
    );
    assert_eq!(memory.get(&ns, "s").await.unwrap().value, r#""123""#);
    assert_eq!(
        kind(memory.incr(&ns, "c", "\"1\"", None).await).1,
        "NOT_A_NUMBER"
    );
}

/// `by` is read as its canonical JSON value: a whole number written as a
/// float (`1.0`, `1e3`) is that integer, so an integer counter stays an
/// exact integer, also beyond 2^53 where a double would round.
pub async fn incr_by_a_whole_float_stays_an_exact_integer(memory: Memory) {
    let ns = ns("incrwhole");
    memory
        .set(&ns, "c", "9007199254740993", None, None)
        .await
        .unwrap();
    for (by, expected) in [
        ("1.0", "9007199254740994"),
        ("1e3", "9007199254741994"),
        ("-2.0", "9007199254741992"),
        ("1", "9007199254741993"),
    ] {
        assert_eq!(
            memory.incr(&ns, "c", by, None).await.unwrap().value,
            expected,
            "by {by}"
        );
    }
    assert_eq!(
        memory.get(&ns, "c").await.unwrap().value,
        "9007199254741993"
    );
    assert_eq!(
        memory.incr(&ns, "new", "1.0", None).await.unwrap().value,
        "1",
        "created at 0, an integer"
    );
    assert_eq!(
        memory.incr(&ns, "new", "1.0", None).await.unwrap().value,
        "2"
    );

    memory
        .set(&ns, "big", "9223372036854775806", None, None)
        .await
        .unwrap();
    assert_eq!(
        memory.incr(&ns, "big", "1.0", None).await.unwrap().value,
        "9223372036854775807"
    );
    let (k, reason) = kind(memory.incr(&ns, "big", "1.0", None).await);
    assert_eq!(
        (k, reason.as_str()),
        (ErrorKind::InvalidArgument, "INCR_OVERFLOW"),
        "overflows like an integer, not into a float"
    );
    assert_eq!(
        memory.get(&ns, "big").await.unwrap().value,
        "9223372036854775807"
    );

    memory.set(&ns, "f", "0.5", None, None).await.unwrap();
    assert_eq!(
        memory.incr(&ns, "f", "1.0", None).await.unwrap().value,
        "1.5",
        "a float counter stays a float"
    );
}

pub async fn incr_keeps_ttl_unless_given(memory: Memory) {
    let ns = ns("incrttl");
    let first = memory.incr(&ns, "c", "1", Some(100)).await.unwrap();
    let kept = memory.incr(&ns, "c", "1", None).await.unwrap();
    assert_eq!(kept.expires_at_ms, first.expires_at_ms);
    let renewed = memory.incr(&ns, "c", "1", Some(1000)).await.unwrap();
    assert!(renewed.expires_at_ms > first.expires_at_ms);
    let plain = memory.incr(&ns, "p", "1", None).await.unwrap();
    assert_eq!(plain.expires_at_ms, None);
}

pub async fn concurrent_increments_all_count(memory: Memory) {
    let ns = ns("concurrent");
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (memory, ns) = (memory.clone(), ns.clone());
            tokio::spawn(async move {
                for _ in 0..5 {
                    memory.incr(&ns, "hits", "1", None).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let entry = memory.get(&ns, "hits").await.unwrap();
    assert_eq!(entry.value, "200");
    assert_eq!(entry.revision, 200);
}

pub async fn concurrent_cas_admits_one_winner(memory: Memory) {
    let ns = ns("race");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (memory, ns) = (memory.clone(), ns.clone());
            tokio::spawn(async move {
                let me = format!("\"agent-{i}\"");
                memory
                    .cas(&ns, "lock", None, Some(&me), Some(30))
                    .await
                    .unwrap()
                    .swapped
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

pub async fn list_is_newest_first_with_prefix_and_cursor(memory: Memory) {
    let ns = ns("list");
    for i in 0..25 {
        memory
            .set(&ns, &format!("notes/{i:02}"), &i.to_string(), None, None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    memory.set(&ns, "other", "0", None, None).await.unwrap();
    memory
        .set(&ns, "notes/expiring", "0", Some(1), None)
        .await
        .unwrap();
    memory
        .set(&ns, "notes/deleted", "0", None, None)
        .await
        .unwrap();
    memory.delete(&ns, "notes/deleted", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Rewriting moves a key to the front.
    memory
        .set(&ns, "notes/03", "\"again\"", None, None)
        .await
        .unwrap();

    let mut keys = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = memory.list(&ns, "notes/", 10, &cursor).await.unwrap();
        assert!(page.entries.len() <= 10);
        keys.extend(page.entries.iter().map(|e| e.key.clone()));
        pages += 1;
        match page.next_cursor {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(keys.len(), 25, "{keys:?}");
    assert_eq!(
        keys.iter().collect::<HashSet<_>>().len(),
        25,
        "each key once"
    );
    assert_eq!(keys[0], "notes/03");
    assert_eq!(keys[1], "notes/24");
    assert_eq!(keys[24], "notes/00");
    let all = memory.list(&ns, "", 0, "").await.unwrap();
    assert_eq!(all.entries.len(), 26);
    assert_eq!(
        kind(memory.list(&ns, "", 1001, "").await).0,
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(memory.list(&ns, "", 10, "bogus!").await).1,
        "INVALID_CURSOR"
    );
}

pub async fn bad_input_is_rejected_and_nothing_is_written(memory: Memory) {
    let ns = ns("bad");
    let long_key = "k".repeat(257);
    let cases: Vec<(&str, tessera_error::Result<tessera_memory::Entry>)> = vec![
        (
            "KEY_TOO_LONG",
            memory.set(&ns, &long_key, "1", None, None).await,
        ),
        ("KEY_EMPTY", memory.set(&ns, "", "1", None, None).await),
        (
            "KEY_INVALID",
            memory.set(&ns, "a\u{0}b", "1", None, None).await,
        ),
        (
            "INVALID_TTL",
            memory.set(&ns, "k", "1", Some(0), None).await,
        ),
        (
            "INVALID_TTL",
            memory.set(&ns, "k", "1", Some(31_536_001), None).await,
        ),
        (
            "VALUE_TOO_LARGE",
            memory
                .set(&ns, "k", &format!("\"{}\"", "x".repeat(100)), None, None)
                .await,
        ),
        ("VALUE_NULL", memory.set(&ns, "k", "null", None, None).await),
        (
            "INVALID_JSON",
            memory.set(&ns, "k", "{nope", None, None).await,
        ),
        (
            "INVALID_NAMESPACE",
            memory.set("", "k", "1", None, None).await,
        ),
        ("NOT_A_NUMBER", memory.incr(&ns, "k", "\"x\"", None).await),
        ("INVALID_TTL", memory.incr(&ns, "k", "1", Some(0)).await),
    ];
    for (expected, result) in cases {
        let (k, reason) = kind(result);
        assert_eq!((k, reason.as_str()), (ErrorKind::InvalidArgument, expected));
    }
    assert_eq!(
        kind(memory.cas(&ns, "k", None, Some("{"), None).await).1,
        "INVALID_JSON"
    );
    assert!(
        memory
            .list(&ns, "", 0, "")
            .await
            .unwrap()
            .entries
            .is_empty(),
        "nothing written"
    );
    assert_eq!(kind(memory.get(&ns, "k").await).0, ErrorKind::NotFound);
}

pub async fn key_quota_is_enforced(memory: Memory) {
    let ns = ns("quota");
    for key in ["a", "b", "c"] {
        memory.set(&ns, key, "1", None, None).await.unwrap();
    }
    let (k, reason) = kind(memory.set(&ns, "d", "1", None, None).await);
    assert_eq!(
        (k, reason.as_str()),
        (ErrorKind::QuotaExceeded, "QUOTA_EXCEEDED")
    );
    assert_eq!(k.http_status(), 413);
    assert_eq!(
        kind(memory.incr(&ns, "d", "1", None).await).0,
        ErrorKind::QuotaExceeded
    );
    assert!(
        !memory
            .cas(&ns, "a", None, Some("2"), None)
            .await
            .unwrap()
            .swapped
    );
    assert_eq!(
        kind(memory.cas(&ns, "d", None, Some("2"), None).await).0,
        ErrorKind::QuotaExceeded
    );
    assert_eq!(
        kind(memory.get(&ns, "d").await).0,
        ErrorKind::NotFound,
        "nothing written"
    );
    memory
        .set(&ns, "a", "2", None, None)
        .await
        .expect("overwriting is not a new key");
    memory.delete(&ns, "b", None).await.unwrap();
    memory
        .set(&ns, "d", "1", None, None)
        .await
        .expect("a delete frees a key");
}

pub async fn byte_quota_is_enforced(memory: Memory) {
    let ns = ns("bytes");
    // key "a" (1) + value (40 + 2 quotes) = 43 bytes each.
    let value = format!("\"{}\"", "x".repeat(40));
    memory.set(&ns, "a", &value, None, None).await.unwrap();
    memory.set(&ns, "b", &value, None, None).await.unwrap();
    assert_eq!(
        kind(memory.set(&ns, "c", &value, None, None).await).0,
        ErrorKind::QuotaExceeded
    );
    memory
        .set(&ns, "c", "1", None, None)
        .await
        .expect("a small value still fits");
    memory
        .set(&ns, "a", "1", None, None)
        .await
        .expect("shrinking always fits");
}

pub async fn expired_keys_free_their_quota(memory: Memory) {
    let ns = ns("expquota");
    for key in ["a", "b", "c"] {
        memory.set(&ns, key, "1", Some(1), None).await.unwrap();
    }
    assert_eq!(
        kind(memory.set(&ns, "d", "1", None, None).await).0,
        ErrorKind::QuotaExceeded
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for key in ["d", "e", "f"] {
        memory
            .set(&ns, key, "1", None, None)
            .await
            .expect("expired keys no longer count");
    }
}

pub async fn namespaces_are_isolated(memory: Memory) {
    let (a, b) = (ns("iso-a"), ns("iso-b"));
    memory.set(&a, "k", r#""a's""#, None, None).await.unwrap();
    assert_eq!(kind(memory.get(&b, "k").await).0, ErrorKind::NotFound);
    assert!(memory.list(&b, "", 0, "").await.unwrap().entries.is_empty());
    assert!(!memory.delete(&b, "k", None).await.unwrap().deleted);
    assert_eq!(memory.get(&a, "k").await.unwrap().value, r#""a's""#);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The refusal of a cross-namespace call without the needed grant.
fn assert_denied<T: std::fmt::Debug>(result: tessera_error::Result<T>, what: &str) {
    let (k, reason) = kind(result);
    assert_eq!(
        (k, reason.as_str()),
        (ErrorKind::PermissionDenied, "NO_GRANT"),
        "{what}"
    );
    assert_eq!(k.http_status(), 403);
}

/// Every write, as `as_caller` on `owner`'s keys `k` (holding `"1"`) and
/// `n` (a counter), each one that would change something if allowed.
async fn assert_every_write_denied(memory: &Memory, owner: &str) {
    assert_denied(memory.set(owner, "k", "2", None, None).await, "set");
    assert_denied(memory.set(owner, "new", "2", None, None).await, "set new");
    assert_denied(memory.delete(owner, "k", None).await, "delete");
    assert_denied(
        memory.cas(owner, "k", Some("1"), Some("3"), None).await,
        "cas",
    );
    assert_denied(
        memory.cas(owner, "k", Some("1"), None, None).await,
        "cas delete",
    );
    assert_denied(memory.incr(owner, "n", "1", None).await, "incr");
}

/// `owner`'s keys as [`assert_every_write_denied`] expects them.
async fn seed(memory: &Memory, owner: &str) -> (u64, u64) {
    let k = memory.set(owner, "k", "1", None, None).await.unwrap();
    let n = memory.incr(owner, "n", "5", None).await.unwrap();
    (k.revision, n.revision)
}

/// Read as the owner: nothing changed since [`seed`].
async fn assert_untouched(memory: &Memory, owner: &str, (k_rev, n_rev): (u64, u64)) {
    let k = memory.get(owner, "k").await.unwrap();
    assert_eq!((k.value.as_str(), k.revision), ("1", k_rev), "k untouched");
    let n = memory.get(owner, "n").await.unwrap();
    assert_eq!((n.value.as_str(), n.revision), ("5", n_rev), "n untouched");
    assert_eq!(kind(memory.get(owner, "new").await).0, ErrorKind::NotFound);
    assert_eq!(
        memory.list(owner, "", 0, "").await.unwrap().entries.len(),
        2
    );
}

pub async fn read_grant_allows_reads_only(memory: Memory) {
    let (owner, reader) = (ns("rg-owner"), ns("rg-reader"));
    let seeded = seed(&memory, &owner).await;
    let before = now_ms();
    let grant = memory
        .grant(&owner, &reader, AccessMode::Read, None)
        .await
        .unwrap();
    assert_eq!(
        (grant.namespace.as_str(), grant.grantee.as_str(), grant.mode),
        (owner.as_str(), reader.as_str(), AccessMode::Read)
    );
    assert_eq!(grant.expires_at_ms, None);
    assert!(
        (before - 2_000..=now_ms() + 2_000).contains(&grant.created_at_ms),
        "created now: {}",
        grant.created_at_ms
    );

    let as_reader = memory.as_caller(&reader);
    let k = as_reader.get(&owner, "k").await.unwrap();
    assert_eq!(
        (k.namespace.as_str(), k.value.as_str()),
        (owner.as_str(), "1")
    );
    assert_eq!(
        kind(as_reader.get(&owner, "absent").await).0,
        ErrorKind::NotFound,
        "a read grant sees what is absent too"
    );
    let page = as_reader.list(&owner, "", 0, "").await.unwrap();
    let mut keys: Vec<_> = page.entries.iter().map(|e| e.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["k", "n"]);

    assert_every_write_denied(&as_reader, &owner).await;
    assert_untouched(&memory, &owner, seeded).await;
    assert!(
        memory
            .list(&reader, "", 0, "")
            .await
            .unwrap()
            .entries
            .is_empty(),
        "nothing landed in the reader's own namespace"
    );
}

pub async fn readwrite_grant_allows_every_op(memory: Memory) {
    let (owner, writer) = (ns("rw-owner"), ns("rw-writer"));
    memory.set(&owner, "k", "1", None, None).await.unwrap();
    memory
        .grant(&owner, &writer, AccessMode::ReadWrite, None)
        .await
        .unwrap();
    let as_writer = memory.as_caller(&writer);

    let set = as_writer
        .set(&owner, "new", r#""by writer""#, None, None)
        .await
        .unwrap();
    assert_eq!(set.namespace, owner);
    assert_eq!(as_writer.get(&owner, "k").await.unwrap().value, "1");
    assert_eq!(
        as_writer
            .list(&owner, "", 0, "")
            .await
            .unwrap()
            .entries
            .len(),
        2
    );
    let swapped = as_writer
        .cas(&owner, "k", Some("1"), Some("2"), None)
        .await
        .unwrap();
    assert!(swapped.swapped);
    assert_eq!(
        as_writer.incr(&owner, "n", "7", None).await.unwrap().value,
        "7"
    );
    let etag = set.etag();
    assert!(
        as_writer
            .delete(&owner, "new", Some(&etag))
            .await
            .unwrap()
            .deleted
    );

    // The owner sees every change, and the writer's own namespace has none.
    assert_eq!(memory.get(&owner, "k").await.unwrap().value, "2");
    assert_eq!(memory.get(&owner, "n").await.unwrap().value, "7");
    assert_eq!(kind(memory.get(&owner, "new").await).0, ErrorKind::NotFound);
    assert!(memory
        .list(&writer, "", 0, "")
        .await
        .unwrap()
        .entries
        .is_empty());
}

pub async fn without_a_grant_every_op_is_denied(memory: Memory) {
    let (owner, stranger) = (ns("ng-owner"), ns("ng-stranger"));
    let seeded = seed(&memory, &owner).await;
    let as_stranger = memory.as_caller(&stranger);
    assert_denied(as_stranger.get(&owner, "k").await, "get");
    assert_denied(
        as_stranger.get(&owner, "absent").await,
        "get of an absent key says nothing about it",
    );
    assert_denied(as_stranger.list(&owner, "", 0, "").await, "list");
    assert_every_write_denied(&as_stranger, &owner).await;
    assert_untouched(&memory, &owner, seeded).await;
    assert!(memory
        .list(&stranger, "", 0, "")
        .await
        .unwrap()
        .entries
        .is_empty());
    // Its own namespace is its own, grant or no grant.
    as_stranger
        .set(&stranger, "mine", "1", None, None)
        .await
        .unwrap();
    assert_eq!(as_stranger.get(&stranger, "mine").await.unwrap().value, "1");
}

pub async fn revoke_removes_access(memory: Memory) {
    let (owner, grantee) = (ns("rv-owner"), ns("rv-grantee"));
    let seeded = seed(&memory, &owner).await;
    assert!(
        !memory.revoke(&owner, &grantee).await.unwrap(),
        "nothing to revoke yet"
    );
    memory
        .grant(&owner, &grantee, AccessMode::ReadWrite, None)
        .await
        .unwrap();
    let as_grantee = memory.as_caller(&grantee);
    as_grantee.get(&owner, "k").await.unwrap();
    assert!(memory.revoke(&owner, &grantee).await.unwrap());
    assert_denied(as_grantee.get(&owner, "k").await, "get after revoke");
    assert_denied(
        as_grantee.list(&owner, "", 0, "").await,
        "list after revoke",
    );
    assert_every_write_denied(&as_grantee, &owner).await;
    assert_untouched(&memory, &owner, seeded).await;
    assert!(memory.list_grants(&owner).await.unwrap().is_empty());
    assert!(
        !memory.revoke(&owner, &grantee).await.unwrap(),
        "a second revoke finds none"
    );
}

pub async fn grant_ttl_expires(memory: Memory) {
    let (owner, grantee) = (ns("tt-owner"), ns("tt-grantee"));
    let seeded = seed(&memory, &owner).await;
    let grant = memory
        .grant(&owner, &grantee, AccessMode::ReadWrite, Some(1))
        .await
        .unwrap();
    assert_eq!(
        grant.expires_at_ms,
        Some(grant.created_at_ms + 1_000),
        "expires one second after it was given"
    );
    let as_grantee = memory.as_caller(&grantee);
    as_grantee.get(&owner, "k").await.unwrap();
    assert_eq!(memory.list_grants(&owner).await.unwrap(), [grant]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_denied(as_grantee.get(&owner, "k").await, "get after expiry");
    assert_every_write_denied(&as_grantee, &owner).await;
    assert_untouched(&memory, &owner, seeded).await;
    assert!(
        memory.list_grants(&owner).await.unwrap().is_empty(),
        "expired grants are not listed"
    );
    assert!(
        !memory.revoke(&owner, &grantee).await.unwrap(),
        "an expired grant is no grant"
    );
    for ttl in [0, 31_536_001] {
        let (k, reason) = kind(
            memory
                .grant(&owner, &grantee, AccessMode::Read, Some(ttl))
                .await,
        );
        assert_eq!(
            (k, reason.as_str()),
            (ErrorKind::InvalidArgument, "INVALID_TTL")
        );
    }
}

pub async fn granting_again_replaces_mode_and_expiry(memory: Memory) {
    let (owner, grantee) = (ns("re-owner"), ns("re-grantee"));
    memory.set(&owner, "k", "1", None, None).await.unwrap();
    let as_grantee = memory.as_caller(&grantee);
    let first = memory
        .grant(&owner, &grantee, AccessMode::ReadWrite, Some(100))
        .await
        .unwrap();
    assert!(first.expires_at_ms.is_some());
    as_grantee.set(&owner, "k", "2", None, None).await.unwrap();

    let second = memory
        .grant(&owner, &grantee, AccessMode::Read, None)
        .await
        .unwrap();
    assert_eq!(
        (second.mode, second.expires_at_ms),
        (AccessMode::Read, None)
    );
    assert_eq!(memory.list_grants(&owner).await.unwrap(), [second]);
    assert_eq!(as_grantee.get(&owner, "k").await.unwrap().value, "2");
    assert_denied(
        as_grantee.set(&owner, "k", "3", None, None).await,
        "downgraded",
    );
    assert_eq!(memory.get(&owner, "k").await.unwrap().value, "2");

    let third = memory
        .grant(&owner, &grantee, AccessMode::ReadWrite, Some(60))
        .await
        .unwrap();
    let grants = memory.list_grants(&owner).await.unwrap();
    assert_eq!(grants.len(), 1, "one grant per grantee");
    assert_eq!(grants[0].mode, AccessMode::ReadWrite);
    assert_eq!(grants[0].expires_at_ms, third.expires_at_ms);
    as_grantee.set(&owner, "k", "3", None, None).await.unwrap();
    assert_eq!(memory.get(&owner, "k").await.unwrap().value, "3");
}

pub async fn list_grants_shows_active_grants(memory: Memory) {
    let owner = ns("lg-owner");
    let (b, c) = (ns("lg-b"), ns("lg-c"));
    assert!(memory.list_grants(&owner).await.unwrap().is_empty());
    let to_c = memory
        .grant(&owner, &c, AccessMode::ReadWrite, Some(60))
        .await
        .unwrap();
    let to_b = memory
        .grant(&owner, &b, AccessMode::Read, None)
        .await
        .unwrap();
    assert_eq!(
        memory.list_grants(&owner).await.unwrap(),
        [to_b, to_c],
        "ordered by grantee"
    );
    assert!(
        memory.list_grants(&b).await.unwrap().is_empty(),
        "a grantee's list holds what it gives, not what it got"
    );
}

pub async fn self_grant_is_rejected(memory: Memory) {
    let owner = ns("self");
    let (k, reason) = kind(
        memory
            .grant(&owner, &owner, AccessMode::ReadWrite, None)
            .await,
    );
    assert_eq!(
        (k, reason.as_str()),
        (ErrorKind::InvalidArgument, "SELF_GRANT")
    );
    assert_eq!(k.http_status(), 400);
    assert_eq!(kind(memory.revoke(&owner, &owner).await).1, "SELF_GRANT");
    for bad in ["", "has space", "a{b}"] {
        let (k, reason) = kind(memory.grant(&owner, bad, AccessMode::Read, None).await);
        assert_eq!(
            (k, reason.as_str()),
            (ErrorKind::InvalidArgument, "INVALID_GRANTEE"),
            "{bad:?}"
        );
    }
    assert_eq!(
        kind(memory.grant("", "someone", AccessMode::Read, None).await).1,
        "INVALID_NAMESPACE"
    );
    assert!(memory.list_grants(&owner).await.unwrap().is_empty());
}

pub async fn a_grant_reaches_only_its_owner(memory: Memory) {
    let (a, b, c) = (ns("reach-a"), ns("reach-b"), ns("reach-c"));
    memory.set(&a, "k", r#""a's""#, None, None).await.unwrap();
    let seeded_c = seed(&memory, &c).await;
    memory
        .grant(&a, &b, AccessMode::ReadWrite, None)
        .await
        .unwrap();
    let as_b = memory.as_caller(&b);
    assert_eq!(as_b.get(&a, "k").await.unwrap().value, r#""a's""#);
    // A's grant to B does not open C to B ...
    assert_denied(as_b.get(&c, "k").await, "B into C");
    assert_denied(as_b.list(&c, "", 0, "").await, "B lists C");
    assert_every_write_denied(&as_b, &c).await;
    assert_untouched(&memory, &c, seeded_c).await;
    // ... nor A to C, nor B to A's grantee's namespace the other way round.
    assert_denied(memory.as_caller(&c).get(&a, "k").await, "C into A");
    assert_denied(memory.as_caller(&a).get(&b, "k").await, "A into B");
}

pub async fn grants_are_listed_only_to_their_owner(memory: Memory) {
    let (a, b) = (ns("own-a"), ns("own-b"));
    let (x, y) = (ns("own-x"), ns("own-y"));
    let from_a = memory.grant(&a, &x, AccessMode::Read, None).await.unwrap();
    let from_b = memory
        .grant(&b, &y, AccessMode::ReadWrite, None)
        .await
        .unwrap();
    assert_eq!(memory.list_grants(&a).await.unwrap(), [from_a]);
    assert_eq!(memory.list_grants(&b).await.unwrap(), [from_b]);
    // Revoking in one owner's grants leaves another's alone.
    assert!(!memory.revoke(&a, &y).await.unwrap());
    assert_eq!(memory.list_grants(&b).await.unwrap().len(), 1);
    let (k, reason) = kind(memory.as_caller(&b).list_grants(&a).await);
    assert_eq!(
        (k, reason.as_str()),
        (ErrorKind::PermissionDenied, "NOT_OWNER")
    );
}

pub async fn grant_quota_is_enforced(memory: Memory) {
    let owner = ns("gq-owner");
    let (b, c, d) = (ns("gq-b"), ns("gq-c"), ns("gq-d"));
    memory
        .grant(&owner, &b, AccessMode::Read, None)
        .await
        .unwrap();
    memory
        .grant(&owner, &c, AccessMode::Read, None)
        .await
        .unwrap();
    let (k, reason) = kind(memory.grant(&owner, &d, AccessMode::Read, None).await);
    assert_eq!(
        (k, reason.as_str()),
        (ErrorKind::QuotaExceeded, "GRANT_QUOTA_EXCEEDED")
    );
    assert_denied(memory.as_caller(&d).get(&owner, "k").await, "not granted");
    memory
        .grant(&owner, &b, AccessMode::ReadWrite, None)
        .await
        .expect("replacing a grant is not a new one");
    assert!(memory.revoke(&owner, &c).await.unwrap());
    memory
        .grant(&owner, &d, AccessMode::Read, None)
        .await
        .expect("a revoke frees a grant");
    assert_eq!(memory.list_grants(&owner).await.unwrap().len(), 2);
}

/// A fresh EVM address spelled three ways: lower case, EIP-55 checksummed
/// (mixed case) and upper case.
fn address() -> (String, String, String) {
    loop {
        let address = alloy::primitives::Address::from(rand::random::<[u8; 20]>());
        let lower = format!("{address:#x}");
        let checksummed = address.to_checksum(None);
        if checksummed != lower {
            let upper = format!("0x{}", lower[2..].to_uppercase());
            return (lower, checksummed, upper);
        }
    }
}

/// An EVM address names one namespace whatever its case; other names keep
/// theirs.
pub async fn evm_address_namespaces_ignore_case(memory: Memory) {
    let (lower, checksummed, upper) = address();
    let written = memory
        .set(&checksummed, "k", "1", None, None)
        .await
        .unwrap();
    assert_eq!(
        written.namespace, lower,
        "stored under the lower-case address"
    );
    let read = memory.get(&lower, "k").await.unwrap();
    assert_eq!(
        (read.value.as_str(), read.revision),
        ("1", written.revision)
    );
    assert_eq!(memory.get(&upper, "k").await.unwrap().namespace, lower);
    assert_eq!(
        memory.incr(&upper, "n", "2", None).await.unwrap().value,
        "2"
    );
    assert!(
        memory
            .cas(&lower, "k", Some("1"), Some("3"), None)
            .await
            .unwrap()
            .swapped
    );
    let page = memory.list(&checksummed, "", 0, "").await.unwrap();
    assert_eq!(page.entries.len(), 2);
    assert!(page.entries.iter().all(|entry| entry.namespace == lower));
    // The namespace itself in another spelling needs no grant.
    assert_eq!(
        memory
            .as_caller(&upper)
            .get(&checksummed, "k")
            .await
            .unwrap()
            .value,
        "3"
    );
    memory
        .as_caller(&checksummed)
        .set(&lower, "m", "1", None, None)
        .await
        .unwrap();
    assert!(memory.delete(&upper, "m", None).await.unwrap().deleted);

    let name = ns("Agent-Case");
    memory.set(&name, "k", "1", None, None).await.unwrap();
    assert_eq!(
        kind(memory.get(&name.to_lowercase(), "k").await).0,
        ErrorKind::NotFound,
        "only EVM addresses are case-insensitive"
    );
    let short = &upper[..41];
    memory.set(short, "k", "1", None, None).await.unwrap();
    assert_eq!(
        kind(memory.get(&short.to_lowercase(), "k").await).0,
        ErrorKind::NotFound,
        "0x and 40 hex digits, no fewer"
    );
}

/// A grant to a checksummed address admits the lower-case payer, and an
/// owner named in any spelling is the same owner.
pub async fn grants_between_evm_addresses_ignore_case(memory: Memory) {
    let (owner, owner_checksummed, owner_upper) = address();
    let (payer, payer_checksummed, payer_upper) = address();
    memory.set(&owner, "k", "1", None, None).await.unwrap();

    let grant = memory
        .as_caller(&owner_checksummed)
        .grant(
            &owner_upper,
            &payer_checksummed,
            AccessMode::ReadWrite,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (grant.namespace.as_str(), grant.grantee.as_str()),
        (owner.as_str(), payer.as_str())
    );
    let as_payer = memory.as_caller(&payer);
    assert_eq!(
        as_payer.get(&owner_checksummed, "k").await.unwrap().value,
        "1"
    );
    let written = as_payer
        .set(&owner_upper, "k", "2", None, None)
        .await
        .unwrap();
    assert_eq!(written.namespace, owner);
    assert_eq!(
        memory
            .as_caller(&payer_upper)
            .get(&owner, "k")
            .await
            .unwrap()
            .value,
        "2"
    );
    assert_eq!(
        memory
            .as_caller(&owner_upper)
            .list_grants(&owner_checksummed)
            .await
            .unwrap(),
        [grant]
    );

    // Granting again in another spelling replaces the one grant.
    memory
        .grant(&owner, &payer_upper, AccessMode::Read, None)
        .await
        .unwrap();
    let grants = memory.list_grants(&owner_upper).await.unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(
        (grants[0].grantee.as_str(), grants[0].mode),
        (payer.as_str(), AccessMode::Read)
    );
    assert_denied(
        as_payer.set(&owner_checksummed, "k", "3", None, None).await,
        "read only now",
    );
    assert_eq!(
        kind(
            memory
                .grant(&owner_checksummed, &owner, AccessMode::Read, None)
                .await
        )
        .1,
        "SELF_GRANT",
        "the same address in two spellings is itself"
    );
    let (_, stranger, _) = address();
    let (k, reason) = kind(memory.as_caller(&stranger).list_grants(&owner).await);
    assert_eq!(
        (k, reason.as_str()),
        (ErrorKind::PermissionDenied, "NOT_OWNER")
    );

    assert!(memory
        .as_caller(&owner_checksummed)
        .revoke(&owner, &payer_checksummed)
        .await
        .unwrap());
    assert_denied(as_payer.get(&owner, "k").await, "after the revoke");
    assert!(memory.list_grants(&owner).await.unwrap().is_empty());
    assert_eq!(memory.get(&owner, "k").await.unwrap().value, "2");
}
