//! Named checks probed together, every so often, and what each has seen.

use crate::check::Check;
use crate::record::{Record, Snapshot};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// One named dependency on a [`Board`].
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    /// What kind of dependency it is, e.g. `"dependency"` or `"service"`.
    pub kind: &'static str,
    /// How it is reached, e.g. `"redis"`, `"grpc"`, `"in_process"`.
    pub via: &'static str,
    check: Check,
    record: Mutex<Record>,
}

/// Checks probed together.
#[derive(Debug, Default)]
pub struct Board {
    entries: Vec<Entry>,
}

impl Board {
    pub fn new() -> Board {
        Board::default()
    }

    /// Adds the check `name`.
    pub fn with(
        mut self,
        name: &str,
        kind: &'static str,
        via: &'static str,
        check: Check,
    ) -> Board {
        self.entries.push(Entry {
            name: name.to_string(),
            kind,
            via,
            check,
            record: Mutex::new(Record::default()),
        });
        self
    }

    /// Probes every configured check at once, each bounded by `timeout`.
    pub async fn probe_all(&self, timeout: Duration) {
        let probes = self.entries.iter().map(|entry| async move {
            if let Some(outcome) = entry.check.probe(timeout).await {
                if let Some(error) = &outcome.error {
                    let error = crate::public_error(error);
                    tracing::warn!(dependency = %entry.name, %error, "probe failed");
                }
                entry.record.lock().expect("record").note(outcome);
            }
        });
        futures::future::join_all(probes).await;
    }

    /// Probes now and then every `every` until the board is dropped,
    /// handing the board to `probed` after each round (e.g. to export it).
    pub fn spawn(
        self: &Arc<Self>,
        every: Duration,
        timeout: Duration,
        probed: impl Fn(&Board) + Send + 'static,
    ) {
        let board: Weak<Board> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(board) = board.upgrade() else {
                    return;
                };
                board.probe_all(timeout).await;
                probed(&board);
            }
        });
    }

    /// Every entry and what it has seen, in the order added.
    pub fn snapshot(&self) -> Vec<(&Entry, Snapshot)> {
        self.entries
            .iter()
            .map(|entry| {
                let record = entry.record.lock().expect("record");
                (entry, record.snapshot(entry.check.is_configured()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::State;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn board_with(up: Arc<AtomicBool>) -> Board {
        Board::new()
            .with(
                "flaky",
                "service",
                "in_process",
                Check::custom(move || {
                    let up = up.load(Ordering::SeqCst);
                    async move {
                        if up {
                            Ok(())
                        } else {
                            Err("down".into())
                        }
                    }
                }),
            )
            .with("unused", "dependency", "redis", Check::NotConfigured)
    }

    #[tokio::test]
    async fn a_board_records_each_probe() {
        let up = Arc::new(AtomicBool::new(true));
        let board = board_with(up.clone());
        board.probe_all(Duration::from_secs(1)).await;
        up.store(false, Ordering::SeqCst);
        board.probe_all(Duration::from_secs(1)).await;
        let seen = board.snapshot();
        assert_eq!(seen[0].1.state, State::Down);
        assert_eq!(seen[0].1.availability, Some(0.5));
        assert_eq!(seen[1].1.state, State::NotConfigured);
        assert_eq!(seen[1].1.probes, 0);
    }

    #[tokio::test]
    async fn a_check_that_hangs_is_down_at_its_timeout() {
        let board = Board::new().with(
            "stalled",
            "dependency",
            "http",
            Check::custom(futures::future::pending),
        );
        board.probe_all(Duration::from_millis(50)).await;
        let (_, seen) = &board.snapshot()[0];
        assert_eq!(seen.state, State::Down);
        assert_eq!(seen.error.as_deref(), Some("no answer within 50 ms"));
    }

    #[tokio::test]
    async fn real_redis_and_postgres_answer_and_a_closed_port_does_not() {
        let redis_url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let database_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let http = reqwest::Client::new();
        let board = Board::new()
            .with("redis", "dependency", "redis", Check::redis(&redis_url))
            .with(
                "postgres",
                "dependency",
                "postgres",
                Check::Postgres(database_url),
            )
            .with(
                "redis-closed",
                "dependency",
                "redis",
                Check::redis(&format!("redis://127.0.0.1:{closed_port}")),
            )
            .with(
                "postgres-closed",
                "dependency",
                "postgres",
                Check::Postgres(format!("postgres://postgres@127.0.0.1:{closed_port}/test")),
            )
            .with(
                "rpc-closed",
                "dependency",
                "json-rpc",
                Check::JsonRpc(format!("http://127.0.0.1:{closed_port}"), http),
            );
        board.probe_all(Duration::from_secs(5)).await;
        let states: Vec<(String, State)> = board
            .snapshot()
            .iter()
            .map(|(entry, seen)| (entry.name.clone(), seen.state))
            .collect();
        assert_eq!(
            states,
            [
                ("redis".to_string(), State::Up),
                ("postgres".to_string(), State::Up),
                ("redis-closed".to_string(), State::Down),
                ("postgres-closed".to_string(), State::Down),
                ("rpc-closed".to_string(), State::Down),
            ]
        );
    }

    #[tokio::test]
    async fn json_rpc_and_http_checks_read_the_answer() {
        use axum::routing::{get, post};
        let app = axum::Router::new()
            .route(
                "/rpc",
                post(|| async {
                    axum::Json(serde_json::json!({"jsonrpc":"2.0","id":1,"result":"0x2a"}))
                }),
            )
            .route(
                "/not-rpc",
                post(|| async {
                    axum::Json(serde_json::json!({"jsonrpc":"2.0","id":1,"error":{"code":-32601}}))
                }),
            )
            .route("/supported", get(|| async { "ok" }))
            .route(
                "/broken",
                get(|| async { (axum::http::StatusCode::BAD_GATEWAY, "no") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        let board = Board::new()
            .with(
                "rpc",
                "dependency",
                "json-rpc",
                Check::JsonRpc(format!("{base}/rpc"), http.clone()),
            )
            .with(
                "not-rpc",
                "dependency",
                "json-rpc",
                Check::JsonRpc(format!("{base}/not-rpc"), http.clone()),
            )
            .with(
                "get",
                "dependency",
                "http",
                Check::HttpGet(format!("{base}/supported"), http.clone()),
            )
            .with(
                "broken",
                "dependency",
                "http",
                Check::HttpGet(format!("{base}/broken"), http),
            );
        board.probe_all(Duration::from_secs(5)).await;
        let seen = board.snapshot();
        assert_eq!(seen[0].1.state, State::Up);
        assert_eq!(seen[1].1.state, State::Down);
        assert_eq!(seen[2].1.state, State::Up);
        assert_eq!(seen[3].1.error.as_deref(), Some("HTTP 502"));
    }
}
