//! The background crawler: every `DISCOVERY_CRAWL_SECONDS` (the first at
//! once), one [`Crawler::crawl`]:
//!
//! 1. each registry is read page by page ([`registry::read`]); its
//!    listings are stored and known; when it was read to the end, its
//!    listings it no longer lists are forgotten; the new snapshot is
//!    published (new sellers are routable at once, as not yet healthy);
//! 2. every known seller whose origin is not backing off is probed
//!    ([`Prober::probe`]), at most `DISCOVERY_PROBE_CONCURRENCY` at once;
//!    each outcome is recorded and stored as it arrives;
//! 3. an origin all of whose probes in this crawl failed backs off one step
//!    further ([`Backoff::after_failure`]); one with an OK probe is
//!    cleared; then the snapshot is published again.
//!
//! Crawls never overlap (one lock over the sellers). A store error is
//! logged, not fatal: memory stays right, and the next change of the same
//! row writes it again. The loop ends when the [`Shutdown`] fires, even
//! mid-crawl (an unfinished crawl's probes are simply not recorded).

use crate::config::DiscoveryConfig;
use crate::egress;
use crate::health::Backoff;
use crate::listing::Listing;
use crate::probe::Prober;
use crate::registry;
use crate::sellers::Sellers;
use crate::snapshot::Published;
use crate::store::Store;
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_runtime::Shutdown;
use tokio::sync::Mutex;

/// How long one registry page may take.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What one crawl did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrawlReport {
    /// Registries read to the end.
    pub registries_read: usize,
    /// Why the others were not, one line each.
    pub registry_errors: Vec<String>,
    /// Listings read in this crawl (all registries).
    pub listed: usize,
    /// Items dropped because their text reads like instructions.
    pub injections: usize,
    /// Items that were not usable listings.
    pub invalid: usize,
    /// Sellers probed, and how many of them answered a readable quote.
    pub probed: usize,
    pub ok: usize,
    /// Sellers not probed because their origin is backing off.
    pub backing_off: usize,
    /// Sellers left for a later crawl: their origin had
    /// [`MAX_PROBES_PER_ORIGIN`] probes in this one.
    pub deferred: usize,
    /// Sellers known after the crawl.
    pub known: usize,
}

/// The most probes one origin gets in one crawl (those probed longest ago
/// first): a registry listing thousands of paths on someone else's host
/// must not make us a flood aimed at it.
pub const MAX_PROBES_PER_ORIGIN: usize = 20;

/// Crawls the configured registries and probes their sellers.
pub struct Crawler {
    config: DiscoveryConfig,
    store: Store,
    sellers: Mutex<Sellers>,
    registry_client: reqwest::Client,
    prober: Prober,
    published: Arc<Published>,
}

impl std::fmt::Debug for Crawler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crawler")
            .field("registries", &self.config.registries)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

impl Crawler {
    /// A crawler of `config`'s registries over `sellers` (as loaded from
    /// `store`), publishing to `published`.
    pub fn new(
        config: DiscoveryConfig,
        store: Store,
        sellers: Sellers,
        published: Arc<Published>,
    ) -> Crawler {
        Crawler {
            registry_client: egress::registry_client(PAGE_TIMEOUT),
            prober: Prober::new(config.probe_timeout, config.allow_private),
            config,
            store,
            sellers: Mutex::new(sellers),
            published,
        }
    }

    /// Crawls now, then every `DISCOVERY_CRAWL_SECONDS`, until `shutdown`.
    pub fn spawn(self: Arc<Self>, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    report = self.crawl() => tracing::info!(?report, "discovery crawl done"),
                }
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(self.config.crawl_every) => {}
                }
            }
            tracing::info!("discovery crawler stopped");
        })
    }

    /// One crawl: read every registry, probe every seller not backing off.
    pub async fn crawl(&self) -> CrawlReport {
        let mut sellers = self.sellers.lock().await;
        let mut report = CrawlReport::default();
        for registry in &self.config.registries {
            self.read_registry(registry, &mut sellers, &mut report)
                .await;
        }
        self.published.publish(&sellers);
        self.probe_all(&mut sellers, &mut report).await;
        self.published.publish(&sellers);
        report.known = sellers.by_resource.len();
        report
    }

    async fn read_registry(&self, registry: &str, sellers: &mut Sellers, report: &mut CrawlReport) {
        let started_ms = unix_ms();
        let read = registry::read(
            &self.registry_client,
            registry,
            self.config.max_listings,
            self.config.allow_private,
        )
        .await;
        report.listed += read.listings.len();
        report.injections += read.injections;
        report.invalid += read.invalid;
        let saved = match self.store.save_listings(&read.listings, started_ms).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, registry, "discovery: cannot store listings");
                false
            }
        };
        let listed: HashSet<String> = read
            .listings
            .iter()
            .map(|listing| listing.resource.clone())
            .collect();
        for listing in read.listings {
            sellers.upsert(listing);
        }
        match read.error {
            // What the store did not take must not cost it what it kept.
            None if !saved => report.registries_read += 1,
            None => {
                report.registries_read += 1;
                sellers.forget_unlisted(registry, &listed);
                if let Err(error) = self.store.forget_unlisted(registry, started_ms).await {
                    tracing::warn!(%error, registry, "discovery: cannot forget delisted sellers");
                }
            }
            Some(error) => {
                tracing::warn!(registry, %error, "discovery: registry not read to the end");
                report.registry_errors.push(error);
            }
        }
    }

    async fn probe_all(&self, sellers: &mut Sellers, report: &mut CrawlReport) {
        let now_ms = unix_ms();
        let mut candidates: Vec<(i64, Listing, String)> = Vec::new();
        for seller in sellers.by_resource.values() {
            let origin = seller.listing.origin();
            if sellers.backing_off(&origin, now_ms) {
                report.backing_off += 1;
            } else {
                candidates.push((seller.last_probe_ms, seller.listing.clone(), origin));
            }
        }
        candidates.sort_by(|a, b| (&a.2, a.0, &a.1.resource).cmp(&(&b.2, b.0, &b.1.resource)));
        let mut per_origin: HashMap<String, usize> = HashMap::new();
        let mut due: Vec<(Listing, String)> = Vec::new();
        for (_, listing, origin) in candidates {
            let probes = per_origin.entry(origin.clone()).or_default();
            if *probes < MAX_PROBES_PER_ORIGIN {
                *probes += 1;
                due.push((listing, origin));
            } else {
                report.deferred += 1;
            }
        }
        let prober = &self.prober;
        let mut outcomes = futures::stream::iter(due)
            .map(|(listing, origin)| async move {
                let outcome = prober.probe(&listing).await;
                (listing, origin, unix_ms(), outcome)
            })
            .buffer_unordered(self.config.probe_concurrency.max(1));
        // Per origin: whether any of its probes in this crawl was OK.
        let mut origins: HashMap<String, bool> = HashMap::new();
        while let Some((listing, origin, at_ms, outcome)) = outcomes.next().await {
            report.probed += 1;
            let ok = outcome.is_ok();
            if let Err(failure) = &outcome {
                tracing::debug!(resource = %listing.resource, %failure, "discovery: probe failed");
            }
            report.ok += usize::from(ok);
            *origins.entry(origin).or_insert(false) |= ok;
            let window = self.config.health_window;
            if let Some(stored) = sellers.record(&listing.resource, at_ms, outcome, window) {
                if let Err(error) = self.store.save_probe(&stored).await {
                    tracing::warn!(%error, "discovery: cannot store a probe");
                }
            }
        }
        drop(outcomes);
        let now_ms = unix_ms();
        for (origin, ok) in origins {
            let backoff = if ok {
                if sellers.backoff.remove(&origin).is_none() {
                    continue;
                }
                None
            } else {
                let previous = sellers.backoff.get(&origin).copied();
                let next = Backoff::after_failure(
                    previous,
                    now_ms,
                    self.config.backoff_base,
                    self.config.backoff_max,
                );
                sellers.backoff.insert(origin.clone(), next);
                Some(next)
            };
            if let Err(error) = self.store.save_backoff(&origin, backoff).await {
                tracing::warn!(%error, "discovery: cannot store a backoff");
            }
        }
    }
}
