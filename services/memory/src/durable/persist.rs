//! Group persistence: every state a call needs durable goes through one task
//! per store, which writes whatever has queued up since its last write in one
//! statement (one transaction for several keys).
//!
//! While a write is in flight the next ones queue, so a hot key costs one
//! row update per round however many callers it has: revision N of a
//! generation stored makes every revision below it of that generation stored
//! or superseded, so only the newest state of each key is written and every
//! caller waiting on that key gets its answer from the one row.

use super::metrics;
use super::pg::{self, Candidate, Fence, Guard, Verdict};
use super::rounds::ask;
use crate::ops::Stored;
use sqlx::PgPool;
use std::collections::HashMap;
use tessera_error::Result;
use tokio::sync::{mpsc, oneshot};

/// At most this many calls share one round.
const MAX_ROUND: usize = 512;

struct Job {
    namespace: String,
    key: String,
    stored: Stored,
    gen: i64,
    answer: oneshot::Sender<Result<Verdict>>,
}

/// What a round stored, for the caller to record in Redis.
pub struct DurableMark {
    pub namespace: String,
    pub key: String,
    pub gen: i64,
    pub revision: u64,
}

#[derive(Clone)]
pub struct Persister {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Persister {
    /// Starts the task; `recorded` is told each key's newest durable state
    /// after every round (to mark it in Redis: an optimization only).
    pub fn start(
        pg: PgPool,
        guard: Guard,
        recorded: impl Fn(Vec<DurableMark>) + Send + 'static,
    ) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(pg, guard, queue, recorded));
        Persister { jobs }
    }

    /// Whether (gen, stored) is in PostgreSQL, writing it if it may be.
    pub async fn persist(
        &self,
        namespace: &str,
        key: &str,
        stored: &Stored,
        gen: i64,
    ) -> Result<Verdict> {
        ask(&self.jobs, |answer| Job {
            namespace: namespace.to_string(),
            key: key.to_string(),
            stored: stored.clone(),
            gen,
            answer,
        })
        .await
    }
}

async fn run(
    pg: PgPool,
    guard: Guard,
    mut queue: mpsc::UnboundedReceiver<Job>,
    recorded: impl Fn(Vec<DurableMark>),
) {
    let mut round = Vec::with_capacity(MAX_ROUND);
    while queue.recv_many(&mut round, MAX_ROUND).await > 0 {
        let jobs = std::mem::take(&mut round);
        // Answering is the reply to a caller that may be gone: ignore that.
        match write_round(&pg, &jobs, guard).await {
            Ok((verdicts, durable)) => {
                for (job, verdict) in jobs.into_iter().zip(verdicts) {
                    let _ = job.answer.send(Ok(verdict));
                }
                recorded(durable);
            }
            Err(error) => {
                for job in jobs {
                    let _ = job.answer.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Writes the newest state of each (key, generation) of the round; returns
/// each job's verdict and the states now known durable.
async fn write_round(
    pg: &PgPool,
    jobs: &[Job],
    guard: Guard,
) -> Result<(Vec<Verdict>, Vec<DurableMark>)> {
    // The newest job per key; jobs of an older generation of that key are
    // judged by the row's fence.
    let mut newest: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        let slot = newest.entry((&job.namespace, &job.key)).or_insert(i);
        let held = &jobs[*slot];
        if (job.gen, job.stored.revision) > (held.gen, held.stored.revision) {
            *slot = i;
        }
    }
    let mut order: Vec<usize> = newest.values().copied().collect();
    order.sort_unstable();
    let candidates: Vec<Candidate> = order
        .iter()
        .map(|&i| Candidate {
            namespace: &jobs[i].namespace,
            key: &jobs[i].key,
            stored: &jobs[i].stored,
            gen: jobs[i].gen,
        })
        .collect();
    let fences = pg::write_candidates(pg, &candidates, guard).await?;
    let by_key: HashMap<(&str, &str), Option<Fence>> = order
        .iter()
        .zip(&fences)
        .map(|(&i, fence)| ((jobs[i].namespace.as_str(), jobs[i].key.as_str()), *fence))
        .collect();
    let verdicts = jobs
        .iter()
        .map(|job| {
            let verdict = match by_key[&(job.namespace.as_str(), job.key.as_str())] {
                Some(fence) => fence.judge(job.gen, job.stored.revision as i64, guard),
                None => Verdict::Unknown,
            };
            if verdict != Verdict::Durable {
                metrics::fenced_persist();
            }
            verdict
        })
        .collect();
    let durable = order
        .iter()
        .zip(&fences)
        .filter_map(|(&i, fence)| {
            let job = &jobs[i];
            let fence = (*fence)?;
            (fence.gen == job.gen).then(|| DurableMark {
                namespace: job.namespace.clone(),
                key: job.key.clone(),
                gen: fence.gen,
                revision: fence.revision as u64,
            })
        })
        .collect();
    Ok((verdicts, durable))
}
