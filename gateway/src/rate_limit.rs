//! Rate limits on free surfaces, per client IP: a GCRA cell per IP
//! (`governor`, in process). Past the limit a request is answered 429 with
//! `Retry-After` and the IETF `RateLimit` / `RateLimit-Policy` headers
//! (draft-ietf-httpapi-ratelimit-headers); within it, the headers say what
//! is left. The client IP is the connection's peer, or, when the peer is one
//! of `TRUSTED_PROXIES`, the nearest address in `X-Forwarded-For` that is
//! not a trusted proxy.

use crate::errors::Family;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tessera_error::{Error, ErrorKind};

/// Forgotten IPs are dropped from memory every this many checks.
const RETAIN_EVERY: u64 = 4096;

/// One surface's limit: `per_minute` requests per IP, in bursts of as many.
#[derive(Clone)]
pub struct RateLimit {
    name: &'static str,
    per_minute: u32,
    cells: Arc<DefaultKeyedRateLimiter<IpAddr, StateInformationMiddleware>>,
    checks: Arc<AtomicU64>,
    trusted_proxies: Arc<[IpNet]>,
}

impl RateLimit {
    /// `None` when `per_minute` is 0 (no limit).
    pub fn per_minute(
        name: &'static str,
        per_minute: u32,
        trusted_proxies: &[IpNet],
    ) -> Option<Self> {
        let rate = NonZeroU32::new(per_minute)?;
        let cells = DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate))
            .with_middleware::<StateInformationMiddleware>();
        Some(RateLimit {
            name,
            per_minute,
            cells: Arc::new(cells),
            checks: Arc::new(AtomicU64::new(0)),
            trusted_proxies: trusted_proxies.into(),
        })
    }

    fn policy(&self) -> HeaderValue {
        header(format!("\"{}\";q={};w=60", self.name, self.per_minute))
    }

    /// The client's IP: the peer, or what a trusted proxy says it forwarded.
    fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        let Some(peer) = peer else {
            // No connection info (an in-process call): one shared cell.
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        };
        if !self.trusted(peer) {
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
            .find(|hop| !self.trusted(*hop))
            .unwrap_or(peer)
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
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
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let ip = limit.client_ip(peer, request.headers());
    if limit.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
        limit.cells.retain_recent();
    }
    match limit.cells.check_key(&ip) {
        Ok(snapshot) => {
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            headers.insert("ratelimit-policy", limit.policy());
            let remaining = snapshot.remaining_burst_capacity();
            headers.insert(
                "ratelimit",
                header(format!("\"{}\";r={remaining}", limit.name)),
            );
            response
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let error = Error::new(
                ErrorKind::RateLimited,
                "RATE_LIMITED",
                format!(
                    "too many requests to {} from {ip}: at most {} a minute; retry after {seconds} s",
                    limit.name, limit.per_minute
                ),
            );
            let mut response = Family::Agent402.response(&error);
            let headers = response.headers_mut();
            headers.insert("retry-after", header(seconds.to_string()));
            headers.insert("ratelimit-policy", limit.policy());
            headers.insert(
                "ratelimit",
                header(format!("\"{}\";r=0;t={seconds}", limit.name)),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(trusted: &str) -> RateLimit {
        RateLimit::per_minute("test", 5, &parse_trusted_proxies(trusted).unwrap()).unwrap()
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
        assert!(RateLimit::per_minute("off", 0, &[]).is_none());
    }
}
