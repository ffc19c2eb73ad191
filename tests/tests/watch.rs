//! Watch on both backends: a key's changes in order, catch-up from a
//! revision, expiry, resuming a prefix watch from its cursor in the middle
//! of a burst of writes with nothing missed or repeated, gaps after the log
//! is trimmed or the cache is lost, and grants.

use std::collections::BTreeMap;
use std::time::Duration;
use tessera_memory::watch::{EventKind, WatchEvent, WatchEvents, LOG_LENGTH};
use tessera_memory::{Limits, Memory};
use tessera_tests::harness::{durable_memory, durable_store_at, embedded_memory, unique_namespace};
type Events = WatchEvents;

async fn next(events: &mut Events) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .expect("the watch is still open")
        .expect("not an error")
}

/// Nothing arrives for `wait`.
async fn quiet(events: &mut Events, wait: Duration) {
    if let Ok(Some(event)) = tokio::time::timeout(wait, events.recv()).await {
        panic!("expected no event, got {event:?}");
    }
}

async fn watch_key(memory: &Memory, ns: &str, key: &str, since: u64) -> Events {
    memory.watch(ns, key, "", since, "", 30).await.unwrap()
}

fn value_of(event: &WatchEvent) -> Option<&str> {
    event.entry.as_ref().map(|entry| entry.value.as_str())
}

async fn a_key_watch_reports_each_change_in_order(memory: Memory) {
    let ns = unique_namespace("watch-key");
    let mut events = watch_key(&memory, &ns, "lock", 0).await;
    let start = next(&mut events).await;
    assert_eq!((start.kind, start.revision), (EventKind::Progress, 0));

    memory.set(&ns, "lock", r#""a""#, None, None).await.unwrap();
    memory.set(&ns, "other", "1", None, None).await.unwrap();
    memory
        .cas(&ns, "lock", Some(r#""a""#), Some(r#""b""#), None)
        .await
        .unwrap();
    memory.delete(&ns, "lock", None).await.unwrap();

    let put = next(&mut events).await;
    assert_eq!(
        (put.kind, put.revision, value_of(&put)),
        (EventKind::Put, 1, Some(r#""a""#))
    );
    assert!(!put.compacted);
    let swapped = next(&mut events).await;
    assert_eq!(
        (swapped.kind, swapped.revision, value_of(&swapped)),
        (EventKind::Put, 2, Some(r#""b""#))
    );
    let deleted = next(&mut events).await;
    assert_eq!((deleted.kind, deleted.revision), (EventKind::Delete, 3));
    assert_eq!(deleted.key, "lock");
    // A CAS that does not swap and a delete of nothing are not writes.
    memory
        .cas(&ns, "lock", Some(r#""zzz""#), Some("1"), None)
        .await
        .unwrap();
    memory.delete(&ns, "lock", None).await.unwrap();
    quiet(&mut events, Duration::from_millis(300)).await;
}

async fn a_watch_catches_up_from_a_revision(memory: Memory) {
    let ns = unique_namespace("watch-since");
    for n in 1..=5 {
        memory
            .set(&ns, "k", &n.to_string(), None, None)
            .await
            .unwrap();
    }
    let mut events = watch_key(&memory, &ns, "k", 2).await;
    assert_eq!(next(&mut events).await.kind, EventKind::Progress);
    for revision in 3..=5 {
        let event = next(&mut events).await;
        assert_eq!((event.kind, event.revision), (EventKind::Put, revision));
        assert_eq!(value_of(&event), Some(revision.to_string().as_str()));
        assert!(!event.compacted, "revision {revision} is in the log");
    }
    quiet(&mut events, Duration::from_millis(200)).await;

    // From 0: the current state, compacted (the log never held revision 0).
    let mut events = watch_key(&memory, &ns, "k", 0).await;
    assert_eq!(next(&mut events).await.kind, EventKind::Progress);
    let current = next(&mut events).await;
    assert_eq!(
        (current.kind, current.revision, current.compacted),
        (EventKind::Put, 5, true)
    );
    // Up to date: only what comes next.
    let mut events = watch_key(&memory, &ns, "k", 5).await;
    assert_eq!(next(&mut events).await.kind, EventKind::Progress);
    quiet(&mut events, Duration::from_millis(200)).await;
    memory.set(&ns, "k", "6", None, None).await.unwrap();
    assert_eq!(next(&mut events).await.revision, 6);
}

async fn a_revision_the_log_has_trimmed_comes_back_compacted(memory: Memory) {
    let ns = unique_namespace("watch-trim");
    let neighbour = unique_namespace("watch-trim-neighbour");
    memory.set(&ns, "k", "0", None, None).await.unwrap();
    // Interleaved with another namespace's writes: each log is trimmed on
    // its own count.
    for n in 1..=(2 * LOG_LENGTH) {
        let value = n.to_string();
        memory.set(&ns, "filler", &value, None, None).await.unwrap();
        memory
            .set(&neighbour, "filler", &value, None, None)
            .await
            .unwrap();
    }
    memory.set(&ns, "k", "1", None, None).await.unwrap();
    let mut events = watch_key(&memory, &ns, "k", 1).await;
    assert_eq!(next(&mut events).await.kind, EventKind::Progress);
    let caught_up = next(&mut events).await;
    assert_eq!((caught_up.revision, caught_up.compacted), (2, true));
    assert_eq!(value_of(&caught_up), Some("1"));

    // A prefix watch from a trimmed cursor is told to resync.
    let mut all = memory.watch(&ns, "", "", 0, "", 30).await.unwrap();
    let head = next(&mut all).await.cursor;
    drop(all);
    for n in 0..(2 * LOG_LENGTH) {
        memory
            .set(&ns, "filler", &format!("\"{n}x\""), None, None)
            .await
            .unwrap();
    }
    let mut resumed = memory.watch(&ns, "", "", 0, &head, 30).await.unwrap();
    assert_eq!(next(&mut resumed).await.kind, EventKind::Progress);
    let resync = next(&mut resumed).await;
    assert_eq!(resync.kind, EventKind::Resync);
    assert_ne!(resync.cursor, head);
    memory
        .set(&ns, "k", r#""after""#, None, None)
        .await
        .unwrap();
    let after = next(&mut resumed).await;
    assert_eq!((after.kind, after.key.as_str()), (EventKind::Put, "k"));
}

/// An expiry the client did not see (it came between the client's last
/// look and its watch) is reported at once, not left for the next write.
async fn an_expiry_before_the_watch_is_reported_at_once(memory: Memory) {
    let ns = unique_namespace("watch-missed-ttl");
    memory.set(&ns, "lease", "1", Some(1), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut events = watch_key(&memory, &ns, "lease", 1).await;
    assert_eq!(next(&mut events).await.kind, EventKind::Progress);
    let expired = next(&mut events).await;
    assert_eq!((expired.kind, expired.revision), (EventKind::Expire, 1));
}

/// A client ahead of the store (one restored from an older copy) gets the
/// store's state, not silence until the store catches up.
async fn a_revision_ahead_of_the_store_starts_over(memory: Memory) {
    let ns = unique_namespace("watch-ahead");
    memory.set(&ns, "k", "1", None, None).await.unwrap();
    let mut events = watch_key(&memory, &ns, "k", 7).await;
    assert_eq!(next(&mut events).await.kind, EventKind::Progress);
    let current = next(&mut events).await;
    assert_eq!(
        (current.kind, current.revision, current.compacted),
        (EventKind::Put, 1, true)
    );
    memory.set(&ns, "k", "2", None, None).await.unwrap();
    assert_eq!(next(&mut events).await.revision, 2);
}

async fn an_expiry_is_reported_at_its_revision(memory: Memory) {
    let ns = unique_namespace("watch-ttl");
    memory
        .set(&ns, "lease", r#""held""#, Some(1), None)
        .await
        .unwrap();
    let mut events = watch_key(&memory, &ns, "lease", 1).await;
    assert_eq!(next(&mut events).await.kind, EventKind::Progress);
    let expired = next(&mut events).await;
    assert_eq!((expired.kind, expired.revision), (EventKind::Expire, 1));
    assert!(
        memory.get(&ns, "lease").await.is_err(),
        "gone when reported"
    );

    // A prefix watch learns the expiries of keys written before it began.
    memory.set(&ns, "p/a", "1", Some(1), None).await.unwrap();
    let mut prefix = memory.watch(&ns, "", "p/", 0, "", 30).await.unwrap();
    assert_eq!(next(&mut prefix).await.kind, EventKind::Progress);
    let expired = next(&mut prefix).await;
    assert_eq!(
        (expired.kind, expired.key.as_str()),
        (EventKind::Expire, "p/a")
    );
}

/// A burst of writes from several writers while a prefix watcher drops its
/// watch every few events and resumes from the last cursor: every write's
/// event arrives exactly once, each key's revisions in order.
async fn a_watcher_that_reconnects_during_a_burst_misses_nothing(memory: Memory) {
    let ns = unique_namespace("watch-burst");
    const WRITERS: usize = 4;
    const WRITES: u64 = 60;
    let mut watcher = memory.watch(&ns, "", "job/", 0, "", 30).await.unwrap();
    let mut cursor = next(&mut watcher).await.cursor;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (memory, ns) = (memory.clone(), ns.clone());
            tokio::spawn(async move {
                for n in 1..=WRITES {
                    let key = format!("job/{w}");
                    memory
                        .set(&ns, &key, &n.to_string(), None, None)
                        .await
                        .unwrap();
                    memory
                        .set(&ns, "unwatched", &n.to_string(), None, None)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut reconnects = 0;
    while seen.values().map(Vec::len).sum::<usize>() < WRITERS * WRITES as usize {
        for _ in 0..7 {
            let event = next(&mut watcher).await;
            match event.kind {
                EventKind::Progress => continue,
                EventKind::Put => {}
                other => panic!("unexpected {other:?}"),
            }
            assert_eq!(value_of(&event), Some(event.revision.to_string().as_str()));
            seen.entry(event.key.clone())
                .or_default()
                .push(event.revision);
            cursor = event.cursor;
            if seen.values().map(Vec::len).sum::<usize>() == WRITERS * WRITES as usize {
                break;
            }
        }
        drop(watcher);
        reconnects += 1;
        watcher = memory.watch(&ns, "", "job/", 0, &cursor, 30).await.unwrap();
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(reconnects > 10, "only {reconnects} reconnects");
    for w in 0..WRITERS {
        let revisions = &seen[&format!("job/{w}")];
        assert_eq!(*revisions, (1..=WRITES).collect::<Vec<_>>(), "job/{w}");
    }
    assert_eq!(seen.len(), WRITERS, "{:?}", seen.keys());
}

async fn another_namespace_needs_a_read_grant(memory: Memory) {
    let owner = unique_namespace("watch-owner");
    let reader = unique_namespace("watch-reader");
    let refused = memory
        .as_caller(&reader)
        .watch(&owner, "k", "", 0, "", 5)
        .await;
    assert_eq!(refused.unwrap_err().reason, "NO_GRANT");
    memory
        .grant(&owner, &reader, tessera_memory::AccessMode::Read, None)
        .await
        .unwrap();
    let mut events = memory
        .as_caller(&reader)
        .watch(&owner, "k", "", 0, "", 30)
        .await
        .unwrap();
    assert_eq!(next(&mut events).await.kind, EventKind::Progress);
    memory.set(&owner, "k", "1", None, None).await.unwrap();
    assert_eq!(next(&mut events).await.kind, EventKind::Put);
    memory.revoke(&owner, &reader).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("the watch ends within the recheck")
        .expect("an error first");
    assert_eq!(ended.unwrap_err().reason, "NO_GRANT");
}

async fn bad_watches_are_refused(memory: Memory) {
    let ns = unique_namespace("watch-bad");
    let reason = |result: tessera_error::Result<Events>| result.unwrap_err().reason;
    assert_eq!(
        reason(memory.watch(&ns, "k", "p", 0, "", 5).await),
        "KEY_AND_PREFIX"
    );
    // Refused as a call, before any event.
    assert_eq!(
        reason(memory.watch(&ns, "", "", 0, "not-a-cursor", 5).await),
        "INVALID_CURSOR"
    );
    // Longer than the limit is the limit.
    let mut events = memory.watch(&ns, "k", "", 0, "", 61).await.unwrap();
    assert_eq!(next(&mut events).await.kind, EventKind::Progress);
}

async fn a_watch_ends_at_its_timeout(memory: Memory) {
    let ns = unique_namespace("watch-timeout");
    let started = std::time::Instant::now();
    let mut events = memory.watch(&ns, "", "p/", 0, "", 1).await.unwrap();
    let began = next(&mut events).await.cursor;
    // A write to a key nobody watches moves the position all the same.
    memory.set(&ns, "other", "1", None, None).await.unwrap();
    let last = next(&mut events).await;
    assert_eq!(
        last.kind,
        EventKind::Progress,
        "the watch says where it ended"
    );
    assert_ne!(last.cursor, began);
    assert!(tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .is_none());
    assert!(started.elapsed() >= Duration::from_secs(1));
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(embedded_memory(Limits::default()).await).await;
                }
            )*
        }
        mod redis_postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(durable_memory(Limits::default()).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_key_watch_reports_each_change_in_order,
    a_watch_catches_up_from_a_revision,
    a_revision_the_log_has_trimmed_comes_back_compacted,
    an_expiry_is_reported_at_its_revision,
    an_expiry_before_the_watch_is_reported_at_once,
    a_revision_ahead_of_the_store_starts_over,
    a_watcher_that_reconnects_during_a_burst_misses_nothing,
    another_namespace_needs_a_read_grant,
    bad_watches_are_refused,
    a_watch_ends_at_its_timeout,
);

/// Redis restarted empty: a cursor from before is a gap (what followed it
/// may be lost), a key watch comes back with the state PostgreSQL kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_cache_is_a_gap_not_a_silent_skip() {
    let mut redis = tessera_tests::redis_server::RedisServer::start();
    let store = durable_store_at(&redis.url(), Limits::default()).await;
    let memory = Memory::new(std::sync::Arc::new(store), Limits::default());
    let ns = unique_namespace("watch-lost");
    memory.set(&ns, "k", "1", None, None).await.unwrap();
    let mut all = memory.watch(&ns, "", "", 0, "", 30).await.unwrap();
    let cursor = next(&mut all).await.cursor;
    drop(all);
    memory.set(&ns, "k", "2", None, None).await.unwrap();

    redis.restart_empty();
    // Reconnecting takes a call or two; then the old cursor is a gap.
    let mut resynced = false;
    for _ in 0..50 {
        let mut resumed = match memory.watch(&ns, "", "", 0, &cursor, 30).await {
            Ok(resumed) => resumed,
            Err(error) => {
                assert_eq!(error.reason, "REDIS_UNAVAILABLE");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        loop {
            match tokio::time::timeout(Duration::from_secs(10), resumed.recv()).await {
                Ok(Some(Ok(event))) if event.kind == EventKind::Progress => continue,
                Ok(Some(Ok(event))) => {
                    assert_eq!(event.kind, EventKind::Resync, "{event:?}");
                    resynced = true;
                }
                Ok(Some(Err(error))) => assert_eq!(error.reason, "REDIS_UNAVAILABLE"),
                other => panic!("{other:?}"),
            }
            break;
        }
        if resynced {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resynced, "the lost history was reported as a gap");
    let mut key = watch_key(&memory, &ns, "k", 1).await;
    assert_eq!(next(&mut key).await.kind, EventKind::Progress);
    let current = next(&mut key).await;
    assert_eq!((current.revision, current.compacted), (2, true));
    assert_eq!(value_of(&current), Some("2"));
}

/// A state the generation guard fenced off never happened: its entry in
/// the change stream (here written by hand, as a write whose persist lost
/// the race with a reload would leave it) is never shown to a watch; the
/// real write of the same revision is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_write_in_the_stream_is_never_reported() {
    let mut redis = tessera_tests::redis_server::RedisServer::start();
    let store = durable_store_at(&redis.url(), Limits::default()).await;
    let memory = Memory::new(std::sync::Arc::new(store), Limits::default());
    let ns = unique_namespace("watch-fenced");
    memory.set(&ns, "k", "1", None, None).await.unwrap();
    // Redis loses the key: the next read loads it under a new generation.
    redis.restart_empty();
    let mut loaded = false;
    for _ in 0..50 {
        if memory.get(&ns, "k").await.is_ok() {
            loaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(loaded);
    let pg = sqlx::PgPool::connect(&tessera_tests::harness::database_url())
        .await
        .unwrap();
    let (prior_gen, prior_rev): (i64, i64) = sqlx::query_as(
        "SELECT prior_gen, prior_rev FROM memory_entries WHERE namespace = $1 AND key = $2",
    )
    .bind(&ns)
    .bind("k")
    .fetch_one(&pg)
    .await
    .unwrap();

    let mut events = watch_key(&memory, &ns, "k", prior_rev as u64).await;
    assert_eq!(next(&mut events).await.kind, EventKind::Progress);
    // The old generation's next revision, never persisted: a phantom.
    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .arg("replication")
        .query_async(&mut connection)
        .await
        .unwrap();
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
            .unwrap()
            .to_string()
    };
    let incarnation = format!("{}:{}", field("run_id"), field("master_replid"));
    let phantom_revision = (prior_rev + 1).to_string();
    let _: String = redis::cmd("XADD")
        .arg(format!("tm:{{{ns}}}:w"))
        .arg("*")
        .arg(&[
            "t",
            "p",
            "k",
            "k",
            "r",
            &phantom_revision,
            "g",
            &prior_gen.to_string(),
        ])
        .arg(&[
            "i",
            &incarnation,
            "v",
            "\"phantom\"",
            "c",
            "1",
            "u",
            "1",
            "x",
            "0",
        ])
        .query_async(&mut connection)
        .await
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("tm:w")
        .arg(format!("tm:{{{ns}}}:w"))
        .query_async(&mut connection)
        .await
        .unwrap();
    quiet(&mut events, Duration::from_millis(1500)).await;

    memory.set(&ns, "k", r#""real""#, None, None).await.unwrap();
    let real = next(&mut events).await;
    assert_eq!(value_of(&real), Some(r#""real""#));
    assert_eq!(real.revision, prior_rev as u64 + 1);
}

/// A server holds at most `max_watches`; a watch whose client went away
/// (its events dropped, as when a connection closes) gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_watch_gives_its_place_back() {
    let limits = Limits {
        max_watches: 1,
        ..Limits::default()
    };
    let memory = embedded_memory(limits).await;
    let ns = unique_namespace("watch-places");
    let held = watch_key(&memory, &ns, "k", 0).await;
    let refused = memory.watch(&ns, "other", "", 0, "", 30).await.unwrap_err();
    assert_eq!(refused.reason, "TOO_MANY_WATCHES");
    drop(held);
    let mut reopened = None;
    for _ in 0..50 {
        match memory.watch(&ns, "other", "", 0, "", 30).await {
            Ok(events) => {
                reopened = Some(events);
                break;
            }
            Err(error) => {
                assert_eq!(error.reason, "TOO_MANY_WATCHES");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let mut reopened = reopened.expect("the dropped watch's place came back");
    assert_eq!(next(&mut reopened).await.kind, EventKind::Progress);
}
