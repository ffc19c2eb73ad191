//! The durable backend: Redis linearizes, PostgreSQL remembers.
//!
//! Each write runs as one Lua script in Redis, which orders all operations
//! on a key and assigns the next revision (a read is one atomic HMGET). Before the call is
//! acknowledged, the resulting state is written to PostgreSQL with a guarded
//! UPDATE (`gen = $gen AND revision < $rev`), so PostgreSQL holds every
//! acknowledged write and its revision never moves backwards. A key missing
//! from Redis (restart, flush, eviction) is loaded from PostgreSQL under a new
//! load generation; that fences off every state of the old generation still
//! on its way to PostgreSQL, so a Redis that lost its data cannot fork a
//! key's history. Reads return only states known durable; a reader that sees
//! a state still in flight persists it itself (the same guarded UPDATE)
//! rather than report something that might vanish. See the README's
//! "Storage design" for the argument. Grants live in PostgreSQL only.
//!
//! Every pooled PostgreSQL session runs with `lock_timeout` =
//! [`PG_LOCK_TIMEOUT`] and `idle_in_transaction_session_timeout` =
//! [`PG_IDLE_IN_TRANSACTION_TIMEOUT`], so a blocked or abandoned transaction
//! cannot hold connections and locks indefinitely.

mod changes;
mod grants;
mod keys;
mod link;
mod load;
mod metrics;
mod persist;
mod pg;
mod rounds;
pub mod scripts;

use crate::grants::{AccessMode, Grant};
use crate::model::{
    now_ms, precondition_failed, quota_exceeded, CasOutcome, Deleted, Entry, Limits, ListPage,
    ListQuery, TtlChange,
};
use crate::ops::{self, not_a_number, overflow, Number, Op};
use crate::store::MemoryStore;
use crate::watch::{ChangeLog, KeyState};
use changes::DurableChanges;
use keys::Slot;
use link::{redis_error, RedisLink};
use load::Loader;
use persist::{DurableMark, Persister};
use pg::Verdict;
use scripts::{Lua, RedisState, Reply, Scripts};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tessera_error::{Error, ErrorKind, Result};
use tessera_runtime::dependency::{self, Dependency};

pub use pg::migrator;

/// How often one call may go round (load, recount, fenced) before giving up.
const ATTEMPTS: usize = 12;
/// How long the usage totals live in Redis before a recount from PostgreSQL.
const USAGE_RECOUNT_SECONDS: u64 = 600;
/// Dead rows looked at per reclaim round.
const RECLAIM_BATCH: i64 = 500;
/// How long a reclaim waits for transactions older than a new floor row
/// (bounded by `idle_in_transaction_session_timeout`) before deferring.
const FLOOR_SETTLE: Duration = Duration::from_secs(35);

#[derive(Debug, Clone)]
pub struct DurableConfig {
    pub redis_url: String,
    pub database_url: String,
    pub database_pool_size: u32,
    pub limits: Limits,
    /// Deliberately broken behaviour, only for proving that the
    /// linearizability checker catches it; configuration never sets it.
    pub deliberate_bug: Option<DeliberateBug>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliberateBug {
    /// Persists ignore the load generation (the fence against a Redis that
    /// lost data while writes were on their way to PostgreSQL).
    NoGenerationGuard,
}

#[derive(Clone)]
pub struct DurableStore {
    redis: Arc<RedisLink>,
    pg: PgPool,
    persister: Persister,
    loader: Loader,
    limits: Limits,
    scripts: Arc<Scripts>,
    changes: Arc<DurableChanges>,
}

/// `lock_timeout` of every pooled PostgreSQL session: a statement waiting
/// longer than this for a row or table lock fails (the call answers
/// unavailable) instead of holding its connection while the pool runs dry.
pub const PG_LOCK_TIMEOUT: &str = "5s";
/// `idle_in_transaction_session_timeout`: PostgreSQL ends a session that
/// sits inside a transaction doing nothing for this long (a stuck or
/// cancelled task), releasing its locks.
pub const PG_IDLE_IN_TRANSACTION_TIMEOUT: &str = "30s";

/// Connect options for `database_url` with the session timeouts above, set
/// at connection start-up (`options=-c …`), so every pooled connection has
/// them.
pub fn pg_options(database_url: &str) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions = database_url.parse()?;
    Ok(options.options([
        ("lock_timeout", PG_LOCK_TIMEOUT),
        (
            "idle_in_transaction_session_timeout",
            PG_IDLE_IN_TRANSACTION_TIMEOUT,
        ),
    ]))
}

fn ttl_arg(ttl: TtlChange) -> String {
    match ttl {
        TtlChange::Keep => "keep".into(),
        TtlChange::Clear => "clear".into(),
        TtlChange::Seconds(s) => s.to_string(),
    }
}

enum Executed {
    Done {
        status: String,
        state: RedisState,
    },
    /// A read of a key that has never been written.
    Absent,
    Float,
}

/// How a call that finds the key missing from Redis loads it.
#[derive(Clone, Copy, PartialEq)]
enum LoadFor {
    Read,
    Write,
}

impl DurableStore {
    /// Connects to both servers and runs the PostgreSQL migrations.
    pub async fn connect(config: &DurableConfig) -> anyhow::Result<Self> {
        let redis = Arc::new(RedisLink::connect(&config.redis_url).await?);
        let pg = PgPoolOptions::new()
            .max_connections(config.database_pool_size)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(pg_options(&config.database_url)?)
            .await?;
        migrator().run(&pg).await?;
        metrics::init();
        let scripts = Arc::new(Scripts::new());
        let guard = match config.deliberate_bug {
            Some(DeliberateBug::NoGenerationGuard) => pg::Guard::Off,
            None => pg::Guard::On,
        };
        let persister = Persister::start(pg.clone(), guard, {
            let (redis, scripts) = (redis.clone(), scripts.clone());
            move |marks| {
                tokio::spawn(mark_durable(redis.clone(), scripts.clone(), marks));
            }
        });
        let loader = Loader::start(pg.clone(), redis.clone(), scripts.clone());
        let changes = Arc::new(DurableChanges::new(
            redis.clone(),
            scripts.clone(),
            persister.clone(),
        ));
        Ok(DurableStore {
            changes,
            redis,
            pg,
            persister,
            loader,
            limits: config.limits,
            scripts,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pg
    }

    async fn call(&self, script: &Lua, slot: &Slot, args: &[String]) -> Result<Reply> {
        Reply::parse(self.redis.run(script, slot, args).await?)
    }

    /// Runs a script until it answers with a durable state, loading the key
    /// or the namespace totals from PostgreSQL as it asks.
    /// `script: None` is a plain read.
    async fn execute(
        &self,
        namespace: &str,
        key: &str,
        script: Option<&Lua>,
        args: &[String],
        load_for: LoadFor,
    ) -> Result<Executed> {
        let slot = Slot::new(namespace, key);
        for _ in 0..ATTEMPTS {
            let reply = match script {
                Some(script) => self.call(script, &slot, args).await?,
                None => self.read_reply(&slot).await?,
            };
            match reply {
                Reply::State { status, state } => {
                    match self.make_durable(namespace, key, &state).await? {
                        Verdict::Durable => return Ok(Executed::Done { status, state }),
                        // Fenced off before it was stored: it never happened.
                        Verdict::Lost => self.invalidate(&slot, state.gen).await?,
                        Verdict::Unknown if load_for == LoadFor::Read => {
                            self.invalidate(&slot, state.gen).await?
                        }
                        Verdict::Unknown => {
                            self.invalidate(&slot, state.gen).await?;
                            return Err(Error::unavailable(
                            "WRITE_OUTCOME_UNKNOWN",
                            "the cache lost this key twice while this write was in flight; read the key before retrying",
                        ));
                        }
                    }
                }
                Reply::Load => {
                    let create = load_for == LoadFor::Write;
                    if !self.loader.load(namespace, key, create).await? {
                        return Ok(Executed::Absent);
                    }
                }
                Reply::Usage => self.load_usage(&slot, namespace).await?,
                Reply::Etag(current) => return Err(precondition_failed(current)),
                Reply::Quota { what, limit } => return Err(quota_exceeded(&what, limit)),
                Reply::Float => return Ok(Executed::Float),
                Reply::NotANumber => return Err(not_a_number("the stored value")),
                Reply::Overflow => return Err(overflow()),
                Reply::Done | Reply::Ensured(_) | Reply::Forgotten(_) => {
                    return Err(Error::internal("unexpected script reply"))
                }
            }
        }
        Err(Error::unavailable(
            "MEMORY_CONTENDED",
            "the key kept changing under reloads; retry",
        ))
    }

    /// A read without a script: the entry's fields and Redis's clock in one
    /// round trip (HMGET is atomic; the clock only judges expiry, and is read
    /// within the call). Lua costs Redis about three plain commands' time.
    async fn read_reply(&self, slot: &Slot) -> Result<Reply> {
        let read = self.redis.read_entry(slot).await?;
        Ok(
            match scripts::usable_state(&read.fields, &read.incarnation) {
                Some((stored, gen, durable_rev)) => Reply::State {
                    status: "OK".into(),
                    state: RedisState {
                        stored,
                        gen,
                        durable_rev,
                        now_ms: read.now_ms,
                    },
                },
                None => Reply::Load,
            },
        )
    }

    /// Ensures `state` is in PostgreSQL, persisting it if it is still in flight.
    async fn make_durable(
        &self,
        namespace: &str,
        key: &str,
        state: &RedisState,
    ) -> Result<Verdict> {
        if state.is_durable() {
            return Ok(Verdict::Durable);
        }
        self.persister
            .persist(namespace, key, &state.stored, state.gen)
            .await
    }

    /// Discards the key's state in Redis if it is still of generation `gen`
    /// (fenced off: the call goes round again).
    async fn invalidate(&self, slot: &Slot, gen: i64) -> Result<()> {
        metrics::discarded();
        self.call(&self.scripts.invalidate, slot, &[gen.to_string()])
            .await
            .map(drop)
    }

    async fn load_usage(&self, slot: &Slot, namespace: &str) -> Result<()> {
        let (keys, bytes) = pg::usage(&self.pg, namespace, now_ms()).await?;
        let args = [
            keys.to_string(),
            bytes.to_string(),
            USAGE_RECOUNT_SECONDS.to_string(),
        ];
        self.call(&self.scripts.install_usage, slot, &args)
            .await
            .map(drop)
    }

    fn quota_args(&self) -> [String; 2] {
        [
            self.limits.max_keys.to_string(),
            self.limits.max_bytes.to_string(),
        ]
    }

    async fn write(
        &self,
        namespace: &str,
        key: &str,
        script: &Lua,
        args: Vec<String>,
    ) -> Result<(String, RedisState)> {
        match self
            .execute(namespace, key, Some(script), &args, LoadFor::Write)
            .await?
        {
            Executed::Done { status, state } => Ok((status, state)),
            Executed::Absent | Executed::Float => {
                Err(Error::internal("unexpected reply to a write"))
            }
        }
    }

    async fn cas_values(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&str>,
        value: Option<&str>,
        ttl: TtlChange,
    ) -> Result<(String, RedisState)> {
        let [max_keys, max_bytes] = self.quota_args();
        let args = vec![
            if expected.is_some() { "1" } else { "0" }.to_string(),
            expected.unwrap_or_default().to_string(),
            if value.is_some() { "1" } else { "0" }.to_string(),
            value.unwrap_or_default().to_string(),
            ttl_arg(ttl),
            max_keys,
            max_bytes,
        ];
        self.write(namespace, key, &self.scripts.cas, args).await
    }

    /// Float increments: Lua cannot add doubles with Rust's exact formatting,
    /// so read, add with the shared rules, and compare-and-swap until no one
    /// wrote in between.
    async fn incr_float(
        &self,
        namespace: &str,
        key: &str,
        by: Number,
        ttl: TtlChange,
    ) -> Result<Entry> {
        for _ in 0..ATTEMPTS {
            let state = match self
                .execute(namespace, key, None, &[], LoadFor::Read)
                .await?
            {
                Executed::Done { state, .. } => state,
                _ => RedisState {
                    stored: ops::Stored::default(),
                    gen: 0,
                    durable_rev: 0,
                    now_ms: now_ms(),
                },
            };
            let transition = ops::apply(&Op::Incr { by, ttl }, &state.stored, state.now_ms)?;
            let current = state.stored.live_value(state.now_ms);
            let sum = transition.state.value.as_deref();
            let (status, after) = self.cas_values(namespace, key, current, sum, ttl).await?;
            if status == "OK" {
                return live_entry(namespace, key, &after);
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            "INCR_CONTENDED",
            "the value kept changing; retry",
        ))
    }
}

/// Records in Redis that each state is in PostgreSQL, so its readers need
/// not ask. Only an optimization: an unmarked state is checked by its next
/// reader.
async fn mark_durable(redis: Arc<RedisLink>, scripts: Arc<Scripts>, marks: Vec<DurableMark>) {
    let mut by_namespace: std::collections::BTreeMap<&str, (Vec<String>, Vec<String>)> =
        Default::default();
    for mark in &marks {
        let (keys, args) = by_namespace.entry(&mark.namespace).or_default();
        keys.push(Slot::new(&mark.namespace, &mark.key).entry);
        args.push(mark.gen.to_string());
        args.push(mark.revision.to_string());
    }
    let marking = by_namespace
        .values()
        .map(|(keys, args)| redis.run_on_keys(&scripts.mark_durable, keys, args));
    for result in futures::future::join_all(marking).await {
        if let Err(error) = result {
            tracing::debug!(%error, "could not mark states durable");
        }
    }
}

fn live_entry(namespace: &str, key: &str, state: &RedisState) -> Result<Entry> {
    state
        .stored
        .to_entry(namespace, key, state.now_ms)
        .ok_or_else(|| Error::internal("a write left no live entry"))
}

#[async_trait::async_trait]
impl MemoryStore for DurableStore {
    async fn key_state(&self, namespace: &str, key: &str) -> Result<KeyState> {
        match self
            .execute(namespace, key, None, &[], LoadFor::Read)
            .await?
        {
            Executed::Done { state, .. } => {
                Ok(KeyState::of(namespace, key, &state.stored, state.now_ms))
            }
            _ => Ok(KeyState::default()),
        }
    }

    fn changes(&self) -> Arc<dyn ChangeLog> {
        self.changes.clone()
    }

    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Entry>> {
        Ok(
            match self
                .execute(namespace, key, None, &[], LoadFor::Read)
                .await?
            {
                Executed::Done { state, .. } => state.stored.to_entry(namespace, key, state.now_ms),
                _ => None,
            },
        )
    }

    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: String,
        ttl: TtlChange,
        if_match: Option<u64>,
    ) -> Result<Entry> {
        let [max_keys, max_bytes] = self.quota_args();
        let args = vec![
            value,
            ttl_arg(ttl),
            if_match.map(|r| r.to_string()).unwrap_or_default(),
            max_keys,
            max_bytes,
        ];
        let (_, state) = self.write(namespace, key, &self.scripts.set, args).await?;
        live_entry(namespace, key, &state)
    }

    async fn delete(&self, namespace: &str, key: &str, if_match: Option<u64>) -> Result<Deleted> {
        let args = vec![if_match.map(|r| r.to_string()).unwrap_or_default()];
        let (status, state) = self
            .write(namespace, key, &self.scripts.delete, args)
            .await?;
        Ok(Deleted {
            deleted: status == "OK",
            revision: state.stored.revision,
        })
    }

    async fn list(&self, namespace: &str, query: ListQuery) -> Result<ListPage> {
        let entries = pg::list(&self.pg, namespace, &query, now_ms()).await?;
        Ok(ListPage::from_overfetched(entries, query.limit))
    }

    async fn cas(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
        ttl: TtlChange,
    ) -> Result<CasOutcome> {
        let (status, state) = self
            .cas_values(namespace, key, expected.as_deref(), value.as_deref(), ttl)
            .await?;
        Ok(CasOutcome {
            swapped: status != "NOOP",
            current: state.stored.to_entry(namespace, key, state.now_ms),
            revision: state.stored.revision,
        })
    }

    async fn incr(&self, namespace: &str, key: &str, by: Number, ttl: TtlChange) -> Result<Entry> {
        if !by.is_int() {
            return self.incr_float(namespace, key, by, ttl).await;
        }
        let [max_keys, max_bytes] = self.quota_args();
        let args = [by.text(), ttl_arg(ttl), max_keys, max_bytes];
        match self
            .execute(
                namespace,
                key,
                Some(&self.scripts.incr),
                &args,
                LoadFor::Write,
            )
            .await?
        {
            Executed::Done { state, .. } => live_entry(namespace, key, &state),
            Executed::Float => self.incr_float(namespace, key, by, ttl).await,
            Executed::Absent => Err(Error::internal("unexpected reply to a write")),
        }
    }

    async fn grant(
        &self,
        namespace: &str,
        grantee: &str,
        mode: AccessMode,
        ttl_seconds: Option<u64>,
    ) -> Result<Grant> {
        let max = self.limits.max_grants;
        grants::grant(&self.pg, namespace, grantee, mode, ttl_seconds, max).await
    }

    async fn revoke(&self, namespace: &str, grantee: &str) -> Result<bool> {
        grants::revoke(&self.pg, namespace, grantee).await
    }

    async fn list_grants(&self, namespace: &str) -> Result<Vec<Grant>> {
        grants::list(&self.pg, namespace).await
    }

    async fn grant_mode(&self, namespace: &str, grantee: &str) -> Result<Option<AccessMode>> {
        grants::mode(&self.pg, namespace, grantee).await
    }

    /// Rows dead (deleted or expired) since before the grace period go, in
    /// rounds: make sure their namespaces have a floor row (and that no load
    /// which found a namespace floorless is still open), have Redis let go
    /// of each key unless it holds something newer, then delete the row if it
    /// is still the same dead row, raising the floor in the same
    /// transaction.
    async fn reclaim(&self, grace: Duration) -> Result<u64> {
        let cutoff = now_ms() - grace.as_millis() as i64;
        let mut reclaimed = 0;
        loop {
            let dead = pg::dead_rows(&self.pg, cutoff, RECLAIM_BATCH).await?;
            let namespaces: std::collections::BTreeSet<String> =
                dead.iter().map(|row| row.namespace.clone()).collect();
            let namespaces: Vec<String> = namespaces.into_iter().collect();
            let floors_at = now_ms();
            if !pg::ensure_floors(&self.pg, &namespaces, floors_at)
                .await?
                .is_empty()
            {
                let settled = tokio::time::timeout(FLOOR_SETTLE, async {
                    while pg::older_transactions_open(&self.pg, floors_at).await? {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Ok::<_, Error>(())
                })
                .await;
                match settled {
                    Ok(result) => result?,
                    Err(_) => return Ok(reclaimed),
                }
            }
            let mut progressed = false;
            for row in &dead {
                let slot = Slot::new(&row.namespace, &row.key);
                let args = [row.gen.to_string(), row.revision.to_string()];
                if let Reply::Forgotten(true) =
                    self.call(&self.scripts.forget, &slot, &args).await?
                {
                    if pg::reclaim_row(&self.pg, row, cutoff).await? {
                        reclaimed += 1;
                        progressed = true;
                    }
                }
            }
            if !progressed || (dead.len() as i64) < RECLAIM_BATCH {
                return Ok(reclaimed);
            }
        }
    }

    async fn ping(&self) -> Result<()> {
        let mut connected = self.redis.connection().await?;
        let ping = redis::cmd("PING");
        let ping = ping.query_async::<String>(&mut connected.connection);
        dependency::call(Dependency::Redis, "ping", ping)
            .await
            .map_err(|error| {
                self.redis.failed(&connected, &error);
                redis_error(error)
            })?;
        pg::timed("ping", sqlx::query("SELECT 1").execute(&self.pg)).await?;
        Ok(())
    }
}
