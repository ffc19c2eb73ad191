//! Call accounting at the gateway: a client of the stats gRPC service, the
//! queue that carries one event per call to it, and the free routes over it.
//!
//! - [`CallEvents::emit`] never waits and never fails a request: an event
//!   goes into a bounded queue (`STATS_QUEUE_CAPACITY`), or, when the queue
//!   is full, is dropped and counted
//!   (`tessera_stats_events_dropped_total{reason="queue_full"}`).
//! - One task drains the queue into batches of at most `STATS_BATCH_SIZE`,
//!   each sent within `STATS_FLUSH_MILLIS` of its first event with one
//!   `RecordCalls`. A batch that fails (or takes longer than
//!   [`SEND_TIMEOUT`]) is dropped and counted (`reason="send_failed"`), never
//!   retried: the queue stays bounded while the stats service is down.
//!   Sent events count in `tessera_stats_events_sent_total`; events waiting
//!   in the queue now, in `tessera_stats_queue_depth` (every queue of the
//!   process together).
//! - The task ends once every clone of its [`CallEvents`] is dropped (the
//!   router, when the server has drained), after sending what was queued.
//! - `GET /api/stats` renders the summary, `GET /api/leaderboard?top=` the
//!   seller leaderboard.

use crate::errors::ApiError;
use crate::extract::QueryParams;
use crate::timestamps::rfc3339_millis;
use crate::transport::{self, answer, Transport};
use axum::extract::State;
use axum::Json;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_error::Error;
use tessera_proto::stats::v1 as pb;
use tessera_proto::stats::v1::stats_service_client::StatsServiceClient;
use tessera_proto::stats::v1::stats_service_server::StatsService;
use tessera_runtime::grpc_auth::ServiceToken;
use tokio::sync::mpsc;
use tonic::service::interceptor::InterceptedService;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest one `RecordCalls` may take, over gRPC or in process.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Failed batches are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// The rails of [`pb::CallEvent::rail`].
pub const RAIL_USDC: &str = "usdc";
pub const RAIL_POW: &str = "pow";
pub const RAIL_FREE: &str = "free";
/// An Idempotency-Key replay, served from the store.
pub const RAIL_REPLAY: &str = "replay";

/// What `/api/leaderboard` says when the stats service indexes no chain.
pub const NO_CHAIN_NOTE: &str = "no chain is configured, so no sellers are indexed: set \
     STATS_RPC_URL (or PAYMENT_RPC_URL) and STATS_ASSET (or PAYMENT_ASSET, default USDC of \
     STATS_NETWORK) on the stats service";

/// The stats service, over gRPC or (in the all-in-one) called directly.
#[derive(Clone)]
pub struct StatsClient {
    calls: Calls,
}

#[derive(Clone)]
enum Calls {
    Grpc(StatsServiceClient<InterceptedService<Transport, ServiceToken>>),
    Direct(Arc<dyn StatsService>),
}

impl std::fmt::Debug for StatsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.calls {
            Calls::Grpc(_) => f.write_str("StatsClient::Grpc"),
            Calls::Direct(_) => f.write_str("StatsClient::Direct"),
        }
    }
}

impl StatsClient {
    /// A client connecting on first use.
    pub fn connect_lazy(url: &str, token: ServiceToken) -> anyhow::Result<Self> {
        let transport = transport::lazy(url, CONNECT_TIMEOUT, CALL_TIMEOUT)?;
        Ok(StatsClient {
            calls: Calls::Grpc(StatsServiceClient::with_interceptor(transport, token)),
        })
    }

    /// A client calling `service` (the stats service of this process)
    /// directly.
    pub fn direct(service: impl StatsService) -> Self {
        StatsClient {
            calls: Calls::Direct(Arc::new(service)),
        }
    }

    /// Records a batch; the events the service recorded.
    pub(crate) async fn record(&self, events: Vec<pb::CallEvent>) -> Result<u32, Error> {
        let request = pb::RecordCallsRequest { events };
        let recorded = answer(match &self.calls {
            Calls::Grpc(client) => client.clone().record_calls(request).await,
            Calls::Direct(service) => service.record_calls(tonic::Request::new(request)).await,
        })?;
        Ok(recorded.recorded)
    }

    /// Whether the stats service answers (its leaderboard's head).
    pub(crate) async fn ping(&self) -> Result<(), Error> {
        self.leaderboard(1).await.map(|_| ())
    }

    pub(crate) async fn summary(&self) -> Result<pb::SummaryResponse, Error> {
        let request = pb::SummaryRequest {};
        answer(match &self.calls {
            Calls::Grpc(client) => client.clone().summary(request).await,
            Calls::Direct(service) => service.summary(tonic::Request::new(request)).await,
        })
    }

    pub(crate) async fn leaderboard(&self, top: u32) -> Result<pb::LeaderboardResponse, Error> {
        let request = pb::LeaderboardRequest { top };
        answer(match &self.calls {
            Calls::Grpc(client) => client.clone().leaderboard(request).await,
            Calls::Direct(service) => service.leaderboard(tonic::Request::new(request)).await,
        })
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// The event of a call that started at `started` and ends now: `route` (the
/// catalog route id, or the route pattern), `rail` (one of the `RAIL_*`),
/// `network` (CAIP-2, for [`RAIL_USDC`]; ignored otherwise), the answer's
/// `http_status`, and `charged`, the atomic units settled for it ("" or
/// "0": none).
pub(crate) fn call_event(
    route: &str,
    rail: &str,
    network: &str,
    http_status: u16,
    charged: &str,
    started: Instant,
) -> pb::CallEvent {
    pb::CallEvent {
        route: route.to_string(),
        rail: rail.to_string(),
        network: if rail == RAIL_USDC {
            network.to_string()
        } else {
            String::new()
        },
        http_status: u32::from(http_status),
        amount: charged.to_string(),
        at_ms: unix_ms(),
        duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    }
}

/// The drain tasks of this process's queues, for [`flush_call_events`].
static DRAINS: Mutex<Vec<tokio::task::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits, up to `timeout`, for every call-event queue of this process to
/// send what it holds. Each drains once its router is dropped, so call this
/// after the HTTP server stopped: a graceful stop then loses no event.
pub async fn flush_call_events(timeout: Duration) {
    let drains: Vec<_> = std::mem::take(&mut *DRAINS.lock().expect("drains"));
    let all = await_each(drains);
    if tokio::time::timeout(timeout, all).await.is_err() {
        tracing::warn!(
            timeout_ms = timeout.as_millis() as u64,
            "call events still queued at shutdown were not all sent"
        );
    }
}

async fn await_each(drains: Vec<tokio::task::JoinHandle<()>>) {
    for drain in drains {
        let _ = drain.await;
    }
}

/// The queue's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Events waiting at most; more are dropped.
    pub capacity: usize,
    /// Events per `RecordCalls` at most.
    pub batch_size: usize,
    /// A batch is sent at most this long after its first event.
    pub flush: Duration,
}

/// Events since this queue started, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub sent: u64,
    /// The queue was full.
    pub queue_full: u64,
    /// `RecordCalls` failed or timed out.
    pub send_failed: u64,
    /// The draining task had ended.
    pub closed: u64,
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    queue_full: AtomicU64,
    send_failed: AtomicU64,
    closed: AtomicU64,
}

struct Metrics {
    sent: IntCounter,
    dropped: IntCounterVec,
    depth: IntGauge,
}

/// Every `tessera_stats_events_dropped_total` reason, created at 0.
const DROPPED_REASONS: [&str; 3] = ["queue_full", "send_failed", "closed"];

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let dropped = tessera_runtime::metrics::register(
        IntCounterVec::new(
            Opts::new(
                "tessera_stats_events_dropped_total",
                "Call events dropped: queue_full (the stats service is behind), \
                 send_failed (RecordCalls failed or timed out), closed (no queue).",
            ),
            &["reason"],
        )
        .expect("a valid counter"),
    );
    for reason in DROPPED_REASONS {
        dropped.with_label_values(&[reason]);
    }
    Metrics {
        sent: tessera_runtime::metrics::register(
            IntCounter::new(
                "tessera_stats_events_sent_total",
                "Call events the stats service recorded.",
            )
            .expect("a valid counter"),
        ),
        dropped,
        depth: tessera_runtime::metrics::register(
            IntGauge::new(
                "tessera_stats_queue_depth",
                "Call events waiting in the gateway's queue to the stats service.",
            )
            .expect("a valid gauge"),
        ),
    }
});

impl Counts {
    fn add(&self, outcome: Outcome, events: u64) {
        let (count, reason) = match outcome {
            Outcome::Sent => {
                self.sent.fetch_add(events, Ordering::Relaxed);
                METRICS.sent.inc_by(events);
                return;
            }
            Outcome::QueueFull => (&self.queue_full, "queue_full"),
            Outcome::SendFailed => (&self.send_failed, "send_failed"),
            Outcome::Closed => (&self.closed, "closed"),
        };
        count.fetch_add(events, Ordering::Relaxed);
        METRICS.dropped.with_label_values(&[reason]).inc_by(events);
    }

    fn snapshot(&self) -> EventCounts {
        EventCounts {
            sent: self.sent.load(Ordering::Relaxed),
            queue_full: self.queue_full.load(Ordering::Relaxed),
            send_failed: self.send_failed.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Sent,
    QueueFull,
    SendFailed,
    Closed,
}

/// Where call events go: a bounded queue drained to the stats service, or
/// nowhere ([`CallEvents::off`]).
#[derive(Clone)]
pub struct CallEvents {
    queue: Option<mpsc::Sender<pb::CallEvent>>,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for CallEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallEvents")
            .field("on", &self.queue.is_some())
            .field("counts", &self.counts.snapshot())
            .finish()
    }
}

impl CallEvents {
    /// No events are kept (`STATS_EVENTS=false`).
    pub fn off() -> Self {
        CallEvents {
            queue: None,
            counts: Arc::default(),
        }
    }

    /// The queue `config` describes, drained to `stats` ([`CallEvents::off`]
    /// when `config.stats_events` is false).
    pub fn from_config(config: &crate::GatewayConfig, stats: StatsClient) -> Self {
        if !config.stats_events {
            return CallEvents::off();
        }
        let settings = QueueSettings {
            capacity: config.stats_queue_capacity,
            batch_size: config.stats_batch_size,
            flush: config.stats_flush,
        };
        let (events, drain) = CallEvents::start(stats, settings);
        let mut drains = DRAINS.lock().expect("drains");
        drains.retain(|drain| !drain.is_finished());
        drains.push(drain);
        events
    }

    /// A queue drained to `stats` by a task of its own, which ends (after
    /// sending what was queued) once every clone of the queue is dropped:
    /// await the handle to know it has.
    pub fn start(
        stats: StatsClient,
        settings: QueueSettings,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(settings.capacity.max(1));
        LazyLock::force(&METRICS);
        let counts = Arc::new(Counts::default());
        let drain = Drain {
            stats,
            batch_size: settings.batch_size.max(1),
            flush: settings.flush,
            counts: counts.clone(),
            last_warning: Mutex::new(None),
        };
        let task = tokio::spawn(drain.run(receiver));
        let events = CallEvents {
            queue: Some(sender),
            counts,
        };
        (events, task)
    }

    /// Queues `event` for the stats service: never waits, never fails; a
    /// full queue drops it (counted).
    pub fn emit(&self, event: pb::CallEvent) {
        let Some(queue) = &self.queue else {
            return;
        };
        // Counted before it is queued, so the drain cannot take it out of
        // the depth first.
        METRICS.depth.inc();
        let dropped = match queue.try_send(event) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => Outcome::QueueFull,
            Err(mpsc::error::TrySendError::Closed(_)) => Outcome::Closed,
        };
        METRICS.depth.dec();
        self.counts.add(dropped, 1);
    }

    /// Whether events are kept at all.
    pub fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// Events since this queue started, by outcome.
    pub fn counts(&self) -> EventCounts {
        self.counts.snapshot()
    }
}

/// The task between the queue and the stats service.
struct Drain {
    stats: StatsClient,
    batch_size: usize,
    flush: Duration,
    counts: Arc<Counts>,
    last_warning: Mutex<Option<Instant>>,
}

impl Drain {
    async fn run(self, mut queue: mpsc::Receiver<pb::CallEvent>) {
        let mut batch = Vec::with_capacity(self.batch_size);
        // Idle until an event comes; then gather a batch until it is full,
        // `flush` has passed, or the queue is closed.
        let taken = |events: usize| METRICS.depth.sub(events as i64);
        loop {
            let received = queue.recv_many(&mut batch, self.batch_size).await;
            if received == 0 {
                break;
            }
            taken(received);
            let deadline = tokio::time::Instant::now() + self.flush;
            while batch.len() < self.batch_size {
                let room = self.batch_size - batch.len();
                match tokio::time::timeout_at(deadline, queue.recv_many(&mut batch, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(received) => taken(received),
                }
            }
            self.send(std::mem::take(&mut batch)).await;
        }
    }

    async fn send(&self, batch: Vec<pb::CallEvent>) {
        let events = batch.len() as u64;
        let error = match tokio::time::timeout(SEND_TIMEOUT, self.stats.record(batch)).await {
            Ok(Ok(_)) => {
                self.counts.add(Outcome::Sent, events);
                return;
            }
            Ok(Err(error)) => format!("{} ({})", error.message, error.reason),
            Err(_) => format!("no answer within {SEND_TIMEOUT:?}"),
        };
        self.counts.add(Outcome::SendFailed, events);
        let mut last = self.last_warning.lock().expect("never poisoned");
        if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                events,
                dropped_so_far = self.counts.snapshot().send_failed,
                "stats service: a batch of call events was dropped: {error}"
            );
        }
    }
}

/// `top` from the query string, as text so a bad value is refused naming it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaderboardParams {
    top: Option<String>,
}

fn refuse_top(message: String) -> ApiError {
    ApiError(Error::invalid("INVALID_TOP", message).with_detail("field", "top"))
}

/// `GET /api/stats`.
pub(crate) async fn stats(State(stats): State<StatsClient>) -> Result<Json<Value>, ApiError> {
    Ok(Json(render_summary(&stats.summary().await?)))
}

/// `GET /api/leaderboard?top=` (1 to 100, default 10).
pub(crate) async fn leaderboard(
    State(stats): State<StatsClient>,
    QueryParams(params): QueryParams<LeaderboardParams>,
) -> Result<Json<Value>, ApiError> {
    let top = match params.top.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(text) => match text.parse::<u32>() {
            Ok(0) => return Err(refuse_top("top is 0; it must be between 1 and 100".into())),
            Ok(top) => top,
            Err(_) => {
                return Err(refuse_top(format!(
                    "top is {text:?}; it must be a whole number between 1 and 100"
                )))
            }
        },
    };
    Ok(Json(render_leaderboard(&stats.leaderboard(top).await?)))
}

fn network_or_null(network: &str) -> Value {
    if network.is_empty() {
        Value::Null
    } else {
        Value::from(network)
    }
}

fn render_summary(summary: &pb::SummaryResponse) -> Value {
    json!({
        "totalCalls": summary.total_calls,
        "totalRevenue": summary.total_revenue,
        "currency": "USDC",
        "decimals": 6,
        "chargedButFailed": summary.charged_but_failed,
        "since": (summary.since_ms > 0).then(|| rfc3339_millis(summary.since_ms)),
        "byTool": summary.routes.iter().map(|route| json!({
            "route": route.route,
            "calls": route.calls,
            "errors": route.errors,
            "revenue": route.revenue,
        })).collect::<Vec<_>>(),
        "byRail": summary.rails.iter().map(|rail| json!({
            "rail": rail.rail,
            "network": network_or_null(&rail.network),
            "calls": rail.calls,
            "revenue": rail.revenue,
        })).collect::<Vec<_>>(),
        "daily": summary.daily.iter().map(|day| json!({
            "day": day.day,
            "calls": day.calls,
            "errors": day.errors,
            "revenue": day.revenue,
        })).collect::<Vec<_>>(),
        "recent": summary.recent.iter().map(|call| json!({
            "route": call.route,
            "rail": call.rail,
            "network": network_or_null(&call.network),
            "status": call.http_status,
            "amount": if call.amount.is_empty() { "0" } else { call.amount.as_str() },
            "at": rfc3339_millis(call.at_ms),
            "durationMs": call.duration_us as f64 / 1000.0,
        })).collect::<Vec<_>>(),
    })
}

fn render_leaderboard(board: &pb::LeaderboardResponse) -> Value {
    if board.asset.is_empty() {
        return json!({
            "asset": null,
            "network": null,
            "indexedThroughBlock": null,
            "chainHeadBlock": null,
            "sellers": [],
            "note": NO_CHAIN_NOTE,
        });
    }
    json!({
        "asset": board.asset,
        "network": board.network,
        "indexedThroughBlock": board.indexed_through_block,
        "chainHeadBlock": board.chain_head_block,
        "sellers": board.sellers.iter().enumerate().map(|(index, seller)| json!({
            "rank": index + 1,
            "payTo": seller.pay_to,
            "volume": seller.volume,
            "transactions": seller.transactions,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_error::ErrorKind;
    use tonic::{Request, Response, Status};

    /// 2025-10-10T08:53:50.123Z.
    const AT_MS: i64 = 1_760_086_430_123;

    fn event(route: &str, rail: &str, status: u32, amount: &str) -> pb::CallEvent {
        pb::CallEvent {
            route: route.into(),
            rail: rail.into(),
            network: if rail == RAIL_USDC {
                "eip155:8453".into()
            } else {
                String::new()
            },
            http_status: status,
            amount: amount.into(),
            at_ms: AT_MS,
            duration_us: 2500,
        }
    }

    /// A stats service whose `RecordCalls` never answers, or always fails.
    struct Broken {
        stall: bool,
        calls: Arc<AtomicU64>,
    }

    #[tonic::async_trait]
    impl StatsService for Broken {
        async fn record_calls(
            &self,
            _request: Request<pb::RecordCallsRequest>,
        ) -> Result<Response<pb::RecordCallsResponse>, Status> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.stall {
                std::future::pending::<()>().await;
            }
            Err(Status::unavailable("the stats store is down"))
        }

        async fn summary(
            &self,
            _request: Request<pb::SummaryRequest>,
        ) -> Result<Response<pb::SummaryResponse>, Status> {
            Err(Status::unavailable("down"))
        }

        async fn leaderboard(
            &self,
            _request: Request<pb::LeaderboardRequest>,
        ) -> Result<Response<pb::LeaderboardResponse>, Status> {
            Err(Status::unavailable("down"))
        }
    }

    /// The real stats service on a fresh SQLite file, noting each batch's size.
    struct Recording {
        stats: tessera_stats::Stats,
        batches: Arc<Mutex<Vec<usize>>>,
    }

    #[tonic::async_trait]
    impl StatsService for Recording {
        async fn record_calls(
            &self,
            request: Request<pb::RecordCallsRequest>,
        ) -> Result<Response<pb::RecordCallsResponse>, Status> {
            self.batches
                .lock()
                .unwrap()
                .push(request.get_ref().events.len());
            StatsService::record_calls(&self.stats, request).await
        }

        async fn summary(
            &self,
            request: Request<pb::SummaryRequest>,
        ) -> Result<Response<pb::SummaryResponse>, Status> {
            StatsService::summary(&self.stats, request).await
        }

        async fn leaderboard(
            &self,
            request: Request<pb::LeaderboardRequest>,
        ) -> Result<Response<pb::LeaderboardResponse>, Status> {
            StatsService::leaderboard(&self.stats, request).await
        }
    }

    async fn sqlite_stats() -> tessera_stats::Stats {
        let path = std::env::temp_dir()
            .join(format!(
                "tessera-gateway-stats-{}-{:?}",
                std::process::id(),
                Instant::now()
            ))
            .join("stats.db");
        let store = tessera_stats::StatsStore::sqlite(&path).await.unwrap();
        tessera_stats::Stats::new(store, None)
    }

    async fn recording() -> (StatsClient, Arc<Mutex<Vec<usize>>>) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let service = Recording {
            stats: sqlite_stats().await,
            batches: batches.clone(),
        };
        (StatsClient::direct(service), batches)
    }

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what} did not happen within 5 s");
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_blocking() {
        let calls = Arc::new(AtomicU64::new(0));
        let stalled = StatsClient::direct(Broken {
            stall: true,
            calls: calls.clone(),
        });
        let settings = QueueSettings {
            capacity: 4,
            batch_size: 2,
            flush: Duration::from_millis(5),
        };
        let (events, _task) = CallEvents::start(stalled, settings);
        let dropped_before = METRICS.dropped.with_label_values(&["queue_full"]).get();
        let started = Instant::now();
        for _ in 0..100 {
            events.emit(event("tools.uuid", RAIL_FREE, 200, ""));
        }
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "emit waited: {:?}",
            started.elapsed()
        );
        // Nothing has drained yet (this thread never yielded).
        assert_eq!(events.counts().queue_full, 96);
        // The drain takes one batch of 2 and stalls on it; 2 more fit.
        wait_for("the stalled RecordCalls", || {
            calls.load(Ordering::SeqCst) == 1
        })
        .await;
        let started = Instant::now();
        for _ in 0..10 {
            events.emit(event("tools.uuid", RAIL_FREE, 200, ""));
        }
        assert!(started.elapsed() < Duration::from_millis(100));
        let counts = events.counts();
        assert_eq!(counts.queue_full, 96 + 8);
        assert_eq!((counts.sent, counts.send_failed), (0, 0));
        assert!(METRICS.dropped.with_label_values(&["queue_full"]).get() >= dropped_before + 104);
        let text = tessera_runtime::metrics::render();
        assert!(
            text.contains("tessera_stats_events_dropped_total{reason=\"queue_full\"}"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_queue_depth_is_what_waits_and_every_drop_reason_starts_at_zero() {
        let calls = Arc::new(AtomicU64::new(0));
        let stalled = StatsClient::direct(Broken {
            stall: true,
            calls: calls.clone(),
        });
        let settings = QueueSettings {
            capacity: 4,
            batch_size: 2,
            flush: Duration::from_millis(5),
        };
        let (events, _task) = CallEvents::start(stalled, settings);
        let text = tessera_runtime::metrics::render();
        for reason in DROPPED_REASONS {
            let series = format!("tessera_stats_events_dropped_total{{reason=\"{reason}\"}}");
            assert!(text.contains(&series), "{series} in {text}");
        }
        assert!(text.contains("tessera_stats_queue_depth "), "{text}");
        let depth = || METRICS.depth.get();
        let before = depth();
        for _ in 0..10 {
            events.emit(event("tools.uuid", RAIL_FREE, 200, ""));
        }
        assert_eq!(
            depth(),
            before + 4,
            "a full queue holds 4; the rest dropped"
        );
        wait_for("the stalled RecordCalls", || {
            calls.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(depth(), before + 2, "the drain took a batch of 2");

        let (client, _) = recording().await;
        let (events, task) = CallEvents::start(
            client,
            QueueSettings {
                capacity: 100,
                batch_size: 10,
                flush: Duration::from_millis(5),
            },
        );
        for _ in 0..25 {
            events.emit(event("tools.uuid", RAIL_FREE, 200, ""));
        }
        drop(events);
        task.await.unwrap();
        assert_eq!(depth(), before + 2, "what was sent no longer waits");
    }

    #[tokio::test]
    async fn batches_reach_the_stats_service_and_its_summary() {
        let (client, batches) = recording().await;
        let settings = QueueSettings {
            capacity: 1000,
            batch_size: 10,
            flush: Duration::from_millis(20),
        };
        let (events, _task) = CallEvents::start(client.clone(), settings);
        for i in 0..35 {
            let event = match i % 5 {
                0 => event("tools.sha256", RAIL_USDC, 200, "1000"),
                1 => event("tools.sha256", RAIL_USDC, 502, "1000"),
                2 => event("tools.uuid", RAIL_POW, 200, ""),
                3 => event("memory.get", RAIL_FREE, 404, ""),
                _ => event("memory.get", RAIL_REPLAY, 200, ""),
            };
            events.emit(event);
        }
        wait_for("35 events sent", || events.counts().sent == 35).await;
        let sizes = batches.lock().unwrap().clone();
        assert!(sizes.iter().all(|size| *size <= 10), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 35);
        assert!(sizes.len() >= 4, "{sizes:?}");

        let Json(body) = stats(State(client)).await.unwrap();
        assert_eq!(body["totalCalls"], 35);
        assert_eq!(body["totalRevenue"], "14000");
        assert_eq!(body["currency"], "USDC");
        assert_eq!(body["decimals"], 6);
        assert_eq!(body["chargedButFailed"], 7);
        assert_eq!(body["since"], "2025-10-10T08:53:50.123Z");
        // Ties on calls go by route.
        assert_eq!(
            body["byTool"],
            json!([
                {"route": "memory.get", "calls": 14, "errors": 7, "revenue": "0"},
                {"route": "tools.sha256", "calls": 14, "errors": 7, "revenue": "14000"},
                {"route": "tools.uuid", "calls": 7, "errors": 0, "revenue": "0"},
            ])
        );
        assert_eq!(
            body["byRail"][0],
            json!({"rail": "usdc", "network": "eip155:8453", "calls": 14, "revenue": "14000"})
        );
        let free = body["byRail"]
            .as_array()
            .unwrap()
            .iter()
            .find(|rail| rail["rail"] == "free")
            .unwrap();
        assert_eq!(free["network"], Value::Null);
        assert_eq!(
            body["daily"],
            json!([{"day": "2025-10-10", "calls": 35, "errors": 14, "revenue": "14000"}])
        );
        assert_eq!(body["recent"].as_array().unwrap().len(), 25);
        let last = &body["recent"][0];
        assert_eq!(last["at"], "2025-10-10T08:53:50.123Z");
        assert_eq!(last["durationMs"], 2.5);
        assert!(last["amount"] == "0" || last["amount"] == "1000", "{last}");
    }

    #[tokio::test]
    async fn a_failed_batch_is_dropped_and_counted_not_retried() {
        let calls = Arc::new(AtomicU64::new(0));
        let failing = StatsClient::direct(Broken {
            stall: false,
            calls: calls.clone(),
        });
        let settings = QueueSettings {
            capacity: 100,
            batch_size: 50,
            flush: Duration::from_millis(10),
        };
        let (events, _task) = CallEvents::start(failing, settings);
        for _ in 0..5 {
            events.emit(event("tools.uuid", RAIL_FREE, 200, ""));
        }
        wait_for("the batch dropped", || events.counts().send_failed == 5).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one batch, one attempt");
        assert_eq!(events.counts().sent, 0);
    }

    #[tokio::test]
    async fn what_is_queued_is_sent_when_the_queue_closes() {
        let (client, batches) = recording().await;
        let settings = QueueSettings {
            capacity: 100,
            batch_size: 100,
            flush: Duration::from_secs(600),
        };
        let (events, task) = CallEvents::start(client.clone(), settings);
        for _ in 0..3 {
            events.emit(event("tools.uuid", RAIL_POW, 200, ""));
        }
        let clone = events.clone();
        drop(events);
        drop(clone);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the drain ends without waiting for its flush time")
            .unwrap();
        assert_eq!(*batches.lock().unwrap(), [3]);
        assert_eq!(client.summary().await.unwrap().total_calls, 3);
    }

    #[tokio::test]
    async fn off_keeps_nothing() {
        let events = CallEvents::off();
        events.emit(event("tools.uuid", RAIL_FREE, 200, ""));
        assert!(!events.is_on());
        assert_eq!(events.counts(), EventCounts::default());
    }

    #[test]
    fn call_events_keep_a_network_for_usdc_only() {
        let started = Instant::now();
        let paid = call_event(
            "tools.sha256",
            RAIL_USDC,
            "eip155:8453",
            200,
            "1000",
            started,
        );
        assert_eq!(paid.network, "eip155:8453");
        assert_eq!(paid.amount, "1000");
        assert!(paid.at_ms > AT_MS);
        let free = call_event("tools.sha256", RAIL_POW, "eip155:8453", 429, "", started);
        assert_eq!(free.network, "");
        assert_eq!(free.http_status, 429);
    }

    fn top(text: Option<&str>) -> QueryParams<LeaderboardParams> {
        QueryParams(LeaderboardParams {
            top: text.map(str::to_string),
        })
    }

    #[tokio::test]
    async fn the_leaderboard_without_a_chain_says_what_to_set() {
        let client = StatsClient::direct(sqlite_stats().await);
        let Json(body) = leaderboard(State(client.clone()), top(None)).await.unwrap();
        assert_eq!(body["sellers"], json!([]));
        assert_eq!(body["asset"], Value::Null);
        assert_eq!(body["note"], NO_CHAIN_NOTE);
        assert!(leaderboard(State(client.clone()), top(Some("100")))
            .await
            .is_ok());
        for bad in ["0", "101", "-1", "ten", "99999999999"] {
            let ApiError(error) = leaderboard(State(client.clone()), top(Some(bad)))
                .await
                .expect_err(bad);
            assert_eq!(error.kind, ErrorKind::InvalidArgument, "{bad}");
            assert_eq!(error.http_status(), 400, "{bad}");
            assert_eq!(
                error.details.get("field").map(String::as_str),
                Some("top"),
                "{bad}"
            );
            assert!(error.message.starts_with("top "), "{}", error.message);
        }
    }

    #[test]
    fn sellers_are_ranked_as_the_service_orders_them() {
        let board = pb::LeaderboardResponse {
            sellers: vec![
                pb::Seller {
                    pay_to: "0xaa".into(),
                    volume: "1200".into(),
                    transactions: 2,
                },
                pb::Seller {
                    pay_to: "0xbb".into(),
                    volume: "600".into(),
                    transactions: 3,
                },
            ],
            asset: "0xtoken".into(),
            network: "eip155:84532".into(),
            indexed_through_block: 41,
            chain_head_block: 42,
        };
        assert_eq!(
            render_leaderboard(&board),
            json!({
                "asset": "0xtoken",
                "network": "eip155:84532",
                "indexedThroughBlock": 41,
                "chainHeadBlock": 42,
                "sellers": [
                    {"rank": 1, "payTo": "0xaa", "volume": "1200", "transactions": 2},
                    {"rank": 2, "payTo": "0xbb", "volume": "600", "transactions": 3},
                ],
            })
        );
    }
}
