//! The EIP-3009 token as a facilitator reads and calls it (USDC v2 and ours),
//! and ERC-1271, how a contract wallet says a signature is its own.

use alloy::primitives::{Address, FixedBytes};
use alloy::rpc::types::Log;
use alloy::sol;
use alloy::sol_types::SolEvent;
use tessera_x402::eip3009::TransferWithAuthorization;

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
        event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);
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

/// Whether a transaction's `logs` (its receipt's) show `authorization`
/// executed on `token` and paying what it says: the token's
/// `AuthorizationUsed(from, nonce)` log, and the `Transfer(from, to, value)`
/// that the same call emitted.
///
/// A `transferWithAuthorization` emits both or, when it fails, neither (a
/// failed call's logs are undone, also inside a batch whose other calls
/// went through). The `Transfer` is looked for among the token's logs after
/// the `AuthorizationUsed` one up to the next authorization's (USDC emits
/// `AuthorizationUsed` first), else before it back to the previous
/// authorization's: so in a batch, another item's transfer is never taken
/// for this one's, and a nonce spent on a different transfer (the payer
/// diverting it) is not a payment.
pub fn authorization_paid(
    logs: &[Log],
    token: Address,
    authorization: &TransferWithAuthorization,
) -> bool {
    let token_logs: Vec<&Log> = logs.iter().filter(|log| log.address() == token).collect();
    let is_used =
        |log: &Log| log.topics().first() == Some(&IEip3009Token::AuthorizationUsed::SIGNATURE_HASH);
    let Some(at) = token_logs.iter().position(|log| {
        IEip3009Token::AuthorizationUsed::decode_log(&log.inner).is_ok_and(|used| {
            used.authorizer == authorization.from && used.nonce == authorization.nonce
        })
    }) else {
        return false;
    };
    let pays = |log: &Log| {
        IEip3009Token::Transfer::decode_log(&log.inner).is_ok_and(|transfer| {
            transfer.from == authorization.from
                && transfer.to == authorization.to
                && transfer.value == authorization.value
        })
    };
    let after = token_logs[at + 1..]
        .iter()
        .take_while(|log| !is_used(log))
        .any(|log| pays(log));
    after
        || token_logs[..at]
            .iter()
            .rev()
            .take_while(|log| !is_used(log))
            .any(|log| pays(log))
}

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

    fn log(address: Address, data: alloy::primitives::LogData) -> Log {
        Log {
            inner: alloy::primitives::Log { address, data },
            ..Default::default()
        }
    }

    #[test]
    fn a_payment_is_its_own_authorization_with_its_own_transfer() {
        use alloy::primitives::{B256, U256};
        let token = Address::repeat_byte(0x70);
        let (payer, pay_to) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let authorization = |nonce: u8, to: Address, value: u64| TransferWithAuthorization {
            from: payer,
            to,
            value: U256::from(value),
            validAfter: U256::ZERO,
            validBefore: U256::MAX,
            nonce: B256::repeat_byte(nonce),
        };
        let used = |nonce: u8| {
            log(
                token,
                IEip3009Token::AuthorizationUsed {
                    authorizer: payer,
                    nonce: B256::repeat_byte(nonce),
                }
                .encode_log_data(),
            )
        };
        let transfer = |at: Address, to: Address, value: u64| {
            log(
                at,
                IEip3009Token::Transfer {
                    from: payer,
                    to,
                    value: U256::from(value),
                }
                .encode_log_data(),
            )
        };
        // A batch: item 1 paid, item 2 failed alone (no logs), item 3 paid.
        let batch = [
            used(1),
            transfer(token, pay_to, 10),
            used(3),
            transfer(token, pay_to, 10),
        ];
        assert!(authorization_paid(
            &batch,
            token,
            &authorization(1, pay_to, 10)
        ));
        assert!(!authorization_paid(
            &batch,
            token,
            &authorization(2, pay_to, 10)
        ));
        assert!(authorization_paid(
            &batch,
            token,
            &authorization(3, pay_to, 10)
        ));
        assert!(!authorization_paid(
            &batch,
            Address::ZERO,
            &authorization(1, pay_to, 10)
        ));

        // Nonce 1 spent on a transfer of 1 to the payer itself, beside a real
        // payment of the same amount by nonce 3: nonce 1 paid nothing.
        let diverted = [
            used(1),
            transfer(token, payer, 1),
            used(3),
            transfer(token, pay_to, 10),
        ];
        assert!(!authorization_paid(
            &diverted,
            token,
            &authorization(1, pay_to, 10)
        ));
        // The right log from another contract is not the token's.
        let elsewhere = [used(1), transfer(Address::ZERO, pay_to, 10)];
        assert!(!authorization_paid(
            &elsewhere,
            token,
            &authorization(1, pay_to, 10)
        ));
        // A token that emits Transfer first.
        let transfer_first = [transfer(token, pay_to, 10), used(1)];
        assert!(authorization_paid(
            &transfer_first,
            token,
            &authorization(1, pay_to, 10)
        ));
    }
}
