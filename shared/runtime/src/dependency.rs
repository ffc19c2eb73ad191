//! Calls to what a service depends on (Redis, PostgreSQL, the chain, the
//! x402 facilitator), each timed, counted and traced the same way:
//!
//! - `tessera_dependency_call_duration_seconds{dependency, operation}`: a
//!   histogram of call latency ([`crate::metrics`]'s buckets);
//! - `tessera_dependency_call_errors_total{dependency, operation}`: calls
//!   that failed;
//! - `tessera_dependency_in_flight{dependency}`: calls started and not yet
//!   finished or dropped;
//! - while tracing is on ([`crate::trace::enabled`]), a client span
//!   `dependency` named after the operation, with the OpenTelemetry
//!   attributes of its kind (`db.*`, `rpc.*` or `http.*`), and
//!   `otel.status_code` / `error.type` when it failed.
//!
//! `operation` is a static short name (a script, a statement, a JSON-RPC
//! method), so the series stay few. The label handles of each
//! (dependency, operation) are made once and then found in a per-thread
//! cache by the operation's address: no hashing, allocation or lock per
//! call.
//!
//! Connection pools are sampled when `/metrics` is rendered ([`pool`]).

pub mod pool;

pub use pool::{register_pool, PoolSample};

use prometheus::{Histogram, IntCounter, IntGauge};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;
use tracing::field::Empty;
use tracing::{Instrument, Span};

/// What is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    Redis,
    Postgres,
    Sqlite,
    /// A chain's JSON-RPC endpoint; the operation is the RPC method.
    Chain,
    /// The x402 facilitator's HTTP API; the operation is `verify` or `settle`.
    Facilitator,
}

impl Dependency {
    const ALL: [Dependency; 5] = [
        Dependency::Redis,
        Dependency::Postgres,
        Dependency::Sqlite,
        Dependency::Chain,
        Dependency::Facilitator,
    ];

    /// The `dependency` label.
    pub const fn name(self) -> &'static str {
        match self {
            Dependency::Redis => "redis",
            Dependency::Postgres => "postgres",
            Dependency::Sqlite => "sqlite",
            Dependency::Chain => "chain",
            Dependency::Facilitator => "facilitator",
        }
    }
}

struct Families {
    duration: HistogramVec,
    errors: IntCounterVec,
    /// One gauge per [`Dependency::ALL`], in that order.
    in_flight: Vec<IntGauge>,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let duration = crate::metrics::register(
        HistogramVec::new(
            HistogramOpts::new(
                "tessera_dependency_call_duration_seconds",
                "Time a call to a dependency took, by dependency and operation.",
            )
            .buckets(crate::metrics::BUCKETS.to_vec()),
            &["dependency", "operation"],
        )
        .expect("a valid histogram"),
    );
    let errors = crate::metrics::register(
        IntCounterVec::new(
            Opts::new(
                "tessera_dependency_call_errors_total",
                "Calls to a dependency that failed (no answer, or an error answer).",
            ),
            &["dependency", "operation"],
        )
        .expect("a valid counter"),
    );
    let in_flight = crate::metrics::register(
        IntGaugeVec::new(
            Opts::new(
                "tessera_dependency_in_flight",
                "Calls to a dependency started and not finished yet.",
            ),
            &["dependency"],
        )
        .expect("a valid gauge"),
    );
    Families {
        duration,
        errors,
        in_flight: Dependency::ALL
            .iter()
            .map(|dependency| in_flight.with_label_values(&[dependency.name()]))
            .collect(),
    }
});

/// The series and span names of one (dependency, operation).
struct Handles {
    dependency: Dependency,
    operation: &'static str,
    duration: Histogram,
    errors: IntCounter,
    in_flight: IntGauge,
    /// The facilitator's span name and path: `POST /<operation>`, `/<operation>`.
    http: Option<(&'static str, &'static str)>,
}

impl Handles {
    fn new(dependency: Dependency, operation: &'static str) -> Self {
        let families = &*FAMILIES;
        let labels = [dependency.name(), operation];
        let position = Dependency::ALL.iter().position(|d| *d == dependency);
        Handles {
            dependency,
            operation,
            duration: families.duration.with_label_values(&labels),
            errors: families.errors.with_label_values(&labels),
            in_flight: families.in_flight[position.expect("every dependency is in ALL")].clone(),
            http: (dependency == Dependency::Facilitator).then(|| {
                let path: &'static str = format!("/{operation}").leak();
                let name: &'static str = format!("POST {path}").leak();
                (name, path)
            }),
        }
    }

    /// None while tracing is off: the span would only cost (hundreds of
    /// nanoseconds per call at `info`) without being exported.
    fn span(&self) -> Span {
        if !crate::trace::enabled() {
            return Span::none();
        }
        let operation = self.operation;
        match self.dependency {
            Dependency::Redis => db_span("redis", operation),
            Dependency::Postgres => db_span("postgresql", operation),
            Dependency::Sqlite => db_span("sqlite", operation),
            Dependency::Chain => tracing::info_span!(
                "dependency",
                otel.name = operation,
                otel.kind = "client",
                rpc.system = "jsonrpc",
                rpc.method = operation,
                otel.status_code = Empty,
                "error.type" = Empty,
            ),
            Dependency::Facilitator => {
                let (name, path) = self.http.unwrap_or(("POST", ""));
                tracing::info_span!(
                    "dependency",
                    otel.name = name,
                    otel.kind = "client",
                    http.request.method = "POST",
                    url.path = path,
                    http.response.status_code = Empty,
                    otel.status_code = Empty,
                    "error.type" = Empty,
                )
            }
        }
    }
}

fn db_span(system: &'static str, operation: &'static str) -> Span {
    tracing::info_span!(
        "dependency",
        otel.name = operation,
        otel.kind = "client",
        db.system.name = system,
        db.operation.name = operation,
        otel.status_code = Empty,
        "error.type" = Empty,
    )
}

/// Every (dependency, operation) seen, by name: each made once.
static HANDLES: LazyLock<Mutex<HashMap<(Dependency, &'static str), &'static Handles>>> =
    LazyLock::new(Default::default);

/// Entries of a thread's cache: (dependency, operation's address and
/// length) → handles.
type Cached = (Dependency, usize, usize, &'static Handles);

thread_local! {
    static CACHE: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
}

/// The handles of `(dependency, operation)`: from this thread's cache by
/// the operation's address (operations are static strings, so each call
/// site finds its own entry), else made or found once under a lock.
fn handles(dependency: Dependency, operation: &'static str) -> &'static Handles {
    let key = (dependency, operation.as_ptr() as usize, operation.len());
    CACHE
        .try_with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some(&(_, _, _, handles)) = cache.iter().find(|c| (c.0, c.1, c.2) == key) {
                return handles;
            }
            let handles = shared_handles(dependency, operation);
            cache.push((key.0, key.1, key.2, handles));
            handles
        })
        // A thread tearing down its locals.
        .unwrap_or_else(|_| shared_handles(dependency, operation))
}

fn shared_handles(dependency: Dependency, operation: &'static str) -> &'static Handles {
    HANDLES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry((dependency, operation))
        .or_insert_with(|| Box::leak(Box::new(Handles::new(dependency, operation))))
}

/// The timing of one call: in flight from its start until dropped, its
/// duration observed (and a failure counted) when it ends.
struct Timer {
    handles: &'static Handles,
    started: Instant,
}

impl Timer {
    fn start(handles: &'static Handles) -> Self {
        handles.in_flight.inc();
        Timer {
            handles,
            started: Instant::now(),
        }
    }

    /// `failure`: the `error.type` of a call that failed, recorded on
    /// `span`.
    fn end(self, span: &Span, failure: Option<&'static str>) {
        if let Some(error_type) = failure {
            self.handles.errors.inc();
            span.record("otel.status_code", "ERROR");
            span.record("error.type", error_type);
        }
        self.handles
            .duration
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.handles.in_flight.dec();
    }
}

/// One call in progress: counted in flight from [`start`] until dropped.
/// End it with [`Call::succeeded`] or [`Call::failed`] to observe its
/// duration; a call dropped without either (its future was cancelled) is
/// only taken out of flight.
#[must_use = "a call is timed until it ends"]
pub struct Call {
    timer: Timer,
    span: Span,
}

/// Starts timing a call of `operation` on `dependency`, with its span
/// (instrument the call's future with [`Call::span`]).
pub fn start(dependency: Dependency, operation: &'static str) -> Call {
    let handles = handles(dependency, operation);
    Call {
        timer: Timer::start(handles),
        span: handles.span(),
    }
}

impl Call {
    /// The call's client span.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The call answered.
    pub fn succeeded(self) {
        self.timer.end(&self.span, None);
    }

    /// The call failed: no answer, or an error answer. `error_type` is the
    /// span's `error.type` (a static short name: `timeout`, a type name…).
    pub fn failed(self, error_type: &'static str) {
        self.timer.end(&self.span, Some(error_type));
    }
}

/// Runs `call`, an operation on `dependency`, timed and inside its span.
/// An `Err` counts as a failure whose `error.type` is the error's type name.
pub async fn call<T, E, F>(dependency: Dependency, operation: &'static str, call: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let handles = handles(dependency, operation);
    let timer = Timer::start(handles);
    // The span travels inside the instrumented call, read back after it.
    let mut traced = std::pin::pin!(call.instrument(handles.span()));
    let result = traced.as_mut().await;
    timer.end(
        traced.span(),
        result.is_err().then(std::any::type_name::<E>),
    );
    result
}

/// A type-erased call for [`observe`]: `Err` carries the failure's
/// `error.type`.
pub type BoxedCall<'a> = Pin<Box<dyn Future<Output = Result<(), &'static str>> + Send + 'a>>;

/// [`call`] for a crate that cannot name this one's types generically (it
/// hands over an erased call, e.g. `tessera_evm`'s RPC observer).
pub fn observe<'a>(
    dependency: Dependency,
    operation: &'static str,
    call: BoxedCall<'a>,
) -> BoxedCall<'a> {
    Box::pin(async move {
        let handles = handles(dependency, operation);
        let timer = Timer::start(handles);
        let mut traced = std::pin::pin!(call.instrument(handles.span()));
        let outcome = traced.as_mut().await;
        timer.end(traced.span(), outcome.err());
        outcome
    })
}

#[cfg(test)]
mod tests;
