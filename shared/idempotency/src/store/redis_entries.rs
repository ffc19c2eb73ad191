//! Entries in Redis, one hash per key: `fingerprint` (32 raw bytes) and
//! either `owner` (in flight) or `response` (completed, the binary form of
//! [`StoredResponse`]). The key's PX expiry is the lease, then the ttl.
//! Every step is one Lua script, so it is atomic across replicas.

use super::{unavailable, Begin, Claim};
use crate::key::{CacheKey, Fingerprint};
use crate::response::StoredResponse;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use std::sync::Arc;
use std::time::Duration;
use tessera_error::Error;

const KEY_PREFIX: &str = "tessera:idempotency:";
/// How long a Redis answer (or connection) may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// KEYS[1] entry; ARGV fingerprint, owner, lease ms. Replies
/// `{"claimed"}`, `{"mismatch"}`, `{"replay", response}`, `{"in_flight"}`
/// or `{"corrupt"}`.
const BEGIN_LUA: &str = r#"
local entry = redis.call('HMGET', KEYS[1], 'fingerprint', 'owner', 'response')
if not entry[1] then
  -- Absent (or a hash without fingerprint, which no step writes): start clean.
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'owner', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'claimed'}
end
if entry[1] ~= ARGV[1] then return {'mismatch'} end
if entry[3] then return {'replay', entry[3]} end
if entry[2] then return {'in_flight'} end
return {'corrupt'}
"#;

/// KEYS[1] entry; ARGV owner, response, ttl ms. 1 when completed.
const COMPLETE_LUA: &str = r#"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('HSET', KEYS[1], 'response', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"#;

/// KEYS[1] entry; ARGV owner. 1 when released.
const RELEASE_LUA: &str = r#"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"#;

struct Scripts {
    begin: Script,
    complete: Script,
    release: Script,
}

#[derive(Clone)]
pub(super) struct RedisEntries {
    connection: ConnectionManager,
    scripts: Arc<Scripts>,
}

fn redis_key(key: &CacheKey) -> String {
    format!("{KEY_PREFIX}{}", key.hex())
}

impl RedisEntries {
    pub(super) async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        // The library's 500 ms default fails steps spuriously when the
        // process is busy; the call has its own deadline.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(ANSWER_TIMEOUT))
            .set_connection_timeout(Some(ANSWER_TIMEOUT));
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(RedisEntries {
            connection,
            scripts: Arc::new(Scripts {
                begin: Script::new(BEGIN_LUA),
                complete: Script::new(COMPLETE_LUA),
                release: Script::new(RELEASE_LUA),
            }),
        })
    }

    pub(super) async fn begin(
        &self,
        claim: Claim,
        fingerprint: &Fingerprint,
        lease_ms: i64,
    ) -> Result<Begin, Error> {
        let reply: Vec<Vec<u8>> = self
            .scripts
            .begin
            .key(redis_key(claim.key()))
            .arg(&fingerprint.as_bytes()[..])
            .arg(claim.owner())
            .arg(lease_ms)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| unavailable("begin", error))?;
        match reply.as_slice() {
            [verdict] if verdict == b"claimed" => Ok(Begin::Claimed(claim)),
            [verdict] if verdict == b"mismatch" => Ok(Begin::Mismatch),
            [verdict] if verdict == b"in_flight" => Ok(Begin::InFlight),
            [verdict, response] if verdict == b"replay" => {
                StoredResponse::decode(response).map(Begin::Replay)
            }
            _ => {
                tracing::warn!(key = %claim.key().hex(), "idempotency store: corrupt Redis entry");
                Err(Error::internal("a stored idempotency entry is corrupt"))
            }
        }
    }

    pub(super) async fn complete(
        &self,
        claim: &Claim,
        response: &[u8],
        ttl_ms: i64,
    ) -> Result<bool, Error> {
        let completed: i64 = self
            .scripts
            .complete
            .key(redis_key(claim.key()))
            .arg(claim.owner())
            .arg(response)
            .arg(ttl_ms)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| unavailable("complete", error))?;
        Ok(completed == 1)
    }

    pub(super) async fn release(&self, claim: &Claim) -> Result<bool, Error> {
        let released: i64 = self
            .scripts
            .release
            .key(redis_key(claim.key()))
            .arg(claim.owner())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| unavailable("release", error))?;
        Ok(released == 1)
    }
}
