//! The service over the network, as the gateway calls it: a batch recorded,
//! the summary read back, refusals carried as `tessera_error::Error`s.

mod common;

use common::{Backend, Place};
use tessera_error::{Error, ErrorKind};
use tessera_proto::stats::v1 as pb;
use tessera_proto::stats::v1::stats_service_client::StatsServiceClient;
use tessera_runtime::grpc::GrpcServer;
use tessera_runtime::Shutdown;

#[tokio::test]
async fn record_summary_and_refusals_over_grpc() {
    let place = Place::new(Backend::Sqlite).await;
    let shutdown = Shutdown::new();
    let stats = tessera_stats::Stats::open(&place.config(), &shutdown)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = GrpcServer::new(tessera_stats::SERVICE_NAME, tessera_stats::server(stats));
    let task = tokio::spawn(server.serve(listener, shutdown.clone()));
    let mut client = StatsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();

    let event = pb::CallEvent {
        route: "tools.sha256".into(),
        rail: "usdc".into(),
        network: "eip155:8453".into(),
        http_status: 200,
        amount: "1000".into(),
        at_ms: 1_760_086_430_123,
        duration_us: 900,
    };
    let recorded = client
        .record_calls(pb::RecordCallsRequest {
            events: vec![event.clone(); 3],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recorded.recorded, 3);
    let summary = client
        .summary(pb::SummaryRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.total_calls, 3);
    assert_eq!(summary.total_revenue, "3000");

    let bad = pb::CallEvent {
        amount: "1e3".into(),
        ..event
    };
    let status = client
        .record_calls(pb::RecordCallsRequest { events: vec![bad] })
        .await
        .unwrap_err();
    let error = Error::from_status(&status);
    assert_eq!(error.kind, ErrorKind::InvalidArgument);
    assert_eq!(error.reason, tessera_stats::event::INVALID_CALL_EVENT);
    assert_eq!(
        error.details.get("field").map(String::as_str),
        Some("events[0].amount")
    );

    let status = client
        .leaderboard(pb::LeaderboardRequest { top: 101 })
        .await
        .unwrap_err();
    let error = Error::from_status(&status);
    assert_eq!(error.kind, ErrorKind::InvalidArgument);
    assert_eq!(error.details.get("field").map(String::as_str), Some("top"));
    let board = client
        .leaderboard(pb::LeaderboardRequest { top: 0 })
        .await
        .unwrap()
        .into_inner();
    assert!(board.asset.is_empty() && board.sellers.is_empty());

    shutdown.trigger();
    task.await.unwrap().unwrap();
    place.remove().await;
}
