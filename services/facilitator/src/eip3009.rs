//! EIP-3009 and ERC-1271 as Solidity types: the typed-data struct a payer
//! signs, the token interface the facilitator reads and calls, and the
//! contract-wallet signature check.

use alloy::primitives::{Address, FixedBytes, B256, U256};
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

    /// What the facilitator needs of an EIP-3009 token (USDC v2 and ours).
    /// The two `transferWithAuthorization` overloads are generated as
    /// `transferWithAuthorization_0Call` (v, r, s: ECDSA signers) and
    /// `transferWithAuthorization_1Call` (bytes: ERC-1271 wallets).
    interface IEip3009Token {
        function transferWithAuthorization(
            address from,
            address to,
            uint256 value,
            uint256 validAfter,
            uint256 validBefore,
            bytes32 nonce,
            uint8 v,
            bytes32 r,
            bytes32 s
        ) external;
        function transferWithAuthorization(
            address from,
            address to,
            uint256 value,
            uint256 validAfter,
            uint256 validBefore,
            bytes32 nonce,
            bytes signature
        ) external;
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
        event Transfer(address indexed from, address indexed to, uint256 value);
        function balanceOf(address account) external view returns (uint256);
        function name() external view returns (string);
        function version() external view returns (string);
    }

    /// ERC-1271: how a contract wallet says a signature is its own.
    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
    }
}

/// What `isValidSignature` returns for a valid signature
/// (`bytes4(keccak256("isValidSignature(bytes32,bytes)"))`).
pub const ERC1271_MAGIC_VALUE: FixedBytes<4> = FixedBytes([0x16, 0x26, 0xba, 0x7e]);

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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256, keccak256};
    use alloy::sol_types::SolCall;

    #[test]
    fn type_string_and_selectors_match_the_standard() {
        assert_eq!(
            TransferWithAuthorization::eip712_encode_type(),
            "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
        );
        // USDC's TRANSFER_WITH_AUTHORIZATION_TYPEHASH.
        assert_eq!(
            keccak256(TransferWithAuthorization::eip712_encode_type().as_bytes()),
            b256!("7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267")
        );
        assert_eq!(
            IEip3009Token::transferWithAuthorization_0Call::SELECTOR,
            [0xe3, 0xee, 0x16, 0x0e]
        );
        assert_eq!(
            IEip3009Token::transferWithAuthorization_1Call::SELECTOR,
            [0xcf, 0x09, 0x29, 0x95]
        );
        assert_eq!(
            IEip3009Token::authorizationStateCall::SELECTOR,
            [0xe9, 0x4a, 0x01, 0x02]
        );
        assert_eq!(
            IERC1271::isValidSignatureCall::SELECTOR,
            ERC1271_MAGIC_VALUE.0
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
}
