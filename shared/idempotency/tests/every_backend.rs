//! One scenario suite, run against real Redis, a SQLite temp file and
//! SQLite in memory: each scenario is an async fn of the backend.

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::*;
use tessera_idempotency::{Begin, Limits};

async fn claim_complete_replay(backend: Backend) {
    let store = backend.open(Limits::default()).await;
    let key = unique_key();
    let body = fingerprint("{\"n\":1}");

    let claim = expect_claimed(begin(&store, &key, &body).await);
    assert_eq!(claim.key(), &key);
    let response = awkward_response();
    assert!(store.complete(claim, &response).await.unwrap());

    // Every retry replays the exact bytes, as often as it comes.
    for _ in 0..2 {
        let replayed = expect_replay(begin(&store, &key, &body).await);
        assert_eq!(replayed, response);
        assert_eq!(replayed.body, response.body);
        assert_eq!(replayed.headers[1].0, "set-cookie");
        assert_eq!(
            replayed.headers[2],
            ("set-cookie".into(), b"b=\xff\xfe\x00".to_vec())
        );
    }
}

async fn mismatch_on_a_completed_entry(backend: Backend) {
    let store = backend.open(Limits::default()).await;
    let key = unique_key();
    let claim = expect_claimed(begin(&store, &key, &fingerprint("first")).await);
    assert!(store.complete(claim, &text_response("done")).await.unwrap());

    expect_mismatch(begin(&store, &key, &fingerprint("second")).await);
    expect_mismatch(
        begin(
            &store,
            &key,
            &tessera_idempotency::Fingerprint::of("a=2", b"first"),
        )
        .await,
    );
    // The refusal changed nothing.
    assert_eq!(
        expect_replay(begin(&store, &key, &fingerprint("first")).await),
        text_response("done")
    );
}

async fn mismatch_on_an_in_flight_entry(backend: Backend) {
    let store = backend.open(Limits::default()).await;
    let key = unique_key();
    let claim = expect_claimed(begin(&store, &key, &fingerprint("first")).await);

    expect_mismatch(begin(&store, &key, &fingerprint("second")).await);
    expect_in_flight(begin(&store, &key, &fingerprint("first")).await);
    assert!(store.complete(claim, &text_response("done")).await.unwrap());
}

async fn in_flight_duplicate_then_replay(backend: Backend) {
    let store = backend.open(Limits::default()).await;
    let key = unique_key();
    let body = fingerprint("same");
    let claim = expect_claimed(begin(&store, &key, &body).await);

    expect_in_flight(begin(&store, &key, &body).await);
    expect_in_flight(begin(&store, &key, &body).await);
    assert!(store
        .complete(claim, &text_response("first"))
        .await
        .unwrap());
    assert_eq!(
        expect_replay(begin(&store, &key, &body).await),
        text_response("first")
    );
}

async fn release_then_claim_again(backend: Backend) {
    let store = backend.open(Limits::default()).await;
    let key = unique_key();
    let claim = expect_claimed(begin(&store, &key, &fingerprint("first")).await);
    assert!(store.release(claim).await.unwrap());

    // Nothing is kept: the key is free, even for another body.
    let again = expect_claimed(begin(&store, &key, &fingerprint("second")).await);
    assert!(store
        .complete(again, &text_response("second"))
        .await
        .unwrap());
    assert_eq!(
        expect_replay(begin(&store, &key, &fingerprint("second")).await),
        text_response("second")
    );
    expect_mismatch(begin(&store, &key, &fingerprint("first")).await);
}

async fn an_expired_lease_lets_a_retry_claim(backend: Backend) {
    let store = backend
        .open(limits(Duration::from_secs(60), Duration::from_millis(600)))
        .await;
    let body = fingerprint("same");
    let (to_complete, to_release) = (unique_key(), unique_key());
    let stale_complete = expect_claimed(begin(&store, &to_complete, &body).await);
    let stale_release = expect_claimed(begin(&store, &to_release, &body).await);

    tokio::time::sleep(Duration::from_millis(800)).await;
    let fresh_complete = expect_claimed(begin(&store, &to_complete, &body).await);
    let fresh_release = expect_claimed(begin(&store, &to_release, &body).await);

    // The stale claims no longer hold their keys and change nothing.
    assert!(!store
        .complete(stale_complete, &text_response("stale"))
        .await
        .unwrap());
    assert!(!store.release(stale_release).await.unwrap());
    expect_in_flight(begin(&store, &to_complete, &body).await);
    expect_in_flight(begin(&store, &to_release, &body).await);

    assert!(store
        .complete(fresh_complete, &text_response("fresh"))
        .await
        .unwrap());
    assert_eq!(
        expect_replay(begin(&store, &to_complete, &body).await),
        text_response("fresh")
    );
    assert!(store.release(fresh_release).await.unwrap());
    let _ = expect_claimed(begin(&store, &to_release, &body).await);
}

async fn a_claim_past_its_lease_completes_nothing(backend: Backend) {
    let store = backend
        .open(limits(Duration::from_secs(60), Duration::from_millis(300)))
        .await;
    let key = unique_key();
    let body = fingerprint("same");
    let stale = expect_claimed(begin(&store, &key, &body).await);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // No one took the key over, yet the lapsed claim cannot revive it.
    assert!(!store.complete(stale, &text_response("late")).await.unwrap());
    let _ = expect_claimed(begin(&store, &key, &body).await);
}

async fn a_completed_entry_expires_after_its_ttl(backend: Backend) {
    let store = backend
        .open(limits(Duration::from_millis(300), Duration::from_secs(60)))
        .await;
    let key = unique_key();
    let body = fingerprint("same");
    let claim = expect_claimed(begin(&store, &key, &body).await);
    assert!(store.complete(claim, &text_response("kept")).await.unwrap());
    assert_eq!(
        expect_replay(begin(&store, &key, &body).await),
        text_response("kept")
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    // Gone: a retry runs afresh, and any body may claim it.
    let _ = expect_claimed(begin(&store, &key, &fingerprint("other")).await);
}

async fn concurrent_begins_claim_once(backend: Backend) {
    let store = backend.open(Limits::default()).await;
    let key = unique_key();
    let body = fingerprint("same");
    let start = Arc::new(tokio::sync::Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, start) = (store.store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.begin(&key, &body).await.unwrap()
            })
        })
        .collect();
    let (mut claimed, mut in_flight) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Begin::Claimed(_) => claimed += 1,
            Begin::InFlight => in_flight += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((claimed, in_flight), (1, 31));
}

async fn keys_and_fingerprints_are_independent(backend: Backend) {
    let store = backend.open(Limits::default()).await;
    let body = fingerprint("same");
    let idempotency_key = random_hex();
    let alice = tessera_idempotency::CacheKey::new("POST", "/v1/x", &idempotency_key, "alice");
    let bob = tessera_idempotency::CacheKey::new("POST", "/v1/x", &idempotency_key, "bob");
    let claim = expect_claimed(begin(&store, &alice, &body).await);
    assert!(store
        .complete(claim, &text_response("alice"))
        .await
        .unwrap());
    // Same Idempotency-Key, other credential: a separate entry.
    let claim = expect_claimed(begin(&store, &bob, &body).await);
    assert!(store.complete(claim, &text_response("bob")).await.unwrap());
    assert_eq!(
        expect_replay(begin(&store, &alice, &body).await),
        text_response("alice")
    );
    assert_eq!(
        expect_replay(begin(&store, &bob, &body).await),
        text_response("bob")
    );
}

macro_rules! scenarios_for {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn claim_complete_replay() {
                super::claim_complete_replay($backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn mismatch_on_a_completed_entry() {
                super::mismatch_on_a_completed_entry($backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn mismatch_on_an_in_flight_entry() {
                super::mismatch_on_an_in_flight_entry($backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn in_flight_duplicate_then_replay() {
                super::in_flight_duplicate_then_replay($backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn release_then_claim_again() {
                super::release_then_claim_again($backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn an_expired_lease_lets_a_retry_claim() {
                super::an_expired_lease_lets_a_retry_claim($backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn a_claim_past_its_lease_completes_nothing() {
                super::a_claim_past_its_lease_completes_nothing($backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn a_completed_entry_expires_after_its_ttl() {
                super::a_completed_entry_expires_after_its_ttl($backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_begins_claim_once() {
                super::concurrent_begins_claim_once($backend).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn keys_and_fingerprints_are_independent() {
                super::keys_and_fingerprints_are_independent($backend).await
            }
        }
    };
}

scenarios_for!(redis, Backend::Redis);
scenarios_for!(sqlite_file, Backend::SqliteFile);
scenarios_for!(in_memory, Backend::InMemory);
