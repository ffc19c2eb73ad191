//! The load driver: N client tasks, each calling one operation back to back
//! (a closed loop, like `redis-benchmark -c N`), a warm-up that is not
//! counted, then a measured window with latencies in an HDR histogram.

use super::Settings;
use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Run before the measured window, not counted.
pub const WARMUP: Duration = Duration::from_secs(1);
/// How long after the window a client may still finish its last call.
const STRAGGLER_GRACE: Duration = Duration::from_secs(10);
/// Highest latency the histograms hold: 60 s, in microseconds.
const MAX_LATENCY_US: u64 = 60_000_000;

/// What one case measured.
pub struct Outcome {
    /// Latency, in microseconds, of every successful call in the window.
    pub latency_us: Histogram<u64>,
    pub window: Duration,
    /// Failed calls, warm-up included.
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Outcome {
    pub fn ops(&self) -> u64 {
        self.latency_us.len()
    }

    pub fn ops_per_sec(&self) -> f64 {
        self.ops() as f64 / self.window.as_secs_f64()
    }

    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn empty(window: Duration) -> Self {
        Outcome {
            latency_us: histogram(),
            window,
            errors: 0,
            first_error: None,
        }
    }

    /// Adds `other`'s calls, window and failures to these (a case measured
    /// in slices).
    pub fn absorb(&mut self, other: Outcome) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms share bounds");
        self.window += other.window;
        if let Some(first) = other.first_error {
            self.error(other.errors, || first);
        }
    }

    /// Adds `count` failures; the first message is kept.
    pub fn error(&mut self, count: u64, message: impl FnOnce() -> String) {
        self.errors += count;
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Runs `op(client, call)` from `concurrency` clients for the warm-up plus
/// `seconds`. `client` is the task's index (0..concurrency); `call` counts
/// that client's calls from 0, warm-up included, so an op can alternate
/// (acquire on even calls, release on odd ones).
pub async fn run_case<F, Fut>(name: &str, concurrency: usize, seconds: u64, op: F) -> Outcome
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    eprintln!("  {name}: {concurrency} clients, {WARMUP:?} warm-up + {seconds} s");
    let op = Arc::new(op);
    let window = Duration::from_secs(seconds);
    let measure_from = Instant::now() + WARMUP;
    let until = measure_from + window;

    let tasks: Vec<_> = (0..concurrency)
        .map(|client| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut tally = Outcome::empty(window);
                let mut call = 0u64;
                loop {
                    let began = Instant::now();
                    if began >= until {
                        break;
                    }
                    let result = op(client, call).await;
                    call += 1;
                    match result {
                        Ok(()) if began >= measure_from => {
                            let micros = began.elapsed().as_micros();
                            tally.latency_us.saturating_record(micros as u64);
                        }
                        Ok(()) => {}
                        Err(error) => tally.error(1, || format!("{error:#}")),
                    }
                }
                tally
            })
        })
        .collect();

    let mut outcome = Outcome::empty(window);
    let deadline = until + STRAGGLER_GRACE;
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(tally)) => {
                outcome
                    .latency_us
                    .add(&tally.latency_us)
                    .expect("histograms share bounds");
                if let Some(first) = tally.first_error {
                    outcome.error(tally.errors, || first);
                }
            }
            Ok(Err(join_error)) => outcome.error(1, || format!("client task failed: {join_error}")),
            Err(_) => {
                abort.abort();
                outcome.error(1, || {
                    format!("a call was still pending {STRAGGLER_GRACE:?} after the window closed")
                });
            }
        }
    }
    outcome
}

/// [`run_case`] for CPU-bound work: `concurrency` OS threads, each calling
/// the synchronous `op(client, call)` back to back in a tight loop (no async
/// runtime in between), with the same warm-up, window and histogram.
pub async fn run_threads<F>(name: &str, concurrency: usize, seconds: u64, op: F) -> Outcome
where
    F: Fn(usize, u64) -> anyhow::Result<()> + Send + Sync + 'static,
{
    eprintln!("  {name}: {concurrency} OS threads, {WARMUP:?} warm-up + {seconds} s");
    let op = Arc::new(op);
    let window = Duration::from_secs(seconds);
    let measure_from = std::time::Instant::now() + WARMUP;
    let until = measure_from + window;

    let threads: Vec<_> = (0..concurrency)
        .map(|client| {
            let op = op.clone();
            std::thread::Builder::new()
                .name(format!("bench-{client}"))
                .spawn(move || {
                    let mut tally = Outcome::empty(window);
                    let mut call = 0u64;
                    loop {
                        let began = std::time::Instant::now();
                        if began >= until {
                            break;
                        }
                        let result = op(client, call);
                        call += 1;
                        match result {
                            Ok(()) if began >= measure_from => {
                                let micros = began.elapsed().as_micros();
                                tally.latency_us.saturating_record(micros as u64);
                            }
                            Ok(()) => {}
                            Err(error) => tally.error(1, || format!("{error:#}")),
                        }
                    }
                    tally
                })
        })
        .collect();

    let join = tokio::task::spawn_blocking(move || {
        let mut outcome = Outcome::empty(window);
        for thread in threads {
            match thread.map(|handle| handle.join()) {
                Ok(Ok(tally)) => {
                    outcome
                        .latency_us
                        .add(&tally.latency_us)
                        .expect("histograms share bounds");
                    if let Some(first) = tally.first_error {
                        outcome.error(tally.errors, || first);
                    }
                }
                Ok(Err(_)) => outcome.error(1, || "a client thread panicked".into()),
                Err(error) => outcome.error(1, || format!("spawning a client thread: {error}")),
            }
        }
        outcome
    });
    join.await.unwrap_or_else(|error| {
        let mut outcome = Outcome::empty(window);
        outcome.error(1, || format!("joining the client threads: {error}"));
        outcome
    })
}

/// [`run_case`] at the run's concurrency and duration, handing each call the
/// target's `shared` state.
pub async fn run_shared<S, F, Fut>(
    name: &str,
    settings: &Settings,
    shared: &Arc<S>,
    op: F,
) -> Outcome
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let shared = shared.clone();
    run_case(
        name,
        settings.concurrency,
        settings.seconds,
        move |client, call| op(shared.clone(), client, call),
    )
    .await
}
