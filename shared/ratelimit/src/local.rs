//! GCRA cells in this process: `governor`'s keyed limiter.

use crate::{Decision, Quota};
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::DefaultKeyedRateLimiter;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

/// Cells whose cell is full again (indistinguishable from a fresh one) are
/// dropped every this many checks, so memory holds at most the busy keys
/// plus this many new ones.
const FORGET_IDLE_EVERY: u64 = 4096;

pub(crate) struct LocalCells {
    cells: DefaultKeyedRateLimiter<String, StateInformationMiddleware>,
    checks: AtomicU64,
}

impl LocalCells {
    /// `quota` must be valid.
    pub(crate) fn new(quota: Quota) -> Self {
        let burst = NonZeroU32::new(quota.burst).expect("a valid quota has a burst");
        let governor_quota = governor::Quota::with_period(quota.emission_interval())
            .expect("a valid quota has a positive emission interval")
            .allow_burst(burst);
        LocalCells {
            cells: DefaultKeyedRateLimiter::keyed(governor_quota)
                .with_middleware::<StateInformationMiddleware>(),
            checks: AtomicU64::new(0),
        }
    }

    pub(crate) fn check(&self, key: &str) -> Decision {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_IDLE_EVERY == FORGET_IDLE_EVERY - 1
        {
            self.cells.retain_recent();
            self.cells.shrink_to_fit();
        }
        match self.cells.check_key(&key.to_owned()) {
            Ok(snapshot) => Decision::Allowed {
                remaining: snapshot.remaining_burst_capacity(),
            },
            Err(not_until) => Decision::Limited {
                retry_after: not_until.wait_time_from(self.cells.clock().now()),
            },
        }
    }

    #[cfg(test)]
    fn live_keys(&self) -> usize {
        self.cells.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn idle_keys_are_forgotten() {
        // One request regained per millisecond: every cell is full again
        // a few milliseconds after its only check.
        let quota = Quota::new(1, Duration::from_millis(1), 1).unwrap();
        let cells = LocalCells::new(quota);
        for n in 0..FORGET_IDLE_EVERY - 1 {
            cells.check(&format!("idle-{n}"));
        }
        assert_eq!(cells.live_keys(), (FORGET_IDLE_EVERY - 1) as usize);
        std::thread::sleep(Duration::from_millis(5));
        cells.check("the-sweeping-one");
        assert!(
            cells.live_keys() <= 1,
            "{} keys still held",
            cells.live_keys()
        );
    }
}
