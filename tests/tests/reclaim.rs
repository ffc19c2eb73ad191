//! Deleted and expired keys do not live forever: their rows are reclaimed
//! after a grace period, and a key written again keeps counting revisions
//! above every revision its namespace reclaimed (a fencing token never
//! repeats). Both backends, each on a database of the test's own so no
//! other test's keys are reclaimed under it.

use std::sync::Arc;
use std::time::Duration;
use tessera_memory::embedded::EmbeddedStore;
use tessera_memory::{CasOutcome, Limits, Memory};
use tessera_tests::harness::{durable_store_with, unique_namespace, ProxiedReplica};
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
    // Newest first, but two writes may share a millisecond: compare as a set.
    let mut keys: Vec<&str> = page.entries.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["alive", "job/0", "k"]);
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

/// A dead key's row and a replica on it that writes the key again, with its
/// PostgreSQL write held in flight: the row's state is still the tombstone.
struct Race {
    _redis: RedisServer,
    postgres: PostgresServer,
    /// A replica with direct connections.
    direct: Memory,
    namespace: String,
    redis_port: u16,
}

impl Race {
    async fn start() -> Self {
        let redis = RedisServer::start();
        let postgres = PostgresServer::start();
        let store = durable_store_with(&redis.url(), &postgres.url(), Limits::default()).await;
        let direct = Memory::new(Arc::new(store), Limits::default());
        let namespace = unique_namespace("reclaim-race");
        direct
            .cas(&namespace, "job", None, Some("\"first\""), None)
            .await
            .unwrap();
        let released = direct
            .cas(&namespace, "job", Some("\"first\""), None, None)
            .await
            .unwrap();
        assert_eq!(released.revision, 2);
        Race {
            redis_port: redis.port,
            _redis: redis,
            postgres,
            direct,
            namespace,
        }
    }

    async fn replica(&self) -> ProxiedReplica {
        ProxiedReplica::start_with(
            self.redis_port,
            &self.postgres.url(),
            Limits::default(),
            None,
        )
        .await
    }

    fn acquire(
        &self,
        memory: &Memory,
    ) -> tokio::task::JoinHandle<tessera_error::Result<CasOutcome>> {
        let (memory, namespace) = (memory.clone(), self.namespace.clone());
        tokio::spawn(async move {
            memory
                .cas(&namespace, "job", None, Some("\"second\""), None)
                .await
        })
    }

    /// What PostgreSQL holds for the key, read through an emptied Redis.
    async fn durable_job(&self) -> tessera_memory::Entry {
        tessera_tests::redis_server::command(
            &format!("redis://127.0.0.1:{}", self.redis_port),
            "FLUSHALL",
        )
        .await
        .unwrap();
        self.direct.get(&self.namespace, "job").await.unwrap()
    }
}

/// The key is written again in Redis while its row is still the dead
/// tombstone (the write is on its way to PostgreSQL): the reclaimer leaves
/// Redis's newer state and the row alone, and the write lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_its_way_keeps_its_dead_row() {
    let race = Race::start().await;
    let writer = race.replica().await;
    writer.pg.hold_on(b"SET value");
    let acquire = race.acquire(&writer.memory);
    assert!(
        writer.pg.held_within(Duration::from_secs(5)).await,
        "the write reached PostgreSQL"
    );

    assert_eq!(race.direct.reclaim(Duration::ZERO).await.unwrap(), 0);
    writer.pg.resume();
    let acquired = acquire.await.unwrap().expect("the write is acknowledged");
    assert!(acquired.swapped && acquired.revision == 3, "{acquired:?}");
    let job = race.durable_job().await;
    assert_eq!((job.value.as_str(), job.revision), ("\"second\"", 3));
}

/// The reclaimer has let Redis drop the dead key and is about to delete its
/// row when a write loads the key and stores it: the delete re-checks that
/// the row is still that dead row, and the write survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_between_the_reclaimers_look_and_its_delete_survives() {
    let race = Race::start().await;
    let reclaimer = race.replica().await;
    reclaimer.pg.hold_on(b"UPDATE memory_floors");
    let reclaim = {
        let memory = reclaimer.memory.clone();
        tokio::spawn(async move { memory.reclaim(Duration::ZERO).await })
    };
    assert!(
        reclaimer.pg.held_within(Duration::from_secs(5)).await,
        "the reclaimer reached its delete"
    );

    let acquired = race.acquire(&race.direct).await.unwrap().unwrap();
    assert!(acquired.swapped && acquired.revision == 3, "{acquired:?}");
    reclaimer.pg.resume();
    assert_eq!(
        reclaim.await.unwrap().unwrap(),
        0,
        "the row came back to life"
    );
    let job = race.durable_job().await;
    assert_eq!((job.value.as_str(), job.revision), ("\"second\"", 3));
}
