use super::*;
use std::sync::Arc;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

fn in_flight(dependency: Dependency) -> i64 {
    handles(dependency, "any").in_flight.get()
}

fn line(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find(|line| line.starts_with(series))
        .map(str::to_string)
}

#[tokio::test]
async fn a_call_is_timed_and_a_failure_counted_by_operation() {
    let ok: Result<u8, std::io::Error> = call(Dependency::Redis, "unit_ok", async { Ok(1) }).await;
    assert_eq!(ok.unwrap(), 1);
    for _ in 0..2 {
        let failed: Result<(), std::io::Error> = call(Dependency::Redis, "unit_fail", async {
            Err(std::io::Error::other("down"))
        })
        .await;
        assert!(failed.is_err());
    }
    let text = crate::metrics::render();
    let count = |operation: &str| {
        line(
            &text,
            &format!(
                "tessera_dependency_call_duration_seconds_count{{dependency=\"redis\",operation=\"{operation}\"}}"
            ),
        )
    };
    let errors = |operation: &str| {
        line(
            &text,
            &format!(
                "tessera_dependency_call_errors_total{{dependency=\"redis\",operation=\"{operation}\"}}"
            ),
        )
    };
    assert!(
        count("unit_ok").is_some_and(|l| l.ends_with(" 1")),
        "{text}"
    );
    assert!(
        errors("unit_ok").is_some_and(|l| l.ends_with(" 0")),
        "{text}"
    );
    assert!(
        count("unit_fail").is_some_and(|l| l.ends_with(" 2")),
        "{text}"
    );
    assert!(
        errors("unit_fail").is_some_and(|l| l.ends_with(" 2")),
        "{text}"
    );
    assert!(
        text.contains("tessera_dependency_in_flight{dependency=\"redis\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn a_dropped_call_leaves_flight() {
    let before = in_flight(Dependency::Chain);
    let pending = call(
        Dependency::Chain,
        "unit_never",
        std::future::pending::<Result<(), ()>>(),
    );
    let timed_out = tokio::time::timeout(Duration::from_millis(20), async {
        let mut pending = std::pin::pin!(pending);
        let polled = futures::poll!(pending.as_mut());
        assert!(polled.is_pending());
        assert_eq!(
            in_flight(Dependency::Chain),
            before + 1,
            "counted in flight"
        );
        pending.await
    })
    .await;
    assert!(timed_out.is_err(), "the call never ends");
    assert_eq!(
        in_flight(Dependency::Chain),
        before,
        "out of flight once dropped"
    );
    // Cancelled: neither observed nor counted a failure.
    let text = crate::metrics::render();
    assert!(
        line(
            &text,
            "tessera_dependency_call_duration_seconds_count{dependency=\"chain\",operation=\"unit_never\"}"
        )
        .is_some_and(|l| l.ends_with(" 0")),
        "{text}"
    );
}

#[tokio::test]
async fn an_erased_call_fails_with_its_error_type() {
    let outcome = observe(
        Dependency::Chain,
        "unit_erased",
        Box::pin(async { Err("unavailable") }),
    )
    .await;
    assert_eq!(outcome, Err("unavailable"));
    let text = crate::metrics::render();
    assert!(
        line(
            &text,
            "tessera_dependency_call_errors_total{dependency=\"chain\",operation=\"unit_erased\"}"
        )
        .is_some_and(|l| l.ends_with(" 1")),
        "{text}"
    );
}

#[test]
fn one_operation_shares_its_handles_across_call_sites_and_threads() {
    // Two strings with the same text at different addresses.
    let here: &'static str = "unit_shared";
    let there: &'static str = String::from("unit_shared").leak();
    let a = handles(Dependency::Postgres, here) as *const Handles;
    let b = handles(Dependency::Postgres, there) as *const Handles;
    let c =
        std::thread::spawn(move || handles(Dependency::Postgres, here) as *const Handles as usize)
            .join()
            .unwrap();
    assert_eq!(a, b);
    assert_eq!(a as usize, c);
    assert_ne!(a, handles(Dependency::Sqlite, here) as *const Handles);
}

/// A span's fields as recorded: (name, value) in order.
type Recorded = Vec<(String, String)>;

/// Each `dependency` span's fields.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Recorded>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> Layer<S>
    for Spans
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.0.lock().unwrap();
        ctx.span(id).unwrap().extensions_mut().insert(spans.len());
        spans.push(fields);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let index = *ctx.span(id).unwrap().extensions().get::<usize>().unwrap();
        values.record(&mut Fields(&mut self.0.lock().unwrap()[index]));
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn spans_carry_the_attributes_of_their_kind() {
    crate::trace::enable(false);
    let spans = Spans::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let _: Result<(), ()> = call(Dependency::Redis, "cas", async { Ok(()) }).await;
    let _: Result<(), std::io::Error> = call(Dependency::Postgres, "persist", async {
        Err(std::io::Error::other("down"))
    })
    .await;
    let _ = observe(Dependency::Chain, "eth_call", Box::pin(async { Ok(()) })).await;
    let facilitator = start(Dependency::Facilitator, "settle");
    facilitator
        .span()
        .record("http.response.status_code", 502u64);
    facilitator.failed("server_error");

    let spans = spans.0.lock().unwrap().clone();
    assert_eq!(spans.len(), 4);
    let redis = &spans[0];
    assert_eq!(field(redis, "otel.name"), Some("cas"));
    assert_eq!(field(redis, "otel.kind"), Some("client"));
    assert_eq!(field(redis, "db.system.name"), Some("redis"));
    assert_eq!(field(redis, "db.operation.name"), Some("cas"));
    assert_eq!(field(redis, "otel.status_code"), None);
    let postgres = &spans[1];
    assert_eq!(field(postgres, "db.system.name"), Some("postgresql"));
    assert_eq!(field(postgres, "otel.status_code"), Some("ERROR"));
    assert_eq!(field(postgres, "error.type"), Some("std::io::error::Error"));
    let chain = &spans[2];
    assert_eq!(field(chain, "otel.name"), Some("eth_call"));
    assert_eq!(field(chain, "rpc.system"), Some("jsonrpc"));
    assert_eq!(field(chain, "rpc.method"), Some("eth_call"));
    let http = &spans[3];
    assert_eq!(field(http, "otel.name"), Some("POST /settle"));
    assert_eq!(field(http, "http.request.method"), Some("POST"));
    assert_eq!(field(http, "url.path"), Some("/settle"));
    assert_eq!(field(http, "http.response.status_code"), Some("502"));
    assert_eq!(field(http, "error.type"), Some("server_error"));
}

#[test]
fn pools_are_sampled_when_rendered_and_replaced_by_name() {
    register_pool("unit_pool", || PoolSample::of(5, 2, 16));
    let text = crate::metrics::render();
    assert!(
        text.contains("tessera_pool_connections{pool=\"unit_pool\",state=\"in_use\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("tessera_pool_connections{pool=\"unit_pool\",state=\"idle\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("tessera_pool_max_connections{pool=\"unit_pool\"} 16"),
        "{text}"
    );
    let held = Arc::new(());
    let sampler_holds = held.clone();
    register_pool("unit_pool", move || {
        let _ = &sampler_holds;
        PoolSample::of(1, 1, 4)
    });
    register_pool("unit_pool", || PoolSample::of(1, 1, 4));
    assert_eq!(Arc::strong_count(&held), 1, "a replaced sampler is dropped");
    let text = crate::metrics::render();
    assert!(
        text.contains("tessera_pool_max_connections{pool=\"unit_pool\"} 4"),
        "{text}"
    );
}
