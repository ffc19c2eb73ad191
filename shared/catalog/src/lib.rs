//! What Tessera sells, declared once. Each [`Route`] is one paid operation:
//! its id (the x402 price key), the HTTP method and path the gateway serves
//! it on, the API face whose error body it answers with, its default price,
//! what it does, and its tier (who may pay for it with proof of work). The
//! gateway builds its paid routes from [`routes`] and nothing else, the
//! payment service prices exactly these ids, and the tests walk the same
//! list. Memory's routes are declared in [`memory`]; every tool of the
//! toolbox (`tessera_toolbox`, where each tool is declared with its code) is
//! a route too ([`tools`]): a route is added in one place.
//!
//! Two routes may share a method and path when a query parameter tells them
//! apart (`GET /api/memory` reads one key with `?key=`, lists without it);
//! [`select`] picks the one a request is.

pub mod memory;
pub mod tools;

use std::fmt;
use std::sync::LazyLock;

/// The HTTP methods paid routes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public API a route belongs to; it decides the error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Face {
    /// agent402.tools: `{"error": "<message>"}`.
    Agent402,
    /// 2s.io agent.memory: `{"error": "<message>"}`.
    TwoS,
    /// The per-agent memory API: `{"error": {"category", "message", "details"}}`.
    Agents,
    /// The public gRPC memory API (`tessera.memory.v1.MemoryService` on the
    /// gateway's port): every call is an HTTP/2 `POST /<service>/<method>`,
    /// and an error is a gRPC status with a `google.rpc.ErrorInfo`.
    Grpc,
}

impl Face {
    /// Whether routes of this face are REST (described by OpenAPI, listed by
    /// find and the x402 manifest) rather than gRPC methods.
    pub fn is_rest(self) -> bool {
        self != Face::Grpc
    }
}

/// Who may pay for a route with proof of work instead of USDC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Pure CPU, nothing kept: USDC (x402) or proof of work.
    Cpu,
    /// Tied to a wallet (memory is the paying wallet's namespace): x402 only.
    Wallet,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Cpu => "cpu",
            Tier::Wallet => "wallet",
        }
    }
}

/// Which requests of a method and path a route is, when two routes share
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Every request.
    Always,
    /// Requests whose query names this parameter (with any value).
    QueryHas(&'static str),
    /// Requests whose query does not name this parameter.
    QueryLacks(&'static str),
}

impl When {
    fn admits(self, query: Option<&str>) -> bool {
        let names = |name: &str| {
            form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(key, _)| key == name)
        };
        match self {
            When::Always => true,
            When::QueryHas(name) => names(name),
            When::QueryLacks(name) => !names(name),
        }
    }
}

/// One paid operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The price key, `<api>.<operation>`, e.g. `memory.cas`.
    pub id: &'static str,
    pub method: Method,
    /// The axum path pattern, e.g. `/agents/{id}/memory/{*key}`.
    pub path: &'static str,
    pub face: Face,
    pub when: When,
    /// Default price in atomic units of the payment asset (USDC: 6
    /// decimals, so 1000 = $0.001); `PAYMENT_PRICES` overrides.
    pub price: u64,
    /// What the call does, in a few words.
    pub summary: &'static str,
    pub tier: Tier,
    /// The call waits for something to happen (a long poll): the gateway
    /// gives it longer than its call deadline, and a budget of its own.
    pub long_poll: bool,
    /// The toolbox slug of the tool this route runs; `None` for memory.
    pub tool: Option<&'static str>,
}

impl Route {
    /// What a payment for this route buys, as the 402 quote's
    /// `resource.description` says it: the id, what it does, method and path.
    pub fn description(&self) -> String {
        format!(
            "Tessera {}: {} ({} {})",
            self.id, self.summary, self.method, self.path
        )
    }
}

/// Every paid route: memory's, then each tool's.
pub fn routes() -> &'static [Route] {
    static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
        memory::ROUTES
            .iter()
            .copied()
            .chain(tools::routes())
            .collect()
    });
    &ROUTES
}

/// Every paid REST route (what OpenAPI, find and the manifest describe):
/// [`routes`] without the gRPC methods.
pub fn rest_routes() -> impl Iterator<Item = &'static Route> {
    routes().iter().filter(|route| route.face.is_rest())
}

/// The route with this id.
pub fn route(id: &str) -> Option<&'static Route> {
    routes().iter().find(|route| route.id == id)
}

/// The route running the tool `slug`.
pub fn tool_route(slug: &str) -> Option<&'static Route> {
    routes().iter().find(|route| route.tool == Some(slug))
}

/// The routes sharing `route`'s method and path (itself included).
pub fn siblings(route: &Route) -> impl Iterator<Item = &'static Route> + '_ {
    routes()
        .iter()
        .filter(move |other| other.method == route.method && other.path == route.path)
}

/// Which of `candidates` (routes of one method and path) a request with
/// this query string is; `None` if none admits it.
pub fn select<'a>(candidates: &[&'a Route], query: Option<&str>) -> Option<&'a Route> {
    candidates
        .iter()
        .copied()
        .find(|route| route.when.admits(query))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_prices_positive() {
        let mut ids = HashSet::new();
        for route in routes() {
            assert!(ids.insert(route.id), "{} twice", route.id);
            assert!(route.price > 0, "{} is free", route.id);
            assert!(route.path.starts_with('/'), "{}", route.id);
        }
    }

    #[test]
    fn routes_sharing_a_method_and_path_are_told_apart_by_the_query() {
        for route in routes() {
            let siblings: Vec<_> = siblings(route).collect();
            if siblings.len() == 1 {
                assert_eq!(route.when, When::Always, "{}", route.id);
                continue;
            }
            // Every query selects exactly one of them.
            for query in [
                None,
                Some(""),
                Some("key=a"),
                Some("key="),
                Some("prefix=a&limit=2"),
                Some("k%65y=a"),
            ] {
                let admitted = siblings.iter().filter(|r| r.when.admits(query)).count();
                assert_eq!(admitted, 1, "{} with {query:?}", route.path);
            }
        }
    }

    #[test]
    fn the_memory_read_is_a_get_with_a_key_and_a_list_without() {
        let candidates: Vec<_> = siblings(route("memory.get").unwrap()).collect();
        let pick = |query| select(&candidates, query).map(|r| r.id);
        assert_eq!(pick(Some("key=notes")), Some("memory.get"));
        assert_eq!(pick(Some("owner=0xabc&key=")), Some("memory.get"));
        // Percent-encoded names are the names the handler sees.
        assert_eq!(pick(Some("%6Bey=notes")), Some("memory.get"));
        assert_eq!(pick(Some("prefix=n")), Some("memory.list"));
        assert_eq!(pick(Some("keys=n")), Some("memory.list"));
        assert_eq!(pick(None), Some("memory.list"));
    }

    #[test]
    fn memory_is_wallet_tier_and_every_tool_a_cpu_route() {
        for route in routes() {
            match route.tool {
                None => assert_eq!(route.tier, Tier::Wallet, "{}", route.id),
                Some(slug) => {
                    assert_eq!(route.tier, Tier::Cpu, "{}", route.id);
                    assert_eq!(route.id, format!("tools.{slug}"));
                    assert_eq!(tool_route(slug).map(|r| r.id), Some(route.id));
                }
            }
        }
        let tools = routes().iter().filter(|route| route.tool.is_some()).count();
        assert_eq!(tools, tessera_toolbox::all().count());
        let hash = tool_route("hash").unwrap();
        assert_eq!(
            (hash.method, hash.path, hash.face),
            (Method::Post, "/api/hash", Face::Agent402)
        );
    }

    #[test]
    fn only_the_rest_watch_is_a_long_poll() {
        let long_polls: Vec<&str> = routes()
            .iter()
            .filter(|route| route.long_poll)
            .map(|route| route.id)
            .collect();
        // The gRPC Watch answers at once and streams: not a long poll.
        assert_eq!(long_polls, ["memory.watch"]);
    }

    #[test]
    fn descriptions_name_the_route() {
        assert_eq!(
            route("agents.memory.delete").unwrap().description(),
            "Tessera agents.memory.delete: delete one key (DELETE /agents/{id}/memory/{*key})"
        );
    }
}
