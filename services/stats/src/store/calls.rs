//! Call accounting: a batch adds to `stats_daily` and `stats_recent` in one
//! transaction; the summary reads both in one snapshot.

use super::{db_error, on_db, timed, Db, Dependency, StatsStore};
use crate::event::Call;
use std::collections::BTreeMap;
use tessera_error::Error;
use tessera_proto::stats::v1 as pb;

/// Recent calls kept (and answered).
pub const RECENT: usize = 25;
/// Days the summary answers, the most recent.
pub const DAYS: i64 = 90;
/// Routes the summary answers, most calls first.
pub const ROUTES: i64 = 200;

/// One `stats_daily` row's key: (day, route, rail, network).
type DayKey<'a> = (&'a str, &'a str, &'static str, &'a str);

/// What a batch adds to one `stats_daily` row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sums {
    calls: i64,
    errors: i64,
    charged_but_failed: i64,
    revenue: i64,
    first_at_ms: i64,
}

const ADD_TO_DAY: &str = "
INSERT INTO stats_daily
    (day, route, rail, network, calls, errors, charged_but_failed, revenue, first_at_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (day, route, rail, network) DO UPDATE SET
    calls = stats_daily.calls + excluded.calls,
    errors = stats_daily.errors + excluded.errors,
    charged_but_failed = stats_daily.charged_but_failed + excluded.charged_but_failed,
    revenue = stats_daily.revenue + excluded.revenue,
    first_at_ms = CASE WHEN excluded.first_at_ms < stats_daily.first_at_ms
                       THEN excluded.first_at_ms ELSE stats_daily.first_at_ms END";

const ADD_RECENT: &str =
    "INSERT INTO stats_recent (route, rail, network, http_status, amount, at_ms, duration_us) ";

const TRIM_RECENT: &str = "
DELETE FROM stats_recent WHERE seq NOT IN
    (SELECT seq FROM stats_recent ORDER BY at_ms DESC, seq DESC LIMIT $1)";

const TOTALS: &str = "
SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT),
       CAST(COALESCE(SUM(revenue), 0) AS BIGINT),
       CAST(COALESCE(SUM(charged_but_failed), 0) AS BIGINT),
       MIN(first_at_ms)
FROM stats_daily";

const BY_ROUTE: &str = "
SELECT route, CAST(SUM(calls) AS BIGINT), CAST(SUM(errors) AS BIGINT),
       CAST(SUM(revenue) AS BIGINT)
FROM stats_daily GROUP BY route ORDER BY 2 DESC, 1 LIMIT $1";

const BY_RAIL: &str = "
SELECT rail, network, CAST(SUM(calls) AS BIGINT), CAST(SUM(revenue) AS BIGINT)
FROM stats_daily GROUP BY rail, network ORDER BY 3 DESC, 1, 2";

const BY_DAY: &str = "
SELECT day, CAST(SUM(calls) AS BIGINT), CAST(SUM(errors) AS BIGINT),
       CAST(SUM(revenue) AS BIGINT)
FROM stats_daily GROUP BY day ORDER BY day DESC LIMIT $1";

const LAST_CALLS: &str = "
SELECT route, rail, network, http_status, amount, at_ms, duration_us
FROM stats_recent ORDER BY at_ms DESC, seq DESC LIMIT $1";

/// The batch summed by `stats_daily` row, in key order (so concurrent
/// batches lock rows in one order).
fn by_day(calls: &[Call]) -> BTreeMap<DayKey<'_>, Sums> {
    let mut sums: BTreeMap<DayKey<'_>, Sums> = BTreeMap::new();
    for call in calls {
        let key = (
            call.day.as_str(),
            call.route.as_str(),
            call.rail.as_str(),
            call.network.as_str(),
        );
        let row = sums.entry(key).or_insert(Sums {
            first_at_ms: call.at_ms,
            ..Sums::default()
        });
        row.calls += 1;
        row.errors += i64::from(call.failed());
        row.charged_but_failed += i64::from(call.charged_but_failed());
        // At most MAX_BATCH × MAX_AMOUNT: no overflow.
        row.revenue += call.amount;
        row.first_at_ms = row.first_at_ms.min(call.at_ms);
    }
    sums
}

/// The batch's newest [`RECENT`] calls, oldest first (so the newest gets
/// the highest sequence number among equal times).
fn newest(calls: &[Call]) -> Vec<&Call> {
    let mut order: Vec<&Call> = calls.iter().collect();
    order.sort_by_key(|call| call.at_ms);
    let skip = order.len().saturating_sub(RECENT);
    order.split_off(skip)
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl StatsStore {
    /// Adds `calls` to the counts, all or nothing.
    pub async fn record(&self, calls: &[Call]) -> Result<(), Error> {
        if calls.is_empty() {
            return Ok(());
        }
        let rows = by_day(calls);
        let recent = newest(calls);
        on_db!(&self.db, "stats_record", pool => {
            let mut tx = pool.begin().await.map_err(db_error)?;
            for ((day, route, rail, network), sums) in &rows {
                sqlx::query(ADD_TO_DAY)
                    .bind(*day)
                    .bind(*route)
                    .bind(*rail)
                    .bind(*network)
                    .bind(sums.calls)
                    .bind(sums.errors)
                    .bind(sums.charged_but_failed)
                    .bind(sums.revenue)
                    .bind(sums.first_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            }
            // One statement for the batch's newest calls: a round trip per
            // row was most of a batch's cost at gateway rates.
            let mut add_recent = sqlx::QueryBuilder::new(ADD_RECENT);
            add_recent.push_values(&recent, |mut row, call| {
                row.push_bind(call.route.as_str())
                    .push_bind(call.rail.as_str())
                    .push_bind(call.network.as_str())
                    .push_bind(i64::from(call.http_status))
                    .push_bind(call.amount.to_string())
                    .push_bind(call.at_ms)
                    .push_bind(call.duration_us);
            });
            add_recent
                .build()
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            sqlx::query(TRIM_RECENT)
                .bind(RECENT as i64)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)
        })
    }

    /// Totals, by route, by rail, by day and the last calls, from one
    /// snapshot.
    pub async fn summary(&self) -> Result<pb::SummaryResponse, Error> {
        macro_rules! read_summary {
            ($tx:ident) => {{
                let (total_calls, total_revenue, charged_but_failed, since_ms): (
                    i64,
                    i64,
                    i64,
                    Option<i64>,
                ) = sqlx::query_as(TOTALS)
                    .fetch_one(&mut *$tx)
                    .await
                    .map_err(db_error)?;
                let routes: Vec<(String, i64, i64, i64)> = sqlx::query_as(BY_ROUTE)
                    .bind(ROUTES)
                    .fetch_all(&mut *$tx)
                    .await
                    .map_err(db_error)?;
                let rails: Vec<(String, String, i64, i64)> = sqlx::query_as(BY_RAIL)
                    .fetch_all(&mut *$tx)
                    .await
                    .map_err(db_error)?;
                let days: Vec<(String, i64, i64, i64)> = sqlx::query_as(BY_DAY)
                    .bind(DAYS)
                    .fetch_all(&mut *$tx)
                    .await
                    .map_err(db_error)?;
                let recent: Vec<(String, String, String, i64, String, i64, i64)> =
                    sqlx::query_as(LAST_CALLS)
                        .bind(RECENT as i64)
                        .fetch_all(&mut *$tx)
                        .await
                        .map_err(db_error)?;
                $tx.commit().await.map_err(db_error)?;
                pb::SummaryResponse {
                    total_calls: count(total_calls),
                    total_revenue: total_revenue.to_string(),
                    charged_but_failed: count(charged_but_failed),
                    since_ms: since_ms.unwrap_or(0),
                    routes: routes
                        .into_iter()
                        .map(|(route, calls, errors, revenue)| pb::RouteStats {
                            route,
                            calls: count(calls),
                            errors: count(errors),
                            revenue: revenue.to_string(),
                        })
                        .collect(),
                    rails: rails
                        .into_iter()
                        .map(|(rail, network, calls, revenue)| pb::RailStats {
                            rail,
                            network,
                            calls: count(calls),
                            revenue: revenue.to_string(),
                        })
                        .collect(),
                    daily: days
                        .into_iter()
                        .rev()
                        .map(|(day, calls, errors, revenue)| pb::DayStats {
                            day,
                            calls: count(calls),
                            errors: count(errors),
                            revenue: revenue.to_string(),
                        })
                        .collect(),
                    recent: recent
                        .into_iter()
                        .map(
                            |(route, rail, network, status, amount, at_ms, duration_us)| {
                                pb::RecentCall {
                                    route,
                                    rail,
                                    network,
                                    http_status: u32::try_from(status).unwrap_or(0),
                                    amount,
                                    at_ms,
                                    duration_us: count(duration_us),
                                }
                            },
                        )
                        .collect(),
                }
            }};
        }
        match &self.db {
            Db::Sqlite(pool) => {
                timed(Dependency::Sqlite, "stats_summary", async {
                    let mut tx = pool.begin().await.map_err(db_error)?;
                    Ok(read_summary!(tx))
                })
                .await
            }
            Db::Postgres(pool) => {
                timed(Dependency::Postgres, "stats_summary", async {
                    let mut tx = pool.begin().await.map_err(db_error)?;
                    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    Ok(read_summary!(tx))
                })
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Rail;

    fn call(route: &str, at_ms: i64, amount: i64, status: u16) -> Call {
        Call {
            route: route.into(),
            rail: Rail::Usdc,
            network: "eip155:8453".into(),
            http_status: status,
            amount,
            at_ms,
            duration_us: 10,
            day: "2025-10-10".into(),
        }
    }

    #[test]
    fn a_batch_sums_by_row() {
        let calls = [
            call("a", 5, 100, 200),
            call("a", 3, 100, 502),
            call("b", 4, 0, 404),
        ];
        let rows = by_day(&calls);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[&("2025-10-10", "a", "usdc", "eip155:8453")],
            Sums {
                calls: 2,
                errors: 1,
                charged_but_failed: 1,
                revenue: 200,
                first_at_ms: 3
            }
        );
        assert_eq!(
            rows[&("2025-10-10", "b", "usdc", "eip155:8453")],
            Sums {
                calls: 1,
                errors: 1,
                charged_but_failed: 0,
                revenue: 0,
                first_at_ms: 4
            }
        );
    }

    #[test]
    fn only_the_newest_calls_of_a_batch_are_kept() {
        let calls: Vec<Call> = (0..40).rev().map(|at| call("a", at, 0, 200)).collect();
        let kept = newest(&calls);
        assert_eq!(kept.len(), RECENT);
        assert_eq!(kept.first().unwrap().at_ms, 15);
        assert_eq!(kept.last().unwrap().at_ms, 39);
    }
}
