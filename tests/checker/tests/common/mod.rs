//! Test support: a seeded random number generator, shorthand for memory
//! operations, and a simulator of clients running against an in-process
//! store, correct or broken on purpose, that records a history.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;

use tessera_checker::memory_model::{MemoryInput, MemoryModel, MemoryOutput, MemoryState};
use tessera_checker::{Model, Operation};

pub type MemoryOperation = Operation<MemoryInput, MemoryOutput>;

/// The memory model without its optional hints, to test the plain search.
pub struct PlainMemoryModel;

impl Model for PlainMemoryModel {
    type State = MemoryState;
    type Input = MemoryInput;
    type Output = MemoryOutput;

    fn init(&self) -> MemoryState {
        MemoryModel.init()
    }

    fn step(
        &self,
        state: &MemoryState,
        input: &MemoryInput,
        output: &MemoryOutput,
    ) -> Option<MemoryState> {
        MemoryModel.step(state, input, output)
    }

    fn step_unknown(&self, state: &MemoryState, input: &MemoryInput) -> Vec<MemoryState> {
        MemoryModel.step_unknown(state, input)
    }
}

/// SplitMix64: small, seedable, and good enough to pick interleavings.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    pub fn percent(&mut self, chance: u64) -> bool {
        self.below(100) < chance
    }
}

// Shorthand for hand-written histories.

pub fn get(key: &str) -> MemoryInput {
    MemoryInput::Get { key: key.into() }
}

pub fn set(key: &str, value: &str) -> MemoryInput {
    MemoryInput::Set {
        key: key.into(),
        value: value.into(),
    }
}

pub fn delete(key: &str) -> MemoryInput {
    MemoryInput::Delete { key: key.into() }
}

pub fn cas(key: &str, expected: Option<&str>, new: Option<&str>) -> MemoryInput {
    MemoryInput::Cas {
        key: key.into(),
        expected: expected.map(str::to_string),
        new: new.map(str::to_string),
    }
}

pub fn incr(key: &str, by: i64) -> MemoryInput {
    MemoryInput::Incr {
        key: key.into(),
        by,
    }
}

pub fn got(entry: Option<(&str, u64)>) -> MemoryOutput {
    MemoryOutput::Got(entry.map(|(value, revision)| (value.to_string(), revision)))
}

pub fn written(revision: u64) -> MemoryOutput {
    MemoryOutput::Set { revision }
}

pub fn deleted(deleted: bool, revision: u64) -> MemoryOutput {
    MemoryOutput::Deleted { deleted, revision }
}

pub fn cas_reply(swapped: bool, revision: u64, current: Option<&str>) -> MemoryOutput {
    MemoryOutput::Cas {
        swapped,
        revision,
        current: current.map(str::to_string),
    }
}

pub fn counted(value: i64, revision: u64) -> MemoryOutput {
    MemoryOutput::Incr { value, revision }
}

/// An operation by `client` over `[call, ret]` that returned `output`.
pub fn op(
    client: u64,
    call: u64,
    ret: u64,
    input: MemoryInput,
    output: MemoryOutput,
) -> MemoryOperation {
    Operation::completed(client, input, output, call, ret)
}

// The store under test.

/// One key as a store keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub value: Option<String>,
    pub revision: u64,
}

/// An operation in progress at a store.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub input: MemoryInput,
    /// What a multi-step operation read in an earlier step.
    pub read: Option<Entry>,
}

impl InFlight {
    pub fn new(input: MemoryInput) -> Self {
        InFlight { input, read: None }
    }
}

pub trait Store {
    /// Runs the next atomic step of `op`; returns the reply once it is done.
    fn step(&mut self, rng: &mut Rng, op: &mut InFlight) -> Option<MemoryOutput>;
}

/// The service's semantics, written out again independently of the model.
/// The workload only ever stores integers, so incr always succeeds.
pub fn apply(entry: &mut Entry, input: &MemoryInput) -> MemoryOutput {
    match input {
        MemoryInput::Get { .. } => {
            MemoryOutput::Got(entry.value.clone().map(|value| (value, entry.revision)))
        }
        MemoryInput::Set { value, .. } => {
            entry.value = Some(value.clone());
            entry.revision += 1;
            MemoryOutput::Set {
                revision: entry.revision,
            }
        }
        MemoryInput::Delete { .. } => {
            let deleted = entry.value.take().is_some();
            if deleted {
                entry.revision += 1;
            }
            MemoryOutput::Deleted {
                deleted,
                revision: entry.revision,
            }
        }
        MemoryInput::Cas { expected, new, .. } => {
            let swapped = entry.value == *expected;
            if swapped && (new.is_some() || entry.value.is_some()) {
                entry.value = new.clone();
                entry.revision += 1;
            }
            MemoryOutput::Cas {
                swapped,
                revision: entry.revision,
                current: entry.value.clone(),
            }
        }
        MemoryInput::Incr { by, .. } => {
            let old: i64 = entry.value.as_deref().map_or(0, |text| {
                text.parse().expect("the workload stores integers only")
            });
            let value = old + by;
            entry.value = Some(value.to_string());
            entry.revision += 1;
            MemoryOutput::Incr {
                value,
                revision: entry.revision,
            }
        }
    }
}

/// Every operation takes effect atomically, in one step.
#[derive(Debug, Default)]
pub struct CorrectStore {
    pub keys: HashMap<String, Entry>,
}

impl Store for CorrectStore {
    fn step(&mut self, _rng: &mut Rng, op: &mut InFlight) -> Option<MemoryOutput> {
        let entry = self.keys.entry(op.input.key().to_string()).or_default();
        Some(apply(entry, &op.input))
    }
}

/// CAS as a read, then a separate write decided on what was read; other
/// operations can run in between.
#[derive(Debug, Default)]
pub struct RacyCasStore {
    pub keys: HashMap<String, Entry>,
    /// CAS writes that landed on a key changed since their read.
    pub races: usize,
}

impl Store for RacyCasStore {
    fn step(&mut self, _rng: &mut Rng, op: &mut InFlight) -> Option<MemoryOutput> {
        let entry = self.keys.entry(op.input.key().to_string()).or_default();
        let MemoryInput::Cas { expected, new, .. } = &op.input else {
            return Some(apply(entry, &op.input));
        };
        let Some(read) = op.read.take() else {
            op.read = Some(entry.clone());
            return None;
        };
        if read.value != *expected {
            return Some(MemoryOutput::Cas {
                swapped: false,
                revision: read.revision,
                current: read.value,
            });
        }
        if *entry != read {
            self.races += 1;
        }
        if new.is_some() || entry.value.is_some() {
            entry.value = new.clone();
            entry.revision += 1;
        }
        Some(MemoryOutput::Cas {
            swapped: true,
            revision: entry.revision,
            current: entry.value.clone(),
        })
    }
}

/// Acknowledges writes it then loses: some are never stored, and now and
/// then the whole store rolls back to an older snapshot (a restart from a
/// stale dump).
#[derive(Debug, Default)]
pub struct LossyStore {
    pub keys: HashMap<String, Entry>,
    pub drop_percent: u64,
    /// Chance per step, in tenths of a percent.
    pub rollback_permille: u64,
    snapshot: HashMap<String, Entry>,
    steps: u64,
    /// Acknowledged writes dropped, plus rollbacks that lost something.
    pub losses: usize,
}

/// Steps between snapshots of a [`LossyStore`].
const SNAPSHOT_EVERY: u64 = 50;

impl LossyStore {
    pub fn dropping_writes(percent: u64) -> Self {
        LossyStore {
            drop_percent: percent,
            ..LossyStore::default()
        }
    }

    pub fn rolling_back(permille: u64) -> Self {
        LossyStore {
            rollback_permille: permille,
            ..LossyStore::default()
        }
    }
}

impl Store for LossyStore {
    fn step(&mut self, rng: &mut Rng, op: &mut InFlight) -> Option<MemoryOutput> {
        self.steps += 1;
        if self.steps.is_multiple_of(SNAPSHOT_EVERY) {
            self.snapshot = self.keys.clone();
        }
        if rng.below(1000) < self.rollback_permille {
            if self.keys != self.snapshot {
                self.losses += 1;
            }
            self.keys = self.snapshot.clone();
        }
        let entry = self.keys.entry(op.input.key().to_string()).or_default();
        let is_write = !matches!(op.input, MemoryInput::Get { .. });
        if is_write && rng.percent(self.drop_percent) {
            let before = entry.clone();
            let reply = apply(entry, &op.input);
            if *entry != before {
                self.losses += 1;
            }
            *entry = before;
            return Some(reply);
        }
        Some(apply(entry, &op.input))
    }
}

// Clients and the simulation.

/// A client's view of the keys, so that its CASes often match.
#[derive(Debug, Default)]
pub struct Client {
    last_seen: HashMap<String, Option<String>>,
}

impl Client {
    pub fn next_input(&self, rng: &mut Rng, keys: &[String]) -> MemoryInput {
        let key = keys[rng.index(keys.len())].clone();
        let small = |rng: &mut Rng| rng.below(4).to_string();
        match rng.below(100) {
            0..30 => MemoryInput::Get { key },
            30..50 => MemoryInput::Set {
                value: small(rng),
                key,
            },
            50..70 => {
                let expected = if rng.percent(60) {
                    self.last_seen.get(&key).cloned().flatten()
                } else if rng.percent(50) {
                    None
                } else {
                    Some(small(rng))
                };
                let new = if rng.percent(85) {
                    Some(small(rng))
                } else {
                    None
                };
                MemoryInput::Cas { key, expected, new }
            }
            70..90 => MemoryInput::Incr {
                key,
                by: rng.below(5) as i64 - 2,
            },
            _ => MemoryInput::Delete { key },
        }
    }

    pub fn observe(&mut self, input: &MemoryInput, output: &MemoryOutput) {
        let seen = match (input, output) {
            (_, MemoryOutput::Got(entry)) => entry.clone().map(|(value, _)| value),
            (MemoryInput::Set { value, .. }, _) => Some(value.clone()),
            (_, MemoryOutput::Deleted { .. }) => None,
            (_, MemoryOutput::Cas { current, .. }) => current.clone(),
            (_, MemoryOutput::Incr { value, .. }) => Some(value.to_string()),
            (_, MemoryOutput::Set { .. }) => return,
        };
        self.last_seen.insert(input.key().to_string(), seen);
    }
}

pub struct Workload {
    pub clients: usize,
    pub ops_per_client: usize,
    pub keys: Vec<String>,
    /// Chance that the scheduler keeps running the same client: high
    /// values make operations mostly sequential, 0 interleaves freely.
    pub stickiness_percent: u64,
    /// Chance, each time a client with an operation in flight is scheduled,
    /// that it gives up on it: the operation becomes indeterminate and may
    /// still take effect later, or never.
    pub timeout_percent: u64,
}

impl Workload {
    pub fn new(clients: usize, ops_per_client: usize, keys: usize) -> Self {
        Workload {
            clients,
            ops_per_client,
            keys: (0..keys).map(|key| format!("key-{key}")).collect(),
            stickiness_percent: 0,
            timeout_percent: 0,
        }
    }
}

/// Chance per tick that an abandoned operation is looked at, and then that
/// it is dropped (never takes effect) rather than stepped.
const ABANDONED_TURN_PERCENT: u64 = 5;
const ABANDONED_DROP_PERCENT: u64 = 30;

struct Pending {
    index: usize,
    op: InFlight,
    reply: Option<MemoryOutput>,
}

/// Runs `workload` against `store` under a random interleaving drawn from
/// `seed`: each scheduler tick calls, steps or returns one client's
/// operation (or steps an abandoned one). Ticks are the history's clock.
pub fn simulate(store: &mut impl Store, workload: &Workload, seed: u64) -> Vec<MemoryOperation> {
    let mut rng = Rng::new(seed);
    let mut history: Vec<MemoryOperation> = Vec::new();
    let mut clients: Vec<Client> = (0..workload.clients).map(|_| Client::default()).collect();
    let mut pending: Vec<Option<Pending>> = (0..workload.clients).map(|_| None).collect();
    let mut done = vec![0; workload.clients];
    let mut abandoned: Vec<InFlight> = Vec::new();
    let mut current = 0;
    let mut tick = 0;
    while done.iter().any(|&count| count < workload.ops_per_client) {
        tick += 1;
        if !abandoned.is_empty() && rng.percent(ABANDONED_TURN_PERCENT) {
            let which = rng.index(abandoned.len());
            if rng.percent(ABANDONED_DROP_PERCENT)
                || store.step(&mut rng, &mut abandoned[which]).is_some()
            {
                abandoned.swap_remove(which);
            }
            continue;
        }
        if !rng.percent(workload.stickiness_percent) || done[current] == workload.ops_per_client {
            current = rng.index(workload.clients);
        }
        match &mut pending[current] {
            None if done[current] < workload.ops_per_client => {
                let input = clients[current].next_input(&mut rng, &workload.keys);
                history.push(Operation::indeterminate(
                    current as u64,
                    input.clone(),
                    tick,
                ));
                pending[current] = Some(Pending {
                    index: history.len() - 1,
                    op: InFlight::new(input),
                    reply: None,
                });
            }
            None => {}
            Some(_) if rng.percent(workload.timeout_percent) => {
                let gave_up = pending[current].take().expect("in flight");
                if gave_up.reply.is_none() {
                    abandoned.push(gave_up.op);
                }
                done[current] += 1;
            }
            Some(Pending {
                reply: reply @ None,
                op,
                ..
            }) => *reply = store.step(&mut rng, op),
            Some(_) => {
                let returned = pending[current].take().expect("in flight");
                let reply = returned.reply.expect("a reply");
                clients[current].observe(&returned.op.input, &reply);
                let recorded = &mut history[returned.index];
                recorded.output = Some(reply);
                recorded.ret = Some(tick);
                done[current] += 1;
            }
        }
    }
    history
}
