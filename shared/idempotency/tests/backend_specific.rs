//! What only some backends can show: two stores sharing one Redis (or one
//! SQLite file), corrupt stored entries, an unreachable Redis.

mod support;

use redis::AsyncCommands;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::SqlitePool;
use support::*;
use tessera_error::ErrorKind;
use tessera_idempotency::{IdempotencyStore, Limits};

#[tokio::test]
async fn two_stores_on_one_redis_share_entries() {
    let replica_a = IdempotencyStore::redis(&redis_url(), Limits::default())
        .await
        .unwrap();
    let replica_b = IdempotencyStore::redis(&redis_url(), Limits::default())
        .await
        .unwrap();
    let key = unique_key();
    let body = fingerprint("same");

    let claim = expect_claimed(begin(&replica_a, &key, &body).await);
    expect_in_flight(begin(&replica_b, &key, &body).await);
    expect_mismatch(begin(&replica_b, &key, &fingerprint("other")).await);
    assert!(replica_a
        .complete(claim, &awkward_response())
        .await
        .unwrap());
    assert_eq!(
        expect_replay(begin(&replica_b, &key, &body).await),
        awkward_response()
    );

    // A claim taken on one replica is released on the other's view.
    let other = unique_key();
    let claim = expect_claimed(begin(&replica_b, &other, &body).await);
    assert!(replica_b.release(claim).await.unwrap());
    let _ = expect_claimed(begin(&replica_a, &other, &body).await);
}

#[tokio::test]
async fn two_stores_on_one_sqlite_file_share_entries() {
    let dir = TempDir::new();
    let first = IdempotencyStore::sqlite(&dir.db_path(), Limits::default())
        .await
        .unwrap();
    let second = IdempotencyStore::sqlite(&dir.db_path(), Limits::default())
        .await
        .unwrap();
    let key = unique_key();
    let body = fingerprint("same");

    let claim = expect_claimed(begin(&first, &key, &body).await);
    expect_in_flight(begin(&second, &key, &body).await);
    assert!(first.complete(claim, &awkward_response()).await.unwrap());
    assert_eq!(
        expect_replay(begin(&second, &key, &body).await),
        awkward_response()
    );
}

#[tokio::test]
async fn redis_entries_live_under_the_documented_key_with_an_expiry() {
    let store = IdempotencyStore::redis(&redis_url(), Limits::default())
        .await
        .unwrap();
    let key = unique_key();
    let claim = expect_claimed(begin(&store, &key, &fingerprint("same")).await);
    let mut redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let name = format!("tessera:idempotency:{}", key.hex());

    let lease_ms: i64 = redis.pttl(&name).await.unwrap();
    assert!(
        (100_000..=120_000).contains(&lease_ms),
        "lease pttl {lease_ms}"
    );
    assert!(store.complete(claim, &text_response("done")).await.unwrap());
    let ttl_ms: i64 = redis.pttl(&name).await.unwrap();
    assert!(
        ttl_ms > 23 * 3_600_000 && ttl_ms <= 24 * 3_600_000,
        "ttl pttl {ttl_ms}"
    );
    let _: () = redis.del(&name).await.unwrap();
}

#[tokio::test]
async fn a_corrupt_redis_entry_is_an_internal_error() {
    let store = IdempotencyStore::redis(&redis_url(), Limits::default())
        .await
        .unwrap();
    let key = unique_key();
    let body = fingerprint("same");
    let claim = expect_claimed(begin(&store, &key, &body).await);
    assert!(store.complete(claim, &text_response("done")).await.unwrap());

    let mut redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let name = format!("tessera:idempotency:{}", key.hex());
    let _: () = redis
        .hset(&name, "response", &b"\x07garbage"[..])
        .await
        .unwrap();
    let error = store.begin(&key, &body).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Internal);

    // A hash that holds a fingerprint but neither owner nor response.
    let _: () = redis.hdel(&name, "response").await.unwrap();
    let error = store.begin(&key, &body).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Internal);
    let _: () = redis.del(&name).await.unwrap();
}

#[tokio::test]
async fn a_corrupt_sqlite_entry_is_an_internal_error() {
    let dir = TempDir::new();
    let store = IdempotencyStore::sqlite(&dir.db_path(), Limits::default())
        .await
        .unwrap();
    let (truncated, short_fingerprint) = (unique_key(), unique_key());
    let body = fingerprint("same");
    for key in [&truncated, &short_fingerprint] {
        let claim = expect_claimed(begin(&store, key, &body).await);
        assert!(store.complete(claim, &text_response("done")).await.unwrap());
    }

    let raw = SqlitePool::connect_with(SqliteConnectOptions::new().filename(dir.db_path()))
        .await
        .unwrap();
    sqlx::query("UPDATE idempotency_entries SET response = x'0100' WHERE key = ?")
        .bind(truncated.hex())
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE idempotency_entries SET fingerprint = x'00' WHERE key = ?")
        .bind(short_fingerprint.hex())
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;

    for key in [&truncated, &short_fingerprint] {
        let error = store.begin(key, &body).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Internal);
    }
}

#[tokio::test]
async fn an_unreachable_redis_fails_at_start_up() {
    let started = std::time::Instant::now();
    let result = IdempotencyStore::redis("redis://127.0.0.1:1", Limits::default()).await;
    assert!(result.is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn debug_names_only_the_backend() {
    let store = IdempotencyStore::in_memory(Limits::default())
        .await
        .unwrap();
    assert_eq!(format!("{store:?}"), "IdempotencyStore::Sqlite");
    let store = IdempotencyStore::redis(&redis_url(), Limits::default())
        .await
        .unwrap();
    assert_eq!(format!("{store:?}"), "IdempotencyStore::Redis");
    assert_eq!(store.limits().max_entries, 100_000);
    assert_eq!(store.limits().ttl, std::time::Duration::from_secs(86_400));
    assert_eq!(store.limits().lease, std::time::Duration::from_secs(120));
}
