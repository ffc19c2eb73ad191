//! Outbound HTTP to addresses chosen by strangers.
//!
//! A crawled listing's resource URL is written by whoever listed it, so a
//! probe could be aimed at this host's own services or its private network
//! (server-side request forgery). Unless `DISCOVERY_ALLOW_PRIVATE`:
//!
//! - only `http` and `https` URLs with a host and no user info are probed;
//! - a host written as an IP address must be public ([`is_public`]);
//! - a host name is resolved by [`PublicResolver`], which answers only its
//!   public addresses (none: the probe fails), and the connection goes to
//!   one of those very addresses, so a name that resolves to a public
//!   address when checked and a private one when connecting cannot slip
//!   through;
//! - redirects are not followed and no system proxy is used.
//!
//! Every read is capped: bodies by [`read_capped`], headers by hyper's own
//! limits and the x402 codec's 16 KiB.

use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The longest URL probed, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Why a URL is not probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `url` parsed, when it may be probed: http(s), a host, no user info, at
/// most [`MAX_URL_BYTES`], and (unless `allow_private`) not an IP literal
/// outside the public internet.
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, Refused> {
    if url.len() > MAX_URL_BYTES {
        return Err(Refused(format!(
            "the URL is longer than {MAX_URL_BYTES} bytes"
        )));
    }
    let parsed = Url::parse(url).map_err(|error| Refused(format!("not a URL: {error}")))?;
    // Percent-encoding can triple a URL's length: the bound holds for the
    // spelling stored and shown, not only for the one listed.
    if parsed.as_str().len() > MAX_URL_BYTES {
        return Err(Refused(format!(
            "the URL is longer than {MAX_URL_BYTES} bytes once normalized"
        )));
    }
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Refused(format!(
            "scheme {:?} is not http or https",
            parsed.scheme()
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Refused("the URL carries user info".into()));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| Refused("the URL has no host".into()))?;
    // IPv6 hosts are written in brackets; hex or decimal IPv4 spellings
    // (`0x7f000001`) are already normalized to dotted quads by the parser.
    let ip: Option<IpAddr> = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok();
    if let Some(ip) = ip.filter(|ip| !allow_private && !is_public(*ip)) {
        return Err(Refused(format!("{ip} is not a public address")));
    }
    Ok(parsed)
}

/// `scheme://host[:port]` of `url`: whom a listing belongs to.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether `ip` is on the public internet: not loopback, private,
/// link-local, unspecified, shared (CGNAT), documentation, benchmarking,
/// broadcast, multicast or reserved, nor (IPv6) unique-local or an IPv4
/// address mapped or translated into IPv6 that is one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // 64:ff9b::/96 translates IPv4 addresses.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    // 2002::/16 (6to4) carries an IPv4 address in its next 32 bits.
    if segments[0] == 0x2002 {
        let [a, b] = segments[1].to_be_bytes();
        let [c, d] = segments[2].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // 64:ff9b:1::/48: local-use IPv4/IPv6 translation (RFC 8215).
        || segments[..3] == [0x64, 0xff9b, 1]
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        // IPv4-compatible (deprecated) ::a.b.c.d.
        || segments[..6] == [0, 0, 0, 0, 0, 0])
}

/// Resolves host names to their public addresses only (all of them when
/// private ones are allowed).
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver {
    pub allow_private: bool,
}

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        let resolving: BoxFuture<'static, _> = Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        });
        resolving
    }
}

/// A client for sellers: no redirects, no proxy, [`PublicResolver`], and
/// `timeout` for a whole exchange (connect, answer and body).
pub fn seller_client(timeout: Duration, allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(PublicResolver { allow_private }))
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(1)
        .user_agent(concat!("tessera-discovery/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with these settings builds")
}

/// A client for the configured registries (trusted addresses): no
/// redirects, no proxy, `timeout` per page.
pub fn registry_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("tessera-discovery/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with these settings builds")
}

/// The body of `response`, or an error once it is longer than `cap` bytes
/// (read no further).
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(format!("the body is larger than {cap} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| format!("the body broke off: {error}"))?
    {
        if body.len() + chunk.len() > cap {
            return Err(format!("the body is larger than {cap} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_public_http_urls_are_probed() {
        assert!(check_url("https://api.example.com/x?y=1", false).is_ok());
        for url in [
            "ftp://api.example.com/x",
            "file:///etc/passwd",
            "http://127.0.0.1:8080/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://0x7f000001/x",
            "http://2130706433/x",
            "http://user:pw@api.example.com/x",
            "not a url",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_BYTES));
        assert!(check_url(&long, false).is_err());
        assert!(check_url("http://127.0.0.1:8080/x", true).is_ok());
    }

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let url = check_url("http://127.0.0.1:9000/a/b?c", true).unwrap();
        assert_eq!(origin(&url), "http://127.0.0.1:9000");
        let url = check_url("https://API.example.com/a", true).unwrap();
        assert_eq!(origin(&url), "https://api.example.com");
    }

    #[tokio::test]
    async fn the_resolver_answers_public_addresses_only() {
        let refusing = PublicResolver {
            allow_private: false,
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(refusing.resolve(name).await.is_err());
        let allowing = PublicResolver {
            allow_private: true,
        };
        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = allowing.resolve(name).await.unwrap().collect();
        assert!(
            addrs.iter().all(|addr| addr.ip().is_loopback()),
            "{addrs:?}"
        );
    }

    #[test]
    fn the_bound_holds_once_normalized() {
        let listed = format!("https://seller.example/{}", "é".repeat(1000));
        assert!(listed.len() <= MAX_URL_BYTES);
        let refused = check_url(&listed, false).unwrap_err();
        assert!(refused.0.contains("once normalized"), "{refused}");
    }
}
