//! Which tools proof of work pays for: the catalog's cpu tier.

use tessera_catalog::{Route, Tier};

/// The catalog route of the tool `slug` if proof of work pays for it.
pub fn pow_route(slug: &str) -> Option<&'static Route> {
    tessera_catalog::tool_route(slug).filter(|route| route.tier == Tier::Cpu)
}
