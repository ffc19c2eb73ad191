//! How long a payment queued now would wait for the settler, so that a call
//! is answered before the chain only while its authorization will still be
//! valid when its turn comes.
//!
//! Served faster than it settles (a sustained load above what the chain and
//! the facilitator's keys carry), the queue grows without bound, and a
//! payment whose authorization expires while it waits can never be settled:
//! its call was served for nothing and its payer, who signed a good
//! authorization, would be taken for a debtor. So a call asked to settle
//! later is admitted only when
//!
//! ```text
//! validBefore − now ≥ max(settle timeout + waiting / rate,
//!                          (waiting + in flight + 1) / rate)
//! ```
//!
//! that is, when the settler will claim it (the payments waiting ahead of
//! it going at the rate the settler settles now) with a whole settle
//! timeout still left for its own settlement, and, should settlements take
//! longer than that, when everything ahead of it and itself will have been
//! settled. Any other call is settled before it runs, like a
//! debtor's: slower for that caller, which is the back-pressure that keeps
//! the queue within what can be settled.
//!
//! - `waiting`: payments queued, or admitted to be queued once their call
//!   is served, and not yet claimed: the ledger's count at each scan of the
//!   settler, plus those admitted here since, minus those claimed here
//!   since. A burst is counted as it is admitted, not once served, so it
//!   cannot slip in all at once; one admitted but then refused or cancelled
//!   is counted until the next scan (too many, never too few).
//! - `rate`: settlements this settler ended (settled or failed; one left
//!   pending for a retry is no progress) per second over the last
//!   [`WINDOW_SECONDS`] (a rate, not a latency: the first settlements of a
//!   burst finish quickly however long the line behind them is). For a
//!   settle timeout after the settler becomes busy it is at least
//!   `concurrency / settle timeout` (every settlement taking the longest
//!   allowed), so a cold start admits a little; past that, a stalled
//!   facilitator or chain (nothing finishes) stops admissions.
//!
//! A process that runs no settler cannot judge its queue and admits every
//! call (its queue is settled by another replica's settler). Several
//! replicas sharing one queue each count the whole queue against their own
//! settler alone: they admit less than they could, never more.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The settlement rate is measured over this many seconds.
const WINDOW_SECONDS: usize = 10;

/// The settlement backlog of one settler's queue.
pub(crate) struct Backlog {
    settle_timeout: Duration,
    origin: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// How many settlements the settler runs at once; 0 while no settler
    /// runs here.
    concurrency: usize,
    waiting: u64,
    in_flight: u64,
    /// Since when the settler has been running.
    running_since: Option<Instant>,
    /// Since when settlements have been running without a pause.
    busy_since: Option<Instant>,
    /// Settlements finished in each of the last [`WINDOW_SECONDS`] seconds
    /// (since `origin`), by second modulo the window.
    finished: [u64; WINDOW_SECONDS],
    /// The newest second `finished` holds.
    second: u64,
}

impl State {
    /// Moves the window on to `second`, emptying the seconds it skips.
    fn advance(&mut self, second: u64) {
        if second <= self.second {
            return;
        }
        let skipped = (second - self.second).min(WINDOW_SECONDS as u64);
        for ahead in 1..=skipped {
            self.finished[((self.second + ahead) % WINDOW_SECONDS as u64) as usize] = 0;
        }
        self.second = second;
    }
}

impl Backlog {
    pub(crate) fn new(settle_timeout: Duration) -> Self {
        Backlog {
            settle_timeout,
            origin: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn second_of(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    /// A settler runs here, `concurrency` settlements at once (0: it stopped).
    pub(crate) fn settler_running(&self, concurrency: usize) {
        let mut state = self.state();
        state.concurrency = concurrency;
        state.running_since = (concurrency > 0).then(Instant::now);
    }

    /// The ledger counted `queued` payments waiting.
    pub(crate) fn counted(&self, queued: u64) {
        self.state().waiting = queued;
    }

    /// The settler claimed `count` queued payments.
    pub(crate) fn claimed(&self, count: usize, now: Instant) {
        let mut state = self.state();
        state.waiting = state.waiting.saturating_sub(count as u64);
        if state.in_flight == 0 && count > 0 {
            state.busy_since = Some(now);
        }
        state.in_flight += count as u64;
    }

    /// A claimed settlement returned; `ended`: settled or failed for good
    /// (counted in the rate), not left pending for a retry.
    pub(crate) fn finished(&self, now: Instant, ended: bool) {
        let second = self.second_of(now);
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.busy_since = None;
        }
        state.advance(second);
        if ended {
            state.finished[(second % WINDOW_SECONDS as u64) as usize] += 1;
        }
    }

    /// How long a payment queued at `now` would wait to be claimed;
    /// `None` when no settler runs here.
    pub(crate) fn expected_wait(&self, now: Instant) -> Option<Duration> {
        let second = self.second_of(now);
        let mut state = self.state();
        state.advance(second);
        let rate = self.rate_in(&state, now)?;
        Some(seconds(state.waiting as f64, rate))
    }

    /// Settlements finished per second (see the module's documentation);
    /// `None` when no settler runs here.
    fn rate_in(&self, state: &State, now: Instant) -> Option<f64> {
        if state.concurrency == 0 {
            return None;
        }
        let since =
            |at: Option<Instant>| at.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        // The window's full seconds and the current one's part, or less
        // while the settler has been running for less.
        let into_second = now
            .saturating_duration_since(self.origin)
            .as_secs_f64()
            .fract();
        let span = ((WINDOW_SECONDS - 1) as f64 + into_second)
            .min(since(state.running_since).as_secs_f64())
            .max(0.1);
        let measured = state.finished.iter().sum::<u64>() as f64 / span;
        if since(state.busy_since) >= self.settle_timeout {
            return Some(measured);
        }
        let floor = state.concurrency as f64 / self.settle_timeout.as_secs_f64().max(0.001);
        Some(measured.max(floor))
    }

    /// How long an authorization must stay valid to be queued at `now`:
    /// until it is claimed, plus a settle timeout for its own settlement;
    /// and, while settlements take longer than a settle timeout, until
    /// everything ahead of it and itself is settled. `None` when no settler
    /// runs here.
    fn needed(&self, state: &State, now: Instant) -> Option<Duration> {
        let rate = self.rate_in(state, now)?;
        let claimed_after = seconds(state.waiting as f64, rate);
        let settled_after = seconds((state.waiting + state.in_flight + 1) as f64, rate);
        Some(
            self.settle_timeout
                .saturating_add(claimed_after)
                .max(settled_after),
        )
    }

    /// Whether a payment whose authorization is valid for `remaining` more
    /// may be queued (see [`Backlog::needed`]). Admitted, it counts as
    /// waiting until its [`Place`] is dropped without being kept.
    pub(crate) fn admit(&self, remaining: Duration, now: Instant) -> Option<Place<'_>> {
        let second = self.second_of(now);
        let mut state = self.state();
        state.advance(second);
        let Some(needed) = self.needed(&state, now) else {
            return Some(Place {
                backlog: self,
                counted: false,
            });
        };
        if remaining < needed {
            return None;
        }
        state.waiting += 1;
        Some(Place {
            backlog: self,
            counted: true,
        })
    }
}

/// `count` settlements at `rate` a second; a rate of 0 never ends.
fn seconds(count: f64, rate: f64) -> Duration {
    if count <= 0.0 {
        return Duration::ZERO;
    }
    if rate <= 0.0 {
        return Duration::MAX;
    }
    Duration::try_from_secs_f64(count / rate).unwrap_or(Duration::MAX)
}

/// An admitted payment's place in the queue; dropped without
/// [`Place::keep`] (the payment was refused after all), it no longer counts.
pub(crate) struct Place<'a> {
    backlog: &'a Backlog,
    counted: bool,
}

impl Place<'_> {
    /// The payment will be queued: it counts until claimed.
    pub(crate) fn keep(mut self) {
        self.counted = false;
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.counted {
            let mut state = self.backlog.state();
            state.waiting = state.waiting.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(20);

    fn running(concurrency: usize) -> Backlog {
        let backlog = Backlog::new(TIMEOUT);
        backlog.settler_running(concurrency);
        backlog
    }

    #[test]
    fn without_a_settler_every_call_is_admitted() {
        let backlog = Backlog::new(TIMEOUT);
        for _ in 0..10_000 {
            backlog
                .admit(Duration::ZERO, Instant::now())
                .unwrap()
                .keep();
        }
        assert_eq!(backlog.expected_wait(Instant::now()), None);
    }

    #[test]
    fn an_empty_queue_asks_only_for_the_settle_timeout() {
        let backlog = running(4);
        let now = Instant::now();
        assert!(backlog
            .admit(TIMEOUT - Duration::from_millis(1), now)
            .is_none());
        let place = backlog.admit(TIMEOUT, now).unwrap();
        assert_eq!(
            backlog.expected_wait(now),
            Some(Duration::from_secs(5)),
            "one ahead at the cold-start rate, 4 settlements per 20 s"
        );
        drop(place);
        assert_eq!(
            backlog.expected_wait(now),
            Some(Duration::ZERO),
            "refused after all, it no longer waits"
        );
    }

    /// Settles `per_second` a second for `seconds` seconds after `start`,
    /// the settler staying full; the time after.
    fn steady(backlog: &Backlog, start: Instant, per_second: usize, seconds: u64) -> Instant {
        for second in 1..=seconds {
            let at = start + Duration::from_secs(second);
            for _ in 0..per_second {
                backlog.finished(at, true);
            }
            backlog.claimed(per_second, at);
        }
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn the_wait_is_what_waits_ahead_over_the_rate_of_the_last_seconds() {
        let backlog = running(4);
        let start = Instant::now();
        backlog.claimed(4, start);
        let now = steady(&backlog, start, 4, 25) + Duration::from_millis(500);
        let long = Duration::from_secs(3600);
        for _ in 0..36 {
            backlog.admit(long, now).unwrap().keep();
        }
        // 36 waiting at 4 a second (40 in the window's 9.5 s: 4.2 a second).
        let wait = backlog.expected_wait(now).unwrap();
        assert!(
            (Duration::from_millis(8_000)..Duration::from_millis(9_000)).contains(&wait),
            "{wait:?}"
        );
        assert!(backlog
            .admit(TIMEOUT + Duration::from_secs(8), now)
            .is_none());
        assert!(backlog
            .admit(TIMEOUT + Duration::from_secs(9), now)
            .is_some());
        // The ledger's count replaces ours.
        backlog.counted(0);
        assert_eq!(backlog.expected_wait(now), Some(Duration::ZERO));
    }

    #[test]
    fn a_bursts_first_quick_settlements_do_not_hide_the_line_behind_them() {
        // 200 at once, of which the facilitator settles 40 a second: the
        // first 40 took a second, but the 1,000 behind them take 25 s more.
        let backlog = running(200);
        let start = Instant::now();
        backlog.claimed(200, start);
        let now = steady(&backlog, start, 40, 1) + Duration::from_millis(500);
        backlog.counted(1000);
        let wait = backlog.expected_wait(now).unwrap();
        assert!(wait >= Duration::from_secs(35), "{wait:?}");
        assert!(backlog.admit(Duration::from_secs(50), now).is_none());
    }

    #[test]
    fn before_any_settlement_finished_the_rate_is_the_concurrency_per_settle_timeout() {
        let backlog = running(10);
        backlog
            .admit(Duration::from_secs(3600), Instant::now())
            .unwrap()
            .keep();
        assert_eq!(
            backlog.expected_wait(Instant::now()),
            Some(Duration::from_secs(2)),
            "one ahead at 10 per 20 s"
        );
    }

    #[test]
    fn a_stalled_settler_stops_admissions() {
        let backlog = running(100);
        let start = Instant::now();
        backlog.claimed(100, start);
        let settling = steady(&backlog, start, 10, 3);
        // None waiting; the 100 in flight and itself at 10 a second take
        // 10.1 s, less than a settle timeout.
        backlog.admit(TIMEOUT, settling).unwrap().keep();
        // Nothing finished for 30 s (the window is empty) and the settler
        // has been busy for longer than a settle timeout.
        let later = settling + Duration::from_secs(30);
        assert_eq!(backlog.expected_wait(later), Some(Duration::MAX));
        assert!(backlog.admit(Duration::from_secs(3600), later).is_none());
    }

    #[test]
    fn settlements_slower_than_a_settle_timeout_count_those_in_flight_too() {
        // 100 in flight settled at 2 a second: 50 s for those ahead.
        let backlog = running(100);
        let start = Instant::now();
        backlog.claimed(100, start);
        let now = steady(&backlog, start, 2, 25);
        assert!(backlog.admit(Duration::from_secs(45), now).is_none());
        assert!(backlog.admit(Duration::from_secs(55), now).is_some());
    }

    #[test]
    fn a_settlement_left_pending_frees_its_place_but_is_no_progress() {
        let backlog = running(200);
        let start = Instant::now();
        backlog.claimed(200, start);
        let later = start + Duration::from_secs(25);
        for _ in 0..100 {
            backlog.finished(later, false);
        }
        assert_eq!(backlog.expected_wait(later), Some(Duration::ZERO));
        assert!(
            backlog.admit(Duration::from_secs(3600), later).is_none(),
            "the 100 still in flight never end at no rate"
        );
    }
}
