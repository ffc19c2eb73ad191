//! What the integration tests share: the three backends (real Redis, a
//! SQLite temp file, SQLite in memory), unique keys, a response with every
//! awkward byte, and unwrapping helpers.

#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_idempotency::{
    Begin, CacheKey, Claim, Fingerprint, IdempotencyStore, Limits, StoredResponse,
};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Redis,
    SqliteFile,
    InMemory,
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-idempotency-{}", random_hex()));
        TempDir(dir)
    }

    /// A database path one level below the directory (which does not
    /// exist yet: the store creates it).
    pub fn db_path(&self) -> PathBuf {
        self.0.join("nested").join("entries.db")
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store and, for a SQLite file, the directory that holds it.
pub struct Opened {
    pub store: IdempotencyStore,
    pub dir: Option<TempDir>,
}

impl std::ops::Deref for Opened {
    type Target = IdempotencyStore;
    fn deref(&self) -> &IdempotencyStore {
        &self.store
    }
}

impl Backend {
    pub async fn open(self, limits: Limits) -> Opened {
        match self {
            Backend::Redis => Opened {
                store: IdempotencyStore::redis(&redis_url(), limits)
                    .await
                    .expect("Redis at REDIS_URL or 127.0.0.1:6379"),
                dir: None,
            },
            Backend::SqliteFile => {
                let dir = TempDir::new();
                let store = IdempotencyStore::sqlite(&dir.db_path(), limits)
                    .await
                    .expect("SQLite temp file");
                Opened {
                    store,
                    dir: Some(dir),
                }
            }
            Backend::InMemory => Opened {
                store: IdempotencyStore::in_memory(limits)
                    .await
                    .expect("SQLite in memory"),
                dir: None,
            },
        }
    }
}

pub fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A key no other test (or earlier run against the shared Redis) uses.
pub fn unique_key() -> CacheKey {
    CacheKey::new("POST", "/v1/tools/echo", &random_hex(), "test-credential")
}

pub fn fingerprint(body: &str) -> Fingerprint {
    Fingerprint::of("a=1", body.as_bytes())
}

/// Binary body (every byte value), repeated headers, a non-UTF-8 value.
pub fn awkward_response() -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![
            ("content-type".into(), b"application/octet-stream".to_vec()),
            ("set-cookie".into(), b"a=1; Path=/".to_vec()),
            ("set-cookie".into(), b"b=\xff\xfe\x00".to_vec()),
            ("x-empty".into(), Vec::new()),
        ],
        body: (0..=255u8).rev().chain(0..=255u8).collect(),
    }
}

pub fn text_response(text: &str) -> StoredResponse {
    StoredResponse {
        status: 200,
        headers: vec![("content-type".into(), b"text/plain".to_vec())],
        body: text.as_bytes().to_vec(),
    }
}

pub fn limits(ttl: Duration, lease: Duration) -> Limits {
    Limits {
        ttl,
        lease,
        ..Limits::default()
    }
}

pub async fn begin(store: &IdempotencyStore, key: &CacheKey, fingerprint: &Fingerprint) -> Begin {
    store.begin(key, fingerprint).await.expect("begin")
}

pub fn expect_claimed(begin: Begin) -> Claim {
    match begin {
        Begin::Claimed(claim) => claim,
        other => panic!("expected Claimed, got {other:?}"),
    }
}

pub fn expect_replay(begin: Begin) -> StoredResponse {
    match begin {
        Begin::Replay(response) => response,
        other => panic!("expected Replay, got {other:?}"),
    }
}

pub fn expect_in_flight(begin: Begin) {
    assert!(
        matches!(begin, Begin::InFlight),
        "expected InFlight, got {begin:?}"
    );
}

pub fn expect_mismatch(begin: Begin) {
    assert!(
        matches!(begin, Begin::Mismatch),
        "expected Mismatch, got {begin:?}"
    );
}
