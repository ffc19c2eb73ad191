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

/// Circle's USDC contract on the networks x402 sellers use (6 decimals on
/// every one of them, so amounts compare across networks).
const USDC: &[(u64, &str)] = &[
    (8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
    (84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
    (1, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
    (137, "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
    (42161, "0xaf88d065e77c8cC2239327C5EDb3A432268e5831"),
    (10, "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85"),
    (43114, "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E"),
];

impl Network {
    pub const fn new(chain_id: u64) -> Self {
        Network { chain_id }
    }

    /// The USDC contract of this network, checksummed, when it is one we
    /// know.
    pub fn usdc(&self) -> Option<&'static str> {
        USDC.iter()
            .find(|(id, _)| *id == self.chain_id)
            .map(|(_, address)| *address)
    }

    /// Whether `asset` is this network's USDC (any hex case).
    pub fn is_usdc(&self, asset: &str) -> bool {
        self.usdc()
            .is_some_and(|usdc| usdc.eq_ignore_ascii_case(asset.trim()))
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

    #[test]
    fn usdc_is_known_on_base_and_compared_in_any_case() {
        let base = Network::parse("base").unwrap();
        assert_eq!(
            base.usdc(),
            Some("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
        );
        assert!(base.is_usdc("0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"));
        assert!(!base.is_usdc("0x036CbD53842c5426634e7929541eC2318f3dCF7e"));
        assert_eq!(Network::new(31337).usdc(), None);
        assert!(!Network::new(31337).is_usdc(""));
    }
}
