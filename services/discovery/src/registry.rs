//! Reading a Bazaar-style registry: `GET {registry}/discovery/resources?
//! type=http&limit={PAGE_LIMIT}&offset={n}`, answered by
//! `{x402Version, items: [...], pagination: {limit, offset, total}}`.
//!
//! Pages are read in order until one is empty, `offset` reaches
//! `pagination.total`, a page without a total is shorter than asked, or
//! the listings read reach the configured maximum. A page is at most
//! [`MAX_PAGE_BYTES`]; a registry's answer that is not such a page ends
//! its crawl as incomplete (listings it no longer lists are then kept,
//! since it cannot be told they are gone). Items are read one by one
//! ([`Listing::from_item`]): a bad item is skipped, never the page.

use crate::egress;
use crate::listing::{Listing, Skipped};
use serde_json::Value;
use std::collections::HashSet;

/// Items asked for per page (the spec's maximum).
pub const PAGE_LIMIT: usize = 100;

/// The largest page read, in bytes.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// One page: its items, and the total the registry claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Value>,
    pub total: Option<u64>,
}

/// Reads a page's JSON. `items` must be a list (`resources`, the
/// foundation's search shape, reads too); `pagination.total` is optional.
pub fn parse_page(body: &[u8]) -> Result<Page, String> {
    let mut page: Value =
        serde_json::from_slice(body).map_err(|error| format!("the page is not JSON: {error}"))?;
    let total = page.pointer("/pagination/total").and_then(Value::as_u64);
    let field = if page.get("items").is_some() {
        "items"
    } else {
        "resources"
    };
    let items = match page.get_mut(field).map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => return Err("the page has no `items` list".into()),
    };
    Ok(Page { items, total })
}

/// The most pages read of one registry in one crawl: enough for
/// `max_listings` at full pages, twice over.
pub fn max_pages(max_listings: usize) -> usize {
    max_listings.div_ceil(PAGE_LIMIT).saturating_mul(2).max(2)
}

/// The longest one registry's pages are read in one crawl: a registry that
/// answers slowly page after page must not hold the crawl (and every
/// other registry) for days.
pub const REGISTRY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// The URL of the page at `offset`.
pub fn page_url(registry: &str, offset: usize) -> String {
    format!("{registry}/discovery/resources?type=http&limit={PAGE_LIMIT}&offset={offset}")
}

/// What one registry listed in one crawl.
#[derive(Debug, Clone, Default)]
pub struct RegistryRead {
    /// Distinct by resource, in the registry's order.
    pub listings: Vec<Listing>,
    /// Items dropped because their text reads like instructions.
    pub injections: usize,
    /// Items that were not usable listings.
    pub invalid: usize,
    /// Whether every page was read (false on an error or at the maximum).
    pub complete: bool,
    /// Why the crawl stopped early, when it did.
    pub error: Option<String>,
}

/// Reads `registry` page by page, at most `max_listings` listings.
pub async fn read(
    client: &reqwest::Client,
    registry: &str,
    max_listings: usize,
    allow_private: bool,
) -> RegistryRead {
    let mut read = RegistryRead::default();
    let mut seen = HashSet::new();
    let mut offset = 0usize;
    let deadline = tokio::time::Instant::now() + REGISTRY_DEADLINE;
    let mut pages = 0;
    loop {
        if pages >= max_pages(max_listings) {
            read.error = Some(format!("stopped after {pages} pages"));
            return read;
        }
        if tokio::time::Instant::now() >= deadline {
            read.error = Some(format!(
                "stopped after {} s of paging",
                REGISTRY_DEADLINE.as_secs()
            ));
            return read;
        }
        pages += 1;
        let page = match fetch_page(client, registry, offset).await {
            Ok(page) => page,
            Err(error) => {
                read.error = Some(error);
                return read;
            }
        };
        let count = page.items.len();
        for item in &page.items {
            match Listing::from_item(item, registry, allow_private) {
                Ok(listing) => {
                    if read.listings.len() >= max_listings {
                        read.error = Some(format!("stopped at {max_listings} listings"));
                        return read;
                    }
                    if seen.insert(listing.resource.clone()) {
                        read.listings.push(listing);
                    }
                }
                Err(Skipped::Injection) => read.injections += 1,
                Err(Skipped::Invalid(_)) => read.invalid += 1,
            }
        }
        offset += count;
        let done = count == 0
            || page
                .total
                .map_or(count < PAGE_LIMIT, |total| offset as u64 >= total);
        if done {
            read.complete = true;
            return read;
        }
        if offset >= max_listings.saturating_mul(2) {
            // Items keep coming but few are usable: a registry ignoring
            // `offset`, or one mostly of junk.
            read.error = Some(format!("stopped after {offset} items"));
            return read;
        }
    }
}

async fn fetch_page(
    client: &reqwest::Client,
    registry: &str,
    offset: usize,
) -> Result<Page, String> {
    let url = page_url(registry, offset);
    let response = client
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: answered {}", response.status()));
    }
    let body = egress::read_capped(response, MAX_PAGE_BYTES)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    parse_page(&body).map_err(|error| format!("{url}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_reads_items_and_total() {
        let body = json!({"x402Version": 2, "items": [{"resource": "r"}],
                          "pagination": {"limit": 100, "offset": 0, "total": 7}});
        let page = parse_page(body.to_string().as_bytes()).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.total, Some(7));
        let bare = parse_page(br#"{"items": []}"#).unwrap();
        assert_eq!(bare.total, None);
        assert!(parse_page(br#"{"items": {}}"#).is_err());
        assert!(parse_page(b"<html>").is_err());
    }

    #[test]
    fn page_urls_ask_for_http_resources_by_offset() {
        assert_eq!(
            page_url("http://r.example", 200),
            "http://r.example/discovery/resources?type=http&limit=100&offset=200"
        );
    }

    #[tokio::test]
    async fn a_registry_paging_one_item_at_a_time_is_cut_at_the_page_bound() {
        use axum::extract::Query;
        use std::collections::HashMap;
        let app = axum::Router::new().route(
            "/discovery/resources",
            axum::routing::get(|Query(query): Query<HashMap<String, String>>| async move {
                let offset = query.get("offset").cloned().unwrap_or_default();
                axum::Json(json!({
                    "x402Version": 2,
                    "items": [{"resource": format!("http://127.0.0.1:9/item{offset}"),
                               "type": "http", "x402Version": 2, "accepts": []}],
                    "pagination": {"limit": 100, "offset": offset, "total": 1_000_000},
                }))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let registry = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let read = read(&client, &registry, 300, true).await;
        assert_eq!(max_pages(300), 6);
        assert_eq!(read.listings.len(), 6);
        assert!(!read.complete);
        assert_eq!(read.error.as_deref(), Some("stopped after 6 pages"));
    }
}
