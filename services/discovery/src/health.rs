//! A seller's health and an origin's backoff.
//!
//! Health is the share of OK probes among the last `DISCOVERY_HEALTH_WINDOW`
//! kept ([`ProbeHistory`]); a seller is *healthy* when its last probe was
//! OK and that share is at least [`HEALTHY_SHARE`]: one good answer after
//! a run of failures is not yet enough, one failure after a long good run
//! is.
//!
//! An origin (`scheme://host:port`) whose probe failed is not probed again
//! for [`backoff_delay`]: `DISCOVERY_BACKOFF_SECONDS` after its first
//! failure in a row, doubled after each further one, at most
//! `DISCOVERY_BACKOFF_MAX_SECONDS`. An OK probe clears it.

use std::collections::VecDeque;
use std::time::Duration;

/// The least share of OK probes of a healthy seller.
pub const HEALTHY_SHARE: f64 = 0.5;

/// The outcomes of a seller's last probes, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeHistory {
    outcomes: VecDeque<bool>,
}

impl ProbeHistory {
    /// Adds an outcome, keeping the last `window`.
    pub fn record(&mut self, ok: bool, window: usize) {
        self.outcomes.push_back(ok);
        while self.outcomes.len() > window.max(1) {
            self.outcomes.pop_front();
        }
    }

    /// The share of OK outcomes; 0 when never probed.
    pub fn share(&self) -> f64 {
        if self.outcomes.is_empty() {
            return 0.0;
        }
        self.outcomes.iter().filter(|ok| **ok).count() as f64 / self.outcomes.len() as f64
    }

    /// The last outcome, if any.
    pub fn last(&self) -> Option<bool> {
        self.outcomes.back().copied()
    }

    /// Whether the last probe was OK and the share is at least
    /// [`HEALTHY_SHARE`].
    pub fn healthy(&self) -> bool {
        self.last() == Some(true) && self.share() >= HEALTHY_SHARE
    }

    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// As stored: `1` per OK and `0` per failed probe, oldest first.
    pub fn encode(&self) -> String {
        self.outcomes
            .iter()
            .map(|ok| if *ok { '1' } else { '0' })
            .collect()
    }

    /// From [`ProbeHistory::encode`]'s text, keeping the last `window`.
    pub fn decode(text: &str, window: usize) -> ProbeHistory {
        let mut history = ProbeHistory::default();
        for c in text.chars() {
            history.record(c == '1', window);
        }
        history
    }
}

/// An origin's failures in a row and when it may be probed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub failures: u32,
    /// Unix milliseconds.
    pub retry_at_ms: i64,
}

impl Backoff {
    /// The backoff after one more failure at `now_ms`.
    pub fn after_failure(
        previous: Option<Backoff>,
        now_ms: i64,
        base: Duration,
        max: Duration,
    ) -> Backoff {
        let failures = previous
            .map_or(0, |backoff| backoff.failures)
            .saturating_add(1);
        Backoff {
            failures,
            retry_at_ms: now_ms
                .saturating_add(backoff_delay(failures, base, max).as_millis() as i64),
        }
    }

    /// Whether the origin may not be probed at `now_ms`.
    pub fn holds(&self, now_ms: i64) -> bool {
        now_ms < self.retry_at_ms
    }
}

/// The pause after `failures` failures in a row: `base` × 2^(failures − 1),
/// at most `max`.
pub fn backoff_delay(failures: u32, base: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_the_share_of_the_last_window() {
        let mut history = ProbeHistory::default();
        assert_eq!(history.share(), 0.0);
        assert!(!history.healthy());
        for ok in [true, true, false, false] {
            history.record(ok, 4);
        }
        assert_eq!(history.share(), 0.5);
        assert!(!history.healthy(), "the last probe failed");
        history.record(true, 4);
        assert_eq!(history.encode(), "1001");
        assert_eq!(history.share(), 0.5);
        assert!(history.healthy());
        let mut failing = ProbeHistory::decode("000", 4);
        failing.record(true, 4);
        assert_eq!(failing.share(), 0.25);
        assert!(!failing.healthy(), "one good probe after a run of failures");
        assert_eq!(ProbeHistory::decode("110101", 3).encode(), "101");
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_holds_until_due() {
        let base = Duration::from_secs(30);
        let max = Duration::from_secs(3600);
        let delays: Vec<u64> = (1..=9)
            .map(|failures| backoff_delay(failures, base, max).as_secs())
            .collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff_delay(u32::MAX, base, max), max);
        let first = Backoff::after_failure(None, 1_000, base, max);
        assert_eq!(
            first,
            Backoff {
                failures: 1,
                retry_at_ms: 31_000
            }
        );
        assert!(first.holds(30_999) && !first.holds(31_000));
        let second = Backoff::after_failure(Some(first), 31_000, base, max);
        assert_eq!(second.retry_at_ms, 91_000);
    }
}
