//! What a limiter allows ([`Quota`]) and what it answers ([`Decision`]).

use std::time::Duration;

/// `limit` requests per `period`, in bursts of up to `burst`.
///
/// As GCRA parameters: the emission interval is `T = period / limit` (one
/// request is regained every `T`) and the tolerance is `T * (burst - 1)`.
/// A valid quota has `limit > 0`, `burst > 0` and `T >= 1 µs` (the Redis
/// clock's resolution); [`Quota::new`] only builds valid ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub period: Duration,
    pub burst: u32,
}

impl Quota {
    /// `None` unless the quota is valid (see [`Quota`]).
    pub fn new(limit: u32, period: Duration, burst: u32) -> Option<Self> {
        let quota = Quota {
            limit,
            period,
            burst,
        };
        quota.is_valid().then_some(quota)
    }

    /// `limit` requests a minute, in bursts of as many; `None` when 0.
    pub fn per_minute(limit: u32) -> Option<Self> {
        Self::new(limit, Duration::from_secs(60), limit)
    }

    /// `limit` requests an hour, in bursts of as many; `None` when 0.
    pub fn per_hour(limit: u32) -> Option<Self> {
        Self::new(limit, Duration::from_secs(3600), limit)
    }

    /// Whether both backends can enforce this quota.
    pub fn is_valid(&self) -> bool {
        self.limit > 0 && self.burst > 0 && self.emission_interval() >= Duration::from_micros(1)
    }

    /// `T`: how long it takes to regain one request. Zero when `limit` is 0.
    pub fn emission_interval(&self) -> Duration {
        self.period.checked_div(self.limit).unwrap_or_default()
    }

    /// `T * (burst - 1)`: how far ahead of the steady rate a burst may run.
    pub fn tolerance(&self) -> Duration {
        self.emission_interval()
            .saturating_mul(self.burst.saturating_sub(1))
    }

    pub(crate) fn invalid_reason(&self) -> String {
        format!(
            "invalid rate-limit quota {self:?}: limit and burst must be positive and period / limit at least 1 µs"
        )
    }
}

/// The answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Counted; `remaining` more requests would be allowed right now.
    Allowed { remaining: u32 },
    /// Not counted; one more request conforms after `retry_after`.
    Limited { retry_after: Duration },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_refuse_quotas_no_backend_can_enforce() {
        assert_eq!(Quota::per_minute(0), None);
        assert_eq!(Quota::per_hour(0), None);
        assert_eq!(Quota::new(1, Duration::from_secs(1), 0), None);
        assert_eq!(Quota::new(10, Duration::from_micros(5), 10), None);
        let quota = Quota::per_minute(3).unwrap();
        assert_eq!(quota.burst, 3);
        assert_eq!(quota.emission_interval(), Duration::from_secs(20));
        assert_eq!(quota.tolerance(), Duration::from_secs(40));
        let hourly = Quota::per_hour(4).unwrap();
        assert_eq!(hourly.emission_interval(), Duration::from_secs(900));
    }
}
