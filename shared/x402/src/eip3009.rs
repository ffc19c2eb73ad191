//! EIP-3009 `TransferWithAuthorization` as EIP-712 typed data: what a payer
//! signs, under which domain, and who signed it. Pure: no chain is asked.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::sol;
use alloy::sol_types::{Eip712Domain, SolStruct};
use std::borrow::Cow;

sol! {
    /// The EIP-712 message of an EIP-3009 transfer. Its type string is
    /// `TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)`.
    #[derive(Debug, PartialEq, Eq)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// The token's EIP-712 domain: `extra.name` / `extra.version` of the
/// requirements, the chain id of the network and the asset address.
pub fn domain(name: &str, version: &str, chain_id: u64, token: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(Cow::Owned(name.to_string())),
        Some(Cow::Owned(version.to_string())),
        Some(U256::from(chain_id)),
        Some(token),
        None,
    )
}

impl TransferWithAuthorization {
    /// The 32 bytes an EOA signs (and an ERC-1271 wallet is asked about).
    pub fn signing_hash(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }
}

/// A 65-byte ECDSA signature in the form `transferWithAuthorization(…, v, r,
/// s)` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcdsaParts {
    pub v: u8,
    pub r: B256,
    pub s: B256,
}

/// Why a signature is not `from`'s own ECDSA signature of `hash`. A contract
/// wallet's signature is not one either; only the chain can judge it
/// (ERC-1271).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotEcdsa {
    #[error("the signature does not recover to authorization.from")]
    OtherSigner,
    #[error("the signature has a high s value (not canonical; EIP-2)")]
    HighS,
    #[error("the signature is not r‖s‖v: {0}")]
    Malformed(String),
    #[error("the signature is {0} bytes, not a 65-byte ECDSA signature")]
    Length(usize),
}

/// `signature` as `from`'s canonical (low-s) ECDSA signature of `hash`,
/// recovered locally.
pub fn recover_ecdsa(from: Address, hash: B256, signature: &Bytes) -> Result<EcdsaParts, NotEcdsa> {
    if signature.len() != 65 {
        return Err(NotEcdsa::Length(signature.len()));
    }
    let parsed = alloy::primitives::Signature::from_raw(signature)
        .map_err(|e| NotEcdsa::Malformed(e.to_string()))?;
    if parsed.normalize_s().is_some() {
        return Err(NotEcdsa::HighS);
    }
    if parsed.recover_address_from_prehash(&hash).ok() != Some(from) {
        return Err(NotEcdsa::OtherSigner);
    }
    Ok(EcdsaParts {
        v: 27 + u8::from(parsed.v()),
        r: parsed.r().into(),
        s: parsed.s().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256, keccak256};

    #[test]
    fn the_type_string_matches_the_standard() {
        assert_eq!(
            TransferWithAuthorization::eip712_encode_type(),
            "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
        );
        // USDC's TRANSFER_WITH_AUTHORIZATION_TYPEHASH.
        assert_eq!(
            keccak256(TransferWithAuthorization::eip712_encode_type().as_bytes()),
            b256!("7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267")
        );
    }

    #[test]
    fn the_domain_separates_chains_and_tokens() {
        let token = address!("036CbD53842c5426634e7929541eC2318f3dCF7e");
        let base = domain("USDC", "2", 84532, token);
        assert_ne!(
            base.separator(),
            domain("USDC", "2", 8453, token).separator()
        );
        assert_ne!(
            base.separator(),
            domain("USD Coin", "2", 84532, token).separator()
        );
        assert_ne!(
            base.separator(),
            domain("USDC", "2", 84532, Address::ZERO).separator()
        );
    }

    #[test]
    fn short_and_malformed_signatures_are_not_ecdsa() {
        let hash = B256::repeat_byte(1);
        assert_eq!(
            recover_ecdsa(Address::ZERO, hash, &Bytes::from(vec![0u8; 64])),
            Err(NotEcdsa::Length(64))
        );
        assert!(recover_ecdsa(Address::ZERO, hash, &Bytes::from(vec![0u8; 65])).is_err());
    }
}
