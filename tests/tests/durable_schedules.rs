//! The schedules that broke the storage argument, each forced step by step
//! with proxies that hold a replica's traffic at a chosen request:
//!
//! a. a load whose transaction never commits (its replica dies at COMMIT);
//! b. a write persisted while a load's transaction is still open;
//! c. a Redis restarted from a snapshot older than what was acknowledged;
//!
//! and the gap those fixes open: a load that committed and died before it
//! activated its state in Redis.
//!
//! Each asserts what a client is promised: every acknowledged write counts
//! exactly once, acknowledged revisions (fencing tokens) are distinct and
//! only grow, and a read never goes back.

use std::sync::Arc;
use std::time::Duration;
use tessera_memory::durable::scripts::Scripts;
use tessera_memory::{Entry, Limits, Memory};
use tessera_tests::harness::{database_url, durable_store_at, unique_namespace, ProxiedReplica};
use tessera_tests::proxy::PausableProxy;
use tessera_tests::redis_server::RedisServer;

const HOLD: Duration = Duration::from_secs(5);

async fn direct(redis: &RedisServer) -> Memory {
    Memory::new(
        Arc::new(durable_store_at(&redis.url(), Limits::default()).await),
        Limits::default(),
    )
}

/// The key as PostgreSQL has it, read through a Redis that holds nothing.
async fn durable_state(redis: &RedisServer, namespace: &str, key: &str) -> Entry {
    redis.command("FLUSHALL").await;
    direct(redis).await.get(namespace, key).await.unwrap()
}

type Load = tokio::task::JoinHandle<tessera_error::Result<Entry>>;

/// Key `k` holds 1 (revision 1, durable) and Redis has lost it; replica A is
/// loading it, its traffic held (by the proxy `at` picks) at the first
/// request containing `pattern`. Returns C (a direct replica), A and A's
/// load.
async fn held_load(
    redis: &RedisServer,
    namespace: &str,
    at: fn(&ProxiedReplica) -> &PausableProxy,
    pattern: &[u8],
) -> (Memory, ProxiedReplica, Load) {
    let c = direct(redis).await;
    c.incr(namespace, "k", "1", None).await.unwrap();
    redis.command("FLUSHALL").await;
    let a = ProxiedReplica::start(redis.port, Limits::default()).await;
    at(&a).hold_on(pattern);
    let a_load = {
        let (memory, namespace) = (a.memory.clone(), namespace.to_string());
        tokio::spawn(async move { memory.get(&namespace, "k").await })
    };
    assert!(
        at(&a).held_within(HOLD).await,
        "A's load reached the held request"
    );
    (c, a, a_load)
}

/// The key's load generation in PostgreSQL.
async fn generation(namespace: &str) -> i64 {
    let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
    sqlx::query_scalar("SELECT gen FROM memory_entries WHERE namespace = $1 AND key = 'k'")
        .bind(namespace)
        .fetch_one(&pool)
        .await
        .unwrap()
}

/// a. Replica A loads the key and dies before its COMMIT. Replica B writes on
/// what A left in Redis, and its PostgreSQL write is held in flight. Redis
/// then loses the key, and C loads it and writes (acknowledged). When B's
/// write arrives it must not be taken for C's: generation numbers are handed
/// out only by committed loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_that_never_commits_cannot_hand_out_its_generation_twice() {
    let redis = RedisServer::start();
    let namespace = unique_namespace("schedule-a");
    let (c, a, a_load) = held_load(&redis, &namespace, |a| &a.pg, b"COMMIT").await;

    let b = ProxiedReplica::start(redis.port, Limits::default()).await;
    b.pg.hold_on(b"SET value");
    let b_incr = {
        let (memory, namespace) = (b.memory.clone(), namespace.clone());
        tokio::spawn(async move { memory.incr(&namespace, "k", "10", None).await })
    };
    // A dies: its connection closes and PostgreSQL rolls its load back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.pg.sever();
    let _ = a_load.await.unwrap();
    assert!(b.pg.held_within(HOLD).await, "B's write reached PostgreSQL");

    redis.command("FLUSHALL").await;
    let c_entry = c.incr(&namespace, "k", "100", None).await.unwrap();
    b.pg.resume();
    let b_entry = b_incr
        .await
        .unwrap()
        .expect("B's increment is redone, once");

    assert_ne!(
        b_entry.revision, c_entry.revision,
        "two acknowledged writes share a fencing token: B {b_entry:?}, C {c_entry:?}"
    );
    let stored = durable_state(&redis, &namespace, "k").await;
    assert_eq!(
        (stored.value.as_str(), stored.revision),
        ("111", 3),
        "every acknowledged increment counts exactly once"
    );
}

/// b. Replica A's load is open (held at COMMIT) when B writes. B's write must
/// not be judged lost and redone while A's generation may still commit: if
/// A commits and a reader makes B's first attempt durable, the redo would
/// add B's increment twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_is_not_redone_while_a_load_may_still_commit() {
    let redis = RedisServer::start();
    let namespace = unique_namespace("schedule-b");
    let (c, a, a_load) = held_load(&redis, &namespace, |a| &a.pg, b"COMMIT").await;

    let b = ProxiedReplica::start(redis.port, Limits::default()).await;
    let invalidate = Scripts::new().invalidate.get_hash().to_string();
    b.redis.hold_on(invalidate.as_bytes());
    let b_incr = {
        let (memory, namespace) = (b.memory.clone(), namespace.clone());
        tokio::spawn(async move { memory.incr(&namespace, "k", "10", None).await })
    };
    let b_judged_lost = b.redis.held_within(Duration::from_secs(1)).await;
    a.pg.resume();
    a_load.await.unwrap().expect("A's load commits");
    let mut c_read = None;
    if b_judged_lost {
        // B is about to drop its state and redo; a reader persists it first.
        c_read = Some(c.get(&namespace, "k").await.unwrap());
        b.redis.resume();
    }
    let b_entry = b_incr
        .await
        .unwrap()
        .expect("B's increment is acknowledged");

    let stored = durable_state(&redis, &namespace, "k").await;
    assert_eq!(
        (stored.value.as_str(), stored.revision),
        ("11", 2),
        "B's increment counts once (B answered {b_entry:?}, a reader saw {c_read:?})"
    );
    assert_eq!((b_entry.value.as_str(), b_entry.revision), ("11", 2));
}

/// c. Redis restarted from a snapshot taken before the last two acknowledged
/// writes (as Redis's default RDB persistence does): the stale copy must not
/// be read or written on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restored_from_an_old_snapshot_is_loaded_again() {
    let mut redis = RedisServer::start_with_snapshots();
    let namespace = unique_namespace("schedule-c");
    let memory = direct(&redis).await;
    for value in 1..=5 {
        memory
            .set(&namespace, "k", &value.to_string(), None, None)
            .await
            .unwrap();
    }
    redis.command("SAVE").await;
    let mut acknowledged = None;
    for value in 6..=7 {
        acknowledged = Some(
            memory
                .set(&namespace, "k", &value.to_string(), None, None)
                .await
                .unwrap(),
        );
    }
    let acknowledged = acknowledged.unwrap();
    assert_eq!(acknowledged.revision, 7);

    redis.restart_from_snapshot();
    // The restart broke the connection: a call may fail once while it reopens.
    let mut read = None;
    for _ in 0..20 {
        match memory.get(&namespace, "k").await {
            Ok(entry) => {
                read = Some(entry);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let read = read.expect("reads recover once Redis is back");
    assert_eq!(
        (read.value.as_str(), read.revision),
        ("7", 7),
        "a read after the restart sees the last acknowledged write"
    );
    let next = memory.set(&namespace, "k", "8", None, None).await.unwrap();
    assert_eq!(next.revision, 8, "fencing tokens never go backwards");
    let stored = durable_state(&redis, &namespace, "k").await;
    assert_eq!((stored.value.as_str(), stored.revision), ("8", 8));
}

/// Replica A's load commits its generation and dies before activating the
/// state it installed in Redis. The next load finds that state pending, with
/// exactly the row's generation and revision, and activates it: no second
/// generation, the value and revisions carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_that_committed_but_never_activated_is_finished_by_the_next() {
    let redis = RedisServer::start();
    let namespace = unique_namespace("unactivated");
    let activate = Scripts::new().activate.get_hash().to_string();
    let (c, a, a_load) = held_load(&redis, &namespace, |a| &a.redis, activate.as_bytes()).await;
    let committed = generation(&namespace).await;
    a.kill();
    let _ = a_load.await.unwrap();

    let read = c.get(&namespace, "k").await.unwrap();
    assert_eq!((read.value.as_str(), read.revision), ("1", 1));
    assert_eq!(
        generation(&namespace).await,
        committed,
        "the committed load was activated, not loaded again"
    );
    let next = c.incr(&namespace, "k", "1", None).await.unwrap();
    assert_eq!((next.value.as_str(), next.revision), ("2", 2));
}
