//! EVM networks: CAIP-2 ids (`eip155:8453`) and the v1 names (`base`).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    pub chain_id: u64,
}

/// v1 network names of the reference packages, and their chain ids.
const V1_NAMES: &[(&str, u64)] = &[
    ("base", 8453),
    ("base-sepolia", 84532),
    ("ethereum", 1),
    ("sepolia", 11155111),
    ("polygon", 137),
    ("polygon-amoy", 80002),
    ("arbitrum", 42161),
    ("arbitrum-sepolia", 421614),
    ("optimism", 10),
    ("optimism-sepolia", 11155420),
    ("avalanche", 43114),
    ("avalanche-fuji", 43113),
];

impl Network {
    pub const fn new(chain_id: u64) -> Self {
        Network { chain_id }
    }

    /// Parses `eip155:<id>` (v2) or a v1 name.
    pub fn parse(text: &str) -> Option<Network> {
        if let Some(id) = text.strip_prefix("eip155:") {
            if id.is_empty() || id.starts_with('0') || !id.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            return id.parse().ok().map(Network::new);
        }
        V1_NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, id)| Network::new(*id))
    }

    pub fn caip2(self) -> String {
        format!("eip155:{}", self.chain_id)
    }

    /// The v1 name, where the reference packages have one.
    pub fn v1_name(self) -> Option<&'static str> {
        V1_NAMES
            .iter()
            .find(|(_, id)| *id == self.chain_id)
            .map(|(name, _)| *name)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "eip155:{}", self.chain_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caip2_and_v1_names() {
        assert_eq!(Network::parse("eip155:8453"), Some(Network::new(8453)));
        assert_eq!(Network::parse("base"), Some(Network::new(8453)));
        assert_eq!(
            Network::parse("base-sepolia").unwrap().caip2(),
            "eip155:84532"
        );
        assert_eq!(Network::new(84532).v1_name(), Some("base-sepolia"));
        assert_eq!(Network::parse("eip155:"), None);
        assert_eq!(Network::parse("eip155:01"), None);
        assert_eq!(
            Network::parse("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
            None
        );
        assert_eq!(Network::parse("mars"), None);
    }
}
