//! The memory conformance suite, written once and run against every backend
//! (`tests/conformance_embedded.rs`, `tests/conformance_redis_postgres.rs`).
//! Each case gets a fresh namespace, so backends can be shared servers.

use crate::harness::unique_namespace;
use std::collections::HashSet;
use std::time::Duration;
use tessera_error::ErrorKind;
use tessera_memory::{Limits, Memory};

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
            incr_keeps_ttl_unless_given,
            concurrent_increments_all_count,
            concurrent_cas_admits_one_winner,
            list_is_newest_first_with_prefix_and_cursor,
            bad_input_is_rejected_and_nothing_is_written,
            key_quota_is_enforced,
            byte_quota_is_enforced,
            expired_keys_free_their_quota,
            namespaces_are_isolated,
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
