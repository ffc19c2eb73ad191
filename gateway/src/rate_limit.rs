//! Rate limits per surface, per client IP or per paying wallet: a GCRA cell
//! per key ([`tessera_ratelimit::Limiter`]), in this process or in Redis
//! (`RATE_LIMIT_STORE=redis`, one budget shared by every replica). Past the
//! limit a request is answered 429 with `Retry-After` and the IETF
//! `RateLimit` / `RateLimit-Policy` headers
//! (draft-ietf-httpapi-ratelimit-headers); within it, the headers say what
//! is left. A Redis that cannot be reached lets requests through (logged):
//! a limiter outage must not take the service down with it.
//!
//! The client IP is the connection's peer, or, when the peer is one of
//! `TRUSTED_PROXIES`, the nearest address in `X-Forwarded-For` that is not a
//! trusted proxy.

use crate::errors::Family;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tessera_error::{Error, ErrorKind};
use tessera_ratelimit::{Decision, Limiter, Quota};

/// Where the cells live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitStore {
    /// This process: each replica counts alone.
    Local,
    /// Redis at this URL, shared by every replica.
    Redis(String),
}

/// One surface's limit: `per_minute` requests per key, in bursts of as many.
#[derive(Clone)]
pub struct RateLimit {
    name: &'static str,
    per_minute: u32,
    limiter: Limiter,
    trusted_proxies: Arc<[IpNet]>,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("name", &self.name)
            .field("per_minute", &self.per_minute)
            .field("limiter", &self.limiter)
            .finish()
    }
}

/// What a check allows: the headers to answer with, or the 429.
pub enum Checked {
    Allowed(RateHeaders),
    Limited(Response),
}

/// The `RateLimit` / `RateLimit-Policy` headers of an allowed request.
pub struct RateHeaders {
    policy: HeaderValue,
    remaining: Option<HeaderValue>,
}

impl RateHeaders {
    pub fn apply(self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert("ratelimit-policy", self.policy);
        if let Some(remaining) = self.remaining {
            headers.insert("ratelimit", remaining);
        }
    }
}

/// Every surface's limit (`None`: no limit).
#[derive(Debug, Clone, Default)]
pub struct Surfaces {
    pub pow_challenges: Option<RateLimit>,
    pub pow_calls: Option<RateLimit>,
    pub free: Option<RateLimit>,
    pub paid_calls: Option<RateLimit>,
}

impl Surfaces {
    pub async fn open(config: &crate::GatewayConfig) -> anyhow::Result<Self> {
        let (store, proxies) = (&config.rate_limit_store, &config.trusted_proxies);
        Ok(Surfaces {
            pow_challenges: RateLimit::per_minute(
                "pow-challenge",
                config.pow_challenges_per_minute,
                proxies,
                store,
            )
            .await?,
            pow_calls: RateLimit::per_minute(
                "pow-call",
                config.pow_calls_per_minute,
                proxies,
                store,
            )
            .await?,
            free: RateLimit::per_minute("free", config.free_per_minute, proxies, store).await?,
            paid_calls: RateLimit::per_minute(
                "paid-call",
                config.paid_calls_per_minute,
                proxies,
                store,
            )
            .await?,
        })
    }
}

impl RateLimit {
    /// `None` when `per_minute` is 0 (no limit).
    pub async fn per_minute(
        name: &'static str,
        per_minute: u32,
        trusted_proxies: &[IpNet],
        store: &RateLimitStore,
    ) -> anyhow::Result<Option<Self>> {
        let Some(quota) = Quota::per_minute(per_minute) else {
            return Ok(None);
        };
        let limiter = match store {
            RateLimitStore::Local => Limiter::local(quota),
            RateLimitStore::Redis(url) => Limiter::redis(url, name, quota)
                .await
                .map_err(|e| anyhow::anyhow!("rate limit {name:?} in Redis: {e:#}"))?,
        };
        Ok(Some(RateLimit {
            name,
            per_minute,
            limiter,
            trusted_proxies: trusted_proxies.into(),
        }))
    }

    fn policy(&self) -> HeaderValue {
        header(format!("\"{}\";q={};w=60", self.name, self.per_minute))
    }

    fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        client_ip(&self.trusted_proxies, peer, headers)
    }

    /// `request`'s client IP, the key of a per-IP limit.
    pub fn client_of(&self, request: &Request) -> String {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        client_key(self.client_ip(peer, request.headers()))
    }

    /// Counts one request of `key` (a client IP, a wallet), named in the
    /// refusal.
    pub async fn check(&self, key: &str, family: Family) -> Checked {
        let decision = match self.limiter.check(key).await {
            Ok(decision) => decision,
            Err(error) => {
                tracing::warn!(surface = self.name, %error, "rate limit unavailable: the request is let through");
                return Checked::Allowed(RateHeaders {
                    policy: self.policy(),
                    remaining: None,
                });
            }
        };
        match decision {
            Decision::Allowed { remaining } => Checked::Allowed(RateHeaders {
                policy: self.policy(),
                remaining: Some(header(format!("\"{}\";r={remaining}", self.name))),
            }),
            Decision::Limited { retry_after } => {
                Checked::Limited(self.refusal(key, retry_after, family))
            }
        }
    }

    fn refusal(&self, who: &str, wait: Duration, family: Family) -> Response {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let error = Error::new(
            ErrorKind::RateLimited,
            "RATE_LIMITED",
            format!(
                "too many requests to {} from {who}: at most {} a minute; retry after {seconds} s",
                self.name, self.per_minute
            ),
        );
        let mut response = family.response(&error);
        let headers = response.headers_mut();
        headers.insert("retry-after", header(seconds.to_string()));
        headers.insert("ratelimit-policy", self.policy());
        headers.insert(
            "ratelimit",
            header(format!("\"{}\";r=0;t={seconds}", self.name)),
        );
        response
    }
}

/// The client's IP, the key of every per-IP limit: the connection's peer,
/// or, when the peer is a trusted proxy, the nearest `X-Forwarded-For` hop
/// that is not one (what the client itself put first is not believed).
pub(crate) fn client_ip(
    trusted_proxies: &[IpNet],
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> IpAddr {
    let Some(peer) = peer else {
        // No connection info (an in-process call): one shared cell.
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|net| net.contains(&ip));
    if !trusted(peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|hop| !trusted(*hop))
        .unwrap_or(peer)
}

/// The cell a client IP counts in: the address itself for IPv4, its /64
/// for IPv6 (one subscriber's share; counting each address would give a
/// single host 2^64 budgets).
pub(crate) fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => {
            let [a, b, c, d, ..] = ip.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
    }
}

/// Parses `TRUSTED_PROXIES`: comma-separated IPs or CIDRs.
pub fn parse_trusted_proxies(text: &str) -> anyhow::Result<Vec<IpNet>> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| anyhow::anyhow!("TRUSTED_PROXIES: {item:?} is not an IP or a CIDR"))
        })
        .collect()
}

fn header(text: String) -> HeaderValue {
    HeaderValue::from_str(&text).expect("rate-limit headers are ASCII")
}

/// Middleware: counts the request against its client IP's cell.
pub async fn limit(State(limit): State<RateLimit>, request: Request, next: Next) -> Response {
    let client = limit.client_of(&request);
    match limit.check(&client, Family::Agent402).await {
        Checked::Allowed(headers) => {
            let mut response = next.run(request).await;
            headers.apply(&mut response);
            response
        }
        Checked::Limited(refused) => refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(trusted: &str) -> RateLimit {
        RateLimit {
            name: "test",
            per_minute: 5,
            limiter: Limiter::local(Quota::per_minute(5).unwrap()),
            trusted_proxies: parse_trusted_proxies(trusted).unwrap().into(),
        }
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let key = |text: &str| client_key(text.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("203.0.113.9"), "203.0.113.9");
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_client_ip_is_the_peer_unless_a_trusted_proxy_forwarded_it() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let untrusted = limit("");
        // An untrusted peer cannot choose its cell by sending the header.
        assert_eq!(
            untrusted.client_ip(Some(ip("203.0.113.9")), &forwarded("198.51.100.1")),
            ip("203.0.113.9")
        );
        let behind_proxy = limit("10.0.0.0/8, 192.0.2.1");
        assert_eq!(
            behind_proxy.client_ip(Some(ip("10.1.2.3")), &forwarded("198.51.100.1")),
            ip("198.51.100.1")
        );
        // The nearest untrusted hop: what the client put first is not believed.
        assert_eq!(
            behind_proxy.client_ip(
                Some(ip("10.1.2.3")),
                &forwarded("1.1.1.1, 198.51.100.1, 192.0.2.1")
            ),
            ip("198.51.100.1")
        );
        // Junk or only proxies: the peer.
        assert_eq!(
            behind_proxy.client_ip(Some(ip("10.1.2.3")), &forwarded("junk")),
            ip("10.1.2.3")
        );
        assert_eq!(
            behind_proxy.client_ip(Some(ip("10.1.2.3")), &forwarded("10.9.9.9")),
            ip("10.1.2.3")
        );
        assert_eq!(
            behind_proxy.client_ip(Some(ip("10.1.2.3")), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        assert!(parse_trusted_proxies("10.0.0.0/8,nope").is_err());
    }

    #[tokio::test]
    async fn a_zero_limit_is_no_limit() {
        let off = RateLimit::per_minute("off", 0, &[], &RateLimitStore::Local).await;
        assert!(off.unwrap().is_none());
    }
}
