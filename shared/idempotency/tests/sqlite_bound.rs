//! The SQLite `max_entries` bound: completed entries closest to expiry are
//! evicted first, in-flight entries never, and the table never holds more
//! than 1 % over the bound.

mod support;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::SqlitePool;
use std::path::Path;
use support::*;
use tessera_idempotency::{CacheKey, Claim, IdempotencyStore, Limits};

fn bounded(max_entries: u64) -> Limits {
    Limits {
        max_entries,
        ..Limits::default()
    }
}

async fn row_count(path: &Path) -> i64 {
    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_entries")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    count
}

async fn add_completed(store: &IdempotencyStore) -> CacheKey {
    let key = unique_key();
    let claim = expect_claimed(begin(store, &key, &fingerprint("body")).await);
    assert!(store
        .complete(claim, &text_response(&key.hex()))
        .await
        .unwrap());
    key
}

/// max 50: 10 in flight, then 200 completed. Returns the keys: in flight,
/// completed in order.
async fn fill(store: &IdempotencyStore) -> (Vec<(CacheKey, Claim)>, Vec<CacheKey>) {
    let mut in_flight = Vec::new();
    for _ in 0..10 {
        let key = unique_key();
        let claim = expect_claimed(begin(store, &key, &fingerprint("body")).await);
        in_flight.push((key, claim));
    }
    let mut completed = Vec::new();
    for _ in 0..200 {
        completed.push(add_completed(store).await);
    }
    (in_flight, completed)
}

/// The oldest completed entries are gone, the newest replay, and every
/// in-flight entry is still in flight (and its claim still completes).
async fn assert_evicted_oldest_completed_only(
    store: &IdempotencyStore,
    in_flight: Vec<(CacheKey, Claim)>,
    completed: &[CacheKey],
) {
    for key in completed.iter().rev().take(30) {
        assert_eq!(
            expect_replay(begin(store, key, &fingerprint("body")).await),
            text_response(&key.hex())
        );
    }
    for (key, _) in &in_flight {
        expect_in_flight(begin(store, key, &fingerprint("body")).await);
    }
    for (_, claim) in in_flight {
        assert!(store.complete(claim, &text_response("late")).await.unwrap());
    }
    // Checked last: a begin on an evicted key claims it (adds a row).
    for key in completed.iter().take(100) {
        let _ = expect_claimed(begin(store, key, &fingerprint("body")).await);
    }
}

#[tokio::test]
async fn a_file_holds_at_most_max_entries_and_spares_in_flight() {
    let dir = TempDir::new();
    let store = IdempotencyStore::sqlite(&dir.db_path(), bounded(50))
        .await
        .unwrap();
    let (in_flight, completed) = fill(&store).await;
    // max / 100 rounds to 0: the bound is checked on every claim.
    let count = row_count(&dir.db_path()).await;
    assert!((50..=50).contains(&count), "count {count}");
    assert_evicted_oldest_completed_only(&store, in_flight, &completed).await;
}

#[tokio::test]
async fn memory_evicts_oldest_completed_and_spares_in_flight() {
    let store = IdempotencyStore::in_memory(bounded(50)).await.unwrap();
    let (in_flight, completed) = fill(&store).await;
    assert_evicted_oldest_completed_only(&store, in_flight, &completed).await;
}

#[tokio::test]
async fn a_larger_bound_is_never_exceeded_by_more_than_one_percent() {
    let dir = TempDir::new();
    let store = IdempotencyStore::sqlite(&dir.db_path(), bounded(500))
        .await
        .unwrap();
    let mut peak = 0;
    for _ in 0..600 {
        add_completed(&store).await;
        let count = row_count(&dir.db_path()).await;
        assert!(count <= 505, "count {count} over 1 % above 500");
        peak = peak.max(count);
    }
    // Checked every 5 claims, never more often than needed: the table
    // fills up to the bound and the slack is used.
    let count = row_count(&dir.db_path()).await;
    assert!((500..=504).contains(&count), "count {count}");
    assert!(peak > 500, "peak {peak}");
}

#[tokio::test]
async fn reopening_with_a_smaller_bound_trims_the_file() {
    let dir = TempDir::new();
    let store = IdempotencyStore::sqlite(&dir.db_path(), bounded(1_000))
        .await
        .unwrap();
    let mut keys = Vec::new();
    for _ in 0..40 {
        keys.push(add_completed(&store).await);
    }
    assert_eq!(row_count(&dir.db_path()).await, 40);
    drop(store);

    let reopened = IdempotencyStore::sqlite(&dir.db_path(), bounded(10))
        .await
        .unwrap();
    assert_eq!(row_count(&dir.db_path()).await, 10);
    let newest = keys.last().unwrap();
    assert_eq!(
        expect_replay(begin(&reopened, newest, &fingerprint("body")).await),
        text_response(&newest.hex())
    );
}
