//! 503 means Redis or PostgreSQL is really unavailable, never "we raced
//! ourselves": 64 clients through two replicas write 10,000 fresh keys (first
//! writes and concurrent loads of the same key included), then read and
//! write them again after Redis lost them all (a storm of loads of cold
//! keys, and reads of keys never written). Not one call may fail.

use rand::Rng;
use std::sync::Arc;
use tessera_memory::{Limits, Memory};
use tessera_tests::harness::{durable_store_at, unique_namespace};
use tessera_tests::redis_server::RedisServer;

const CLIENTS: usize = 64;
const KEYS: u32 = 10_000;
const CALLS_PER_CLIENT: usize = 160;

async fn storm(replicas: &[Memory], namespace: &str, reads: bool) -> Vec<String> {
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let memory = replicas[client % replicas.len()].clone();
            let namespace = namespace.to_string();
            tokio::spawn(async move {
                let mut failures = Vec::new();
                for call in 0..CALLS_PER_CLIENT {
                    let key = format!("k{}", rand::rng().random_range(0..KEYS));
                    let result = match (reads, call % 4) {
                        (true, 0 | 1) => memory.get(&namespace, &key).await.map(drop),
                        (true, 2) => memory
                            .get(&namespace, &format!("never-{key}"))
                            .await
                            .map(drop),
                        (_, 3) => memory.incr(&namespace, &key, "1", None).await.map(drop),
                        _ => memory
                            .set(&namespace, &key, &call.to_string(), None, None)
                            .await
                            .map(drop),
                    };
                    match result {
                        Ok(()) => {}
                        Err(error) if error.http_status() == 404 => {}
                        // A set after an incr made the value not a number.
                        Err(error) if error.reason == "NOT_A_NUMBER" => {}
                        Err(error) => failures.push(format!("{key}: {error:?}")),
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.unwrap());
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fresh_keys_and_cold_reads_never_answer_unavailable() {
    let redis = RedisServer::start();
    let namespace = unique_namespace("no-503");
    let limits = Limits {
        max_keys: 100_000,
        ..Limits::default()
    };
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = durable_store_at(&redis.url(), limits).await;
        replicas.push(Memory::new(Arc::new(store), limits));
    }

    let failures = storm(&replicas, &namespace, false).await;
    assert!(
        failures.is_empty(),
        "{} of {} first writes failed, e.g. {:?}",
        failures.len(),
        CLIENTS * CALLS_PER_CLIENT,
        &failures[..failures.len().min(5)]
    );

    redis.command("FLUSHALL").await;
    let failures = storm(&replicas, &namespace, true).await;
    assert!(
        failures.is_empty(),
        "{} of {} calls on cold keys failed, e.g. {:?}",
        failures.len(),
        CLIENTS * CALLS_PER_CLIENT,
        &failures[..failures.len().min(5)]
    );
}
