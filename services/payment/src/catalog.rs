//! The price catalog: every paid route and what it costs, in atomic units of
//! the payment asset (USDC: 6 decimals, so 1000 = $0.001).

use std::collections::BTreeMap;
use tessera_error::Error;

/// Default prices. Route ids name the API face and the operation.
pub const DEFAULT_PRICES: &[(&str, u64)] = &[
    // agent402
    ("memory.set", 2000),
    ("memory.get", 1000),
    ("memory.list", 1000),
    ("memory.cas", 1000),
    ("memory.incr", 1000),
    ("memory.grant", 2000),
    ("memory.revoke", 1000),
    ("memory.grants", 1000),
    // 2s.io
    ("agent.memory.put", 2000),
    ("agent.memory.get", 1200),
    ("agent.memory.list", 1000),
    ("agent.memory.delete", 1000),
    // per-agent
    ("agents.memory.list", 1000),
    ("agents.memory.get", 1000),
    ("agents.memory.put", 2000),
    ("agents.memory.delete", 1000),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    prices: BTreeMap<String, u64>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            prices: DEFAULT_PRICES
                .iter()
                .map(|(r, p)| (r.to_string(), *p))
                .collect(),
        }
    }
}

impl Catalog {
    /// The defaults with overrides `route=price,route=price` (atomic units).
    pub fn with_overrides(overrides: &str) -> anyhow::Result<Self> {
        let mut catalog = Catalog::default();
        for pair in overrides
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (route, price) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("price override {pair:?} is not route=amount"))?;
            let route = route.trim();
            anyhow::ensure!(
                catalog.prices.contains_key(route),
                "price override for unknown route {route:?}"
            );
            let price: u64 = price.trim().parse().map_err(|_| {
                anyhow::anyhow!("price of {route} is not a whole number of atomic units")
            })?;
            catalog.prices.insert(route.to_string(), price);
        }
        Ok(catalog)
    }

    pub fn price(&self, route: &str) -> Result<u64, Error> {
        self.prices
            .get(route)
            .copied()
            .ok_or_else(|| Error::invalid("UNKNOWN_ROUTE", format!("no price for route {route:?}")))
    }

    pub fn routes(&self) -> impl Iterator<Item = (&str, u64)> {
        self.prices.iter().map(|(r, p)| (r.as_str(), *p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let catalog = Catalog::with_overrides("memory.get=5, agent.memory.get=1300").unwrap();
        assert_eq!(catalog.price("memory.get").unwrap(), 5);
        assert_eq!(catalog.price("agent.memory.get").unwrap(), 1300);
        assert_eq!(catalog.price("memory.set").unwrap(), 2000);
        assert!(catalog.price("nope").is_err());
        assert!(Catalog::with_overrides("nope=1").is_err());
        assert!(Catalog::with_overrides("memory.get=0.5").is_err());
    }
}
