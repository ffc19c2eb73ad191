//! The durable store's own series:
//!
//! - `tessera_memory_loads_total{outcome}`: keys a load round read from
//!   PostgreSQL after calls found them missing from Redis: `loaded` (now in
//!   Redis), `absent` (a read of a key never written), `error` (the round
//!   failed).
//! - `tessera_memory_fences_total{kind}`: what the generation guard fenced
//!   off: `persist` (a state refused by PostgreSQL, its generation
//!   superseded by a load), `discard` (a Redis state dropped because it was
//!   fenced off, so the call goes round again).
//!
//! Every label value is created at 0 by [`init`].

use std::sync::LazyLock;
use tessera_runtime::metrics::prometheus::{IntCounter, IntCounterVec, Opts};

struct Counters {
    loaded: IntCounter,
    absent: IntCounter,
    load_failed: IntCounter,
    fenced_persist: IntCounter,
    discarded: IntCounter,
}

static COUNTERS: LazyLock<Counters> = LazyLock::new(|| {
    let loads = tessera_runtime::metrics::register(
        IntCounterVec::new(
            Opts::new(
                "tessera_memory_loads_total",
                "Keys loaded from PostgreSQL into Redis after a miss, by outcome.",
            ),
            &["outcome"],
        )
        .expect("a valid counter"),
    );
    let fences = tessera_runtime::metrics::register(
        IntCounterVec::new(
            Opts::new(
                "tessera_memory_fences_total",
                "States the generation guard fenced off, by where.",
            ),
            &["kind"],
        )
        .expect("a valid counter"),
    );
    Counters {
        loaded: loads.with_label_values(&["loaded"]),
        absent: loads.with_label_values(&["absent"]),
        load_failed: loads.with_label_values(&["error"]),
        fenced_persist: fences.with_label_values(&["persist"]),
        discarded: fences.with_label_values(&["discard"]),
    }
});

/// Creates every series at 0.
pub fn init() {
    LazyLock::force(&COUNTERS);
}

/// A load round for `keys` keys: `loaded` of them had a row.
pub fn loaded(keys: usize, loaded: usize) {
    COUNTERS.loaded.inc_by(loaded as u64);
    COUNTERS.absent.inc_by(keys.saturating_sub(loaded) as u64);
}

/// A load round for `keys` keys failed.
pub fn load_failed(keys: usize) {
    COUNTERS.load_failed.inc_by(keys as u64);
}

/// A persist refused a stale state.
pub fn fenced_persist() {
    COUNTERS.fenced_persist.inc();
}

/// A fenced-off Redis state was discarded.
pub fn discarded() {
    COUNTERS.discarded.inc();
}
