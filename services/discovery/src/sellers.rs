//! The external sellers known in memory: each listing with its probe state
//! ([`Seller`]), and each failing origin's [`Backoff`]. The crawler changes
//! it (and writes each change to the store); routing reads snapshots built
//! from it.
//!
//! What a seller asks is its last readable quote when it has one (the
//! quote wins over a listing price that differs: the listing may be stale
//! or wrong, the quote is what a payer will be asked), otherwise what the
//! listing says.

use crate::health::{Backoff, ProbeHistory};
use crate::listing::Listing;
use crate::probe::ProbeFailure;
use crate::quote::Quote;
use crate::store::{Loaded, StoredProbe};
use std::collections::{BTreeMap, HashMap, HashSet};
use tessera_x402::Requirements;

/// One listing and what its probes found.
#[derive(Debug, Clone, PartialEq)]
pub struct Seller {
    pub listing: Listing,
    pub history: ProbeHistory,
    /// Unix milliseconds; 0 when never probed.
    pub last_probe_ms: i64,
    /// Why the last probe failed; empty when it was OK (or none yet).
    pub last_error: String,
    /// The last readable quote.
    pub quote: Option<Quote>,
}

impl Seller {
    /// A listing not yet probed.
    pub fn unprobed(listing: Listing) -> Seller {
        Seller {
            listing,
            history: ProbeHistory::default(),
            last_probe_ms: 0,
            last_error: String::new(),
            quote: None,
        }
    }

    /// What it accepts: the quote's requirements, else the listing's.
    pub fn offers(&self) -> &[Requirements] {
        match &self.quote {
            Some(quote) => &quote.accepts,
            None => &self.listing.accepts,
        }
    }

    /// The x402 version of its quote, else of its listing.
    pub fn x402_version(&self) -> u32 {
        self.quote
            .as_ref()
            .map_or(self.listing.x402_version, |quote| quote.x402_version)
    }

    /// The requirement shown when no network is asked for: the one on the
    /// listing's (first) network, else the first; `exact` preferred.
    pub fn default_offer(&self) -> Option<&Requirements> {
        let listed = self
            .listing
            .accepts
            .first()
            .map(|first| first.network.as_str());
        listed
            .and_then(|network| self.offer_on(network))
            .or_else(|| preferred(self.offers().iter()))
    }

    /// The requirement on `network` (CAIP-2), `exact` preferred.
    pub fn offer_on(&self, network: &str) -> Option<&Requirements> {
        preferred(
            self.offers()
                .iter()
                .filter(|offer| offer.network == network),
        )
    }

    fn stored(&self) -> StoredProbe {
        StoredProbe {
            resource: self.listing.resource.clone(),
            history: self.history.clone(),
            last_probe_ms: self.last_probe_ms,
            last_error: self.last_error.clone(),
            quote: self.quote.clone(),
        }
    }
}

fn preferred<'a>(
    mut offers: impl Iterator<Item = &'a Requirements> + Clone,
) -> Option<&'a Requirements> {
    offers
        .clone()
        .find(|offer| offer.scheme == "exact")
        .or_else(|| offers.next())
}

/// Every known seller, by resource URL, and the origins backing off.
#[derive(Debug, Clone, Default)]
pub struct Sellers {
    pub by_resource: BTreeMap<String, Seller>,
    pub backoff: HashMap<String, Backoff>,
}

impl Sellers {
    /// What the store kept, limited to listings of `registries` (a registry
    /// taken out of the configuration no longer routes) that still pass
    /// `keep` (e.g. the current URL rules).
    pub fn from_loaded(
        loaded: Loaded,
        registries: &[String],
        keep: impl Fn(&Listing) -> bool,
    ) -> Sellers {
        let mut sellers = Sellers::default();
        for listing in loaded.listings {
            if registries.contains(&listing.registry) && keep(&listing) {
                sellers
                    .by_resource
                    .insert(listing.resource.clone(), Seller::unprobed(listing));
            }
        }
        for probe in loaded.probes {
            if let Some(seller) = sellers.by_resource.get_mut(&probe.resource) {
                seller.history = probe.history;
                seller.last_probe_ms = probe.last_probe_ms;
                seller.last_error = probe.last_error;
                seller.quote = probe.quote;
            }
        }
        sellers.backoff = loaded.backoffs.into_iter().collect();
        sellers.forget_orphan_backoffs();
        sellers
    }

    /// Drops the backoff of every origin no listing is on any more, so a
    /// registry rotating through failing origins cannot grow it forever.
    fn forget_orphan_backoffs(&mut self) {
        let origins: HashSet<String> = self
            .by_resource
            .values()
            .map(|seller| seller.listing.origin())
            .collect();
        self.backoff.retain(|origin, _| origins.contains(origin));
    }

    /// Synthetic sellers: each listing healthy, quoting what it lists.
    pub fn healthy(listings: Vec<Listing>, now_ms: i64) -> Sellers {
        let mut sellers = Sellers::default();
        for listing in listings {
            let mut seller = Seller::unprobed(listing);
            seller.history.record(true, 1);
            seller.last_probe_ms = now_ms;
            seller.quote = Some(Quote {
                x402_version: seller.listing.x402_version,
                accepts: seller.listing.accepts.clone(),
            });
            sellers
                .by_resource
                .insert(seller.listing.resource.clone(), seller);
        }
        sellers
    }

    /// Adds `listing`, or replaces a known one's listing (keeping its
    /// probes).
    pub fn upsert(&mut self, listing: Listing) {
        match self.by_resource.get_mut(&listing.resource) {
            Some(seller) => seller.listing = listing,
            None => {
                self.by_resource
                    .insert(listing.resource.clone(), Seller::unprobed(listing));
            }
        }
    }

    /// Forgets the listings of `registry` that are not in `listed`.
    pub fn forget_unlisted(&mut self, registry: &str, listed: &HashSet<String>) {
        self.by_resource.retain(|resource, seller| {
            seller.listing.registry != registry || listed.contains(resource)
        });
        self.forget_orphan_backoffs();
    }

    /// Records a probe of `resource` at `at_ms`, keeping the last `window`
    /// outcomes; the state to store, if `resource` is known.
    pub fn record(
        &mut self,
        resource: &str,
        at_ms: i64,
        outcome: Result<Quote, ProbeFailure>,
        window: usize,
    ) -> Option<StoredProbe> {
        let seller = self.by_resource.get_mut(resource)?;
        seller.last_probe_ms = at_ms;
        match outcome {
            Ok(quote) => {
                seller.history.record(true, window);
                seller.last_error.clear();
                seller.quote = Some(quote);
            }
            Err(failure) => {
                seller.history.record(false, window);
                seller.last_error = failure.to_string();
            }
        }
        Some(seller.stored())
    }

    /// Whether `origin` may not be probed at `now_ms`.
    pub fn backing_off(&self, origin: &str, now_ms: i64) -> bool {
        self.backoff
            .get(origin)
            .is_some_and(|backoff| backoff.holds(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Backoff;
    use std::time::Duration;

    #[test]
    fn a_delisted_origin_leaves_no_backoff_behind() {
        let kept = Listing::new("https://kept.example/x", "x", "x", Vec::new());
        let gone = Listing::new("https://gone.example/x", "x", "x", Vec::new());
        let mut sellers = Sellers::healthy(vec![kept.clone(), gone.clone()], 1);
        let backoff =
            Backoff::after_failure(None, 1, Duration::from_secs(30), Duration::from_secs(60));
        for listing in [&kept, &gone] {
            sellers.backoff.insert(listing.origin(), backoff);
        }
        let listed: HashSet<String> = [kept.resource.clone()].into();
        sellers.forget_unlisted("", &listed);
        let origins: Vec<&String> = sellers.backoff.keys().collect();
        assert_eq!(origins, [&kept.origin()]);
    }
}
