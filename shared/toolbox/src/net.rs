//! Network addresses: URLs (the WHATWG URL parser of the `url` crate), IP
//! addresses (std) and CIDR networks (`ipnet`).

use crate::{tool, Tool, ToolError};
use ipnet::{IpNet, Ipv6Net};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::str::FromStr;

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "url-parse", name: "URL parse", category: "network",
        tags: ["url", "uri", "parse", "query", "whatwg"],
        method: Get, path: "/api/url-parse",
        description: "Parses an absolute URL (WHATWG rules) into scheme, username, host, port (and the scheme's default), path, query pairs, fragment and origin.",
        run: url_parse,
        example: { "url": "https://user@example.com:8443/a/b?x=1&y=two#frag" },
        cost: Light,
    },
    tool! {
        slug: "cidr-info", name: "CIDR info", category: "network",
        tags: ["cidr", "subnet", "netmask", "ipv4", "ipv6", "network"],
        method: Get, path: "/api/cidr-info",
        description: "An IPv4 or IPv6 CIDR block's network address, broadcast (IPv4), netmask, hostmask, prefix length, first and last usable host and host count.",
        run: cidr_info, example: { "cidr": "192.168.1.77/24" },
        cost: Light,
    },
    tool! {
        slug: "ip-in-cidr", name: "IP in CIDR", category: "network",
        tags: ["cidr", "subnet", "contains", "ipv4", "ipv6"],
        method: Get, path: "/api/ip-in-cidr",
        description: "Whether an IP address lies inside a CIDR block.",
        run: ip_in_cidr, example: { "ip": "10.1.2.3", "cidr": "10.0.0.0/8" },
        cost: Light,
    },
    tool! {
        slug: "ip-info", name: "IP info", category: "network",
        tags: ["ip", "ipv4", "ipv6", "private", "loopback", "reverse-dns", "ptr"],
        method: Get, path: "/api/ip-info",
        description: "An IP address's version, canonical and expanded forms, its class (private, loopback, multicast, link-local, documentation, ...) and its reverse DNS name (in-addr.arpa / ip6.arpa).",
        run: ip_info, example: { "ip": "2001:db8::1" },
        cost: Light,
    },
];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UrlInput {
    /// An absolute URL, e.g. `https://example.com:8080/path?q=1#top`.
    #[schemars(length(max = 8192))]
    pub url: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlOutput {
    /// The URL as the parser serializes it (normalized).
    pub href: String,
    pub scheme: String,
    /// Empty when the URL has none.
    pub username: String,
    pub password: Option<String>,
    /// The host (IDNs in punycode, IPv6 in brackets), if any.
    pub host: Option<String>,
    /// `domain`, `ipv4` or `ipv6`, if there is a host.
    pub host_type: Option<&'static str>,
    /// The port written in the URL, unless it is the scheme's default.
    pub port: Option<u16>,
    /// The scheme's default port, if the scheme has one.
    pub default_port: Option<u16>,
    /// The port a connection would use: `port` or the default.
    pub effective_port: Option<u16>,
    pub path: String,
    /// The path's segments, percent-decoding left as written; none for a
    /// URL that cannot be a base (`mailto:`, `data:`).
    pub path_segments: Option<Vec<String>>,
    /// The query string without `?`, as written.
    pub query: Option<String>,
    /// The query's `application/x-www-form-urlencoded` pairs, decoded, in order.
    pub query_pairs: Vec<[String; 2]>,
    pub fragment: Option<String>,
    /// The origin (`scheme://host[:port]`), or `null` when opaque.
    pub origin: String,
}

fn url_parse(input: UrlInput) -> Result<UrlOutput, ToolError> {
    let url = url::Url::parse(input.url.trim()).map_err(|error| {
        let message = match error {
            url::ParseError::RelativeUrlWithoutBase => {
                "a relative URL: give an absolute URL with a scheme, e.g. `https://`".to_string()
            }
            other => other.to_string(),
        };
        ToolError::field("url", message)
    })?;
    let host_type = url.host().map(|host| match host {
        url::Host::Domain(_) => "domain",
        url::Host::Ipv4(_) => "ipv4",
        url::Host::Ipv6(_) => "ipv6",
    });
    // The parser drops a port equal to the scheme's default, so without the
    // port the known default is what remains.
    let default_port = {
        let mut bare = url.clone();
        match bare.set_port(None) {
            Ok(()) => bare.port_or_known_default(),
            Err(()) => None,
        }
    };
    Ok(UrlOutput {
        href: url.as_str().to_string(),
        scheme: url.scheme().to_string(),
        username: url.username().to_string(),
        password: url.password().map(str::to_string),
        host: url.host_str().map(str::to_string),
        host_type,
        port: url.port(),
        default_port,
        effective_port: url.port_or_known_default(),
        path: url.path().to_string(),
        path_segments: url
            .path_segments()
            .map(|segments| segments.map(str::to_string).collect()),
        query: url.query().map(str::to_string),
        query_pairs: url
            .query_pairs()
            .map(|(name, value)| [name.into_owned(), value.into_owned()])
            .collect(),
        fragment: url.fragment().map(str::to_string),
        origin: url.origin().ascii_serialization(),
    })
}

/// A CIDR block `address/prefix`; `field` names it in an error.
fn parse_cidr(field: &str, text: &str) -> Result<IpNet, ToolError> {
    let text = text.trim();
    IpNet::from_str(text).map_err(|error| {
        if IpAddr::from_str(text).is_ok() {
            ToolError::field(field, "a bare address: add a prefix length, e.g. `/24`")
        } else {
            ToolError::field(field, error)
        }
    })
}

fn parse_ip(field: &str, text: &str) -> Result<IpAddr, ToolError> {
    IpAddr::from_str(text.trim()).map_err(|error| ToolError::field(field, error))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CidrInput {
    /// A CIDR block, IPv4 (`192.168.1.0/24`) or IPv6 (`2001:db8::/32`); host bits may be set.
    #[schemars(length(max = 64))]
    pub cidr: String,
}

/// A count that is a number for IPv4 and a decimal string for IPv6 (up to 2^128).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum HostCount {
    V4(u64),
    V6(String),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CidrOutput {
    /// 4 or 6.
    pub version: u8,
    /// The block with its host bits cleared.
    pub cidr: String,
    pub network: String,
    /// The broadcast address (IPv4 only).
    pub broadcast: Option<String>,
    pub netmask: String,
    pub hostmask: String,
    pub prefix_length: u8,
    /// The first address a host may take (all of a /31 or /32, RFC 3021;
    /// all addresses in IPv6).
    pub first_host: String,
    pub last_host: String,
    /// How many host addresses: a number for IPv4, a decimal string for IPv6.
    pub host_count: HostCount,
    /// Every address in the block, hosts or not, as a decimal string.
    pub address_count: String,
}

fn cidr_info(input: CidrInput) -> Result<CidrOutput, ToolError> {
    let net = parse_cidr("cidr", &input.cidr)?.trunc();
    let mut hosts = net.hosts();
    let first = hosts.next();
    let last = hosts.next_back().or(first);
    let (Some(first), Some(last)) = (first, last) else {
        return Err(ToolError::field("cidr", "the block has no host addresses"));
    };
    let (version, broadcast, host_count, address_count) = match net {
        IpNet::V4(v4) => {
            let addresses = u64::from(u32::from(v4.hostmask())) + 1;
            let hosts = if v4.prefix_len() < 31 {
                addresses - 2
            } else {
                addresses
            };
            (
                4,
                Some(v4.broadcast().to_string()),
                HostCount::V4(hosts),
                addresses.to_string(),
            )
        }
        IpNet::V6(v6) => {
            // 2^(128 - prefix): one more than the hostmask, which for a /0
            // is 2^128, one past u128.
            let addresses = u128::from(v6.hostmask())
                .checked_add(1)
                .map(|count| count.to_string())
                .unwrap_or_else(|| "340282366920938463463374607431768211456".to_string());
            (6, None, HostCount::V6(addresses.clone()), addresses)
        }
    };
    Ok(CidrOutput {
        version,
        cidr: net.to_string(),
        network: net.network().to_string(),
        broadcast,
        netmask: net.netmask().to_string(),
        hostmask: net.hostmask().to_string(),
        prefix_length: net.prefix_len(),
        first_host: first.to_string(),
        last_host: last.to_string(),
        host_count,
        address_count,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InCidrInput {
    /// An IPv4 or IPv6 address.
    #[schemars(length(max = 64))]
    pub ip: String,
    /// A CIDR block, e.g. `10.0.0.0/8`.
    #[schemars(length(max = 64))]
    pub cidr: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InCidrOutput {
    pub contains: bool,
    pub ip: String,
    /// The block with its host bits cleared.
    pub cidr: String,
}

fn ip_in_cidr(input: InCidrInput) -> Result<InCidrOutput, ToolError> {
    let ip = parse_ip("ip", &input.ip)?;
    let net = parse_cidr("cidr", &input.cidr)?.trunc();
    // An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is its IPv4 address
    // for an IPv4 block.
    let ip = match (ip, net) {
        (IpAddr::V6(v6), IpNet::V4(_)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    Ok(InCidrOutput {
        contains: net.contains(&ip),
        ip: ip.to_string(),
        cidr: net.to_string(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpInput {
    /// An IPv4 (`192.0.2.1`) or IPv6 (`2001:db8::1`) address.
    #[schemars(length(max = 64))]
    pub ip: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpOutput {
    /// 4 or 6.
    pub version: u8,
    /// The canonical text form (RFC 5952 for IPv6).
    pub canonical: String,
    /// Every group written out: four octets, or eight 4-digit hex groups.
    pub expanded: String,
    pub is_unspecified: bool,
    pub is_loopback: bool,
    /// IPv4: RFC 1918 (10/8, 172.16/12, 192.168/16). IPv6: unique local, fc00::/7 (RFC 4193).
    pub is_private: bool,
    /// IPv4: 169.254/16. IPv6: unicast link-local, fe80::/10.
    pub is_link_local: bool,
    pub is_multicast: bool,
    /// IPv4: 255.255.255.255 (false for IPv6).
    pub is_broadcast: bool,
    /// IPv4: RFC 5737 (192.0.2/24, 198.51.100/24, 203.0.113/24). IPv6: RFC 3849 2001:db8::/32 and RFC 9637 3fff::/20.
    pub is_documentation: bool,
    /// The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) carries.
    pub ipv4_mapped: Option<String>,
    /// The PTR name for reverse DNS.
    pub reverse_dns: String,
}

fn ip_info(input: IpInput) -> Result<IpOutput, ToolError> {
    let ip = parse_ip("ip", &input.ip)?;
    let output = match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpOutput {
                version: 4,
                canonical: v4.to_string(),
                expanded: v4.to_string(),
                is_unspecified: v4.is_unspecified(),
                is_loopback: v4.is_loopback(),
                is_private: v4.is_private(),
                is_link_local: v4.is_link_local(),
                is_multicast: v4.is_multicast(),
                is_broadcast: v4.is_broadcast(),
                is_documentation: v4.is_documentation(),
                ipv4_mapped: None,
                reverse_dns: format!("{d}.{c}.{b}.{a}.in-addr.arpa"),
            }
        }
        IpAddr::V6(v6) => {
            // std's Ipv6Addr::is_documentation is not stable yet: the
            // documentation blocks, as ipnet networks.
            let documentation = ["2001:db8::/32", "3fff::/20"]
                .iter()
                .filter_map(|net| Ipv6Net::from_str(net).ok())
                .any(|net| net.contains(&v6));
            let expanded = v6
                .segments()
                .iter()
                .map(|group| format!("{group:04x}"))
                .collect::<Vec<_>>()
                .join(":");
            let nibbles = hex::encode(v6.octets());
            let mut reverse: Vec<String> = nibbles.chars().rev().map(String::from).collect();
            reverse.push("ip6.arpa".to_string());
            IpOutput {
                version: 6,
                canonical: v6.to_string(),
                expanded,
                is_unspecified: v6.is_unspecified(),
                is_loopback: v6.is_loopback(),
                is_private: v6.is_unique_local(),
                is_link_local: v6.is_unicast_link_local(),
                is_multicast: v6.is_multicast(),
                is_broadcast: false,
                is_documentation: documentation,
                ipv4_mapped: v6.to_ipv4_mapped().map(|v4| v4.to_string()),
                reverse_dns: reverse.join("."),
            }
        }
    };
    Ok(output)
}

#[cfg(test)]
mod tests {
    use crate::testing::{refused, run};
    use serde_json::{json, Value};

    #[test]
    fn urls_parse_into_their_parts() {
        // RFC 3986 section 3's example URI.
        let out = run(
            "url-parse",
            json!({ "url": "foo://example.com:8042/over/there?name=ferret#nose" }),
        );
        assert_eq!(out["scheme"], "foo");
        assert_eq!(out["host"], "example.com");
        assert_eq!(out["port"], 8042);
        assert_eq!(out["defaultPort"], Value::Null);
        assert_eq!(out["path"], "/over/there");
        assert_eq!(out["query"], "name=ferret");
        assert_eq!(out["queryPairs"], json!([["name", "ferret"]]));
        assert_eq!(out["fragment"], "nose");
        // RFC 3986 section 1.1.2's examples.
        let out = run(
            "url-parse",
            json!({ "url": "http://www.ietf.org/rfc/rfc2396.txt" }),
        );
        assert_eq!(out["port"], Value::Null);
        assert_eq!(out["defaultPort"], 80);
        assert_eq!(out["effectivePort"], 80);
        assert_eq!(out["origin"], "http://www.ietf.org");
        assert_eq!(out["pathSegments"], json!(["rfc", "rfc2396.txt"]));
        let out = run(
            "url-parse",
            json!({ "url": "ldap://[2001:db8::7]/c=GB?objectClass?one" }),
        );
        assert_eq!(out["host"], "[2001:db8::7]");
        assert_eq!(out["hostType"], "ipv6");
        assert_eq!(out["query"], "objectClass?one");
        let out = run("url-parse", json!({ "url": "mailto:John.Doe@example.com" }));
        assert_eq!(out["scheme"], "mailto");
        assert_eq!(out["host"], Value::Null);
        assert_eq!(out["path"], "John.Doe@example.com");
        assert_eq!(out["origin"], "null");
        // A default port is dropped; a non-default one kept with the default beside it.
        let out = run(
            "url-parse",
            json!({ "url": "https://user:pw@EXAMPLE.com:443/a%20b/?q=a+b&q=%C3%A9&flag#f" }),
        );
        assert_eq!(
            out["href"],
            "https://user:pw@example.com/a%20b/?q=a+b&q=%C3%A9&flag#f"
        );
        assert_eq!(out["username"], "user");
        assert_eq!(out["password"], "pw");
        assert_eq!(out["port"], Value::Null);
        assert_eq!(out["defaultPort"], 443);
        assert_eq!(
            out["queryPairs"],
            json!([["q", "a b"], ["q", "é"], ["flag", ""]])
        );
        let out = run("url-parse", json!({ "url": "https://example.com:8443/" }));
        assert_eq!(out["port"], 8443);
        assert_eq!(out["defaultPort"], 443);
        assert_eq!(out["effectivePort"], 8443);
        assert_eq!(out["origin"], "https://example.com:8443");

        assert_eq!(
            refused("url-parse", json!({ "url": "/over/there?x=1" })),
            "url"
        );
        assert_eq!(
            refused("url-parse", json!({ "url": "http://exa mple.com" })),
            "url"
        );
        assert_eq!(
            refused("url-parse", json!({ "url": "http://host:99999/" })),
            "url"
        );
    }

    #[test]
    fn cidr_blocks_report_their_bounds() {
        // RFC 5737's TEST-NET-1.
        let out = run("cidr-info", json!({ "cidr": "192.0.2.77/24" }));
        assert_eq!(
            out,
            json!({
                "version": 4, "cidr": "192.0.2.0/24", "network": "192.0.2.0",
                "broadcast": "192.0.2.255", "netmask": "255.255.255.0",
                "hostmask": "0.0.0.255", "prefixLength": 24,
                "firstHost": "192.0.2.1", "lastHost": "192.0.2.254",
                "hostCount": 254, "addressCount": "256",
            })
        );
        // RFC 3021: both addresses of a /31 are hosts; a /32 is one host.
        let out = run("cidr-info", json!({ "cidr": "198.51.100.0/31" }));
        assert_eq!(out["firstHost"], "198.51.100.0");
        assert_eq!(out["lastHost"], "198.51.100.1");
        assert_eq!(out["hostCount"], 2);
        let out = run("cidr-info", json!({ "cidr": "203.0.113.9/32" }));
        assert_eq!(out["firstHost"], "203.0.113.9");
        assert_eq!(out["lastHost"], "203.0.113.9");
        assert_eq!(out["hostCount"], 1);
        let out = run("cidr-info", json!({ "cidr": "0.0.0.0/0" }));
        assert_eq!(out["hostCount"], 4294967294u64);
        // RFC 3849's documentation prefix.
        let out = run("cidr-info", json!({ "cidr": "2001:db8::/32" }));
        assert_eq!(out["version"], 6);
        assert_eq!(out["broadcast"], Value::Null);
        assert_eq!(out["netmask"], "ffff:ffff::");
        assert_eq!(out["firstHost"], "2001:db8::");
        assert_eq!(out["lastHost"], "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
        assert_eq!(out["hostCount"], "79228162514264337593543950336");
        let out = run("cidr-info", json!({ "cidr": "::/0" }));
        assert_eq!(out["hostCount"], "340282366920938463463374607431768211456");

        assert_eq!(
            refused("cidr-info", json!({ "cidr": "192.0.2.0/33" })),
            "cidr"
        );
        assert_eq!(refused("cidr-info", json!({ "cidr": "192.0.2.1" })), "cidr");
    }

    #[test]
    fn membership_in_a_block() {
        let contains = |ip: &str, cidr: &str| {
            run("ip-in-cidr", json!({ "ip": ip, "cidr": cidr }))["contains"]
                .as_bool()
                .unwrap()
        };
        assert!(contains("192.0.2.200", "192.0.2.0/24"));
        assert!(!contains("192.0.3.1", "192.0.2.0/24"));
        assert!(contains("2001:db8:1::1", "2001:db8::/32"));
        assert!(!contains("2001:db9::1", "2001:db8::/32"));
        assert!(!contains("192.0.2.1", "2001:db8::/32"));
        assert!(contains("::ffff:192.0.2.1", "192.0.2.0/24"));
        assert_eq!(
            refused("ip-in-cidr", json!({ "ip": "1.2.3", "cidr": "1.0.0.0/8" })),
            "ip"
        );
        assert_eq!(
            refused("ip-in-cidr", json!({ "ip": "1.2.3.4", "cidr": "1.0.0.0" })),
            "cidr"
        );
    }

    #[test]
    fn addresses_are_classified() {
        // RFC 5737 (IPv4) and RFC 3849 (IPv6) documentation addresses.
        let out = run("ip-info", json!({ "ip": "198.51.100.23" }));
        assert_eq!(out["version"], 4);
        assert_eq!(out["isDocumentation"], true);
        assert_eq!(out["isPrivate"], false);
        assert_eq!(out["reverseDns"], "23.100.51.198.in-addr.arpa");
        let out = run("ip-info", json!({ "ip": "2001:DB8:0:0:0:0:0:1" }));
        assert_eq!(out["canonical"], "2001:db8::1");
        assert_eq!(out["expanded"], "2001:0db8:0000:0000:0000:0000:0000:0001");
        assert_eq!(out["isDocumentation"], true);
        // RFC 3596 section 2.5's example shape for ip6.arpa.
        assert_eq!(
            out["reverseDns"],
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        let out = run("ip-info", json!({ "ip": "10.1.2.3" }));
        assert_eq!(out["isPrivate"], true);
        let out = run("ip-info", json!({ "ip": "127.0.0.1" }));
        assert_eq!(out["isLoopback"], true);
        let out = run("ip-info", json!({ "ip": "169.254.1.1" }));
        assert_eq!(out["isLinkLocal"], true);
        let out = run("ip-info", json!({ "ip": "224.0.0.251" }));
        assert_eq!(out["isMulticast"], true);
        let out = run("ip-info", json!({ "ip": "::1" }));
        assert_eq!(out["isLoopback"], true);
        let out = run("ip-info", json!({ "ip": "fe80::1" }));
        assert_eq!(out["isLinkLocal"], true);
        let out = run("ip-info", json!({ "ip": "fd12:3456::1" }));
        assert_eq!(out["isPrivate"], true);
        let out = run("ip-info", json!({ "ip": "::ffff:192.0.2.1" }));
        assert_eq!(out["ipv4Mapped"], "192.0.2.1");
        let out = run("ip-info", json!({ "ip": "8.8.8.8" }));
        assert_eq!(out["isPrivate"], false);
        assert_eq!(out["isDocumentation"], false);
        assert_eq!(refused("ip-info", json!({ "ip": "256.1.1.1" })), "ip");
        assert_eq!(refused("ip-info", json!({ "ip": "fe80::1%eth0" })), "ip");
    }
}
