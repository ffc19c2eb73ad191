//! Every gRPC call through `GrpcServer` is counted, and the metrics listener
//! serves the series.

use std::time::Duration;
use tessera_proto::stats::v1 as pb;
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::{metrics, metrics_endpoint, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The value of the sample line starting with `series` (labels in sorted
/// order, as the text format renders them).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("a number"))
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// The stats service on a fresh SQLite file: a real service to call.
async fn stats_server(
) -> tessera_proto::stats::v1::stats_service_server::StatsServiceServer<tessera_stats::Stats> {
    let path = std::env::temp_dir()
        .join(format!("tessera-metrics-{:016x}", rand_suffix()))
        .join("stats.db");
    let store = tessera_stats::StatsStore::sqlite(&path).await.unwrap();
    tessera_stats::server(tessera_stats::Stats::new(store, None))
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ u64::from(std::process::id())
}

#[tokio::test]
async fn grpc_calls_are_counted_and_served_on_metrics() {
    let shutdown = Shutdown::new();
    let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc_listener.local_addr().unwrap();
    let server = GrpcServer::new(tessera_stats::SERVICE_NAME, stats_server().await);
    let grpc = tokio::spawn(server.serve(grpc_listener, shutdown.clone()));
    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics_listener.local_addr().unwrap();
    let metrics_task = tokio::spawn(metrics_endpoint::serve(metrics_listener, shutdown.clone()));

    let mut client =
        pb::stats_service_client::StatsServiceClient::connect(format!("http://{grpc_addr}"))
            .await
            .unwrap();
    for _ in 0..2 {
        let status = client
            .leaderboard(pb::LeaderboardRequest { top: 101 })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    // The call is recorded when its response body is done, which can be a
    // moment after the client saw the status.
    let series =
        r#"tessera_requests_total{route="Leaderboard",service="stats",status="InvalidArgument"}"#;
    let mut response = String::new();
    for _ in 0..50 {
        response = http_get(metrics_addr, "/metrics").await;
        if sample(&response, series) == Some(2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{response}"
    );
    assert_eq!(sample(&response, series), Some(2.0), "{response}");
    let count = r#"tessera_request_duration_seconds_count{route="Leaderboard",service="stats"}"#;
    assert_eq!(sample(&response, count), Some(2.0), "{response}");

    shutdown.trigger();
    grpc.await.unwrap().unwrap();
    metrics_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn grpc_successes_read_their_status_from_the_trailers() {
    let shutdown = Shutdown::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = GrpcServer::new(tessera_stats::SERVICE_NAME, stats_server().await);
    let grpc = tokio::spawn(server.serve(listener, shutdown.clone()));

    // A successful unary call sends grpc-status 0 in the trailers.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: tessera_stats::SERVICE_NAME.to_string(),
        })
        .await
        .unwrap();
    assert_eq!(reply.into_inner().status, 1, "SERVING");
    // Unknown methods are one bounded series, not one per path.
    let mut unknown = tonic::client::Grpc::new(channel);
    unknown.ready().await.unwrap();
    let status = unknown
        .unary::<(), (), _>(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/tessera.stats.v1.StatsService/NoSuchMethod"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);

    let check = r#"tessera_requests_total{route="Check",service="grpc",status="OK"}"#;
    let unmatched =
        r#"tessera_requests_total{route="unmatched",service="grpc",status="Unimplemented"}"#;
    let mut text = String::new();
    for _ in 0..50 {
        text = metrics::render();
        if sample(&text, check).is_some() && sample(&text, unmatched).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sample(&text, check) >= Some(1.0), "{text}");
    assert!(sample(&text, unmatched) >= Some(1.0), "{text}");
    assert!(!text.contains("NoSuchMethod"), "{text}");

    shutdown.trigger();
    grpc.await.unwrap().unwrap();
}
