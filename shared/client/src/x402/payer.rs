//! Who pays, with which tokens, and at most how much per call; and which of
//! a quote's offers that allows.

use super::refusal::PaymentError;
use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use tessera_x402::{ExactRequirements, Network, PaymentRequired, Requirements};

/// One token the payer pays with, and the most one call may cost in it.
/// A cap is per token because amounts are in the token's atomic units: the
/// same number is a different sum in a token of other decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    pub network: Network,
    pub asset: Address,
    /// Atomic units (USDC: 1000 = $0.001).
    pub max_per_call: U256,
}

/// A wallet that pays x402 quotes with EIP-3009 authorizations. It pays
/// nothing until told which tokens it may pay with ([`Payer::allow`]).
#[derive(Debug, Clone)]
pub struct Payer {
    signer: PrivateKeySigner,
    allowances: Vec<Allowance>,
}

/// The offer of a quote the payer takes.
#[derive(Debug)]
pub(crate) struct Choice<'q> {
    pub requirements: &'q Requirements,
    pub terms: ExactRequirements,
}

impl Payer {
    pub fn new(signer: PrivateKeySigner) -> Self {
        Payer {
            signer,
            allowances: Vec::new(),
        }
    }

    /// Pays in `asset` on `network`, at most `max_per_call` atomic units a
    /// call.
    pub fn allow(mut self, network: Network, asset: Address, max_per_call: U256) -> Self {
        self.allowances.push(Allowance {
            network,
            asset,
            max_per_call,
        });
        self
    }

    pub fn allowances(&self) -> &[Allowance] {
        &self.allowances
    }

    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The namespace the server gives this payer: its lower-case address.
    pub fn namespace(&self) -> String {
        format!("{:#x}", self.address())
    }

    pub(crate) fn signer(&self) -> &PrivateKeySigner {
        &self.signer
    }

    /// The cheapest offer of `quote` in an allowed token within its cap.
    pub(crate) fn choose<'q>(
        &self,
        quote: &'q PaymentRequired,
    ) -> Result<Choice<'q>, PaymentError> {
        let payable = quote.accepts.iter().filter_map(|requirements| {
            let terms = ExactRequirements::parse(requirements).ok()?;
            terms.domain.as_ref()?;
            let allowance = self
                .allowances
                .iter()
                .find(|a| a.network == terms.network && a.asset == terms.asset)?;
            Some((requirements, terms, allowance))
        });
        let cheapest = payable.min_by_key(|(_, terms, allowance)| {
            (terms.amount > allowance.max_per_call, terms.amount)
        });
        match cheapest {
            None => Err(PaymentError::NoPayableOffer {
                quote: Box::new(quote.clone()),
            }),
            Some((_, terms, allowance)) if terms.amount > allowance.max_per_call => {
                Err(PaymentError::OverCap {
                    price: terms.amount,
                    cap: allowance.max_per_call,
                    network: terms.network,
                    asset: terms.asset,
                })
            }
            Some((requirements, terms, _)) => Ok(Choice {
                requirements,
                terms,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tessera_x402::ResourceInfo;

    const TOKEN: Address = alloy::primitives::address!("036CbD53842c5426634e7929541eC2318f3dCF7e");
    const OTHER: Address = alloy::primitives::address!("833589fCD6eDb6E08f4c7C32D4f71b54bdA02913");

    fn offer(network: &str, asset: Address, amount: u64) -> Requirements {
        Requirements {
            scheme: "exact".into(),
            network: network.into(),
            amount: amount.to_string(),
            asset: asset.to_checksum(None),
            pay_to: "0x0000000000000000000000000000000000000001".into(),
            max_timeout_seconds: 60,
            extra: Some(json!({"name": "USDC", "version": "2"})),
        }
    }

    fn quote(accepts: Vec<Requirements>) -> PaymentRequired {
        PaymentRequired {
            x402_version: 2,
            error: None,
            resource: ResourceInfo {
                url: "http://x/tessera.memory.v1.MemoryService/Set".into(),
                description: None,
                mime_type: None,
            },
            accepts,
        }
    }

    fn payer(cap: u64) -> Payer {
        Payer::new(PrivateKeySigner::random()).allow(Network::new(84532), TOKEN, U256::from(cap))
    }

    #[test]
    fn takes_the_cheapest_offer_in_an_allowed_token() {
        let quote = quote(vec![
            offer("eip155:84532", TOKEN, 3000),
            offer("eip155:8453", TOKEN, 1),
            offer("eip155:84532", OTHER, 1),
            offer("eip155:84532", TOKEN, 2000),
        ]);
        let choice = payer(5000).choose(&quote).unwrap();
        assert_eq!(choice.terms.amount, U256::from(2000));
        assert_eq!(choice.requirements, &quote.accepts[3]);
    }

    #[test]
    fn refuses_above_the_cap_naming_price_and_cap() {
        let quote = quote(vec![offer("eip155:84532", TOKEN, 2000)]);
        assert_eq!(
            payer(1999).choose(&quote).unwrap_err(),
            PaymentError::OverCap {
                price: U256::from(2000),
                cap: U256::from(1999),
                network: Network::new(84532),
                asset: TOKEN,
            }
        );
        assert!(
            payer(2000).choose(&quote).is_ok(),
            "the cap itself is payable"
        );
    }

    #[test]
    fn other_schemes_networks_tokens_and_unnamed_domains_are_not_payable() {
        let mut upto = offer("eip155:84532", TOKEN, 1);
        upto.scheme = "upto".into();
        let mut unnamed = offer("eip155:84532", TOKEN, 1);
        unnamed.extra = None;
        let quote = quote(vec![
            upto,
            unnamed,
            offer("eip155:8453", TOKEN, 1),
            offer("eip155:84532", OTHER, 1),
            offer("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", TOKEN, 1),
        ]);
        assert!(matches!(
            payer(u64::MAX).choose(&quote),
            Err(PaymentError::NoPayableOffer { .. })
        ));
        assert!(matches!(
            Payer::new(PrivateKeySigner::random()).choose(&quote),
            Err(PaymentError::NoPayableOffer { .. })
        ));
    }
}
