//! Call accounting on both stores: batches aggregate by route, by rail and
//! network, by UTC day; charged-but-failed calls and revenue; the last 25
//! calls newest first; totals survive a restart; a bad batch counts
//! nothing; concurrent batches all count.

mod common;

use common::{Backend, Place};
use tessera_error::ErrorKind;
use tessera_proto::stats::v1 as pb;
use tessera_stats::Stats;

/// 2025-10-10T08:53:50.123Z.
const DAY_ONE_MS: i64 = 1_760_086_430_123;
const DAY_MS: i64 = 86_400_000;

fn event(route: &str, rail: &str, status: u32, amount: &str, at_ms: i64) -> pb::CallEvent {
    pb::CallEvent {
        route: route.into(),
        rail: rail.into(),
        network: if rail == "usdc" {
            "eip155:8453".into()
        } else {
            String::new()
        },
        http_status: status,
        amount: amount.into(),
        at_ms,
        duration_us: 1234,
    }
}

fn usdc_on(network: &str, route: &str, amount: &str, at_ms: i64) -> pb::CallEvent {
    pb::CallEvent {
        network: network.into(),
        ..event(route, "usdc", 200, amount, at_ms)
    }
}

async fn aggregates_by_route_rail_network_and_day(backend: Backend) {
    let place = Place::new(backend).await;
    let stats = place.stats().await;
    let day_two = DAY_ONE_MS + DAY_MS;
    let first_batch = vec![
        usdc_on("eip155:8453", "tools.sha256", "1000", DAY_ONE_MS),
        usdc_on("eip155:84532", "tools.sha256", "1000", DAY_ONE_MS + 1),
        event("tools.sha256", "pow", 200, "", DAY_ONE_MS + 2),
        event("memory.get", "free", 200, "", DAY_ONE_MS + 3),
        event("memory.get", "replay", 200, "", DAY_ONE_MS + 4),
    ];
    assert_eq!(stats.record(first_batch).await.unwrap(), 5);
    let second_batch = vec![
        usdc_on("eip155:8453", "memory.cas", "2500", day_two),
        event("memory.cas", "usdc", 500, "2500", day_two + 1),
        event("tools.sha256", "pow", 429, "", day_two + 2),
    ];
    assert_eq!(stats.record(second_batch).await.unwrap(), 3);

    let summary = stats.summary().await.unwrap();
    assert_eq!(summary.total_calls, 8);
    assert_eq!(summary.total_revenue, "7000");
    assert_eq!(summary.charged_but_failed, 1);
    assert_eq!(summary.since_ms, DAY_ONE_MS);

    let routes: Vec<(&str, u64, u64, &str)> = summary
        .routes
        .iter()
        .map(|r| (r.route.as_str(), r.calls, r.errors, r.revenue.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            ("tools.sha256", 4, 1, "2000"),
            ("memory.cas", 2, 1, "5000"),
            ("memory.get", 2, 0, "0"),
        ]
    );

    let rails: Vec<(&str, &str, u64, &str)> = summary
        .rails
        .iter()
        .map(|r| {
            (
                r.rail.as_str(),
                r.network.as_str(),
                r.calls,
                r.revenue.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rails,
        [
            ("usdc", "eip155:8453", 3, "6000"),
            ("pow", "", 2, "0"),
            ("free", "", 1, "0"),
            ("replay", "", 1, "0"),
            ("usdc", "eip155:84532", 1, "1000"),
        ]
    );

    let days: Vec<(&str, u64, u64, &str)> = summary
        .daily
        .iter()
        .map(|d| (d.day.as_str(), d.calls, d.errors, d.revenue.as_str()))
        .collect();
    assert_eq!(
        days,
        [("2025-10-10", 5, 0, "2000"), ("2025-10-11", 3, 2, "5000")]
    );
    place.remove().await;
}
on_both!(aggregates_by_route_rail_network_and_day);

async fn keeps_the_last_25_calls_newest_first(backend: Backend) {
    let place = Place::new(backend).await;
    let stats = place.stats().await;
    // 30 calls in three batches arriving out of time order (the newest
    // first, one batch reversed): recent means by time, not by arrival.
    let calls: Vec<pb::CallEvent> = (0..30)
        .map(|i| event(&format!("route.{i}"), "free", 200, "", DAY_ONE_MS + i))
        .collect();
    stats.record(calls[20..30].to_vec()).await.unwrap();
    stats.record(calls[0..10].to_vec()).await.unwrap();
    stats
        .record(calls[10..20].iter().rev().cloned().collect())
        .await
        .unwrap();

    let summary = stats.summary().await.unwrap();
    assert_eq!(summary.total_calls, 30);
    let recent: Vec<&str> = summary.recent.iter().map(|c| c.route.as_str()).collect();
    let expected: Vec<String> = (5..30).rev().map(|i| format!("route.{i}")).collect();
    assert_eq!(recent, expected);
    let newest = &summary.recent[0];
    assert_eq!(newest.at_ms, DAY_ONE_MS + 29);
    assert_eq!(newest.http_status, 200);
    assert_eq!(newest.rail, "free");
    assert_eq!(newest.duration_us, 1234);
    place.remove().await;
}
on_both!(keeps_the_last_25_calls_newest_first);

async fn totals_survive_a_restart(backend: Backend) {
    let place = Place::new(backend).await;
    {
        let stats = place.stats().await;
        stats
            .record(vec![
                event("tools.uuid", "usdc", 200, "300", DAY_ONE_MS),
                event("tools.uuid", "usdc", 502, "300", DAY_ONE_MS + 5),
            ])
            .await
            .unwrap();
    }
    let reopened = place.stats().await;
    reopened
        .record(vec![event("tools.uuid", "pow", 200, "", DAY_ONE_MS - 5)])
        .await
        .unwrap();
    let summary = reopened.summary().await.unwrap();
    assert_eq!(summary.total_calls, 3);
    assert_eq!(summary.total_revenue, "600");
    assert_eq!(summary.charged_but_failed, 1);
    assert_eq!(
        summary.since_ms,
        DAY_ONE_MS - 5,
        "the earliest call, whenever it came"
    );
    assert_eq!(summary.recent.len(), 3);
    place.remove().await;
}
on_both!(totals_survive_a_restart);

async fn a_bad_batch_counts_nothing(backend: Backend) {
    let place = Place::new(backend).await;
    let stats = place.stats().await;
    let error = stats
        .record(vec![
            event("tools.uuid", "usdc", 200, "300", DAY_ONE_MS),
            event("tools.uuid", "usdc", 200, "3.5", DAY_ONE_MS),
        ])
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidArgument);
    assert_eq!(
        error.details.get("field").map(String::as_str),
        Some("events[1].amount")
    );
    let error = stats
        .record(vec![event("tools.uuid", "card", 200, "", DAY_ONE_MS)])
        .await
        .unwrap_err();
    assert_eq!(
        error.details.get("field").map(String::as_str),
        Some("events[0].rail")
    );
    let summary = stats.summary().await.unwrap();
    assert_eq!(summary.total_calls, 0);
    assert_eq!(summary.since_ms, 0);
    assert!(summary.recent.is_empty() && summary.routes.is_empty());
    place.remove().await;
}
on_both!(a_bad_batch_counts_nothing);

async fn concurrent_batches_all_count(backend: Backend) {
    let place = Place::new(backend).await;
    let stats = place.stats().await;
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let stats: Stats = stats.clone();
            tokio::spawn(async move {
                for batch in 0..10 {
                    let events = (0..20)
                        .map(|i| {
                            let route = ["tools.a", "tools.b"][i % 2];
                            let at = DAY_ONE_MS + (writer * 1000 + batch * 20 + i as i64);
                            event(route, "usdc", 200, "7", at)
                        })
                        .collect();
                    stats.record(events).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let summary = stats.summary().await.unwrap();
    assert_eq!(summary.total_calls, 800);
    assert_eq!(summary.total_revenue, (800 * 7).to_string());
    assert_eq!(summary.routes.len(), 2);
    assert!(summary.routes.iter().all(|r| r.calls == 400));
    assert_eq!(summary.recent.len(), 25);
    place.remove().await;
}
on_both!(concurrent_batches_all_count);

async fn the_leaderboard_without_a_chain_is_empty_and_top_is_checked(backend: Backend) {
    let place = Place::new(backend).await;
    let stats = place.stats().await;
    let board = stats.leaderboard(0).await.unwrap();
    assert_eq!(board, pb::LeaderboardResponse::default());
    assert!(stats.leaderboard(100).await.is_ok());
    let error = stats.leaderboard(101).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidArgument);
    assert_eq!(error.details.get("field").map(String::as_str), Some("top"));
    assert!(error.message.starts_with("top "), "{}", error.message);
    place.remove().await;
}
on_both!(the_leaderboard_without_a_chain_is_empty_and_top_is_checked);
