//! No acknowledged write is lost: concurrent writers through two memory
//! replicas while the test SIGKILLs its own Redis and restarts it empty, and
//! restarts one replica. Afterwards every acknowledged write (and its
//! revision) is still there, read back through a Redis that knows nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tessera_memory::{Limits, Memory};
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tessera_tests::harness::{durable_store_at, unique_namespace, MemoryServer};
use tessera_tests::redis_server::RedisServer;
use tokio::sync::RwLock;
use tonic::transport::Channel;

const WRITERS: usize = 16;

async fn replica(redis_url: &str) -> MemoryServer {
    let store = durable_store_at(redis_url, Limits::default()).await;
    MemoryServer::start(Memory::new(Arc::new(store), Limits::default())).await
}

#[derive(Default)]
struct Ledger {
    /// Per key: (value, revision) of every acknowledged set, in order.
    acked_sets: HashMap<String, Vec<(u64, u64)>>,
    /// Per key: the highest value sent whose outcome is unknown.
    attempted: HashMap<String, u64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_redis_loss_and_replica_restart() {
    let mut redis = RedisServer::start();
    let namespace = unique_namespace("durability");
    let replicas = Arc::new(RwLock::new(vec![
        replica(&redis.url()).await,
        replica(&redis.url()).await,
    ]));
    let urls = Arc::new(RwLock::new(vec![
        replicas.read().await[0].url(),
        replicas.read().await[1].url(),
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let acked_incrs = Arc::new(AtomicU64::new(0));
    let unknown_incrs = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let ledger = Arc::new(std::sync::Mutex::new(Ledger::default()));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (urls, stop, ledger) = (urls.clone(), stop.clone(), ledger.clone());
            let (acked_incrs, unknown_incrs, failures) =
                (acked_incrs.clone(), unknown_incrs.clone(), failures.clone());
            let namespace = namespace.clone();
            tokio::spawn(async move {
                let key = format!("writer/{w}");
                let mut seq = 0u64;
                let mut round = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    let url = urls.read().await[round % 2].clone();
                    let Ok(mut client) = MemoryServiceClient::connect(url).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    seq += 1;
                    ledger.lock().unwrap().attempted.insert(key.clone(), seq);
                    let set = client
                        .set(pb::SetRequest {
                            namespace: namespace.clone(),
                            key: key.clone(),
                            value_json: seq.to_string(),
                            ttl_seconds: None,
                            if_match: None,
                            ..Default::default()
                        })
                        .await;
                    match set {
                        Ok(entry) => {
                            let revision = entry.into_inner().revision;
                            ledger
                                .lock()
                                .unwrap()
                                .acked_sets
                                .entry(key.clone())
                                .or_default()
                                .push((seq, revision));
                        }
                        Err(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let incr = client
                        .increment(pb::IncrementRequest {
                            namespace: namespace.clone(),
                            key: "shared/counter".into(),
                            by_json: "1".into(),
                            ttl_seconds: None,
                            ..Default::default()
                        })
                        .await;
                    match incr {
                        Ok(_) => acked_incrs.fetch_add(1, Ordering::Relaxed),
                        Err(_) => unknown_incrs.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = acked_incrs.load(Ordering::Relaxed);
    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart_empty();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Restart replica 0: drain it, then a fresh process-equivalent on a new port.
    let old = replicas.write().await.remove(0);
    old.stop().await;
    let fresh = replica(&redis.url()).await;
    urls.write().await[0] = fresh.url();
    replicas.write().await.insert(0, fresh);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A second loss while writes are in flight.
    redis.restart_empty();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let after_recovery = acked_incrs.load(Ordering::Relaxed);
    assert!(
        before_kill > 50,
        "writes were flowing before the kill ({before_kill})"
    );
    assert!(
        after_recovery > before_kill + 50,
        "writes resumed after the restarts ({before_kill} -> {after_recovery})"
    );

    // Read everything back through a Redis that starts empty: every read
    // loads from PostgreSQL.
    redis.restart_empty();
    let reader_store = durable_store_at(&redis.url(), Limits::default()).await;
    let reader = Memory::new(Arc::new(reader_store), Limits::default());
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    let mut checked = 0;
    for (key, sets) in &ledger.acked_sets {
        if let Some(w) = sets.windows(2).find(|w| w[0].1 >= w[1].1) {
            panic!(
                "{key}: acknowledged revisions only grow, but {:?} came before {:?}",
                w[0], w[1]
            );
        }
        let (last_value, last_revision) = *sets.last().unwrap();
        let entry = reader
            .get(&namespace, key)
            .await
            .expect("acknowledged key is readable");
        let value: u64 = entry.value.parse().unwrap();
        let attempted = ledger.attempted[key];
        assert!(
            value >= last_value && value <= attempted,
            "{key}: last acknowledged {last_value}, attempted up to {attempted}, found {value}"
        );
        assert!(
            entry.revision >= last_revision,
            "{key}: revision went backwards"
        );
        checked += 1;
    }
    assert_eq!(checked, WRITERS);
    let counter: u64 = reader
        .get(&namespace, "shared/counter")
        .await
        .unwrap()
        .value
        .parse()
        .unwrap();
    let (acked, unknown) = (
        acked_incrs.load(Ordering::Relaxed),
        unknown_incrs.load(Ordering::Relaxed),
    );
    assert!(
        counter >= acked && counter <= acked + unknown,
        "counter {counter}: {acked} acknowledged increments, {unknown} with unknown outcome"
    );
    eprintln!(
        "durability: {acked} increments acknowledged, {unknown} unknown, {} set failures, counter {counter}",
        failures.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_reads_through_and_revisions_continue() {
    let redis = RedisServer::start();
    let namespace = unique_namespace("readthrough");
    let store = durable_store_at(&redis.url(), Limits::default()).await;
    let memory = Memory::new(Arc::new(store), Limits::default());
    let first = memory
        .set(&namespace, "k", r#"{"v":1}"#, Some(3600), None)
        .await
        .unwrap();
    let lock = memory
        .cas(&namespace, "lock", None, Some("\"a\""), Some(60))
        .await
        .unwrap();
    redis.command("FLUSHALL").await;

    let read = memory.get(&namespace, "k").await.unwrap();
    assert_eq!(
        (read.value.as_str(), read.revision, read.expires_at_ms),
        (r#"{"v":1}"#, first.revision, first.expires_at_ms)
    );
    let held = memory
        .cas(&namespace, "lock", None, Some("\"b\""), Some(60))
        .await
        .unwrap();
    assert!(!held.swapped, "a lease survives the cache losing it");
    let next = memory.set(&namespace, "k", "2", None, None).await.unwrap();
    assert_eq!(next.revision, first.revision + 1);
    assert!(
        memory
            .cas(&namespace, "lock", Some("\"a\""), None, None)
            .await
            .unwrap()
            .revision
            > lock.revision
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_unavailable_not_a_wrong_answer() {
    let mut redis = RedisServer::start();
    let namespace = unique_namespace("down");
    let store = durable_store_at(&redis.url(), Limits::default()).await;
    let memory = Memory::new(Arc::new(store), Limits::default());
    memory.set(&namespace, "k", "1", None, None).await.unwrap();
    redis.kill();
    let error = memory.get(&namespace, "k").await.unwrap_err();
    assert_eq!(error.kind, tessera_error::ErrorKind::Unavailable);
    assert_eq!(error.http_status(), 503);
    redis.restart_empty();
    let mut recovered = None;
    for _ in 0..50 {
        if let Ok(entry) = memory.get(&namespace, "k").await {
            recovered = Some(entry);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recovered.expect("recovers once Redis is back").value, "1");
}

#[allow(dead_code)]
type Client = MemoryServiceClient<Channel>;

/// The fork a Redis restart could cause, forced deterministically: replica A
/// applies two increments in Redis whose PostgreSQL writes are held in a
/// paused proxy; Redis loses everything; replica B reloads the key and
/// increments it (acknowledged). When A's writes arrive late they must be
/// fenced off and redone on the new history, not overwrite B's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_in_flight_across_a_redis_loss_are_fenced_and_redone() {
    let redis = RedisServer::start();
    let namespace = unique_namespace("fence");
    let database = tessera_tests::harness::PgUrl::parse(&tessera_tests::harness::database_url());
    let proxy = tessera_tests::proxy::PausableProxy::start(database.socket_addr().await).await;
    let via_proxy = database.with_addr(proxy.addr);
    let a = Memory::new(
        Arc::new(
            tessera_tests::harness::durable_store_with(&redis.url(), &via_proxy, Limits::default())
                .await,
        ),
        Limits::default(),
    );
    let b = Memory::new(
        Arc::new(durable_store_at(&redis.url(), Limits::default()).await),
        Limits::default(),
    );
    b.incr(&namespace, "counter", "0", None).await.unwrap();
    a.get(&namespace, "counter").await.unwrap();

    proxy.pause();
    let in_flight: Vec<_> = (0..2)
        .map(|_| {
            let (a, namespace) = (a.clone(), namespace.clone());
            tokio::spawn(async move { a.incr(&namespace, "counter", "1", None).await })
        })
        .collect();
    // Wait until both increments are applied in Redis (revision 3).
    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let entry_key = format!("tm:{{{namespace}}}:e:counter");
    for _ in 0..200 {
        let rev: Option<u64> = redis::cmd("HGET")
            .arg(&entry_key)
            .arg("rev")
            .query_async(&mut connection)
            .await
            .unwrap();
        if rev == Some(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    redis.command("FLUSHALL").await;
    let b_result = b.incr(&namespace, "counter", "100", None).await.unwrap();
    assert_eq!(
        b_result.value, "100",
        "B reloaded the durable state (0) and added 100"
    );
    proxy.resume();
    for task in in_flight {
        task.await
            .unwrap()
            .expect("A's increments are redone on the new history");
    }
    let fresh = Memory::new(
        Arc::new(durable_store_at(&redis.url(), Limits::default()).await),
        Limits::default(),
    );
    redis.command("FLUSHALL").await;
    let final_entry = fresh.get(&namespace, "counter").await.unwrap();
    assert_eq!(
        final_entry.value, "102",
        "every acknowledged increment counts exactly once"
    );
    assert_eq!(final_entry.revision, 4);
}
