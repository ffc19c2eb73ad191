//! One trace across the split services: the real binaries (gateway, memory,
//! payment, facilitator) in their own processes, memory on Redis +
//! PostgreSQL, payments on anvil, each exporting spans over OTLP/gRPC to a
//! receiver in this test. One paid memory call must come back as one trace
//! with an unbroken parent/child chain, and the logs of that call must carry
//! its ids.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_tests::binaries::{facilitator_vars, free_port, payment_vars, Process};
use tessera_tests::chain::Chain;
use tessera_tests::harness::{database_url, redis_url};
use tessera_tests::paid::{decode, quoted_terms, send};
use tessera_x402::{encode_header, Requirements};

/// A span as received, with the service that sent it.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<String> {
        attribute(&self.span.attributes, key)
    }

    fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        AnyValue::BoolValue(b) => Some(b.to_string()),
        AnyValue::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

/// The collector's TraceService: keeps every span it is sent.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| attribute(&resource.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    async fn start(self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(self))
                .serve_with_incoming(incoming),
        );
        format!("http://{addr}")
    }

    fn trace(&self, trace_id: &[u8]) -> Vec<Received> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|received| received.span.trace_id == trace_id)
            .cloned()
            .collect()
    }

    fn find(&self, matches: impl Fn(&Received) -> bool) -> Option<Received> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .find(|received| matches(received))
            .cloned()
    }
}

fn env(pairs: &[(&str, String)], otlp: &str) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for (key, value) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
    ] {
        env.insert(key.into(), value.into());
    }
    env
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The split services on real parts, every one exporting to `otlp`.
struct Suite {
    chain: Chain,
    facilitator: Process,
    payment: Process,
    memory: Process,
    gateway: Process,
    gateway_url: String,
}

impl Suite {
    async fn start(otlp: &str) -> Suite {
        let chain = Chain::start_with_buyers(1).await;
        let facilitator_port = free_port();
        let mut facilitator = Process::start(
            "tessera-facilitator",
            &env(&facilitator_vars(&chain, facilitator_port), otlp),
        );
        let facilitator_url = format!("http://127.0.0.1:{facilitator_port}");
        facilitator
            .wait_http(
                &format!("{facilitator_url}/supported"),
                Duration::from_secs(30),
            )
            .await;

        let payment_port = free_port();
        let mut payment = Process::start(
            "tessera-payment",
            &env(
                &payment_vars(&chain, payment_port, database_url(), facilitator_url),
                otlp,
            ),
        );
        payment
            .wait_port(payment_port, Duration::from_secs(30))
            .await;

        let memory_port = free_port();
        let mut memory = Process::start(
            "tessera-memory",
            &env(
                &[
                    ("MEMORY_BACKEND", "redis-postgres".into()),
                    ("MEMORY_GRPC_ADDR", format!("127.0.0.1:{memory_port}")),
                    ("REDIS_URL", redis_url()),
                    ("DATABASE_URL", database_url()),
                ],
                otlp,
            ),
        );
        memory.wait_port(memory_port, Duration::from_secs(30)).await;

        let gateway_port = free_port();
        let mut gateway = Process::start(
            "tessera-gateway",
            &env(
                &[
                    ("GATEWAY_ADDR", format!("127.0.0.1:{gateway_port}")),
                    ("FREE_MODE", "false".into()),
                    ("MEMORY_URL", format!("http://127.0.0.1:{memory_port}")),
                    ("PAYMENT_URL", format!("http://127.0.0.1:{payment_port}")),
                    // The settlement inside the call's own trace (async
                    // settles in the settler's).
                    ("PAYMENT_SETTLE_MODE", "sync".into()),
                    ("STATS_EVENTS", "false".into()),
                    ("IDEMPOTENCY_STORE", "memory".into()),
                ],
                otlp,
            ),
        );
        let gateway_url = format!("http://127.0.0.1:{gateway_port}");
        gateway
            .wait_http(&format!("{gateway_url}/health"), Duration::from_secs(60))
            .await;
        Suite {
            chain,
            facilitator,
            payment,
            memory,
            gateway,
            gateway_url,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway_url)
    }

    fn processes(&self) -> [&Process; 4] {
        [
            &self.gateway,
            &self.memory,
            &self.payment,
            &self.facilitator,
        ]
    }

    /// Every process's output, for a failure message.
    fn outputs(&self) -> String {
        self.processes()
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name, p.output()))
            .collect()
    }
}

/// The client's own trace, sent along with the call.
const CLIENT_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_paid_memory_call_is_one_trace_across_the_split_services() {
    let receiver = Receiver::default();
    let otlp = receiver.clone().start().await;
    let suite = Suite::start(&otlp).await;
    let body = json!({"key": format!("trace/{:016x}", rand::random::<u64>()), "expected": null, "value": "agent-7"});

    let requirements = quoted_terms(
        reqwest::Method::POST,
        &suite.url("/api/memory/cas"),
        Some(body.clone()),
    )
    .await;
    let payment = encode_header(&suite.chain.pay(&suite.chain.buyers[0], &requirements));
    let paid = send(
        reqwest::Method::POST,
        &suite.url("/api/memory/cas"),
        Some(body),
        &[
            ("PAYMENT-SIGNATURE", payment),
            ("traceparent", CLIENT_TRACEPARENT.into()),
        ],
    )
    .await;
    assert_eq!(
        paid.status,
        StatusCode::OK,
        "{}\n{}",
        paid.body,
        suite.outputs()
    );
    assert_eq!(
        decode(paid.headers.get("payment-response").unwrap())["success"],
        true
    );

    // The gateway's span of the paid call is the root of its trace.
    let is_paid_call = |r: &Received| {
        r.service == "tessera-gateway"
            && r.span.name == "POST /api/memory/cas"
            && r.attribute("http.response.status_code").as_deref() == Some("200")
    };
    let mut root = None;
    for _ in 0..100 {
        root = receiver.find(is_paid_call);
        if root.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let root =
        root.unwrap_or_else(|| panic!("no gateway span for the paid call\n{}", suite.outputs()));
    assert_eq!(root.kind(), SpanKind::Server);
    assert!(
        root.span.parent_span_id.is_empty(),
        "the gateway starts the trace"
    );
    assert_ne!(
        hex(&root.span.trace_id),
        CLIENT_TRACE_ID,
        "a public client cannot choose our trace"
    );
    assert_eq!(
        root.span
            .links
            .iter()
            .map(|link| hex(&link.trace_id))
            .collect::<Vec<_>>(),
        vec![CLIENT_TRACE_ID.to_string()],
        "the client's trace is linked"
    );
    for (key, value) in [
        ("http.request.method", "POST"),
        ("http.route", "/api/memory/cas"),
        ("url.path", "/api/memory/cas"),
    ] {
        assert_eq!(root.attribute(key).as_deref(), Some(value), "{key}");
    }

    // Every service's part arrives (batches leave every 100 ms).
    let wanted: [(&str, &str, SpanKind); 6] = [
        (
            "tessera-memory",
            "tessera.memory.v1.MemoryService/CompareAndSwap",
            SpanKind::Server,
        ),
        (
            "tessera-gateway",
            "tessera.memory.v1.MemoryService/CompareAndSwap",
            SpanKind::Client,
        ),
        (
            "tessera-payment",
            "tessera.payment.v1.PaymentService/Settle",
            SpanKind::Server,
        ),
        (
            "tessera-gateway",
            "tessera.payment.v1.PaymentService/Settle",
            SpanKind::Client,
        ),
        ("tessera-facilitator", "POST /settle", SpanKind::Server),
        ("tessera-facilitator", "POST /verify", SpanKind::Server),
    ];
    let mut trace = Vec::new();
    for _ in 0..100 {
        trace = receiver.trace(&root.span.trace_id);
        let complete = wanted.iter().all(|(service, name, kind)| {
            trace
                .iter()
                .any(|r| r.service == *service && r.span.name == *name && r.kind() == *kind)
        });
        if complete {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let describe = |spans: &[Received]| {
        spans
            .iter()
            .map(|r| {
                format!(
                    "{} {:?} {} span={} parent={}",
                    r.service,
                    r.kind(),
                    r.span.name,
                    hex(&r.span.span_id),
                    hex(&r.span.parent_span_id)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let by_id: HashMap<Vec<u8>, &Received> =
        trace.iter().map(|r| (r.span.span_id.clone(), r)).collect();
    let find = |service: &str, name: &str, kind: SpanKind| -> &Received {
        trace
            .iter()
            .find(|r| r.service == service && r.span.name == name && r.kind() == kind)
            .unwrap_or_else(|| {
                panic!(
                    "no {kind:?} span {name:?} from {service} in the trace:\n{}",
                    describe(&trace)
                )
            })
    };
    let parent = |span: &Received| -> &Received {
        by_id
            .get(&span.span.parent_span_id)
            .copied()
            .unwrap_or_else(|| {
                panic!(
                    "the parent of {} {:?} is not in the trace:\n{}",
                    span.service,
                    span.span.name,
                    describe(&trace)
                )
            })
    };

    // One trace, one root, and every other span's parent in it.
    let roots: Vec<_> = trace
        .iter()
        .filter(|r| r.span.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root:\n{}", describe(&trace));
    for span in &trace {
        if !span.span.parent_span_id.is_empty() {
            parent(span);
        }
    }

    // gateway --gRPC--> memory: the server span's parent is the gateway's
    // client span, a child of the root.
    let memory = find(
        "tessera-memory",
        "tessera.memory.v1.MemoryService/CompareAndSwap",
        SpanKind::Server,
    );
    let memory_client = parent(memory);
    assert_eq!(
        (memory_client.service.as_str(), memory_client.kind()),
        ("tessera-gateway", SpanKind::Client)
    );
    assert_eq!(memory_client.span.name, memory.span.name);
    for (key, value) in [
        ("rpc.system", "grpc"),
        ("rpc.service", "tessera.memory.v1.MemoryService"),
        ("rpc.method", "CompareAndSwap"),
        ("rpc.grpc.status_code", "0"),
    ] {
        assert_eq!(
            memory.attribute(key).as_deref(),
            Some(value),
            "memory server {key}"
        );
        assert_eq!(
            memory_client.attribute(key).as_deref(),
            Some(value),
            "gateway client {key}"
        );
    }
    assert_eq!(parent(memory_client).span.span_id, root.span.span_id);

    // Memory's Redis and PostgreSQL calls are its children.
    let below_memory = descendants(&trace, memory);
    let redis = below_memory
        .iter()
        .find(|r| r.attribute("db.system.name").as_deref() == Some("redis"))
        .unwrap_or_else(|| panic!("no Redis span under memory:\n{}", describe(&trace)));
    assert_eq!(redis.kind(), SpanKind::Client);
    assert!(redis.attribute("db.operation.name").is_some());

    // gateway --gRPC--> payment --HTTP--> facilitator --JSON-RPC--> chain.
    let settle = find(
        "tessera-payment",
        "tessera.payment.v1.PaymentService/Settle",
        SpanKind::Server,
    );
    assert_eq!(parent(settle).service, "tessera-gateway");
    assert_eq!(parent(parent(settle)).span.span_id, root.span.span_id);
    let facilitator_settle = find("tessera-facilitator", "POST /settle", SpanKind::Server);
    let mut up = parent(facilitator_settle);
    assert_eq!(
        up.service, "tessera-payment",
        "the facilitator's caller is payment"
    );
    while up.span.span_id != settle.span.span_id {
        up = parent(up);
    }
    for (key, value) in [
        ("http.request.method", "POST"),
        ("http.route", "/settle"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(
            facilitator_settle.attribute(key).as_deref(),
            Some(value),
            "{key}"
        );
    }
    let chain_calls: Vec<_> = descendants(&trace, facilitator_settle)
        .into_iter()
        .filter(|r| r.attribute("rpc.system").as_deref() == Some("jsonrpc"))
        .collect();
    assert!(
        chain_calls
            .iter()
            .any(|r| r.attribute("rpc.method").as_deref() == Some("eth_sendRawTransaction")),
        "the settlement's transaction is a span under the facilitator's settle:\n{}",
        describe(&trace)
    );

    // The logs of the call carry its ids (the HTTP servers log a line per
    // request; memory and payment log only their faults, see below).
    let trace_id = hex(&root.span.trace_id);
    for process in [&suite.gateway, &suite.facilitator] {
        let lines = process.json_lines();
        assert!(
            lines
                .iter()
                .any(|line| line["trace_id"] == trace_id.as_str()
                    && line["span_id"].as_str().is_some_and(|id| id.len() == 16)),
            "{} logged nothing with trace_id {trace_id}:\n{}",
            process.name,
            process.output()
        );
    }
    let request_line = suite
        .gateway
        .json_lines()
        .into_iter()
        .find(|line| {
            line["trace_id"] == trace_id.as_str() && line["fields"]["message"] == "request"
        })
        .unwrap_or_else(|| panic!("no request line:\n{}", suite.gateway.output()));
    assert_eq!(request_line["span_id"], hex(&root.span.span_id));
    assert_eq!(request_line["level"], "INFO");
}

/// Every span below `top`.
fn descendants<'a>(trace: &'a [Received], top: &Received) -> Vec<&'a Received> {
    let mut found = Vec::new();
    let mut frontier = vec![top.span.span_id.clone()];
    while let Some(id) = frontier.pop() {
        for span in trace.iter().filter(|r| r.span.parent_span_id == id) {
            frontier.push(span.span.span_id.clone());
            found.push(span);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expected_answers_are_not_errors_and_server_faults_are() {
    let receiver = Receiver::default();
    let otlp = receiver.clone().start().await;
    let mut suite = Suite::start(&otlp).await;
    let level_of = |process: &Process, status: u16, path: &str| -> Vec<String> {
        process
            .json_lines()
            .into_iter()
            .filter(|line| line["fields"]["status"] == status && line["span"]["url.path"] == path)
            .map(|line| line["level"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    // A 402 and a 404 are answers: INFO.
    let unpaid = send(
        reqwest::Method::POST,
        &suite.url("/api/memory/cas"),
        Some(json!({"key": "k", "value": 1})),
        &[],
    )
    .await;
    assert_eq!(unpaid.status, StatusCode::PAYMENT_REQUIRED);
    let missing = send(
        reqwest::Method::GET,
        &suite.url("/api/no-such-route"),
        None,
        &[],
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // A paid read of a key nobody wrote: memory answers NotFound, which is
    // not memory's fault either.
    let quote = decode(
        send(
            reqwest::Method::GET,
            &suite.url("/api/memory?key=absent"),
            None,
            &[],
        )
        .await
        .headers
        .get("payment-required")
        .unwrap(),
    );
    let requirements: Requirements = serde_json::from_value(quote["accepts"][0].clone()).unwrap();
    let payment = encode_header(&suite.chain.pay(&suite.chain.buyers[0], &requirements));
    let absent = send(
        reqwest::Method::GET,
        &suite.url("/api/memory?key=absent"),
        None,
        &[("PAYMENT-SIGNATURE", payment)],
    )
    .await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND, "{}", absent.body);

    // Memory gone: the gateway's 5xx is a server fault, logged at ERROR.
    suite.memory.stop(Duration::from_secs(10)).await;
    let payment = encode_header(&suite.chain.pay(&suite.chain.buyers[0], &requirements));
    let down = send(
        reqwest::Method::GET,
        &suite.url("/api/memory?key=absent"),
        None,
        &[("PAYMENT-SIGNATURE", payment)],
    )
    .await;
    assert!(
        down.status.is_server_error(),
        "{} {}",
        down.status,
        down.body
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let gateway = &suite.gateway;
    assert_eq!(
        level_of(gateway, 402, "/api/memory/cas"),
        ["INFO"],
        "{}",
        gateway.output()
    );
    assert_eq!(
        level_of(gateway, 404, "/api/no-such-route"),
        ["INFO"],
        "{}",
        gateway.output()
    );
    let levels = level_of(gateway, 404, "/api/memory");
    assert_eq!(levels, ["INFO"], "{}", gateway.output());
    let levels = level_of(gateway, down.status.as_u16(), "/api/memory");
    assert_eq!(levels, ["ERROR"], "{}", gateway.output());
    let memory_errors: Vec<_> = suite
        .memory
        .json_lines()
        .into_iter()
        .filter(|line| line["level"] == "ERROR")
        .collect();
    assert!(
        memory_errors.is_empty(),
        "memory's NotFound is not an error: {memory_errors:?}"
    );

    // And the span of the fault says so.
    let is_fault = |r: &Received| {
        r.service == "tessera-gateway"
            && r.span.name == "GET /api/memory"
            && r.attribute("http.response.status_code") == Some(down.status.as_u16().to_string())
    };
    let mut faulted = None;
    for _ in 0..100 {
        faulted = receiver.find(is_fault);
        if faulted.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let faulted = faulted.expect("the failed call's span");
    assert_eq!(
        faulted.span.status.as_ref().map(|s| s.code),
        Some(2),
        "STATUS_CODE_ERROR"
    );
    // Its ERROR line names the trace and the span.
    let error_line = gateway
        .json_lines()
        .into_iter()
        .find(|line| line["level"] == "ERROR" && line["span"]["url.path"] == "/api/memory")
        .unwrap();
    assert_eq!(error_line["trace_id"], hex(&faulted.span.trace_id));
    assert_eq!(error_line["span_id"], hex(&faulted.span.span_id));
}
