//! One `init()` for logs and traces, configured by the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `RUST_LOG` | `info` | log filter (also filters which spans exist) |
//! | `LOG_FORMAT` | `text` | `json`: one JSON object per line, with `trace_id` and `span_id` while a trace is recorded |
//! | `OTEL_SDK_DISABLED` | `false` | `true`: no tracing whatever the rest says |
//! | `OTEL_TRACES_EXPORTER` | `otlp` when an OTLP endpoint is set, else off | `otlp`; `none` records and propagates trace context (ids in logs) without exporting |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | unset (`http://localhost:4317` when the exporter is `otlp`) | the collector |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` | `grpc` | only `grpc` is built in; another value is refused at start |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_COMPRESSION` | | as the OTLP exporter specification says |
//! | `OTEL_SERVICE_NAME` | the binary's name (`tessera-gateway`, ...) | `service.name` |
//! | `OTEL_RESOURCE_ATTRIBUTES` | | more resource attributes (`key=value,...`) |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | `parentbased_always_on` | the sampler |
//! | `OTEL_PROPAGATORS` | `tracecontext` | `tracecontext`, `baggage` (comma separated), or `none` |
//! | `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`, ... | SDK defaults | the batch span processor |
//! | `TRACE_TRUST_CLIENT_CONTEXT` | `false` | `true`: public faces continue a client's `traceparent` instead of linking it (see [`crate::trace`]) |

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes pending spans when dropped (keep it alive in `main`).
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// What the `OTEL_*` variables ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Traces {
    Off,
    /// Spans recorded and contexts propagated; nothing exported.
    Unexported,
    /// Exported over OTLP/gRPC.
    Otlp,
}

/// Reads the tracing mode from `var` (the environment, or a test's map).
pub fn traces_from(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Traces> {
    let set = |name: &str| {
        var(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(Traces::Off);
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(protocol) = set(name) {
            anyhow::ensure!(
                protocol == "grpc",
                "{name}={protocol:?}: only `grpc` is built in (send OTLP/gRPC, usually port 4317)"
            );
            break;
        }
    }
    let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .is_some();
    match set("OTEL_TRACES_EXPORTER").as_deref() {
        None if endpoint => Ok(Traces::Otlp),
        None => Ok(Traces::Off),
        Some("otlp") => Ok(Traces::Otlp),
        Some("none") => Ok(Traces::Unexported),
        Some(other) => {
            anyhow::bail!("OTEL_TRACES_EXPORTER={other:?}: the choices are `otlp` and `none`")
        }
    }
}

pub fn init(service_name: &str) -> anyhow::Result<Telemetry> {
    let var = |name: &str| std::env::var(name).ok();
    let traces = traces_from(var)?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = crate::config::env_string("LOG_FORMAT", "text") == "json";
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer()
            .event_format(WithTraceIds(tracing_subscriber::fmt::format().json()))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().boxed()
    };

    let provider = match traces {
        Traces::Off => None,
        Traces::Unexported => Some(
            SdkTracerProvider::builder()
                .with_resource(resource(service_name))
                .build(),
        ),
        Traces::Otlp => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource(service_name))
                    .build(),
            )
        }
    };
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service_name.to_string()))
            .with_threads(false)
    });

    // A second init (tests, the all-in-one) keeps the first subscriber.
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        opentelemetry::global::set_text_map_propagator(propagator(&var)?);
        crate::trace::enable(
            crate::config::env_string(crate::trace::TRUST_CLIENT_CONTEXT_ENV, "false") == "true",
        );
        tracing::info!(?traces, "tracing with OpenTelemetry");
    }
    Ok(Telemetry { provider })
}

/// `service.name` is `OTEL_SERVICE_NAME`, else a `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`, else the binary's name.
fn resource(default_name: &str) -> opentelemetry_sdk::Resource {
    let builder = opentelemetry_sdk::Resource::builder();
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    if named {
        builder.build()
    } else {
        builder.with_service_name(default_name.to_string()).build()
    }
}

fn propagator(var: &impl Fn(&str) -> Option<String>) -> anyhow::Result<TextMapCompositePropagator> {
    let listed = var("OTEL_PROPAGATORS").unwrap_or_else(|| "tracecontext".into());
    let mut propagators: Vec<Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync>> =
        Vec::new();
    for name in listed.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "tracecontext" => propagators.push(Box::new(TraceContextPropagator::new())),
            "baggage" => propagators.push(Box::new(BaggagePropagator::new())),
            "none" => propagators.clear(),
            other => anyhow::bail!(
                "OTEL_PROPAGATORS: {other:?} is not built in (tracecontext, baggage, none)"
            ),
        }
    }
    Ok(TextMapCompositePropagator::new(propagators))
}

/// A JSON event format that puts `trace_id` and `span_id` first while a
/// trace is being recorded.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    F: FormatEvent<S, N>,
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some((trace_id, span_id)) = crate::trace::current_ids() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                let separator = if rest.starts_with('}') { "" } else { "," };
                write!(
                    writer,
                    "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"{separator}{rest}"
                )
            }
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn traces(pairs: &[(&str, &str)]) -> anyhow::Result<Traces> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        traces_from(|name| map.get(name).cloned())
    }

    #[test]
    fn the_otel_variables_choose_the_mode() {
        assert_eq!(traces(&[]).unwrap(), Traces::Off);
        assert_eq!(
            traces(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")]).unwrap(),
            Traces::Otlp
        );
        assert_eq!(
            traces(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317")]).unwrap(),
            Traces::Otlp
        );
        assert_eq!(
            traces(&[("OTEL_TRACES_EXPORTER", "otlp")]).unwrap(),
            Traces::Otlp
        );
        assert_eq!(
            traces(&[("OTEL_TRACES_EXPORTER", "none")]).unwrap(),
            Traces::Unexported
        );
        assert_eq!(
            traces(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_SDK_DISABLED", "TRUE")
            ])
            .unwrap(),
            Traces::Off
        );
        assert_eq!(
            traces(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            ])
            .unwrap(),
            Traces::Otlp
        );
    }

    #[test]
    fn what_is_not_built_in_is_refused_by_name() {
        let error = traces(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{error}");
        let error = traces(&[("OTEL_TRACES_EXPORTER", "zipkin")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("zipkin"), "{error}");
        let error = propagator(&|name: &str| {
            (name == "OTEL_PROPAGATORS").then(|| "tracecontext,b3".to_string())
        })
        .map(|_| ())
        .expect_err("b3 is refused")
        .to_string();
        assert!(error.contains("b3"), "{error}");
    }
}
