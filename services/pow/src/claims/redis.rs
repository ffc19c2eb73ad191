//! Claims in Redis, shared by every replica: `SET NX PXAT` until the token
//! expires, released by a compare-and-delete script.
//!
//! Claims made at the same moment travel together: one task sends every
//! claim waiting as one pipeline (at most two pipelines in flight), so a
//! busy pow service pays one round trip, and Redis one read and one write,
//! per batch rather than per call; alone, a claim is sent at once.

use super::unavailable;
use std::sync::Arc;
use tessera_error::Error;

const KEY_PREFIX: &str = "tessera:pow:claim:";
/// Compare-and-delete: only the claim's own id releases it.
const RELEASE_LUA: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
/// How long a Redis answer (or connection) may take.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Claims sent in one pipeline at most.
const MAX_BATCH: usize = 256;
/// Pipelines in flight at once.
const MAX_BATCHES_IN_FLIGHT: usize = 2;

#[derive(Clone)]
pub struct RedisClaims {
    connection: redis::aio::ConnectionManager,
    release: Arc<redis::Script>,
    batcher: ClaimBatcher,
}

impl RedisClaims {
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        // The library's 500 ms answer timeout fails claims spuriously when
        // the process is busy; a claim may wait, the call has its own
        // deadline.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(ANSWER_TIMEOUT))
            .set_connection_timeout(Some(ANSWER_TIMEOUT));
        let connection = redis::aio::ConnectionManager::new_with_config(client, config).await?;
        Ok(RedisClaims {
            batcher: ClaimBatcher::spawn(connection.clone()),
            connection,
            release: Arc::new(redis::Script::new(RELEASE_LUA)),
        })
    }

    pub async fn claim(
        &self,
        challenge: &str,
        claim: &str,
        expires_at_ms: i64,
    ) -> Result<bool, Error> {
        self.batcher
            .claim(format!("{KEY_PREFIX}{challenge}"), claim, expires_at_ms)
            .await
    }

    pub async fn release(&self, challenge: &str, claim: &str) -> Result<bool, Error> {
        let deleted: i64 = self
            .release
            .key(format!("{KEY_PREFIX}{challenge}"))
            .arg(claim)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| unavailable("release", error))?;
        Ok(deleted == 1)
    }
}

/// Sends the claims waiting at the same moment as one pipeline.
#[derive(Clone)]
struct ClaimBatcher {
    waiting: tokio::sync::mpsc::Sender<Waiting>,
}

struct Waiting {
    key: String,
    claim: String,
    expires_at_ms: i64,
    taken: tokio::sync::oneshot::Sender<Result<bool, Error>>,
}

impl ClaimBatcher {
    fn spawn(connection: redis::aio::ConnectionManager) -> Self {
        let (waiting, mut queue) = tokio::sync::mpsc::channel::<Waiting>(MAX_BATCH * 16);
        let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_BATCHES_IN_FLIGHT));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    return;
                };
                let mut batch = Vec::with_capacity(MAX_BATCH);
                if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
                    return; // every store handle is gone
                }
                let connection = connection.clone();
                tokio::spawn(async move {
                    send_batch(connection, batch).await;
                    drop(permit);
                });
            }
        });
        ClaimBatcher { waiting }
    }

    async fn claim(&self, key: String, claim: &str, expires_at_ms: i64) -> Result<bool, Error> {
        let (taken, answer) = tokio::sync::oneshot::channel();
        let waiting = Waiting {
            key,
            claim: claim.to_string(),
            expires_at_ms,
            taken,
        };
        self.waiting
            .send(waiting)
            .await
            .map_err(|_| unavailable("claim", "the claim batcher stopped"))?;
        answer
            .await
            .map_err(|_| unavailable("claim", "the claim batcher dropped a claim"))?
    }
}

async fn send_batch(mut connection: redis::aio::ConnectionManager, batch: Vec<Waiting>) {
    let mut pipeline = redis::pipe();
    for waiting in &batch {
        pipeline
            .cmd("SET")
            .arg(&waiting.key)
            .arg(&waiting.claim)
            .arg("NX")
            .arg("PXAT")
            .arg(waiting.expires_at_ms);
    }
    let replies: redis::RedisResult<Vec<Option<String>>> =
        pipeline.query_async(&mut connection).await;
    match replies {
        Ok(replies) if replies.len() == batch.len() => {
            for (waiting, reply) in batch.into_iter().zip(replies) {
                let _ = waiting.taken.send(Ok(reply.is_some()));
            }
        }
        Ok(replies) => {
            let why = format!("{} replies to {} claims", replies.len(), batch.len());
            for waiting in batch {
                let _ = waiting.taken.send(Err(unavailable("claim", &why)));
            }
        }
        Err(error) => {
            for waiting in batch {
                let _ = waiting.taken.send(Err(unavailable("claim", &error)));
            }
        }
    }
}
