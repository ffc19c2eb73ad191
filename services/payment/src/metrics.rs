//! The payment service's own series (beside the per-RPC request metrics):
//!
//! - `tessera_payments_total{outcome}`: payments by how they went —
//!   `verified`, `refused` (before the facilitator: bad, replayed or not
//!   covered), `rejected` (the facilitator said invalid), `cancelled`,
//!   `settled`, `pending`, `failed` (settlement refused before execution),
//!   `debt` (settlement of a served call failed).
//! - `tessera_payment_refusals_total{reason}`: refusals by x402 reason.

use prometheus::{IntCounterVec, Opts};
use std::sync::LazyLock;

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

pub fn outcome(outcome: &str) {
    PAYMENTS.with_label_values(&[outcome]).inc();
}

pub fn refused(reason: &str) {
    outcome("refused");
    REFUSALS.with_label_values(&[reason]).inc();
}
