//! The payment service's own series (beside the per-RPC request metrics):
//!
//! - `tessera_payments_total{outcome}`: payments by how they went —
//!   `verified`, `refused` (before the facilitator: bad, replayed or not
//!   covered), `rejected` (the facilitator said invalid), `cancelled`,
//!   `queued` (served, its settlement deferred to the settler), `settled`,
//!   `pending`, `failed` (settlement refused before execution), `debt`
//!   (settlement of a served call failed).
//! - `tessera_payment_refusals_total{reason}`: refusals by x402 reason.
//! - `tessera_settlement_duration_seconds{outcome}`: from a settlement's
//!   start to its outcome recorded, `settled`, `pending` or `failed` (a
//!   debt is a failed settlement).
//! - `tessera_settlement_failures_total{reason}`: settlements that did not
//!   succeed, by the facilitator's x402 `errorReason` (`other` for one
//!   outside the registry), or `timeout` / `unreachable` when the
//!   facilitator did not answer.
//! - `tessera_payment_balance_reads_total{source}`: payer balances the
//!   exposure bound used, `chain` (read now) or `cache` (a recent read, for
//!   calls settled later).
//! - `tessera_settlement_queue_depth`: queued (deferred) settlements waiting
//!   for the settler, counted when it looks for them.
//! - `tessera_settlement_queue_wait_seconds`: how long a queued settlement
//!   waited before a settler claimed it.
//! - `tessera_settlement_queue_expected_wait_seconds`: how long a payment
//!   queued now would wait for the settler, as estimated at each scan
//!   ([`crate::backlog`]).
//! - `tessera_payment_settle_later_declined_total`: calls asked to settle
//!   later that were settled before they ran instead, because the settler's
//!   queue would have outlasted their authorization ([`crate::backlog`]).
//!
//! Every label value known here is created at 0 by [`init`], so a rate
//! sees the first event.

use crate::balances::Source;
use crate::facilitator_client::{TIMEOUT, UNREACHABLE};
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
};
use std::sync::LazyLock;
use std::time::Duration;
use tessera_x402::reason;

/// Every `tessera_payments_total` outcome.
const OUTCOMES: [&str; 9] = [
    "verified",
    "refused",
    "rejected",
    "cancelled",
    "queued",
    "settled",
    "pending",
    "failed",
    "debt",
];

/// The refusal that is not an x402 reason: a replayed authorization.
pub const ALREADY_PRESENTED: &str = "already_presented";

/// Settlement outcomes.
pub const SETTLED: &str = "settled";
pub const PENDING: &str = "pending";
pub const FAILED: &str = "failed";

/// The failure reason of an `errorReason` outside [`reason::REGISTRY`].
const OTHER: &str = "other";

/// Settlements wait for a receipt: seconds, up to the settle timeout.
const SETTLEMENT_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0,
];

static PAYMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    tessera_runtime::metrics::register(
        IntCounterVec::new(
            Opts::new("tessera_payments_total", "Payments, by outcome."),
            &["outcome"],
        )
        .expect("a valid counter"),
    )
});

static REFUSALS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    tessera_runtime::metrics::register(
        IntCounterVec::new(
            Opts::new(
                "tessera_payment_refusals_total",
                "Payments refused before the call ran, by x402 reason.",
            ),
            &["reason"],
        )
        .expect("a valid counter"),
    )
});

static SETTLEMENT_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    tessera_runtime::metrics::register(
        HistogramVec::new(
            HistogramOpts::new(
                "tessera_settlement_duration_seconds",
                "Time from a settlement's start to its outcome, by outcome.",
            )
            .buckets(SETTLEMENT_BUCKETS.to_vec()),
            &["outcome"],
        )
        .expect("a valid histogram"),
    )
});

static SETTLEMENT_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    tessera_runtime::metrics::register(
        IntCounterVec::new(
            Opts::new(
                "tessera_settlement_failures_total",
                "Settlements that did not succeed, by x402 errorReason (timeout, unreachable: \
                 no answer from the facilitator).",
            ),
            &["reason"],
        )
        .expect("a valid counter"),
    )
});

static BALANCE_READS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    tessera_runtime::metrics::register(
        IntCounterVec::new(
            Opts::new(
                "tessera_payment_balance_reads_total",
                "Payer balances the exposure bound used, by source (chain: read now; cache: a \
                 recent read, for calls settled later).",
            ),
            &["source"],
        )
        .expect("a valid counter"),
    )
});

static QUEUE_DEPTH: LazyLock<IntGauge> = LazyLock::new(|| {
    tessera_runtime::metrics::register(
        IntGauge::new(
            "tessera_settlement_queue_depth",
            "Queued (deferred) settlements waiting for the settler, as last counted.",
        )
        .expect("a valid gauge"),
    )
});

static QUEUE_EXPECTED_WAIT: LazyLock<Gauge> = LazyLock::new(|| {
    tessera_runtime::metrics::register(
        Gauge::new(
            "tessera_settlement_queue_expected_wait_seconds",
            "How long a payment queued now would wait for the settler, as last estimated.",
        )
        .expect("a valid gauge"),
    )
});

static SETTLE_LATER_DECLINED: LazyLock<IntCounter> = LazyLock::new(|| {
    tessera_runtime::metrics::register(
        IntCounter::new(
            "tessera_payment_settle_later_declined_total",
            "Calls asked to settle later that were settled before they ran: the settlement \
             queue would have outlasted their authorization.",
        )
        .expect("a valid counter"),
    )
});

/// Queued settlements wait for a claim: from milliseconds to a retry scan.
const QUEUE_WAIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static QUEUE_WAIT: LazyLock<Histogram> = LazyLock::new(|| {
    tessera_runtime::metrics::register(
        Histogram::with_opts(
            HistogramOpts::new(
                "tessera_settlement_queue_wait_seconds",
                "How long a queued settlement waited before a settler claimed it.",
            )
            .buckets(QUEUE_WAIT_BUCKETS.to_vec()),
        )
        .expect("a valid histogram"),
    )
});

static CLAIM_SIZE: LazyLock<Histogram> = LazyLock::new(|| {
    tessera_runtime::metrics::register(
        Histogram::with_opts(
            HistogramOpts::new(
                "tessera_settlement_claim_size",
                "Queued settlements a settler took in one claim (claims that took any).",
            )
            .buckets(vec![1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 256.0]),
        )
        .expect("a valid histogram"),
    )
});

/// Every settlement failure reason known here.
fn failure_reasons() -> impl Iterator<Item = &'static str> {
    reason::REGISTRY
        .into_iter()
        .chain([reason::SETTLEMENT_PENDING, TIMEOUT, UNREACHABLE, OTHER])
}

/// Creates every series with a known label value at 0.
pub fn init() {
    for outcome in OUTCOMES {
        PAYMENTS.with_label_values(&[outcome]);
    }
    for reason in reason::REGISTRY.into_iter().chain([ALREADY_PRESENTED]) {
        REFUSALS.with_label_values(&[reason]);
    }
    for outcome in [SETTLED, PENDING, FAILED] {
        SETTLEMENT_DURATION.with_label_values(&[outcome]);
    }
    for reason in failure_reasons() {
        SETTLEMENT_FAILURES.with_label_values(&[reason]);
    }
    for source in [Source::Chain, Source::Cache] {
        BALANCE_READS.with_label_values(&[source_label(source)]);
    }
    QUEUE_DEPTH.set(0);
    LazyLock::force(&QUEUE_WAIT);
    LazyLock::force(&CLAIM_SIZE);
    LazyLock::force(&SETTLE_LATER_DECLINED);
    QUEUE_EXPECTED_WAIT.set(0.0);
}

fn source_label(source: Source) -> &'static str {
    match source {
        Source::Chain => "chain",
        Source::Cache => "cache",
    }
}

/// The exposure bound used a balance from `source`.
pub fn balance_read(source: Source) {
    BALANCE_READS
        .with_label_values(&[source_label(source)])
        .inc();
}

/// `depth` queued settlements wait.
pub fn queue_depth(depth: i64) {
    QUEUE_DEPTH.set(depth);
}

/// A queued settlement was claimed after waiting `seconds`.
pub fn queue_wait(seconds: f64) {
    QUEUE_WAIT.observe(seconds.max(0.0));
}

/// A settler took `rows` queued settlements in one claim.
pub fn claimed(rows: usize) {
    if rows > 0 {
        CLAIM_SIZE.observe(rows as f64);
    }
}

/// A payment queued now would wait `wait` for the settler.
pub fn queue_expected_wait(wait: Duration) {
    QUEUE_EXPECTED_WAIT.set(wait.as_secs_f64());
}

/// A call asked to settle later is settled before it runs.
pub fn settle_later_declined() {
    SETTLE_LATER_DECLINED.inc();
}

pub fn outcome(outcome: &str) {
    PAYMENTS.with_label_values(&[outcome]).inc();
}

pub fn refused(reason: &str) {
    outcome("refused");
    REFUSALS.with_label_values(&[reason]).inc();
}

/// A settlement ended with `outcome` ([`SETTLED`], [`PENDING`],
/// [`FAILED`]) after `took`.
pub fn settlement(outcome: &'static str, took: Duration) {
    SETTLEMENT_DURATION
        .with_label_values(&[outcome])
        .observe(took.as_secs_f64());
}

/// A settlement did not succeed, for `reason` (the facilitator's
/// `errorReason`, or [`TIMEOUT`] / [`UNREACHABLE`]).
pub fn settlement_failed(reason: &str) {
    let known = failure_reasons().find(|known| *known == reason);
    SETTLEMENT_FAILURES
        .with_label_values(&[known.unwrap_or(OTHER)])
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn known_series_start_at_zero_and_reasons_stay_few() {
        init();
        let text = tessera_runtime::metrics::render();
        for series in [
            "tessera_payments_total{outcome=\"debt\"}",
            "tessera_payments_total{outcome=\"queued\"}",
            "tessera_payment_refusals_total{reason=\"already_presented\"}",
            "tessera_payment_refusals_total{reason=\"invalid_exact_evm_payload_signature\"}",
            "tessera_settlement_failures_total{reason=\"unreachable\"}",
            "tessera_settlement_failures_total{reason=\"invalid_transaction_state\"}",
            "tessera_settlement_duration_seconds_count{outcome=\"pending\"}",
            "tessera_payment_balance_reads_total{source=\"cache\"}",
            "tessera_settlement_queue_depth",
            "tessera_settlement_queue_wait_seconds_count",
            "tessera_payment_settle_later_declined_total",
            "tessera_settlement_queue_expected_wait_seconds",
        ] {
            assert_eq!(value(&text, series), Some(0.0), "{series} in {text}");
        }
        settlement_failed("a facilitator's own words");
        settlement_failed(TIMEOUT);
        settlement(SETTLED, Duration::from_millis(700));
        let text = tessera_runtime::metrics::render();
        assert_eq!(
            value(&text, "tessera_settlement_failures_total{reason=\"other\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "tessera_settlement_failures_total{reason=\"timeout\"}"
            ),
            Some(1.0)
        );
        assert!(!text.contains("facilitator's own words"));
        assert_eq!(
            value(
                &text,
                "tessera_settlement_duration_seconds_bucket{outcome=\"settled\",le=\"1\"}"
            ),
            Some(1.0)
        );
    }
}
