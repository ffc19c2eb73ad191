//! `Route`: the cheapest healthy tool for a task, across our catalog and
//! the crawled x402 sellers.
//!
//! The request ([`RouteQuery::parse`]): `query` as Find's `q` (required, at
//! most 500 characters and 32 terms); `top` 1–25 (0: [`DEFAULT_TOP`]);
//! `include` `local` (our catalog), `external` (crawled sellers) or `all`
//! (empty: `all`); `network` a CAIP-2 id or a v1 name (`base` =
//! `eip155:8453`, `base-sepolia` = `eip155:84532`), keeping only candidates
//! payable there (empty: any). Every refusal is `INVALID_QUERY` naming the
//! parameter.
//!
//! The ranking ([`route`]), in order:
//!
//! 1. relevance: BM25 over the one index of our entries and the listings,
//!    in bands of [`BAND_WIDTH`] of the best score (band 0 is within 25% of
//!    the best, band 1 within 50%, …), so that among comparably relevant
//!    tools the next keys decide, while a clearly better match still wins;
//! 2. health: healthy first (the last probe answered a readable 402 quote
//!    and at least half the recent ones did; our catalog counts as
//!    healthy);
//! 3. price, ascending, in atomic units of USDC (USDC has 6 decimals on
//!    every network, so these compare); a price in another asset counts
//!    as unknown, and unknown goes last;
//! 4. slug.
//!
//! Then at most ⌈top/3⌉ results per seller (an external seller is its
//! origin; our catalog is one seller), in rank order; when fewer than `top`
//! remain, the results passed over are taken back in rank order. The
//! answer keeps rank order. Every external result is `untrustedContent`.

use crate::query::{self, refuse};
use crate::snapshot::{Candidate, Offer, Snapshot};
use std::cmp::Ordering;
use std::collections::HashMap;
use tessera_error::Error;
use tessera_proto::discovery::v1 as pb;

/// Results when `top` is 0.
pub const DEFAULT_TOP: u32 = 3;

/// The most results a route answers.
pub const MAX_TOP: u32 = 25;

/// Width of a relevance band, as a share of the best score.
pub const BAND_WIDTH: f64 = 0.25;

/// How every answer was ranked, as the response's `neutrality`.
pub const NEUTRALITY: &str = "Ranked by relevance to the query (BM25, in bands of 25% of the best \
score), then healthy before unhealthy (the last probe answered a readable 402 quote and at least \
half of the recent probes did; Tessera's own catalog counts as healthy), then price ascending \
in USDC (unknown, or in another asset, last), then slug; at most ceil(top/3) results per seller \
unless too few others match. No seller pays for placement, Tessera included.";

/// Which candidates a route considers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    Local,
    External,
    All,
}

impl Include {
    fn admits(self, candidate: &Candidate) -> bool {
        match self {
            Include::Local => candidate.own,
            Include::External => !candidate.own,
            Include::All => true,
        }
    }
}

/// A checked route request.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteQuery {
    /// Distinct search terms, sorted.
    pub terms: Vec<String>,
    /// 1..=[`MAX_TOP`].
    pub top: usize,
    pub include: Include,
    /// CAIP-2, when asked for.
    pub network: Option<String>,
}

impl RouteQuery {
    pub fn parse(request: &pb::RouteRequest) -> Result<RouteQuery, Error> {
        let terms = query::terms(&request.query, "query")?;
        let top = match request.top {
            0 => DEFAULT_TOP,
            1..=MAX_TOP => request.top,
            top => {
                return Err(refuse(
                    "top",
                    format!("top is {top}; it must be between 1 and {MAX_TOP}"),
                ))
            }
        };
        let include = match request.include.trim().to_ascii_lowercase().as_str() {
            "" | "all" => Include::All,
            "local" => Include::Local,
            "external" => Include::External,
            _ => {
                return Err(refuse(
                    "include",
                    format!(
                        "include is {:?}; it must be \"local\", \"external\" or \"all\"",
                        request.include
                    ),
                ))
            }
        };
        let network = match request.network.trim() {
            "" => None,
            text => Some(crate::quote::network(text).ok_or_else(|| {
                refuse(
                    "network",
                    format!(
                        "network is {text:?}; it must be a CAIP-2 id such as \"eip155:8453\" \
                         or a v1 name such as \"base\""
                    ),
                )
            })?),
        };
        Ok(RouteQuery {
            terms,
            top: top as usize,
            include,
            network,
        })
    }
}

/// At most this many results per seller for `top` results: ⌈top/3⌉.
pub fn per_seller(top: usize) -> usize {
    top.div_ceil(3)
}

/// A candidate that matched, with what it is ranked by.
struct Ranked<'a> {
    candidate: &'a Candidate,
    score: f64,
    band: u32,
    offer: Option<&'a Offer>,
}

impl Ranked<'_> {
    fn price(&self) -> Option<u64> {
        self.offer.and_then(|offer| offer.price)
    }

    /// The price as ranked: only a price in USDC compares; one in another
    /// asset (a seller's own token, say) is as good as unknown.
    fn usdc_price(&self) -> Option<u64> {
        self.offer
            .filter(|offer| offer.in_usdc)
            .and_then(|offer| offer.price)
    }

    fn rank(&self, other: &Self) -> Ordering {
        self.band
            .cmp(&other.band)
            .then_with(|| other.candidate.healthy.cmp(&self.candidate.healthy))
            .then_with(|| match (self.usdc_price(), other.usdc_price()) {
                (Some(a), Some(b)) => a.cmp(&b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| self.candidate.tool.slug.cmp(&other.candidate.tool.slug))
    }
}

/// The ranked candidates of `snapshot` for `query`.
pub fn route(snapshot: &Snapshot, query: &RouteQuery) -> pb::RouteResponse {
    let network = query.network.as_deref();
    let mut ranked: Vec<Ranked> = snapshot
        .index
        .matches(&query.terms)
        .into_iter()
        .filter_map(|hit| {
            let candidate = &snapshot.candidates[hit.doc];
            if !query.include.admits(candidate) {
                return None;
            }
            let offer = candidate.offer(network);
            if network.is_some() && offer.is_none() {
                return None;
            }
            Some(Ranked {
                candidate,
                score: hit.score,
                band: 0,
                offer,
            })
        })
        .collect();
    let best = ranked.iter().map(|r| r.score).fold(0.0, f64::max);
    for r in &mut ranked {
        let behind = 1.0 - r.score / best;
        r.band = (behind / BAND_WIDTH).floor().max(0.0) as u32;
    }
    ranked.sort_unstable_by(Ranked::rank);
    let candidates = pick(ranked, query.top)
        .into_iter()
        .map(|r| answer(&r))
        .collect();
    let sellers_known = match (query.include, network) {
        (Include::Local, _) => 0,
        (_, None) => snapshot.sellers,
        (_, Some(network)) => snapshot
            .sellers_by_network
            .get(network)
            .copied()
            .unwrap_or(0),
    };
    pb::RouteResponse {
        candidates,
        neutrality: NEUTRALITY.to_string(),
        sellers_known: sellers_known as u32,
    }
}

/// The first `top` of `ranked` with at most [`per_seller`] per seller,
/// backfilled in rank order from those passed over; in rank order.
fn pick(ranked: Vec<Ranked>, top: usize) -> Vec<Ranked> {
    let cap = per_seller(top);
    let mut per: HashMap<&str, usize> = HashMap::new();
    let mut taken = vec![false; ranked.len()];
    let mut count = 0;
    for (at, r) in ranked.iter().enumerate() {
        if count == top {
            break;
        }
        let held = per.entry(r.candidate.seller()).or_insert(0);
        if *held < cap {
            *held += 1;
            taken[at] = true;
            count += 1;
        }
    }
    for slot in taken.iter_mut() {
        if count == top {
            break;
        }
        if !*slot {
            *slot = true;
            count += 1;
        }
    }
    ranked
        .into_iter()
        .zip(taken)
        .filter_map(|(r, taken)| taken.then_some(r))
        .collect()
}

fn answer(r: &Ranked) -> pb::RouteCandidate {
    let candidate = r.candidate;
    let mut tool = candidate.tool.clone();
    tool.price = r.price().map(|price| price.to_string()).unwrap_or_default();
    let (network, asset, pay_to) = r.offer.map_or_else(Default::default, |offer| {
        (
            offer.network.clone(),
            offer.asset.clone(),
            offer.pay_to.clone(),
        )
    });
    pb::RouteCandidate {
        tool: Some(tool),
        score: r.score,
        healthy: candidate.healthy,
        health: candidate.health,
        untrusted_content: !candidate.own,
        network,
        asset,
        pay_to,
        x402_version: candidate.x402_version,
        last_probe_ms: candidate.last_probe_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::config::OwnOffer;
    use crate::entries::Entry;
    use crate::health::ProbeHistory;
    use crate::listing::Listing;
    use crate::sellers::Sellers;
    use serde_json::Value;
    use tessera_error::ErrorKind;
    use tessera_x402::Requirements;

    fn entry(slug: &str, text: &str, price: u64) -> Entry {
        Entry {
            slug: slug.to_string(),
            name: text.to_string(),
            description: text.to_string(),
            category: String::new(),
            tags: Vec::new(),
            price,
            method: "POST",
            route: "/api/x",
            input_schema: Value::Null,
            example: Value::Null,
            call: String::new(),
        }
    }

    fn requirement(network: &str, amount: &str) -> Requirements {
        Requirements {
            scheme: "exact".into(),
            network: network.into(),
            amount: amount.into(),
            asset: tessera_x402::Network::parse(network)
                .and_then(|network| network.usdc())
                .unwrap_or("0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
                .into(),
            pay_to: "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
            max_timeout_seconds: 60,
            extra: None,
        }
    }

    fn listing(url: &str, text: &str, accepts: Vec<Requirements>) -> Listing {
        Listing::new(url, text, text, accepts)
    }

    fn base(amount: &str) -> Vec<Requirements> {
        vec![requirement("eip155:8453", amount)]
    }

    fn snapshot(entries: Vec<Entry>, sellers: &Sellers) -> Snapshot {
        Snapshot::build(&Catalog::new(entries), &OwnOffer::default(), sellers)
    }

    fn ask(query: &str, top: u32, include: &str, network: &str) -> RouteQuery {
        RouteQuery::parse(&pb::RouteRequest {
            query: query.into(),
            top,
            include: include.into(),
            network: network.into(),
        })
        .unwrap()
    }

    fn slugs(response: &pb::RouteResponse) -> Vec<String> {
        response
            .candidates
            .iter()
            .map(|c| c.tool.as_ref().unwrap().slug.clone())
            .collect()
    }

    fn refused(query: &str, top: u32, include: &str, network: &str) -> String {
        let error = RouteQuery::parse(&pb::RouteRequest {
            query: query.into(),
            top,
            include: include.into(),
            network: network.into(),
        })
        .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
        assert_eq!(error.reason, crate::query::INVALID_QUERY);
        error.details["field"].clone()
    }

    #[test]
    fn requests_are_checked_naming_the_parameter() {
        let query = ask("weather", 0, "", "base");
        assert_eq!(query.top, 3);
        assert_eq!(query.include, Include::All);
        assert_eq!(query.network.as_deref(), Some("eip155:8453"));
        assert_eq!(
            ask("weather", 25, "External", "base-sepolia")
                .network
                .as_deref(),
            Some("eip155:84532")
        );
        assert_eq!(refused("", 3, "", ""), "query");
        assert_eq!(refused(&"x".repeat(501), 3, "", ""), "query");
        assert_eq!(refused("weather", 26, "", ""), "top");
        assert_eq!(refused("weather", 3, "everything", ""), "include");
        assert_eq!(refused("weather", 3, "", "mars"), "network");
        assert_eq!(refused("weather", 3, "", "eip155:"), "network");
    }

    #[test]
    fn among_equally_relevant_tools_the_healthy_then_the_cheapest_lead() {
        let mut sellers = Sellers::healthy(
            vec![
                listing("https://a.example/w", "weather forecast", base("300")),
                listing("https://b.example/w", "weather forecast", base("100")),
                listing("https://c.example/w", "weather forecast", base("50")),
                listing("https://d.example/w", "weather forecast", vec![]),
            ],
            1,
        );
        // c is the cheapest but its last probe failed.
        let c = sellers.by_resource.get_mut("https://c.example/w").unwrap();
        c.history = ProbeHistory::decode("10", 10);
        let snapshot = snapshot(
            vec![entry("own-weather", "weather forecast", 200)],
            &sellers,
        );
        let response = route(&snapshot, &ask("weather forecast", 5, "", ""));
        assert_eq!(
            slugs(&response),
            [
                "b.example/w",
                "own-weather",
                "a.example/w",
                "d.example/w",
                "c.example/w"
            ]
        );
        let first = &response.candidates[0];
        assert!(first.healthy && first.untrusted_content);
        assert_eq!(first.tool.as_ref().unwrap().price, "100");
        assert_eq!(first.tool.as_ref().unwrap().seller, "https://b.example");
        let own = &response.candidates[1];
        assert!(!own.untrusted_content && own.healthy);
        assert_eq!((own.health, own.x402_version), (1.0, 2));
        assert_eq!(own.tool.as_ref().unwrap().seller, crate::OWN_SELLER);
        // Unknown price: last among the healthy.
        assert_eq!(response.candidates[3].tool.as_ref().unwrap().price, "");
        assert!(!response.candidates[4].healthy);
        assert_eq!(response.candidates[4].health, 0.5);
        assert_eq!(response.sellers_known, 4);
        assert_eq!(response.neutrality, NEUTRALITY);
    }

    #[test]
    fn a_price_in_another_asset_ranks_as_unknown() {
        let mut own_token = base("1");
        own_token[0].asset = "0x00000000000000000000000000000000000000aa".into();
        let sellers = Sellers::healthy(
            vec![
                listing("https://a.example/w", "weather forecast", base("300")),
                listing("https://b.example/w", "weather forecast", own_token),
            ],
            1,
        );
        let snapshot = snapshot(vec![], &sellers);
        let response = route(&snapshot, &ask("weather forecast", 5, "", ""));
        assert_eq!(slugs(&response), ["a.example/w", "b.example/w"]);
        // Shown as quoted, ranked as unknown.
        assert_eq!(response.candidates[1].tool.as_ref().unwrap().price, "1");
    }

    #[test]
    fn a_clearly_better_match_wins_over_a_cheaper_one() {
        let sellers = Sellers::healthy(
            vec![
                listing(
                    "https://a.example/x",
                    "weather forecast radar maps",
                    base("900"),
                ),
                listing("https://b.example/x", "radar", base("1")),
            ],
            1,
        );
        let snapshot = snapshot(vec![], &sellers);
        let response = route(&snapshot, &ask("weather forecast radar maps", 5, "", ""));
        assert_eq!(slugs(&response), ["a.example/x", "b.example/x"]);
        assert!(response.candidates[0].score > response.candidates[1].score);
    }

    #[test]
    fn a_seller_holds_at_most_a_third_unless_too_few_others_match() {
        let listings: Vec<Listing> = (0..6)
            .map(|i| {
                listing(
                    &format!("https://big.example/t{i}"),
                    "geocode address",
                    base(&format!("{}", 10 + i)),
                )
            })
            .chain([
                listing("https://small.example/g", "geocode address", base("500")),
                listing("https://other.example/g", "geocode address", base("600")),
            ])
            .collect();
        let snapshot = snapshot(vec![], &Sellers::healthy(listings, 1));
        // top 6: at most 2 of big; small and other fill 2; backfill adds
        // big's next two, all in rank order.
        let response = route(&snapshot, &ask("geocode address", 6, "", ""));
        assert_eq!(
            slugs(&response),
            [
                "big.example/t0",
                "big.example/t1",
                "big.example/t2",
                "big.example/t3",
                "small.example/g",
                "other.example/g"
            ]
        );
        // top 3: one each.
        let response = route(&snapshot, &ask("geocode address", 3, "", ""));
        assert_eq!(
            slugs(&response),
            ["big.example/t0", "small.example/g", "other.example/g"]
        );
        assert_eq!(per_seller(1), 1);
        assert_eq!(per_seller(4), 2);
        assert_eq!(per_seller(25), 9);
    }

    #[test]
    fn include_and_network_filter_the_candidates() {
        let sellers = Sellers::healthy(
            vec![
                listing("https://a.example/q", "currency rates", base("10")),
                listing(
                    "https://b.example/q",
                    "currency rates",
                    vec![requirement("eip155:84532", "5")],
                ),
            ],
            1,
        );
        let snapshot = snapshot(vec![entry("rates", "currency rates", 1000)], &sellers);
        let local = route(&snapshot, &ask("currency rates", 5, "local", ""));
        assert_eq!(slugs(&local), ["rates"]);
        assert_eq!(local.sellers_known, 0);
        let external = route(&snapshot, &ask("currency rates", 5, "external", ""));
        assert_eq!(slugs(&external), ["b.example/q", "a.example/q"]);
        assert_eq!(external.sellers_known, 2);
        let sepolia = route(&snapshot, &ask("currency rates", 5, "all", "base-sepolia"));
        assert_eq!(slugs(&sepolia), ["b.example/q"]);
        assert_eq!(sepolia.candidates[0].network, "eip155:84532");
        assert_eq!(sepolia.sellers_known, 1);
        // Our catalog is paid on the default network, eip155:8453.
        let mainnet = route(&snapshot, &ask("currency rates", 5, "", "eip155:8453"));
        assert_eq!(slugs(&mainnet), ["a.example/q", "rates"]);
        assert!(route(&snapshot, &ask("currency rates", 5, "", "eip155:1"))
            .candidates
            .is_empty());
    }

    #[test]
    fn nothing_relevant_answers_nothing() {
        let snapshot = snapshot(
            vec![entry("rates", "currency rates", 1)],
            &Sellers::default(),
        );
        assert!(route(&snapshot, &ask("quokka", 5, "", ""))
            .candidates
            .is_empty());
    }
}
