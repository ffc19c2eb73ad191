//! The durable memory backend's PostgreSQL sessions: every pooled
//! connection runs with `lock_timeout` and
//! `idle_in_transaction_session_timeout`, so a blocked or abandoned
//! transaction cannot hold connections and locks indefinitely.

use std::time::{Duration, Instant};
use tessera_memory::durable::{PG_IDLE_IN_TRANSACTION_TIMEOUT, PG_LOCK_TIMEOUT};
use tessera_memory::Limits;
use tessera_tests::harness::{durable_store_at, redis_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_carry_the_session_timeouts() {
    assert_eq!(
        (PG_LOCK_TIMEOUT, PG_IDLE_IN_TRANSACTION_TIMEOUT),
        ("5s", "30s")
    );
    let store = durable_store_at(&redis_url(), Limits::default()).await;
    let pool = store.pool();

    // Several connections at once, so it is not one lucky session.
    let mut connections = Vec::new();
    for _ in 0..3 {
        connections.push(pool.acquire().await.unwrap());
    }
    for connection in &mut connections {
        let lock: String = sqlx::query_scalar("SHOW lock_timeout")
            .fetch_one(&mut **connection)
            .await
            .unwrap();
        let idle: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
            .fetch_one(&mut **connection)
            .await
            .unwrap();
        assert_eq!((lock.as_str(), idle.as_str()), ("5s", "30s"));
    }

    // And it bites: a lock held by one session fails the other's wait after
    // lock_timeout, with lock_not_available, instead of waiting forever.
    let key: i64 = rand::random();
    let mut holder = connections.pop().unwrap();
    let mut waiter = connections.pop().unwrap();
    sqlx::query("BEGIN").execute(&mut *holder).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut *holder)
        .await
        .unwrap();
    let started = Instant::now();
    let error = sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut *waiter)
        .await
        .unwrap_err();
    let waited = started.elapsed();
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("55P03"), "{error}");
    assert!(
        (Duration::from_millis(4_500)..Duration::from_secs(15)).contains(&waited),
        "gave up after lock_timeout: {waited:?}"
    );
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
}
