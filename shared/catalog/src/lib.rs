//! What Tessera sells, declared once. Each [`Route`] is one paid operation:
//! its id (the x402 price key), the HTTP method and path the gateway serves
//! it on, the API face whose error body it answers with, its default price
//! and what it does. The gateway builds its paid routes from [`ROUTES`] and
//! nothing else, the payment service prices exactly these ids, and the tests
//! walk the same list: a route is added here, in one place.
//!
//! Two routes may share a method and path when a query parameter tells them
//! apart (`GET /api/memory` reads one key with `?key=`, lists without it);
//! [`select`] picks the one a request is.

pub mod memory;

use std::fmt;

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

/// Every paid route.
pub static ROUTES: &[Route] = memory::ROUTES;

/// The route with this id.
pub fn route(id: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.id == id)
}

/// The routes sharing `route`'s method and path (itself included).
pub fn siblings(route: &Route) -> impl Iterator<Item = &'static Route> + '_ {
    ROUTES
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
        for route in ROUTES {
            assert!(ids.insert(route.id), "{} twice", route.id);
            assert!(route.price > 0, "{} is free", route.id);
            assert!(route.path.starts_with('/'), "{}", route.id);
        }
    }

    #[test]
    fn routes_sharing_a_method_and_path_are_told_apart_by_the_query() {
        for route in ROUTES {
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
    fn descriptions_name_the_route() {
        assert_eq!(
            route("agents.memory.delete").unwrap().description(),
            "Tessera agents.memory.delete: delete one key (DELETE /agents/{id}/memory/{*key})"
        );
    }
}
