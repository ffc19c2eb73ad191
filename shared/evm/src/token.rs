//! The EIP-3009 token as a facilitator reads and calls it (USDC v2 and ours),
//! and ERC-1271, how a contract wallet says a signature is its own.

use alloy::primitives::FixedBytes;
use alloy::sol;

sol! {
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

    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
    }
}

/// What `isValidSignature` returns for a valid signature
/// (`bytes4(keccak256("isValidSignature(bytes32,bytes)"))`).
pub const ERC1271_MAGIC_VALUE: FixedBytes<4> = FixedBytes([0x16, 0x26, 0xba, 0x7e]);

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolCall;

    #[test]
    fn selectors_match_the_standard() {
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
}
