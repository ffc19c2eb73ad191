//! The MCP rate limit on free (pure-CPU) tool calls: per client IP, a
//! minute's and an hour's budget, each a GCRA cell per IP
//! ([`tessera_ratelimit::Limiter`]) where `RATE_LIMIT_STORE` keeps the REST
//! limits' cells. A Redis limiter connects on the first call (the gateway's
//! routes are assembled synchronously); a Redis that cannot be reached lets
//! calls through, logged, as every other limit does.

use super::McpConfig;
use crate::rate_limit::RateLimitStore;
use axum::extract::ConnectInfo;
use http::request::Parts;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tessera_ratelimit::{Decision, Limiter, Quota};
use tokio::sync::OnceCell;

/// A call the limit refused: who, which budget, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub client: String,
    pub limit: u32,
    pub per: &'static str,
    pub retry_after: Duration,
}

impl Refused {
    /// Whole seconds, rounded up: retrying sooner would be refused again.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }

    pub fn message(&self) -> String {
        format!(
            "too many free tool calls over MCP from {}: at most {} a {}; retry after {} s",
            self.client,
            self.limit,
            self.per,
            self.retry_after_seconds()
        )
    }
}

/// One budget: `limit` calls per `per`.
struct Window {
    per: &'static str,
    limit: u32,
    quota: Quota,
    store: RateLimitStore,
    limiter: OnceCell<Limiter>,
}

impl Window {
    fn new(
        per: &'static str,
        limit: u32,
        quota: Option<Quota>,
        store: &RateLimitStore,
    ) -> Option<Self> {
        Some(Window {
            per,
            limit,
            quota: quota?,
            store: store.clone(),
            limiter: OnceCell::new(),
        })
    }

    /// The limiter, made (and connected, in Redis) on its first use.
    async fn limiter(&self) -> anyhow::Result<&Limiter> {
        self.limiter
            .get_or_try_init(|| async {
                match &self.store {
                    RateLimitStore::Local => Ok(Limiter::local(self.quota)),
                    RateLimitStore::Redis(url) => {
                        let name = format!("mcp-per-{}", self.per);
                        Limiter::redis(url, &name, self.quota).await
                    }
                }
            })
            .await
    }

    async fn check(&self, client: &str) -> Result<(), Refused> {
        let decision = match self.limiter().await {
            Ok(limiter) => limiter.check(client).await.map_err(anyhow::Error::from),
            Err(error) => Err(error),
        };
        match decision {
            Ok(Decision::Allowed { .. }) => Ok(()),
            Ok(Decision::Limited { retry_after }) => Err(Refused {
                client: client.to_string(),
                limit: self.limit,
                per: self.per,
                retry_after,
            }),
            Err(error) => {
                tracing::warn!(per = self.per, error = %format!("{error:#}"), "MCP rate limit unavailable: the call is let through");
                Ok(())
            }
        }
    }
}

/// The minute's and the hour's budgets, and who counts as one client.
#[derive(Clone)]
pub(crate) struct McpLimit {
    windows: Arc<[Window]>,
    trusted_proxies: Arc<[IpNet]>,
}

impl McpLimit {
    pub fn new(config: &McpConfig, store: &RateLimitStore, trusted_proxies: &[IpNet]) -> Self {
        let windows = [
            Window::new(
                "minute",
                config.max_per_minute,
                Quota::per_minute(config.max_per_minute),
                store,
            ),
            Window::new(
                "hour",
                config.max_per_hour,
                Quota::per_hour(config.max_per_hour),
                store,
            ),
        ];
        McpLimit {
            windows: windows.into_iter().flatten().collect(),
            trusted_proxies: trusted_proxies.into(),
        }
    }

    /// Counts one free call of the client of `parts` against each budget.
    pub async fn check(&self, parts: &Parts) -> Result<(), Refused> {
        let client = crate::rate_limit::client_key(self.client_ip(parts));
        for window in self.windows.iter() {
            window.check(&client).await?;
        }
        Ok(())
    }

    /// The per-IP rule of every limit (`rate_limit::client_ip`).
    fn client_ip(&self, parts: &Parts) -> IpAddr {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        crate::rate_limit::client_ip(&self.trusted_proxies, peer, &parts.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, forwarded: Option<&str>) -> Parts {
        let mut request = http::Request::builder().uri("/mcp");
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
        parts.extensions.insert(ConnectInfo(peer));
        parts
    }

    fn limit(per_minute: u32, per_hour: u32, trusted: &str) -> McpLimit {
        let config = McpConfig {
            max_per_minute: per_minute,
            max_per_hour: per_hour,
            ..McpConfig::default()
        };
        let proxies = crate::rate_limit::parse_trusted_proxies(trusted).unwrap();
        McpLimit::new(&config, &RateLimitStore::Local, &proxies)
    }

    #[tokio::test]
    async fn the_tighter_budget_refuses_with_its_retry_time() {
        let limit = limit(5, 2, "");
        let caller = parts("203.0.113.7", None);
        assert!(limit.check(&caller).await.is_ok());
        assert!(limit.check(&caller).await.is_ok());
        let refused = limit.check(&caller).await.unwrap_err();
        assert_eq!((refused.per, refused.limit), ("hour", 2));
        assert_eq!(refused.client, "203.0.113.7");
        // Two an hour: one more is regained every 30 minutes.
        assert!(
            (1700..=1800).contains(&refused.retry_after_seconds()),
            "{refused:?}"
        );
        assert!(
            refused.message().contains("retry after"),
            "{}",
            refused.message()
        );
        // Another client has its own budget.
        assert!(limit.check(&parts("203.0.113.8", None)).await.is_ok());
    }

    #[tokio::test]
    async fn zero_is_no_limit() {
        let limit = limit(0, 0, "");
        for _ in 0..50 {
            assert!(limit.check(&parts("203.0.113.7", None)).await.is_ok());
        }
    }

    #[tokio::test]
    async fn only_a_trusted_proxy_names_the_client() {
        let limit = limit(1, 0, "10.0.0.0/8");
        let behind_proxy = parts("10.1.2.3", Some("198.51.100.1"));
        assert!(limit.check(&behind_proxy).await.is_ok());
        let refused = limit.check(&behind_proxy).await.unwrap_err();
        assert_eq!(refused.client, "198.51.100.1");
        // An untrusted peer cannot pick its cell with the header.
        let direct = parts("203.0.113.9", Some("198.51.100.1"));
        assert!(limit.check(&direct).await.is_ok());
        assert_eq!(
            limit.check(&direct).await.unwrap_err().client,
            "203.0.113.9"
        );
    }
}
