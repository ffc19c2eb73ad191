//! What each paid route costs: the shared catalog's default prices
//! ([`tessera_catalog::routes`]), with the operator's overrides, in atomic
//! units of the payment asset (USDC: 6 decimals, so 1000 = $0.001).

use std::collections::BTreeMap;
use tessera_catalog::Route;
use tessera_error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    prices: BTreeMap<&'static str, (u64, &'static Route)>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            prices: tessera_catalog::routes()
                .iter()
                .map(|route| (route.id, (route.price, route)))
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
            let entry = catalog
                .prices
                .get_mut(route)
                .ok_or_else(|| anyhow::anyhow!("price override for unknown route {route:?}"))?;
            let price: u64 = price.trim().parse().map_err(|_| {
                anyhow::anyhow!("price of {route} is not a whole number of atomic units")
            })?;
            anyhow::ensure!(
                price > 0,
                "price of {route} is 0: a paid route cannot be free"
            );
            entry.0 = price;
        }
        Ok(catalog)
    }

    /// The route and its price; an unknown route is refused (nothing is
    /// sold that is not in the catalog).
    pub fn priced(&self, route: &str) -> Result<(u64, &'static Route), Error> {
        self.prices
            .get(route)
            .copied()
            .ok_or_else(|| Error::invalid("UNKNOWN_ROUTE", format!("no price for route {route:?}")))
    }

    pub fn price(&self, route: &str) -> Result<u64, Error> {
        self.priced(route).map(|(price, _)| price)
    }

    pub fn routes(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.prices.iter().map(|(id, (price, _))| (*id, *price))
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
        assert!(Catalog::with_overrides("memory.get=0").is_err());
    }

    #[test]
    fn every_catalog_route_is_priced() {
        let catalog = Catalog::default();
        for route in tessera_catalog::routes() {
            assert_eq!(
                catalog.price(route.id).unwrap(),
                route.price,
                "{}",
                route.id
            );
        }
        assert_eq!(catalog.routes().count(), tessera_catalog::routes().len());
    }
}
