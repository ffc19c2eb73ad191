//! The metrics of issue #11 as a running process shows them on `/metrics`:
//! dependency calls timed by dependency and operation on the real Redis and
//! PostgreSQL, the memory pool sampled, loads and generation fences
//! counted, calls dropped mid-way out of flight, counters of known labels
//! at 0 from the start, and one public call counted once by the gateway in
//! the all-in-one shape (memory called in process), whatever face it came
//! through (REST, MCP, gRPC).
//!
//! The registry is the process's own: each test runs in a process of its
//! own under nextest, and compares snapshots before and after what it does.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tessera_memory::config::{Backend, MemoryConfig};
use tessera_memory::durable::DurableConfig;
use tessera_memory::{Limits, Memory};
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tessera_tests::gateway_http::GatewayHarness;
use tessera_tests::harness::{database_url, durable_memory, redis_url, unique_namespace};

/// Every sample of the process's registry: `name{labels}` → value.
fn snapshot() -> BTreeMap<String, f64> {
    tessera_runtime::metrics::render()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The samples of `family` (a name, or a name prefix ending in `{`) that
/// changed from `before` to `after`, by how much.
fn changed(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    family: &str,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter(|(series, _)| series.starts_with(family))
        .filter_map(|(series, value)| {
            let delta = value - before.get(series).copied().unwrap_or(0.0);
            (delta != 0.0).then(|| (series.clone(), delta))
        })
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

fn call_count(dependency: &str, operation: &str) -> String {
    format!(
        "tessera_dependency_call_duration_seconds_count{{dependency=\"{dependency}\",operation=\"{operation}\"}}"
    )
}

fn in_flight(dependency: &str) -> String {
    format!("tessera_dependency_in_flight{{dependency=\"{dependency}\"}}")
}

/// A snapshot once no Redis or PostgreSQL call is in flight, or after 2 s:
/// the store's own tasks (persist rounds, loads, durable marks) finish
/// after the calls that started them.
async fn out_of_flight() -> BTreeMap<String, f64> {
    let mut now = snapshot();
    for _ in 0..200 {
        if value(&now, &in_flight("redis")) == 0.0 && value(&now, &in_flight("postgres")) == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        now = snapshot();
    }
    now
}

fn durable_config() -> MemoryConfig {
    MemoryConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        backend: Backend::RedisPostgres(DurableConfig {
            redis_url: redis_url(),
            database_url: database_url(),
            database_pool_size: 7,
            limits: Limits::default(),
            deliberate_bug: None,
        }),
        limits: Limits::default(),
        reclaim_after: Duration::from_secs(3600),
        reclaim_every: Duration::ZERO,
    }
}

/// The memory service as its binary opens it on Redis + PostgreSQL.
async fn durable_service() -> Memory {
    durable_config()
        .open()
        .await
        .expect("the Redis + PostgreSQL tests need Redis and PostgreSQL (see harness)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_calls_are_timed_by_dependency_and_operation_and_the_pool_sampled() {
    let memory = durable_service().await;
    let namespace = unique_namespace("metrics-ops");
    let before = snapshot();
    memory
        .set(&namespace, "a", "\"one\"", None, None)
        .await
        .unwrap();
    memory.get(&namespace, "a").await.unwrap();
    memory
        .cas(&namespace, "a", Some("\"one\""), Some("\"two\""), None)
        .await
        .unwrap();
    memory.incr(&namespace, "n", "2", None).await.unwrap();
    memory.list(&namespace, "", 10, "").await.unwrap();
    memory.delete(&namespace, "a", None).await.unwrap();
    let after = snapshot();

    let calls = changed(
        &before,
        &after,
        "tessera_dependency_call_duration_seconds_count",
    );
    for (dependency, operation) in [
        ("redis", "set"),
        ("redis", "get"),
        ("redis", "cas"),
        ("redis", "incr"),
        ("redis", "delete"),
        ("redis", "ensure"),
        ("redis", "activate"),
        ("postgres", "load"),
        ("postgres", "advance"),
        ("postgres", "begin"),
        ("postgres", "commit"),
        ("postgres", "persist"),
        ("postgres", "list"),
    ] {
        assert!(
            value(&calls, &call_count(dependency, operation)) >= 1.0,
            "{dependency} {operation} timed: {calls:#?}"
        );
    }
    // Once a key is loaded, one script call per write.
    assert_eq!(
        value(&calls, &call_count("redis", "cas")),
        1.0,
        "{calls:#?}"
    );
    assert!(
        changed(&before, &after, "tessera_dependency_call_errors_total").is_empty(),
        "no call failed"
    );
    let idle = out_of_flight().await;
    assert_eq!(value(&idle, &in_flight("redis")), 0.0, "redis in flight");
    assert_eq!(
        value(&idle, &in_flight("postgres")),
        0.0,
        "postgres in flight"
    );

    assert_eq!(
        value(&after, "tessera_pool_max_connections{pool=\"memory\"}"),
        7.0,
        "the pool's size as configured"
    );
    let open = value(
        &after,
        "tessera_pool_connections{pool=\"memory\",state=\"idle\"}",
    ) + value(
        &after,
        "tessera_pool_connections{pool=\"memory\",state=\"in_use\"}",
    );
    assert!((1.0..=7.0).contains(&open), "{open} connections open");
}

/// The series of `tessera_memory_loads_total` / `tessera_memory_fences_total`.
fn loads(outcome: &str) -> String {
    format!("tessera_memory_loads_total{{outcome=\"{outcome}\"}}")
}

fn fences(kind: &str) -> String {
    format!("tessera_memory_fences_total{{kind=\"{kind}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_of_known_labels_render_zero_before_any_event() {
    let _memory = durable_service().await;
    tessera_payment::metrics::init();
    let text = tessera_runtime::metrics::render();
    let samples = snapshot();
    for series in [
        loads("loaded"),
        loads("absent"),
        loads("error"),
        fences("persist"),
        fences("discard"),
        "tessera_payments_total{outcome=\"settled\"}".into(),
        "tessera_payment_refusals_total{reason=\"already_presented\"}".into(),
        "tessera_settlement_failures_total{reason=\"timeout\"}".into(),
        "tessera_settlement_duration_seconds_count{outcome=\"failed\"}".into(),
    ] {
        assert_eq!(samples.get(&series), Some(&0.0), "{series} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_loads_and_a_stale_generation_is_fenced() {
    let memory = durable_memory(Limits::default()).await;
    let namespace = unique_namespace("metrics-fence");

    let before = snapshot();
    let absent = memory.get(&namespace, "never").await;
    assert!(absent.is_err(), "a key never written is not found");
    let after_read = snapshot();
    assert_eq!(
        changed(&before, &after_read, "tessera_memory_loads_total"),
        BTreeMap::from([(loads("absent"), 1.0)]),
        "a read of a key never written asks PostgreSQL once"
    );

    let first = memory.set(&namespace, "k", "1", None, None).await.unwrap();
    let after_write = snapshot();
    assert_eq!(
        changed(&after_read, &after_write, "tessera_memory_loads_total"),
        BTreeMap::from([(loads("loaded"), 1.0)]),
        "a first write loads (creates) the key's row"
    );

    // Another replica loaded the key after its Redis lost it: PostgreSQL's
    // generation moved on, while this Redis still holds the old one.
    let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
    let advanced = sqlx::query(
        "UPDATE memory_entries SET prior_gen = gen, prior_rev = revision, gen = gen + 1
         WHERE namespace = $1 AND key = 'k'",
    )
    .bind(&namespace)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(advanced.rows_affected(), 1);

    let second = memory.set(&namespace, "k", "2", None, None).await.unwrap();
    let after_fence = snapshot();
    assert_eq!(
        changed(&after_write, &after_fence, "tessera_memory_"),
        BTreeMap::from([
            (fences("persist"), 1.0),
            (fences("discard"), 1.0),
            (loads("loaded"), 1.0),
        ]),
        "the stale write is refused by PostgreSQL, discarded in Redis, and redone on a new load"
    );
    assert_eq!(second.revision, first.revision + 1, "the write counts once");
    assert_eq!(
        value(
            &changed(
                &after_write,
                &after_fence,
                "tessera_dependency_call_duration_seconds_count"
            ),
            &call_count("postgres", "fence")
        ),
        1.0,
        "the refused persist read the row's fence"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_dropped_mid_way_leave_flight() {
    let memory = durable_memory(Limits::default()).await;
    let namespace = unique_namespace("metrics-dropped");
    let mut dropped = 0;
    for i in 0..200u64 {
        // Long enough to start the calls, too short for most to finish.
        let key = format!("k{}", i % 8);
        let write = memory.set(&namespace, &key, "1", None, None);
        if tokio::time::timeout(Duration::from_micros(50 + i * 5), write)
            .await
            .is_err()
        {
            dropped += 1;
        }
    }
    assert!(dropped > 0, "some calls were dropped mid-way");
    // What the dropped calls queued (persist rounds, loads) still runs in
    // the store's own tasks.
    let now = out_of_flight().await;
    assert_eq!(value(&now, &in_flight("redis")), 0.0, "redis in flight");
    assert_eq!(
        value(&now, &in_flight("postgres")),
        0.0,
        "postgres in flight"
    );
    assert!(value(&now, &call_count("redis", "set")) > 0.0);
}

/// The all-in-one's shape: the gateway over memory (Redis + PostgreSQL)
/// called in process.
async fn all_in_one() -> GatewayHarness {
    GatewayHarness::start_in_process(durable_memory(Limits::default()).await).await
}

fn requests(route: &str, status: &str) -> String {
    format!("tessera_requests_total{{route=\"{route}\",service=\"gateway\",status=\"{status}\"}}")
}

/// Waits until nothing the last call started is still running: the
/// store's marks in the background, and the call event, sent within
/// `STATS_FLUSH_MILLIS` (250 ms by default).
async fn settled() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rest_call_counts_once_in_the_all_in_one() {
    let gateway = all_in_one().await;
    let agent = unique_namespace("metrics-rest");
    let put = gateway
        .post("/api/memory", &agent, json!({ "key": "k", "value": 1 }))
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    settled().await;

    let before = snapshot();
    let got = gateway.get("/api/memory?key=k", &agent).await;
    assert_eq!(got.status, 200, "{}", got.body);
    settled().await;
    let after = snapshot();

    // Counted once, by the gateway, under its route: the memory service
    // it calls in process is not a server of its own here.
    assert_eq!(
        changed(&before, &after, "tessera_requests_total"),
        BTreeMap::from([(requests("/api/memory", "200"), 1.0)]),
    );
    assert_eq!(
        changed(&before, &after, "tessera_request_duration_seconds_count"),
        BTreeMap::from([(
            "tessera_request_duration_seconds_count{route=\"/api/memory\",service=\"gateway\"}"
                .to_string(),
            1.0
        )]),
    );
    // What else it adds: the memory read (one Redis round trip; the key is
    // durable and marked so) and the call event queued for the stats
    // service, recorded in process on its SQLite file.
    let calls = changed(
        &before,
        &after,
        "tessera_dependency_call_duration_seconds_count",
    );
    assert_eq!(
        value(&calls, &call_count("redis", "get")),
        1.0,
        "{calls:#?}"
    );
    assert_eq!(
        value(&calls, &call_count("sqlite", "stats_record")),
        1.0,
        "{calls:#?}"
    );
    assert_eq!(
        value(
            &changed(&before, &after, "tessera_stats_events_sent_total"),
            "tessera_stats_events_sent_total"
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_tool_call_counts_once_under_mcp_not_under_its_rest_route() {
    let gateway = all_in_one().await;
    let agent = unique_namespace("metrics-mcp");
    let put = gateway
        .post("/api/memory", &agent, json!({ "key": "k", "value": 1 }))
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    settled().await;

    let before = snapshot();
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/mcp", gateway.url()))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-agent-id", &agent)
        .body(
            json!({
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": { "name": "agent.memory.get", "arguments": { "key": "k" } },
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(answer["result"]["isError"], true, "{answer}");
    assert!(answer["result"].is_object(), "{answer}");
    settled().await;
    let after = snapshot();

    assert_eq!(
        changed(&before, &after, "tessera_requests_total"),
        BTreeMap::from([(requests("/mcp", "200"), 1.0)]),
        "the REST route the tool runs through, in process, is not counted again"
    );
    let calls = changed(
        &before,
        &after,
        "tessera_dependency_call_duration_seconds_count",
    );
    assert_eq!(
        value(&calls, &call_count("redis", "get")),
        1.0,
        "{calls:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_grpc_call_counts_once_under_its_method() {
    let gateway = all_in_one().await;
    let agent = unique_namespace("metrics-grpc");
    let put = gateway
        .post("/api/memory", &agent, json!({ "key": "k", "value": 1 }))
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    settled().await;

    let mut client = MemoryServiceClient::connect(gateway.url().to_string())
        .await
        .unwrap();
    let before = snapshot();
    let mut request = tonic::Request::new(pb::GetRequest {
        key: "k".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-agent-id", agent.parse().unwrap());
    let entry = client.get(request).await.unwrap().into_inner();
    assert_eq!(entry.key, "k");
    settled().await;
    let after = snapshot();

    assert_eq!(
        changed(&before, &after, "tessera_requests_total"),
        BTreeMap::from([(requests("/tessera.memory.v1.MemoryService/Get", "200"), 1.0)]),
    );
}
