//! The baseline: this machine's Redis, called directly. One multiplexed
//! connection per client (like `redis-benchmark -c N`), GET and SET of a
//! plain string, and EVALSHA of the memory store's own CAS script with the
//! KEYS/ARGV the store passes.

use super::driver::{run_shared, Outcome};
use super::Settings;
use anyhow::{ensure, Context};
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use std::sync::Arc;
use std::time::Duration;
use tessera_memory::durable::scripts::Scripts;
use tessera_memory::Limits;

/// One client's keys and value.
struct ClientKeys {
    /// A plain string key for GET/SET.
    plain: String,
    /// The CAS script's key names, as `durable::keys::Slot` lays them out.
    entry: String,
    member: String,
    /// A JSON string, as the store keeps values.
    value: String,
}

struct Shared {
    connections: Vec<MultiplexedConnection>,
    clients: Vec<ClientKeys>,
    cas_sha: String,
    usage: String,
    expiry: String,
    /// The namespace's change stream (every write appends to it).
    changes: String,
    prefix: String,
    max_keys: String,
    max_bytes: String,
}

pub struct RawRedis {
    shared: Arc<Shared>,
}

impl RawRedis {
    pub async fn setup(settings: &Settings) -> anyhow::Result<Self> {
        let client = redis::Client::open(settings.redis_url.as_str())?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let mut connections = Vec::with_capacity(settings.concurrency);
        for _ in 0..settings.concurrency {
            let connection = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .with_context(|| format!("connect to Redis at {}", settings.redis_url))?;
            connections.push(connection);
        }

        let cas_sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(Scripts::new().cas_source())
            .query_async(&mut connections[0].clone())
            .await?;

        let namespace = tessera_tests::harness::unique_namespace("bench-raw");
        let prefix = format!("tm:{{{namespace}}}:e:");
        let clients = (0..settings.concurrency)
            .map(|client| ClientKeys {
                plain: format!("bench:{{{namespace}}}:plain-{client}"),
                entry: format!("{prefix}lock-{client}"),
                member: format!("lock-{client}"),
                value: format!("\"agent-{client}\""),
            })
            .collect();
        let limits = Limits::default();
        let shared = Shared {
            connections,
            clients,
            cas_sha,
            usage: format!("tm:{{{namespace}}}:u"),
            expiry: format!("tm:{{{namespace}}}:x"),
            changes: format!("tm:{{{namespace}}}:w"),
            prefix,
            max_keys: limits.max_keys.to_string(),
            max_bytes: limits.max_bytes.to_string(),
        };
        let raw = RawRedis {
            shared: Arc::new(shared),
        };
        raw.prepare().await?;
        Ok(raw)
    }

    /// Creates every key the cases touch, and checks that an acquire and a
    /// release each answer OK (a real write, not the script's LOAD/USAGE
    /// early exit for a key or namespace not loaded from PostgreSQL).
    async fn prepare(&self) -> anyhow::Result<()> {
        let shared = &self.shared;
        let mut connection = shared.connections[0].clone();
        let mut setup = redis::pipe();
        setup
            .hset_multiple(
                &shared.usage,
                &[("keys", "0"), ("bytes", "0"), ("i", INCARNATION)],
            )
            .ignore();
        for keys in &shared.clients {
            setup.set(&keys.plain, &keys.value).ignore();
            let fields = [
                ("rev", "0"),
                ("gen", "1"),
                ("drev", "0"),
                ("c", "0"),
                ("u", "0"),
                ("x", "0"),
                ("i", INCARNATION),
            ];
            setup.hset_multiple(&keys.entry, &fields).ignore();
        }
        let () = setup.query_async(&mut connection).await?;

        for call in 0..2 {
            let reply: Vec<String> = cas_call(shared, 0, call)
                .query_async(&mut connection)
                .await?;
            ensure!(
                reply.first().map(String::as_str) == Some("OK"),
                "the CAS script's sample {} answered {reply:?}, not OK",
                if call == 0 { "acquire" } else { "release" }
            );
        }
        Ok(())
    }

    pub async fn get(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, _| async move {
                let mut connection = shared.connections[client].clone();
                let value: Option<String> = redis::cmd("GET")
                    .arg(&shared.clients[client].plain)
                    .query_async(&mut connection)
                    .await?;
                ensure!(value.is_some(), "GET found no value");
                Ok(())
            },
        )
        .await
    }

    pub async fn set(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, _| async move {
                let mut connection = shared.connections[client].clone();
                let keys = &shared.clients[client];
                let () = redis::cmd("SET")
                    .arg(&keys.plain)
                    .arg(&keys.value)
                    .query_async(&mut connection)
                    .await?;
                Ok(())
            },
        )
        .await
    }

    /// Lock acquire/release pairs on the client's own key, each call one op.
    pub async fn evalsha_cas(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, call| async move {
                let mut connection = shared.connections[client].clone();
                let reply: Vec<String> = cas_call(&shared, client, call)
                    .query_async(&mut connection)
                    .await?;
                ensure!(
                    reply.first().map(String::as_str) == Some("OK"),
                    "the CAS script answered {:?}, not OK",
                    reply.first()
                );
                Ok(())
            },
        )
        .await
    }

    /// Deletes every key the cases wrote.
    pub async fn cleanup(&self) -> anyhow::Result<()> {
        let shared = &self.shared;
        let mut connection = shared.connections[0].clone();
        let mut keys = vec![
            shared.usage.clone(),
            shared.expiry.clone(),
            shared.changes.clone(),
        ];
        for client in &shared.clients {
            keys.push(client.plain.clone());
            keys.push(client.entry.clone());
        }
        let _: u64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut connection)
            .await?;
        Ok(())
    }
}

/// The incarnation the raw calls claim (the store reads the real one from
/// INFO once per connection; the keys here are only ever used raw).
const INCARNATION: &str = "bench";

/// EVALSHA of the CAS script as `DurableStore::cas` calls it: on even calls
/// acquire (expect absent, write the value), on odd calls release (expect
/// the value, delete).
fn cas_call(shared: &Shared, client: usize, call: u64) -> redis::Cmd {
    let keys = &shared.clients[client];
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&shared.cas_sha)
        .arg(4)
        .arg(&keys.entry)
        .arg(&shared.usage)
        .arg(&shared.expiry)
        .arg(&shared.changes)
        .arg(&keys.member)
        .arg(&shared.prefix)
        .arg(INCARNATION);
    if call.is_multiple_of(2) {
        cmd.arg("0").arg("").arg("1").arg(&keys.value);
    } else {
        cmd.arg("1").arg(&keys.value).arg("0").arg("");
    }
    cmd.arg("clear")
        .arg(&shared.max_keys)
        .arg(&shared.max_bytes);
    cmd
}
