//! The connection to Redis, and which Redis process it reaches.
//!
//! A Redis restarted from an RDB or AOF file, or a replica promoted in a
//! failover, holds keys as they were some time ago, and nothing in the keys
//! says so. What does change is the process: its `run_id` is new at every
//! start and its replication id changes when it is promoted. The pair is the
//! *incarnation*. It is read once per connection (a TCP connection reaches
//! one process for its whole life) and passed to every script, which uses a
//! key only if that same incarnation installed it; anything else is loaded
//! again from PostgreSQL under a new generation.
//!
//! A connection that fails is dropped, not retried: a script whose reply was
//! lost may have run, so only the caller can judge whether to repeat it.

use super::keys::Slot;
use super::scripts::Lua;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_error::{Error, Result};
use tessera_runtime::dependency::{self, Dependency};

#[derive(Clone)]
pub struct Connected {
    pub connection: MultiplexedConnection,
    pub incarnation: Arc<str>,
    serial: u64,
}

/// An entry hash's fields, in the order [`RedisLink::read_entry`] returns
/// them (see `lua/prelude.lua`).
pub const ENTRY_FIELDS: [&str; 9] = ["v", "rev", "gen", "drev", "c", "u", "x", "i", "p"];

pub struct EntryRead {
    pub fields: Vec<Option<String>>,
    pub now_ms: i64,
    pub incarnation: Arc<str>,
}

pub struct RedisLink {
    client: redis::Client,
    config: AsyncConnectionConfig,
    current: Mutex<Option<Connected>>,
    /// Serializes reconnects, so a burst of callers opens one connection.
    reconnecting: tokio::sync::Mutex<u64>,
}

pub fn redis_error(error: redis::RedisError) -> Error {
    tracing::warn!(%error, "redis call failed");
    Error::unavailable(
        "REDIS_UNAVAILABLE",
        "the memory cache is unavailable; a write's outcome is unknown: read before retrying",
    )
}

impl RedisLink {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let link = RedisLink {
            client: redis::Client::open(url)?,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(Duration::from_secs(5))),
            current: Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(0),
        };
        link.connection()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(link)
    }

    /// The open connection, or a new one (with its incarnation read).
    pub async fn connection(&self) -> Result<Connected> {
        if let Some(connected) = self.current.lock().unwrap().clone() {
            return Ok(connected);
        }
        let mut serial = self.reconnecting.lock().await;
        if let Some(connected) = self.current.lock().unwrap().clone() {
            return Ok(connected);
        }
        let (connection, info) = dependency::call(Dependency::Redis, "connect", async {
            let mut connection = self
                .client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await?;
            let info: String = redis::cmd("INFO")
                .arg("server")
                .arg("replication")
                .query_async(&mut connection)
                .await?;
            Ok((connection, info))
        })
        .await
        .map_err(redis_error)?;
        let incarnation = incarnation_of(&info)
            .ok_or_else(|| Error::internal("INFO carries no run_id and master_replid"))?;
        *serial += 1;
        let connected = Connected {
            connection,
            incarnation: incarnation.into(),
            serial: *serial,
        };
        *self.current.lock().unwrap() = Some(connected.clone());
        Ok(connected)
    }

    /// Runs a memory script on `slot`, telling it this connection's
    /// incarnation (ARGV[3]); `args` follow.
    pub async fn run(&self, script: &Lua, slot: &Slot, args: &[String]) -> Result<Vec<String>> {
        let keys = [&slot.entry, &slot.usage, &slot.expiry, &slot.changes];
        self.invoke(script, &keys, &[&slot.member, &slot.prefix], args)
            .await
    }

    /// Runs a script on `keys` (all of one hash tag) with this connection's
    /// incarnation as ARGV[1]; `args` follow.
    pub async fn run_on_keys(
        &self,
        script: &Lua,
        keys: &[String],
        args: &[String],
    ) -> Result<Vec<String>> {
        self.invoke(script, keys, &[], args).await
    }

    /// KEYS `keys`; ARGV `leading`, the incarnation, then `args`; timed as
    /// the script's name.
    async fn invoke(
        &self,
        script: &Lua,
        keys: &[impl AsRef<str>],
        leading: &[&String],
        args: &[String],
    ) -> Result<Vec<String>> {
        let mut connected = self.connection().await?;
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key.as_ref());
        }
        for arg in leading {
            invocation.arg(*arg);
        }
        invocation.arg(&*connected.incarnation);
        for arg in args {
            invocation.arg(arg);
        }
        dependency::call(
            Dependency::Redis,
            script.name,
            invocation.invoke_async(&mut connected.connection),
        )
        .await
        .map_err(|error| {
            self.failed(&connected, &error);
            redis_error(error)
        })
    }

    /// A key's entry fields ([`ENTRY_FIELDS`]) and Redis's clock (unix ms), in
    /// one round trip, with the incarnation the connection reaches. Timed as
    /// `get`.
    pub async fn read_entry(&self, slot: &Slot) -> Result<EntryRead> {
        let mut connected = self.connection().await?;
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(&slot.entry)
            .arg(&ENTRY_FIELDS)
            .cmd("TIME");
        let read = pipe.query_async(&mut connected.connection);
        let (fields, (seconds, micros)): (Vec<Option<String>>, (i64, i64)) =
            dependency::call(Dependency::Redis, "get", read)
                .await
                .map_err(|error| {
                    self.failed(&connected, &error);
                    redis_error(error)
                })?;
        Ok(EntryRead {
            fields,
            now_ms: seconds * 1000 + micros / 1000,
            incarnation: connected.incarnation,
        })
    }

    /// A connection of its own for subscribing (pub/sub).
    pub async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        self.client.get_async_pubsub().await
    }

    /// Forgets `connected` after it failed, so the next call reconnects.
    pub fn failed(&self, connected: &Connected, error: &redis::RedisError) {
        if error.is_unrecoverable_error() || error.is_io_error() || error.is_timeout() {
            let mut current = self.current.lock().unwrap();
            if current
                .as_ref()
                .is_some_and(|c| c.serial == connected.serial)
            {
                *current = None;
            }
        }
    }
}

/// `run_id:master_replid` from INFO's server and replication sections.
pub fn incarnation_of(info: &str) -> Option<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::to_string)
    };
    Some(format!("{}:{}", field("run_id")?, field("master_replid")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incarnation_names_the_process_and_its_replication_history() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:48b5\r\n\r\n# Replication\r\nrole:master\r\nmaster_replid:9f3a\r\nmaster_replid2:0000\r\n";
        assert_eq!(incarnation_of(info).as_deref(), Some("48b5:9f3a"));
        assert_eq!(incarnation_of("run_id:1\r\n"), None);
    }
}
