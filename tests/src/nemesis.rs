//! Recorded histories under faults, for the linearizability checker.
//!
//! Clients run get / set / delete / lock acquire and release (CAS) / incr on
//! a few keys through several memory replicas and record each call's
//! invocation and completion (with a shared monotonic clock). A call that
//! fails with 503, fails in any way the server cannot vouch for, or outlives
//! its deadline (its future is dropped) is recorded as indeterminate: it may
//! or may not have taken effect. Definite refusals (4xx) change nothing and
//! are left out. Meanwhile a nemesis injects faults into the servers of the
//! test's own (Redis, PostgreSQL) and into each replica's connections.

use crate::harness::ProxiedReplica;
use crate::postgres_server::PostgresServer;
use crate::redis_server::RedisServer;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tessera_checker::memory_model::{key_of, MemoryInput, MemoryModel, MemoryOutput};
use tessera_checker::{check_partitioned, Operation, PartitionedResult};
use tessera_memory::durable::DeliberateBug;
use tessera_memory::{Limits, Memory};

pub type Recorded = Operation<MemoryInput, MemoryOutput>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL Redis and start it empty.
    RedisKilledEmpty,
    /// FLUSHALL while a replica's PostgreSQL writes crawl: Redis forgets
    /// every key with writes still on their way to PostgreSQL.
    RedisFlushed,
    /// SAVE, more writes, then SIGKILL and a restart from that snapshot.
    RedisStaleSnapshot,
    /// A replica's connections cut while it holds a load's (or a round's)
    /// COMMIT in flight, right after Redis lost every key.
    ReplicaKilledMidLoad,
    /// A replica's connections cut while its PostgreSQL writes crawl.
    ReplicaKilledMidPersist,
    /// A replica's PostgreSQL connections stop for a while.
    PostgresPaused,
    /// A replica's PostgreSQL connections slowed down.
    PostgresSlowed,
    /// PostgreSQL crashes (immediate stop) and recovers from its WAL.
    PostgresRestarted,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::RedisFlushed,
        Fault::ReplicaKilledMidPersist,
        Fault::PostgresPaused,
        Fault::RedisKilledEmpty,
        Fault::PostgresSlowed,
        Fault::ReplicaKilledMidLoad,
        Fault::RedisStaleSnapshot,
        Fault::PostgresRestarted,
    ];
}

/// The shape of a run.
#[derive(Debug, Clone)]
pub struct Workload {
    pub clients: usize,
    pub replicas: usize,
    /// Registers (set / delete / lock) and counters (incr).
    pub registers: usize,
    pub counters: usize,
    /// Operations to record at least; faults keep coming until then.
    pub operations: usize,
    /// Faults in turn, one every `fault_every`.
    pub faults: Vec<Fault>,
    pub fault_every: Duration,
    /// A call still running after this is abandoned (indeterminate).
    pub call_deadline: Duration,
    pub seed: u64,
}

impl Workload {
    /// The run `make test` does: every fault at least once.
    pub fn ci() -> Self {
        Workload {
            clients: 16,
            replicas: 2,
            registers: 4,
            counters: 2,
            operations: 6_000,
            faults: Fault::ALL.to_vec(),
            fault_every: Duration::from_millis(700),
            call_deadline: Duration::from_secs(2),
            seed: rand::random(),
        }
    }
}

/// A recorded history and what happened while it was recorded.
pub struct Run {
    pub history: Vec<Recorded>,
    pub faults: BTreeMap<Fault, usize>,
    /// Faults injected but not at the moment they aim for (a replica killed
    /// "mid-load" that had no load in flight is still killed).
    pub missed: BTreeMap<Fault, usize>,
    pub indeterminate: usize,
    pub refused: usize,
    pub elapsed: Duration,
}

impl Run {
    pub fn check(&self, budget: Duration) -> PartitionedResult<String> {
        check_partitioned(&MemoryModel, &self.history, key_of, budget)
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faults: usize = self.faults.values().sum();
        write!(
            f,
            "{} operations in {:.1?} ({} indeterminate, {} refused), {faults} faults injected: {:?}, of which off their aim: {:?}",
            self.history.len(),
            self.elapsed,
            self.indeterminate,
            self.refused,
            self.faults,
            self.missed
        )
    }
}

/// Where calls go: the live replicas, replaced when one is killed.
pub type Replicas = Arc<RwLock<Vec<Memory>>>;

/// Runs the clients against `replicas` until `workload.operations` are
/// recorded and `may_stop` says so (the nemesis has done a full round), then
/// reads every key once more through `final_reader` once `heal` has run
/// (the final state, checked like the rest).
pub async fn record<F>(
    workload: &Workload,
    namespace: &str,
    replicas: Replicas,
    may_stop: impl Fn() -> bool + Send + Sync + 'static,
    heal: F,
) -> Run
where
    F: std::future::Future<Output = Memory>,
{
    let started = Instant::now();
    let recorded = Arc::new(Mutex::new(Vec::with_capacity(workload.operations + 64)));
    let may_stop = Arc::new(may_stop);
    let keys = Keys::new(workload);
    let clients: Vec<_> = (0..workload.clients)
        .map(|client| {
            let (replicas, recorded, may_stop) =
                (replicas.clone(), recorded.clone(), may_stop.clone());
            let (keys, namespace, workload) =
                (keys.clone(), namespace.to_string(), workload.clone());
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(workload.seed ^ client as u64);
                let mut held: BTreeMap<String, String> = BTreeMap::new();
                for seq in 1.. {
                    if recorded.lock().unwrap().len() >= workload.operations && may_stop() {
                        return;
                    }
                    let input = keys.next_input(&mut rng, client, seq, &held);
                    let memory = {
                        let replicas = replicas.read().unwrap();
                        replicas[(client + seq as usize) % replicas.len()].clone()
                    };
                    let call = started.elapsed().as_nanos() as u64;
                    let outcome = tokio::time::timeout(
                        workload.call_deadline,
                        invoke(&memory, &namespace, &input),
                    )
                    .await
                    .unwrap_or(Outcome::Indeterminate);
                    let ret = started.elapsed().as_nanos() as u64;
                    track_lock(&mut held, &input, &outcome);
                    let operation = match outcome {
                        Outcome::Done(output) => Ok(Operation::completed(
                            client as u64,
                            input,
                            output,
                            call,
                            ret,
                        )),
                        Outcome::Indeterminate => {
                            Ok(Operation::indeterminate(client as u64, input, call))
                        }
                        Outcome::Refused => Err(()),
                    };
                    recorded.lock().unwrap().push(operation);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let mut entries = std::mem::take(&mut *recorded.lock().unwrap());
    let reader = heal.await;
    for key in keys.all() {
        let input = MemoryInput::Get { key };
        for _ in 0..100 {
            let call = started.elapsed().as_nanos() as u64;
            if let Outcome::Done(output) = invoke(&reader, namespace, &input).await {
                let ret = started.elapsed().as_nanos() as u64;
                let client = workload.clients as u64;
                entries.push(Ok(Operation::completed(
                    client,
                    input.clone(),
                    output,
                    call,
                    ret,
                )));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let refused = entries.iter().filter(|e| e.is_err()).count();
    let history: Vec<Recorded> = entries.into_iter().flatten().collect();
    Run {
        indeterminate: history.iter().filter(|op| op.is_indeterminate()).count(),
        history,
        faults: BTreeMap::new(),
        missed: BTreeMap::new(),
        refused,
        elapsed: started.elapsed(),
    }
}

/// The keys of a run and how clients pick what to do with them.
#[derive(Clone)]
struct Keys {
    registers: Vec<String>,
    counters: Vec<String>,
}

impl Keys {
    fn new(workload: &Workload) -> Self {
        Keys {
            registers: (0..workload.registers).map(|i| format!("r{i}")).collect(),
            counters: (0..workload.counters).map(|i| format!("c{i}")).collect(),
        }
    }

    fn all(&self) -> Vec<String> {
        self.registers
            .iter()
            .chain(&self.counters)
            .cloned()
            .collect()
    }

    fn next_input(
        &self,
        rng: &mut impl Rng,
        client: usize,
        seq: u64,
        held: &BTreeMap<String, String>,
    ) -> MemoryInput {
        let value = format!("\"{client}-{seq}\"");
        if rng.random_range(0..10) < 3 {
            let key = self.counters[rng.random_range(0..self.counters.len())].clone();
            return if rng.random_bool(0.7) {
                MemoryInput::Incr { key, by: 1 }
            } else {
                MemoryInput::Get { key }
            };
        }
        let key = self.registers[rng.random_range(0..self.registers.len())].clone();
        if let Some(mine) = held.get(&key) {
            // Release the lock this client holds, most of the time.
            if rng.random_bool(0.8) {
                return MemoryInput::Cas {
                    key,
                    expected: Some(mine.clone()),
                    new: None,
                };
            }
        }
        match rng.random_range(0..10) {
            0..=3 => MemoryInput::Cas {
                key,
                expected: None,
                new: Some(value),
            },
            4..=6 => MemoryInput::Get { key },
            7..=8 => MemoryInput::Set { key, value },
            _ => MemoryInput::Delete { key },
        }
    }
}

/// A client remembers the locks it acquired (and forgets them whatever a
/// release answers: an indeterminate release may have happened).
fn track_lock(held: &mut BTreeMap<String, String>, input: &MemoryInput, outcome: &Outcome) {
    if let MemoryInput::Cas { key, expected, new } = input {
        match (expected, new, outcome) {
            (None, Some(value), Outcome::Done(MemoryOutput::Cas { swapped: true, .. })) => {
                held.insert(key.clone(), value.clone());
            }
            (Some(_), None, _) => {
                held.remove(key);
            }
            _ => {}
        }
    }
}

enum Outcome {
    Done(MemoryOutput),
    Indeterminate,
    Refused,
}

fn judged(error: tessera_error::Error) -> Outcome {
    match error.http_status() {
        400..=499 => Outcome::Refused,
        _ => Outcome::Indeterminate,
    }
}

async fn invoke(memory: &Memory, namespace: &str, input: &MemoryInput) -> Outcome {
    let output = match input {
        MemoryInput::Get { key } => match memory.get(namespace, key).await {
            Ok(entry) => MemoryOutput::Got(Some((entry.value, entry.revision))),
            Err(error) if error.http_status() == 404 => MemoryOutput::Got(None),
            Err(error) => return judged(error),
        },
        MemoryInput::Set { key, value } => {
            match memory.set(namespace, key, value, None, None).await {
                Ok(entry) => MemoryOutput::Set {
                    revision: entry.revision,
                },
                Err(error) => return judged(error),
            }
        }
        MemoryInput::Delete { key } => match memory.delete(namespace, key, None).await {
            Ok(deleted) => MemoryOutput::Deleted {
                deleted: deleted.deleted,
                revision: deleted.revision,
            },
            Err(error) => return judged(error),
        },
        MemoryInput::Cas { key, expected, new } => {
            match memory
                .cas(namespace, key, expected.as_deref(), new.as_deref(), None)
                .await
            {
                Ok(outcome) => MemoryOutput::Cas {
                    swapped: outcome.swapped,
                    revision: outcome.revision,
                    current: outcome.current.map(|entry| entry.value),
                },
                Err(error) => return judged(error),
            }
        }
        MemoryInput::Incr { key, by } => {
            match memory.incr(namespace, key, &by.to_string(), None).await {
                Ok(entry) => match entry.value.parse() {
                    Ok(value) => MemoryOutput::Incr {
                        value,
                        revision: entry.revision,
                    },
                    Err(_) => return Outcome::Indeterminate,
                },
                Err(error) => return judged(error),
            }
        }
    };
    Outcome::Done(output)
}

/// The servers of one durable run, all the test's own.
pub struct Cluster {
    pub redis: Mutex<RedisServer>,
    pub postgres: PostgresServer,
    pub replicas: Mutex<Vec<Arc<ProxiedReplica>>>,
    pub live: Replicas,
    limits: Limits,
    bug: Option<DeliberateBug>,
}

impl Cluster {
    pub async fn start(replica_count: usize, limits: Limits) -> Arc<Self> {
        Self::start_with_bug(replica_count, limits, None).await
    }

    /// A cluster whose replicas carry `bug`, to show the checker catches it.
    pub async fn start_with_bug(
        replica_count: usize,
        limits: Limits,
        bug: Option<DeliberateBug>,
    ) -> Arc<Self> {
        let redis = RedisServer::start_with_snapshots();
        let postgres = PostgresServer::start();
        let mut replicas = Vec::new();
        for _ in 0..replica_count {
            replicas.push(Arc::new(
                ProxiedReplica::start_with(redis.port, &postgres.url(), limits, bug).await,
            ));
        }
        let live = Arc::new(RwLock::new(
            replicas.iter().map(|r| r.memory.clone()).collect(),
        ));
        Arc::new(Cluster {
            redis: Mutex::new(redis),
            postgres,
            replicas: Mutex::new(replicas),
            live,
            limits,
            bug,
        })
    }

    fn replica(&self, index: usize) -> Arc<ProxiedReplica> {
        self.replicas.lock().unwrap()[index].clone()
    }

    /// A command to the current Redis; a failure is part of the fault.
    async fn redis_command(&self, name: &str) {
        let url = self.redis.lock().unwrap().url();
        if let Err(error) = crate::redis_server::command(&url, name).await {
            tracing::debug!(%error, name, "nemesis command failed");
        }
    }

    /// Kills replica `index` and puts a fresh one (new connections, nothing
    /// in memory) in its place.
    async fn replace(&self, index: usize) {
        self.replica(index).kill();
        let port = self.redis.lock().unwrap().port;
        let fresh = Arc::new(
            ProxiedReplica::start_with(port, &self.postgres.url(), self.limits, self.bug).await,
        );
        self.live.write().unwrap()[index] = fresh.memory.clone();
        self.replicas.lock().unwrap()[index] = fresh;
    }

    /// Injects `fault`, lets it act for about `span`, and heals it; `false`
    /// when it struck, but not at the moment it aims for.
    pub async fn inject(&self, fault: Fault, span: Duration, rng: &mut impl Rng) -> bool {
        let count = self.replicas.lock().unwrap().len();
        let victim = rng.random_range(0..count);
        match fault {
            Fault::RedisKilledEmpty => {
                self.redis.lock().unwrap().restart_empty();
                tokio::time::sleep(span).await;
            }
            Fault::RedisFlushed => {
                let replica = self.replica(victim);
                replica.pg.slow(Duration::from_millis(10));
                tokio::time::sleep(span / 3).await;
                self.redis_command("FLUSHALL").await;
                tokio::time::sleep(span / 3).await;
                replica.pg.slow(Duration::ZERO);
                tokio::time::sleep(span / 3).await;
            }
            Fault::RedisStaleSnapshot => {
                self.redis_command("SAVE").await;
                tokio::time::sleep(span).await;
                self.redis.lock().unwrap().restart_from_snapshot();
            }
            Fault::ReplicaKilledMidLoad => {
                let replica = self.replica(victim);
                self.redis_command("FLUSHALL").await;
                // Only loads send COMMIT: persists are single statements.
                replica.pg.hold_on(b"COMMIT");
                let mid_load = replica.pg.held_within(span).await;
                self.replace(victim).await;
                return mid_load;
            }
            Fault::ReplicaKilledMidPersist => {
                self.replica(victim).pg.slow(Duration::from_millis(20));
                tokio::time::sleep(span).await;
                self.replace(victim).await;
            }
            Fault::PostgresPaused => {
                let replica = self.replica(victim);
                replica.pg.pause();
                tokio::time::sleep(span).await;
                replica.pg.resume();
            }
            Fault::PostgresSlowed => {
                let replica = self.replica(victim);
                replica.pg.slow(Duration::from_millis(15));
                tokio::time::sleep(span).await;
                replica.pg.slow(Duration::ZERO);
            }
            Fault::PostgresRestarted => {
                let postgres = &self.postgres;
                tokio::task::block_in_place(|| postgres.crash_restart());
                tokio::time::sleep(span).await;
            }
        }
        true
    }

    /// Runs `workload` with its faults, and returns the recorded run.
    pub async fn run(self: &Arc<Self>, workload: &Workload, namespace: &str) -> Run {
        use std::sync::atomic::{AtomicBool, Ordering};
        let full_round = Arc::new(AtomicBool::new(workload.faults.is_empty()));
        let stop = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(Mutex::new((BTreeMap::new(), BTreeMap::new())));
        let nemesis = {
            let (cluster, full_round, stop, faults) = (
                self.clone(),
                full_round.clone(),
                stop.clone(),
                faults.clone(),
            );
            let workload = workload.clone();
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(workload.seed);
                while !workload.faults.is_empty() {
                    for &fault in &workload.faults {
                        tokio::time::sleep(workload.fault_every / 2).await;
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let struck = cluster
                            .inject(fault, workload.fault_every / 2, &mut rng)
                            .await;
                        let (injected, missed) = &mut *faults.lock().unwrap();
                        *injected.entry(fault).or_insert(0) += 1;
                        if !struck {
                            *missed.entry(fault).or_insert(0) += 1;
                        }
                    }
                    full_round.store(true, Ordering::SeqCst);
                }
            })
        };
        let may_stop = {
            let full_round = full_round.clone();
            move || full_round.load(Ordering::SeqCst)
        };
        let heal = async {
            stop.store(true, Ordering::SeqCst);
            nemesis.await.unwrap();
            // A replica that came up during the faults: reads through the
            // Redis and PostgreSQL as they are now.
            let redis_url = self.redis.lock().unwrap().url();
            let store =
                crate::harness::durable_store_with(&redis_url, &self.postgres.url(), self.limits)
                    .await;
            Memory::new(Arc::new(store), self.limits)
        };
        let mut run = record(workload, namespace, self.live.clone(), may_stop, heal).await;
        (run.faults, run.missed) = std::mem::take(&mut *faults.lock().unwrap());
        run
    }
}
