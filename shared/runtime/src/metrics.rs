//! Process-wide Prometheus metrics, the series
//! `deploy/grafana/dashboards/tessera-overview.json` charts:
//!
//! - `tessera_requests_total{service, route, status}`: a counter per call.
//! - `tessera_request_duration_seconds{service, route}`: a histogram of call
//!   latency (`_bucket`, `_sum`, `_count`).
//!
//! `service` is the short service name (`memory`, `pow`, `grpc` for health
//! and reflection, `gateway` for REST). `route` is the gRPC method (`Get`) or
//! the gateway's route pattern (`/api/memory/cas`). `status` is the gRPC code
//! name (`OK`, `NotFound`, `Unimplemented`, …) or the HTTP status number.
//!
//! One registry per process: in the all-in-one binary the gateway's
//! `/metrics` therefore shows the gRPC services' series too.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::sync::LazyLock;
use std::time::Duration;

/// The Prometheus client, for a crate's own collectors (see [`register`])
/// without a dependency of its own.
pub use prometheus;

/// Latency buckets in seconds: sub-millisecond store hits up to slow calls.
pub const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let requests = IntCounterVec::new(
        Opts::new("tessera_requests_total", "Requests served, by outcome."),
        &["service", "route", "status"],
    )
    .expect("a valid counter");
    let duration = HistogramVec::new(
        HistogramOpts::new(
            "tessera_request_duration_seconds",
            "Time from request to the end of the response.",
        )
        .buckets(BUCKETS.to_vec()),
        &["service", "route"],
    )
    .expect("a valid histogram");
    registry
        .register(Box::new(requests.clone()))
        .expect("registered once");
    registry
        .register(Box::new(duration.clone()))
        .expect("registered once");
    Metrics {
        registry,
        requests,
        duration,
    }
});

/// Counts one finished request and observes its latency.
pub fn record_request(service: &str, route: &str, status: &str, duration: Duration) {
    METRICS
        .requests
        .with_label_values(&[service, route, status])
        .inc();
    METRICS
        .duration
        .with_label_values(&[service, route])
        .observe(duration.as_secs_f64());
}

/// Adds a service's own collector to the process registry and hands it
/// back. Call it once per collector (from a `LazyLock`): registering the
/// same series twice is a programming error and panics.
pub fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    METRICS
        .registry
        .register(Box::new(collector.clone()))
        .expect("a collector is registered once");
    collector
}

/// Every series in the Prometheus text exposition format.
pub fn render() -> String {
    TextEncoder::new()
        .encode_to_string(&METRICS.registry.gather())
        .unwrap_or_else(|error| {
            tracing::error!(%error, "encoding metrics");
            String::new()
        })
}

/// `GET /metrics`, for merging into any axum router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics() -> impl IntoResponse {
    ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counter_and_histogram_in_text_format() {
        record_request("unit", "/things/{id}", "404", Duration::from_millis(3));
        record_request("unit", "/things/{id}", "404", Duration::from_millis(30));
        let text = render();
        assert!(
            text.contains("# TYPE tessera_requests_total counter"),
            "{text}"
        );
        assert!(
            text.contains(
                "tessera_requests_total{route=\"/things/{id}\",service=\"unit\",status=\"404\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tessera_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(
                "tessera_request_duration_seconds_bucket{route=\"/things/{id}\",service=\"unit\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tessera_request_duration_seconds_count{route=\"/things/{id}\",service=\"unit\"} 2"
            ),
            "{text}"
        );
    }
}
