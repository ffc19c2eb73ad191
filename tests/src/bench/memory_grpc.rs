//! The memory service over gRPC: an in-process server on the durable backend
//! (Redis + PostgreSQL), called through tonic clients. Every write is
//! acknowledged only once PostgreSQL has it.

use super::driver::{run_shared, Outcome};
use super::Settings;
use anyhow::{ensure, Context};
use std::sync::Arc;
use tessera_memory::Limits;
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tessera_tests::harness::{durable_memory, unique_namespace, MemoryServer};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

type Client = MemoryServiceClient<Channel>;

const HOT_COUNTER: &str = "hot-counter";
const HOT_LOCK: &str = "hot-lock";
const SPREAD_KEYS: u64 = 10_000;

/// Limits no bench reaches, so no call fails on quota.
fn bench_limits() -> Limits {
    Limits {
        max_keys: u64::MAX / 2,
        max_bytes: u64::MAX / 2,
        ..Default::default()
    }
}

/// One client's keys.
pub struct ClientKeys {
    /// Holds a value, for Get.
    pub get: String,
    /// Acquired and released, for CompareAndSwap.
    pub lock: String,
    /// Incremented.
    pub counter: String,
    /// Overwritten, for the durable Set.
    pub set: String,
    /// The lock holder, a JSON string.
    pub holder: String,
}

impl ClientKeys {
    pub fn for_client(client: usize) -> Self {
        ClientKeys {
            get: format!("get-{client}"),
            lock: format!("lock-{client}"),
            counter: format!("counter-{client}"),
            set: format!("set-{client}"),
            holder: format!("\"agent-{client}\""),
        }
    }

    /// Every client's keys.
    pub fn all(concurrency: usize) -> Vec<Self> {
        (0..concurrency).map(Self::for_client).collect()
    }
}

struct Shared {
    namespace: String,
    /// One per client; clients of the same group share a channel.
    clients: Vec<Client>,
    /// Each client's channel, for the health check.
    channels: Vec<Channel>,
    keys: Vec<ClientKeys>,
}

pub struct MemoryGrpc {
    server: MemoryServer,
    /// The store behind the server, for an in-process gateway.
    memory: tessera_memory::Memory,
    shared: Arc<Shared>,
}

impl MemoryGrpc {
    /// Starts the server and connects `concurrency` clients, each channel
    /// (one HTTP/2 connection) shared by `clients_per_channel()` of them.
    pub async fn setup(settings: &Settings) -> anyhow::Result<Self> {
        let memory = durable_memory(bench_limits()).await;
        let server = MemoryServer::start(memory.clone()).await;
        let endpoint = Endpoint::from_shared(server.url())?;
        let per_channel = settings.clients_per_channel();
        let mut channels: Vec<Channel> = Vec::with_capacity(settings.concurrency);
        for client in 0..settings.concurrency {
            if client % per_channel == 0 {
                let channel = endpoint
                    .connect()
                    .await
                    .context("connect to the memory server")?;
                channels.push(channel);
            } else {
                let shared = channels[client - client % per_channel].clone();
                channels.push(shared);
            }
        }
        let clients = channels
            .iter()
            .cloned()
            .map(MemoryServiceClient::new)
            .collect();
        let namespace = unique_namespace("bench-grpc");
        let keys = ClientKeys::all(settings.concurrency);
        let target = MemoryGrpc {
            server,
            memory,
            shared: Arc::new(Shared {
                namespace,
                clients,
                channels,
                keys,
            }),
        };
        target.seed(&target.shared.namespace).await?;
        Ok(target)
    }

    /// A gateway memory client calling this server's service in process,
    /// as the all-in-one does.
    pub fn in_process_client(&self) -> tessera_gateway::MemoryClient {
        tessera_gateway::MemoryClient::in_process(
            tessera_memory::grpc::server(self.memory.clone()),
            tessera_runtime::grpc_auth::ServiceToken::none(),
        )
    }

    /// Writes each client's Get key in `namespace`.
    pub async fn seed(&self, namespace: &str) -> anyhow::Result<()> {
        let mut client = self.shared.clients[0].clone();
        for keys in &self.shared.keys {
            client
                .set(pb::SetRequest {
                    namespace: namespace.to_string(),
                    key: keys.get.clone(),
                    value_json: keys.holder.clone(),
                    ..Default::default()
                })
                .await
                .context("seed a key to read")?;
        }
        Ok(())
    }

    /// The gRPC health check on the same server and channels: a call that
    /// touches neither Redis nor PostgreSQL, so the most any memory call
    /// could reach through this transport on this machine.
    pub async fn health(&self, name: &str, settings: &Settings) -> Outcome {
        let health: Arc<Vec<HealthClient<Channel>>> = Arc::new(
            self.shared
                .channels
                .iter()
                .cloned()
                .map(HealthClient::new)
                .collect(),
        );
        run_shared(name, settings, &health, |health, client, _| async move {
            let mut health = health[client].clone();
            let request = HealthCheckRequest {
                service: tessera_memory::grpc::SERVICE_NAME.to_string(),
            };
            health.check(request).await?;
            Ok(())
        })
        .await
    }

    pub async fn get(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, _| async move {
                let mut memory = shared.clients[client].clone();
                let request = pb::GetRequest {
                    namespace: shared.namespace.clone(),
                    key: shared.keys[client].get.clone(),
                    ..Default::default()
                };
                memory.get(request).await?;
                Ok(())
            },
        )
        .await
    }

    /// Lock acquire (expected absent) and release (expected the holder, no
    /// value: delete) on the client's own key; each call one op.
    pub async fn compare_and_swap(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, call| async move {
                let mut memory = shared.clients[client].clone();
                let keys = &shared.keys[client];
                let acquire = call.is_multiple_of(2);
                let holder = Some(keys.holder.clone());
                let request = pb::CompareAndSwapRequest {
                    namespace: shared.namespace.clone(),
                    key: keys.lock.clone(),
                    expected_json: if acquire { None } else { holder.clone() },
                    value_json: if acquire { holder } else { None },
                    ttl_seconds: None,
                    ..Default::default()
                };
                let reply = memory.compare_and_swap(request).await?.into_inner();
                ensure!(reply.swapped, "CompareAndSwap did not swap");
                Ok(())
            },
        )
        .await
    }

    /// Each client increments its own counter.
    pub async fn increment(&self, name: &str, settings: &Settings) -> Outcome {
        self.increment_where(name, settings, |keys| keys.counter.clone())
            .await
    }

    async fn increment_where(
        &self,
        name: &str,
        settings: &Settings,
        counter: fn(&ClientKeys) -> String,
    ) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            move |shared, client, _| async move {
                let mut memory = shared.clients[client].clone();
                let request = pb::IncrementRequest {
                    namespace: shared.namespace.clone(),
                    key: counter(&shared.keys[client]),
                    by_json: "1".to_string(),
                    ttl_seconds: None,
                    ..Default::default()
                };
                memory.increment(request).await?;
                Ok(())
            },
        )
        .await
    }

    /// A durable write: the ack means PostgreSQL has committed it. Each
    /// call writes a new value (the call number) to the client's own key.
    pub async fn set(&self, name: &str, settings: &Settings) -> Outcome {
        run_shared(
            name,
            settings,
            &self.shared,
            |shared, client, call| async move {
                let mut memory = shared.clients[client].clone();
                let request = pb::SetRequest {
                    namespace: shared.namespace.clone(),
                    key: shared.keys[client].set.clone(),
                    value_json: call.to_string(),
                    ..Default::default()
                };
                memory.set(request).await?;
                Ok(())
            },
        )
        .await
    }

    /// Every client increments the same key.
    pub async fn hot_increment(&self, name: &str, settings: &Settings) -> Outcome {
        self.increment_where(name, settings, |_| HOT_COUNTER.to_string())
            .await
    }

    /// Every client contends for the same lock: CAS acquire (expected
    /// absent) until it swaps, then CAS release; each call one op, swapped
    /// or not (a refusal is an answer, and a durable one).
    pub async fn hot_lock(&self, name: &str, settings: &Settings) -> Outcome {
        let holding: Arc<Vec<std::sync::atomic::AtomicBool>> = Arc::new(
            (0..settings.concurrency)
                .map(|_| std::sync::atomic::AtomicBool::new(false))
                .collect(),
        );
        let shared = Arc::new((self.shared.clone(), holding));
        run_shared(name, settings, &shared, |both, client, _| async move {
            use std::sync::atomic::Ordering;
            let (shared, holding) = &*both;
            let mut memory = shared.clients[client].clone();
            let holder = Some(shared.keys[client].holder.clone());
            let held = holding[client].load(Ordering::Relaxed);
            let request = pb::CompareAndSwapRequest {
                namespace: shared.namespace.clone(),
                key: HOT_LOCK.to_string(),
                expected_json: if held { holder.clone() } else { None },
                value_json: if held { None } else { holder },
                ttl_seconds: None,
                ..Default::default()
            };
            let reply = memory.compare_and_swap(request).await?.into_inner();
            ensure!(!held || reply.swapped, "a held lock did not release");
            holding[client].store(!held && reply.swapped, Ordering::Relaxed);
            Ok(())
        })
        .await
    }

    /// Sets among 10,000 keys of a namespace no earlier run wrote, so the
    /// first write of most keys (a load: a new row) is part of the run.
    pub async fn spread_set(&self, name: &str, settings: &Settings) -> Outcome {
        let namespace = unique_namespace("bench-spread");
        let shared = Arc::new((self.shared.clone(), namespace));
        run_shared(name, settings, &shared, |both, client, call| async move {
            let (shared, namespace) = &*both;
            let mut memory = shared.clients[client].clone();
            let key = (call.wrapping_mul(2_654_435_761) ^ client as u64) % SPREAD_KEYS;
            let request = pb::SetRequest {
                namespace: namespace.clone(),
                key: format!("spread-{key}"),
                value_json: call.to_string(),
                ..Default::default()
            };
            memory.set(request).await?;
            Ok(())
        })
        .await
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}
