//! How a waiting lock acquirer waits for its next try when the server has
//! no Watch: bounded exponential backoff with jitter, never past the
//! holder's expiry (the lock may be free then) nor past the caller's
//! deadline.

use std::time::{Duration, Instant, SystemTime};

const FIRST: Duration = Duration::from_millis(25);
const LONGEST: Duration = Duration::from_secs(1);

/// Tries so far, for the backoff.
#[derive(Debug, Default)]
pub(crate) struct Waits {
    done: u32,
}

impl Waits {
    /// Sleeps until the next try is due; `false` (without sleeping) when
    /// `deadline` has passed.
    pub(crate) async fn next_try(
        &mut self,
        holder_expires_at: Option<SystemTime>,
        deadline: Instant,
    ) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let pause = self
            .backoff()
            .min(until(holder_expires_at))
            .min(deadline - now);
        self.done = self.done.saturating_add(1);
        tokio::time::sleep(pause).await;
        true
    }

    /// Doubling from [`FIRST`] to at most [`LONGEST`], each between half
    /// and all of that, so waiters do not retry in step.
    fn backoff(&self) -> Duration {
        let ceiling = FIRST
            .saturating_mul(2u32.saturating_pow(self.done))
            .min(LONGEST);
        ceiling.mul_f64(rand::random_range(0.5..=1.0))
    }
}

/// How long until `at` (server time, read with the local clock); zero once
/// past, unbounded when there is no expiry.
fn until(at: Option<SystemTime>) -> Duration {
    at.map_or(Duration::MAX, |at| {
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_with_jitter() {
        let mut waits = Waits::default();
        for done in 0..20 {
            waits.done = done;
            let pause = waits.backoff();
            let ceiling = FIRST.saturating_mul(2u32.saturating_pow(done)).min(LONGEST);
            assert!(
                pause <= ceiling && pause >= ceiling / 2,
                "{done}: {pause:?}"
            );
        }
    }

    #[tokio::test]
    async fn never_waits_past_the_deadline_or_the_holders_expiry() {
        let mut waits = Waits { done: 30 };
        assert!(!waits.next_try(None, Instant::now()).await);
        let started = Instant::now();
        assert!(
            waits
                .next_try(Some(SystemTime::now()), started + LONGEST)
                .await
        );
        assert!(
            started.elapsed() < LONGEST / 2,
            "an expired holder is retried at once"
        );
        let started = Instant::now();
        assert!(
            waits
                .next_try(None, started + Duration::from_millis(20))
                .await
        );
        assert!(
            started.elapsed() < LONGEST / 2,
            "the deadline bounds the wait"
        );
    }
}
