//! 32 clients, through two memory replicas over gRPC on Redis + PostgreSQL,
//! take a CAS lock, increment a plain value under it (read, then write: not
//! atomic on its own), and release it. The lock's revision is the fencing
//! token: a guarded resource admits a holder only with a token larger than
//! every one before, and records who was inside when.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_memory::Limits;
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tessera_tests::harness::{durable_memory, unique_namespace, MemoryServer};

const CLIENTS: usize = 32;
const SECTIONS_PER_CLIENT: usize = 4;

/// The resource the lock protects, checking fencing tokens as a storage
/// server would.
#[derive(Default)]
struct FencedResource {
    highest_token: u64,
    inside: Option<u64>,
    /// (token, entered, left) per critical section.
    history: Vec<(u64, Instant, Instant)>,
    overlaps: usize,
    stale_tokens: usize,
}

impl FencedResource {
    fn enter(&mut self, token: u64) {
        if self.inside.is_some() {
            self.overlaps += 1;
        }
        if token <= self.highest_token {
            self.stale_tokens += 1;
        }
        self.highest_token = self.highest_token.max(token);
        self.inside = Some(token);
    }

    fn leave(&mut self, token: u64, entered: Instant) {
        if self.inside == Some(token) {
            self.inside = None;
        }
        self.history.push((token, entered, Instant::now()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_lock_admits_one_holder_at_a_time_with_growing_fences() {
    let replicas = [
        MemoryServer::start(durable_memory(Limits::default()).await).await,
        MemoryServer::start(durable_memory(Limits::default()).await).await,
    ];
    let namespace = unique_namespace("lock");
    let resource = Arc::new(Mutex::new(FencedResource::default()));
    let contended = Arc::new(AtomicUsize::new(0));

    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let url = replicas[c % 2].url();
        let (namespace, resource, contended) =
            (namespace.clone(), resource.clone(), contended.clone());
        clients.push(tokio::spawn(async move {
            let mut memory = MemoryServiceClient::connect(url).await.unwrap();
            for s in 0..SECTIONS_PER_CLIENT {
                let me = format!("\"client-{c}-{s}\"");
                let token = loop {
                    let attempt = memory
                        .compare_and_swap(pb::CompareAndSwapRequest {
                            namespace: namespace.clone(),
                            key: "locks/counter".into(),
                            expected_json: None,
                            value_json: Some(me.clone()),
                            ttl_seconds: Some(30),
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    if attempt.swapped {
                        break attempt.revision;
                    }
                    contended.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                };
                let entered = Instant::now();
                resource.lock().unwrap().enter(token);

                let current = memory
                    .get(pb::GetRequest {
                        namespace: namespace.clone(),
                        key: "counter".into(),
                        ..Default::default()
                    })
                    .await
                    .map(|r| r.into_inner().value_json.parse::<u64>().unwrap())
                    .unwrap_or(0);
                memory
                    .set(pb::SetRequest {
                        namespace: namespace.clone(),
                        key: "counter".into(),
                        value_json: (current + 1).to_string(),
                        ttl_seconds: None,
                        if_match: None,
                        ..Default::default()
                    })
                    .await
                    .unwrap();

                resource.lock().unwrap().leave(token, entered);
                let released = memory
                    .compare_and_swap(pb::CompareAndSwapRequest {
                        namespace: namespace.clone(),
                        key: "locks/counter".into(),
                        expected_json: Some(me.clone()),
                        value_json: None,
                        ttl_seconds: None,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert!(released.swapped, "the holder releases its own lock");
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }

    let sections = CLIENTS * SECTIONS_PER_CLIENT;
    let mut memory = replicas[0].client().await;
    let counter = memory
        .get(pb::GetRequest {
            namespace: namespace.clone(),
            key: "counter".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        counter.value_json,
        sections.to_string(),
        "no increment lost: mutual exclusion held"
    );

    let resource = resource.lock().unwrap();
    assert_eq!(resource.overlaps, 0, "no two holders inside at once");
    assert_eq!(
        resource.stale_tokens, 0,
        "every holder's fence is larger than all before it"
    );
    let mut history = resource.history.clone();
    history.sort_by_key(|(token, _, _)| *token);
    assert_eq!(history.len(), sections);
    for pair in history.windows(2) {
        let ((t1, _, left), (t2, entered, _)) = (pair[0], pair[1]);
        assert!(t1 < t2);
        assert!(
            left <= entered,
            "section with fence {t1} ended before fence {t2} began"
        );
    }
    assert!(
        contended.load(Ordering::Relaxed) > 0,
        "the lock was actually contended"
    );
}
