//! What `Route` ranks: one BM25 index over our catalog's entries and the
//! external sellers' listings, with a [`Candidate`] per indexed document
//! (a hit's `doc` is a position in [`Snapshot::candidates`]).
//!
//! A snapshot is immutable. The crawler builds a new one after each change
//! (listings read, probes done) and swaps it in whole ([`Published`]); a
//! route takes the current one with a read lock held only to clone an
//! `Arc`, and never waits for a crawl.
//!
//! Listings whose text reads like instructions ([`crate::injection`]) are
//! left out here too, whatever the store holds.

use crate::call;
use crate::catalog::Catalog;
use crate::config::OwnOffer;
use crate::entries::Entry;
use crate::index::{Document, Index};
use crate::quote::atomic_units;
use crate::sellers::{Seller, Sellers};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use tessera_proto::discovery::v1 as pb;
use tessera_x402::Requirements;

/// A way to pay a candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// CAIP-2.
    pub network: String,
    pub asset: String,
    pub pay_to: String,
    /// Atomic units; `None` when unknown.
    pub price: Option<u64>,
    /// Whether the price is in USDC (ours is: the catalog's unit), so that
    /// it compares with others: a price in another asset ranks as unknown.
    pub in_usdc: bool,
}

impl Offer {
    fn of(requirement: &Requirements) -> Offer {
        Offer {
            network: requirement.network.clone(),
            asset: requirement.asset.clone(),
            pay_to: requirement.pay_to.clone(),
            price: atomic_units(&requirement.amount),
            in_usdc: tessera_x402::Network::parse(&requirement.network)
                .is_some_and(|network| network.is_usdc(&requirement.asset)),
        }
    }
}

/// One routable tool: ours or an external seller's.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The tool as answered, `price` empty (set from the offer chosen).
    pub tool: pb::Tool,
    /// Whether it is in our catalog.
    pub own: bool,
    /// Share of OK probes (1 for ours).
    pub health: f64,
    pub healthy: bool,
    /// Its offers; [`Candidate::default_offer`] is shown when no network
    /// is asked for.
    pub offers: Vec<Offer>,
    pub default_offer: Option<usize>,
    pub x402_version: u32,
    pub last_probe_ms: i64,
}

impl Candidate {
    fn own(entry: &Entry, tool: &pb::Tool, own: &OwnOffer) -> Candidate {
        let mut tool = tool.clone();
        tool.price.clear();
        Candidate {
            tool,
            own: true,
            health: 1.0,
            healthy: true,
            offers: vec![Offer {
                network: own.network.clone(),
                asset: own.asset.clone(),
                pay_to: own.pay_to.clone(),
                price: Some(entry.price),
                in_usdc: true,
            }],
            default_offer: Some(0),
            x402_version: 2,
            last_probe_ms: 0,
        }
    }

    fn external(seller: &Seller) -> Candidate {
        let listing = &seller.listing;
        let offers: Vec<Offer> = seller.offers().iter().map(Offer::of).collect();
        let default_offer = seller.default_offer().and_then(|chosen| {
            seller
                .offers()
                .iter()
                .position(|offer| std::ptr::eq(offer, chosen))
        });
        Candidate {
            tool: pb::Tool {
                slug: listing.slug(),
                name: listing.name.clone(),
                description: listing.description.clone(),
                price: String::new(),
                method: listing.method.clone(),
                route: listing.resource.clone(),
                input_schema_json: String::new(),
                seller: listing.origin(),
                category: listing.category.clone(),
                tags: listing.tags.clone(),
                example_json: String::new(),
                call: call::external_call(&listing.method, &listing.resource),
            },
            own: false,
            health: seller.history.share(),
            healthy: seller.history.healthy(),
            offers,
            default_offer,
            x402_version: seller.x402_version(),
            last_probe_ms: seller.last_probe_ms,
        }
    }

    /// The offer on `network` (CAIP-2), or the default one when `None`.
    pub fn offer(&self, network: Option<&str>) -> Option<&Offer> {
        match network {
            Some(network) => self.offers.iter().find(|offer| offer.network == network),
            None => self.default_offer.map(|at| &self.offers[at]),
        }
    }

    /// The seller: its origin, or [`crate::OWN_SELLER`] for ours.
    pub fn seller(&self) -> &str {
        &self.tool.seller
    }
}

/// The index and candidates `Route` ranks.
#[derive(Debug)]
pub struct Snapshot {
    pub index: Arc<Index>,
    pub candidates: Vec<Candidate>,
    /// Distinct external sellers (origins).
    pub sellers: usize,
    /// Distinct external sellers with an offer on each network.
    pub sellers_by_network: HashMap<String, usize>,
}

impl Snapshot {
    /// Our catalog and `sellers`' listings (those that do not read like
    /// instructions).
    pub fn build(catalog: &Catalog, own: &OwnOffer, sellers: &Sellers) -> Snapshot {
        let mut candidates: Vec<Candidate> = catalog
            .entries
            .iter()
            .zip(&catalog.tools)
            .map(|(entry, tool)| Candidate::own(entry, tool, own))
            .collect();
        let external: Vec<&Seller> = sellers
            .by_resource
            .values()
            .filter(|seller| !seller.listing.reads_as_instructions())
            .collect();
        let index = if external.is_empty() {
            catalog.index.clone()
        } else {
            let documents = catalog
                .entries
                .iter()
                .map(Entry::document)
                .chain(external.iter().map(|seller| document(seller)))
                .collect();
            Arc::new(Index::new(documents))
        };
        let mut origins = HashSet::new();
        let mut by_network: HashMap<&str, HashSet<&str>> = HashMap::new();
        candidates.extend(external.iter().map(|seller| Candidate::external(seller)));
        for candidate in &candidates[catalog.entries.len()..] {
            origins.insert(candidate.seller());
            for offer in &candidate.offers {
                by_network
                    .entry(offer.network.as_str())
                    .or_default()
                    .insert(candidate.seller());
            }
        }
        let sellers = origins.len();
        let sellers_by_network = by_network
            .into_iter()
            .map(|(network, origins)| (network.to_string(), origins.len()))
            .collect();
        Snapshot {
            index,
            candidates,
            sellers,
            sellers_by_network,
        }
    }
}

fn document(seller: &Seller) -> Document {
    let listing = &seller.listing;
    Document {
        slug: listing.slug(),
        name: listing.name.clone(),
        category: listing.category.clone(),
        description: listing.description.clone(),
        tags: listing.tags.clone(),
    }
}

/// The current snapshot, swapped whole.
#[derive(Debug)]
pub struct Published {
    pub catalog: Arc<Catalog>,
    pub own: OwnOffer,
    current: RwLock<Arc<Snapshot>>,
}

impl Published {
    /// Publishes the snapshot of `catalog` and `sellers`.
    pub fn new(catalog: Arc<Catalog>, own: OwnOffer, sellers: &Sellers) -> Published {
        let snapshot = Arc::new(Snapshot::build(&catalog, &own, sellers));
        Published {
            catalog,
            own,
            current: RwLock::new(snapshot),
        }
    }

    /// The snapshot to answer from.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Builds the snapshot of `sellers` and swaps it in.
    pub fn publish(&self, sellers: &Sellers) {
        let snapshot = Arc::new(Snapshot::build(&self.catalog, &self.own, sellers));
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = snapshot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OWN_SELLER;

    #[test]
    fn our_catalog_alone_shares_the_catalog_index() {
        let catalog = Catalog::ours();
        let snapshot = Snapshot::build(&catalog, &OwnOffer::default(), &Sellers::default());
        assert!(Arc::ptr_eq(&snapshot.index, &catalog.index));
        assert_eq!(snapshot.candidates.len(), catalog.entries.len());
        assert!(snapshot.candidates.iter().all(|candidate| candidate.own
            && candidate.healthy
            && candidate.seller() == OWN_SELLER));
        assert_eq!(snapshot.sellers, 0);
    }
}
