//! Deleted and expired keys do not live forever: their rows are reclaimed
//! after a grace period, and a key written again keeps counting revisions
//! above every revision its namespace reclaimed (a fencing token never
//! repeats). Both backends, each on a database of the test's own so no
//! other test's keys are reclaimed under it.

use std::sync::Arc;
use std::time::Duration;
use tessera_memory::embedded::EmbeddedStore;
use tessera_memory::{Limits, Memory};
use tessera_tests::harness::{durable_store_with, unique_namespace};
use tessera_tests::postgres_server::PostgresServer;
use tessera_tests::redis_server::RedisServer;

const JOBS: usize = 20;

/// Writes dead keys of every kind, reclaims them, and checks what is left
/// and what revisions new writes get. `rows` counts the namespace's rows.
async fn dead_keys_are_reclaimed<F, Fut>(memory: &Memory, rows: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let ns = unique_namespace("reclaim");
    for value in 1..=3 {
        memory
            .set(&ns, "k", &value.to_string(), None, None)
            .await
            .unwrap();
    }
    let deleted = memory.delete(&ns, "k", None).await.unwrap();
    assert_eq!(deleted.revision, 4);
    // Lock keys named per job: acquired, released, never used again.
    for job in 0..JOBS {
        let key = format!("job/{job}");
        memory
            .cas(&ns, &key, None, Some("\"worker\""), Some(60))
            .await
            .unwrap();
        let released = memory
            .cas(&ns, &key, Some("\"worker\""), None, None)
            .await
            .unwrap();
        assert!(released.swapped);
    }
    memory.set(&ns, "lease", "1", Some(1), None).await.unwrap();
    memory.set(&ns, "alive", "1", None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(rows(ns.clone()).await, JOBS as i64 + 3);

    assert_eq!(
        memory.reclaim(Duration::from_secs(3600)).await.unwrap(),
        0,
        "nothing is reclaimed within the grace period"
    );
    let reclaimed = memory.reclaim(Duration::ZERO).await.unwrap();
    assert_eq!(
        reclaimed,
        JOBS as u64 + 2,
        "the tombstones and the expired lease"
    );
    assert_eq!(rows(ns.clone()).await, 1, "only the live key keeps a row");
    assert_eq!(memory.get(&ns, "alive").await.unwrap().value, "1");
    assert_eq!(
        memory.get(&ns, "lease").await.unwrap_err().http_status(),
        404
    );
    assert_eq!(memory.get(&ns, "k").await.unwrap_err().http_status(), 404);

    let again = memory.set(&ns, "k", "4", None, None).await.unwrap();
    assert!(
        again.revision > deleted.revision,
        "a key written again counts on ({} after {})",
        again.revision,
        deleted.revision
    );
    let lock = memory
        .cas(&ns, "job/0", None, Some("\"next\""), Some(60))
        .await
        .unwrap();
    assert!(
        lock.swapped && lock.revision > 4,
        "fencing tokens never repeat: {lock:?}"
    );
    let page = memory.list(&ns, "", 100, "").await.unwrap();
    let keys: Vec<&str> = page.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["job/0", "k", "alive"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_backend_reclaims_dead_keys() {
    let redis = RedisServer::start();
    let postgres = PostgresServer::start();
    let store = durable_store_with(&redis.url(), &postgres.url(), Limits::default()).await;
    let pool = store.pool().clone();
    let memory = Memory::new(Arc::new(store), Limits::default());
    dead_keys_are_reclaimed(&memory, |ns| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar("SELECT count(*) FROM memory_entries WHERE namespace = $1")
                .bind(ns)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_backend_reclaims_dead_keys() {
    let dir = std::env::temp_dir().join(format!("tessera-reclaim-{:016x}", rand::random::<u64>()));
    let path = dir.join("memory.db");
    let store = EmbeddedStore::open(&path, Limits::default()).await.unwrap();
    let memory = Memory::new(Arc::new(store), Limits::default());
    let url = format!("sqlite://{}", path.display());
    dead_keys_are_reclaimed(&memory, |ns| {
        let url = url.clone();
        async move {
            use sqlx::Connection;
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar("SELECT count(*) FROM memory_entries WHERE namespace = ?")
                .bind(ns)
                .fetch_one(&mut connection)
                .await
                .unwrap()
        }
    })
    .await;
    let _ = std::fs::remove_dir_all(dir);
}
