//! One way to ask a dependency whether it answers.

use futures::future::BoxFuture;
use sqlx::Connection;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An async check: `Ok` when the dependency answered as it should.
pub type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How a dependency is asked.
#[derive(Clone)]
pub enum Check {
    /// `PING` on a new connection.
    Redis(redis::Client),
    /// `SELECT 1` on a new connection to this URL.
    Postgres(String),
    /// `eth_blockNumber` at this JSON-RPC URL.
    JsonRpc(String, reqwest::Client),
    /// `GET` of this URL answers 2xx.
    HttpGet(String, reqwest::Client),
    /// Anything else, e.g. a gRPC call to a service.
    Custom(CheckFn),
    /// Not used by this deployment: never probed.
    NotConfigured,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::Redis(_) => "Check::Redis",
            Check::Postgres(_) => "Check::Postgres",
            Check::JsonRpc(..) => "Check::JsonRpc",
            Check::HttpGet(..) => "Check::HttpGet",
            Check::Custom(_) => "Check::Custom",
            Check::NotConfigured => "Check::NotConfigured",
        })
    }
}

/// What one probe saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Unix milliseconds when the probe started.
    pub at_ms: i64,
    pub latency: Duration,
    /// `None`: up.
    pub error: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

impl Check {
    /// Redis at `url`; a URL the client cannot parse is a check that fails
    /// saying so.
    pub fn redis(url: &str) -> Check {
        match redis::Client::open(url) {
            Ok(client) => Check::Redis(client),
            Err(error) => {
                let message = format!("invalid Redis URL: {error}");
                Check::custom(move || {
                    let message = message.clone();
                    async move { Err(message) }
                })
            }
        }
    }

    /// `check` as a [`Check::Custom`].
    pub fn custom<F, Fut>(check: F) -> Check
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        Check::Custom(Arc::new(move || Box::pin(check())))
    }

    pub fn is_configured(&self) -> bool {
        !matches!(self, Check::NotConfigured)
    }

    /// Probes once, giving up after `timeout`. `None` when not configured.
    pub async fn probe(&self, timeout: Duration) -> Option<Outcome> {
        if !self.is_configured() {
            return None;
        }
        let at_ms = crate::unix_millis();
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, self.ask()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        Some(Outcome {
            at_ms,
            latency: started.elapsed(),
            error: result.err(),
        })
    }

    async fn ask(&self) -> Result<(), String> {
        match self {
            Check::Redis(client) => {
                let mut connection = client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|error| error.to_string())?;
                let pong: String = redis::cmd("PING")
                    .query_async(&mut connection)
                    .await
                    .map_err(|error| error.to_string())?;
                if pong == "PONG" {
                    Ok(())
                } else {
                    Err(format!("PING answered {pong:?}"))
                }
            }
            Check::Postgres(url) => {
                let mut connection = sqlx::PgConnection::connect(url)
                    .await
                    .map_err(|error| error.to_string())?;
                let one: i32 = sqlx::query_scalar("SELECT 1")
                    .fetch_one(&mut connection)
                    .await
                    .map_err(|error| error.to_string())?;
                let _ = connection.close().await;
                if one == 1 {
                    Ok(())
                } else {
                    Err(format!("SELECT 1 answered {one}"))
                }
            }
            Check::JsonRpc(url, client) => {
                let request = serde_json::json!({
                    "jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": [],
                });
                let response = client
                    .post(url)
                    .json(&request)
                    .send()
                    .await
                    .map_err(|error| error.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("HTTP {}", response.status().as_u16()));
                }
                let body: serde_json::Value =
                    response.json().await.map_err(|error| error.to_string())?;
                match body.get("result").and_then(|result| result.as_str()) {
                    Some(block) if block.starts_with("0x") => Ok(()),
                    _ => Err(format!("no block number in {body}")),
                }
            }
            Check::HttpGet(url, client) => {
                let response = client
                    .get(url)
                    .send()
                    .await
                    .map_err(|error| error.to_string())?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {}", response.status().as_u16()))
                }
            }
            Check::Custom(check) => check().await,
            Check::NotConfigured => Ok(()),
        }
    }
}
