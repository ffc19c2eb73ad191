//! Connection pools, sampled each time the metrics are gathered:
//!
//! - `tessera_pool_connections{pool, state}`: connections open, `in_use`
//!   or `idle`;
//! - `tessera_pool_max_connections{pool}`: the most the pool opens.
//!
//! `pool` names who owns it (`memory`, `payment`, `stats`, `discovery`).
//! This crate does not know the pool type: the owner registers how to
//! sample it, e.g. for an sqlx pool
//! `register_pool("memory", move || PoolSample::of(pool.size(), pool.num_idle(), pool.options().get_max_connections()))`.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};
use std::sync::{Arc, LazyLock, Mutex};

/// A pool's state now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolSample {
    pub in_use: u64,
    pub idle: u64,
    pub max: u64,
}

impl PoolSample {
    /// From an sqlx pool's `size()` (open connections), `num_idle()` and
    /// `max_connections`.
    pub fn of(size: u32, idle: usize, max: u32) -> Self {
        let idle = idle as u64;
        PoolSample {
            in_use: u64::from(size).saturating_sub(idle),
            idle,
            max: u64::from(max),
        }
    }
}

type Sampler = Box<dyn Fn() -> PoolSample + Send + Sync>;

#[derive(Clone)]
struct Pools {
    /// (pool name, sampler), one per name.
    samplers: Arc<Mutex<Vec<(&'static str, Sampler)>>>,
    connections: IntGaugeVec,
    max: IntGaugeVec,
}

impl Collector for Pools {
    fn desc(&self) -> Vec<&Desc> {
        self.connections
            .desc()
            .into_iter()
            .chain(self.max.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (pool, sample) in self.samplers.lock().expect("never poisoned").iter() {
            let now = sample();
            let gauge = |state: &str| self.connections.with_label_values(&[pool, state]);
            gauge("in_use").set(now.in_use as i64);
            gauge("idle").set(now.idle as i64);
            self.max.with_label_values(&[pool]).set(now.max as i64);
        }
        let mut families = self.connections.collect();
        families.extend(self.max.collect());
        families
    }
}

static POOLS: LazyLock<Pools> = LazyLock::new(|| {
    crate::metrics::register(Pools {
        samplers: Arc::default(),
        connections: IntGaugeVec::new(
            Opts::new(
                "tessera_pool_connections",
                "Connections a pool has open, in_use or idle.",
            ),
            &["pool", "state"],
        )
        .expect("a valid gauge"),
        max: IntGaugeVec::new(
            Opts::new(
                "tessera_pool_max_connections",
                "The most connections a pool opens.",
            ),
            &["pool"],
        )
        .expect("a valid gauge"),
    })
});

/// Samples the pool `pool` with `sample` whenever the metrics are
/// gathered. A later registration under the same name replaces this one
/// (dropping `sample`, and with it whatever pool handle it holds), so a
/// process reopening its store keeps one series per pool and the old pool
/// can close.
pub fn register_pool(pool: &'static str, sample: impl Fn() -> PoolSample + Send + Sync + 'static) {
    let mut samplers = POOLS.samplers.lock().expect("never poisoned");
    samplers.retain(|(name, _)| *name != pool);
    samplers.push((pool, Box::new(sample)));
}
