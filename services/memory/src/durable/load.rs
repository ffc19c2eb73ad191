//! Loads, grouped: keys that calls find missing from Redis (or unusable
//! there) are loaded from PostgreSQL together, a round at a time, each round
//! one transaction for all its keys. A storm of first writes or of reads of
//! cold keys then costs a few transactions, not one per key.
//!
//! A round, holding its rows' locks throughout (taken in key order):
//! 1. lock the rows (creating them for writes) and read each committed
//!    generation G and state;
//! 2. in Redis (`ensure.lua`), per key: if G is there and usable, nothing;
//!    if a load of G committed but did not activate, activate it; otherwise
//!    install the row's state as G + 1, pending;
//! 3. only then advance those rows to G + 1, and commit;
//! 4. activate each G + 1 in Redis.
//!
//! No state of G + 1 is used before G + 1 is committed, so a round that rolls
//! back, times out or is dropped at any step leaves nothing a writer could
//! build on, and a persist never sees a generation newer than PostgreSQL's.
//! Rounds racing for a key serialize on its row lock, and the later one
//! finds it usable or activates it: one generation per real loss.

use super::keys::Slot;
use super::link::RedisLink;
use super::metrics;
use super::pg::{self, Loaded, RowKey};
use super::rounds::ask;
use super::scripts::{Ensured, Reply, Scripts};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tessera_error::{Error, Result};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// At most this many keys share one round.
const MAX_ROUND: usize = 256;
/// Rounds in flight at once: one stuck behind a row lock does not hold up
/// every other load.
const ROUNDS_IN_FLIGHT: usize = 4;

struct Job {
    key: RowKey,
    create: bool,
    /// `true` when the key is now loaded; `false`: a read of a key never
    /// written.
    answer: oneshot::Sender<Result<bool>>,
}

#[derive(Clone)]
pub struct Loader {
    jobs: mpsc::UnboundedSender<Job>,
}

struct Round {
    pg: PgPool,
    redis: Arc<RedisLink>,
    scripts: Arc<Scripts>,
}

impl Loader {
    pub fn start(pg: PgPool, redis: Arc<RedisLink>, scripts: Arc<Scripts>) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let round = Arc::new(Round { pg, redis, scripts });
        tokio::spawn(run(round, queue));
        Loader { jobs }
    }

    /// Loads `key` into Redis; `create`: make its row if it has none.
    pub async fn load(&self, namespace: &str, key: &str, create: bool) -> Result<bool> {
        let key = RowKey {
            namespace: namespace.to_string(),
            key: key.to_string(),
        };
        ask(&self.jobs, |answer| Job {
            key,
            create,
            answer,
        })
        .await
    }
}

async fn run(round: Arc<Round>, mut queue: mpsc::UnboundedReceiver<Job>) {
    let in_flight = Arc::new(Semaphore::new(ROUNDS_IN_FLIGHT));
    let mut jobs = Vec::with_capacity(MAX_ROUND);
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        if queue.recv_many(&mut jobs, MAX_ROUND).await == 0 {
            return;
        }
        let taken = std::mem::take(&mut jobs);
        let round = round.clone();
        tokio::spawn(async move {
            let (writes, reads): (Vec<Job>, Vec<Job>) = taken.into_iter().partition(|j| j.create);
            for (jobs, create) in [(writes, true), (reads, false)] {
                if jobs.is_empty() {
                    continue;
                }
                let keys: BTreeSet<RowKey> = jobs.iter().map(|job| job.key.clone()).collect();
                let keys: Vec<RowKey> = keys.into_iter().collect();
                match round.load(&keys, create).await {
                    Ok(loaded) => {
                        metrics::loaded(keys.len(), loaded.len());
                        for job in jobs {
                            let _ = job.answer.send(Ok(loaded.contains(&job.key)));
                        }
                    }
                    Err(error) => {
                        metrics::load_failed(keys.len());
                        for job in jobs {
                            let _ = job.answer.send(Err(error.clone()));
                        }
                    }
                }
            }
            drop(permit);
        });
    }
}

impl Round {
    /// One round for `keys` (sorted, distinct); returns the keys loaded.
    async fn load(&self, keys: &[RowKey], create: bool) -> Result<BTreeSet<RowKey>> {
        let mut tx = pg::timed("begin", self.pg.begin()).await?;
        let rows = pg::lock_rows(&mut tx, keys, create).await?;
        let ensured =
            futures::future::try_join_all(rows.iter().map(|(key, row)| self.ensure(key, row)))
                .await?;
        let installed: Vec<(RowKey, i64)> = rows
            .iter()
            .zip(&ensured)
            .filter(|(_, ensured)| **ensured == Ensured::Installed)
            .map(|((key, row), _)| (key.clone(), row.gen))
            .collect();
        if !installed.is_empty() {
            pg::advance_generations(&mut tx, &installed).await?;
        }
        pg::timed("commit", tx.commit()).await?;
        let revisions: BTreeMap<&RowKey, u64> = rows
            .iter()
            .map(|(key, row)| (key, row.stored.revision))
            .collect();
        futures::future::try_join_all(installed.iter().map(|(key, gen)| {
            let args = [(gen + 1).to_string(), revisions[key].to_string()];
            let slot = Slot::new(&key.namespace, &key.key);
            async move { self.redis.run(&self.scripts.activate, &slot, &args).await }
        }))
        .await?;
        Ok(rows.into_iter().map(|(key, _)| key).collect())
    }

    async fn ensure(&self, key: &RowKey, row: &Loaded) -> Result<Ensured> {
        let stored = &row.stored;
        let args = [
            row.gen.to_string(),
            stored.revision.to_string(),
            stored.value.clone().unwrap_or_default(),
            stored.created_at_ms.to_string(),
            stored.updated_at_ms.to_string(),
            stored.expires_at_ms.unwrap_or(0).to_string(),
        ];
        let slot = Slot::new(&key.namespace, &key.key);
        match Reply::parse(self.redis.run(&self.scripts.ensure, &slot, &args).await?)? {
            Reply::Ensured(ensured) => Ok(ensured),
            _ => Err(Error::internal("unexpected reply to ensure")),
        }
    }
}
