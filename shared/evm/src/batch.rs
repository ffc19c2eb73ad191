//! Many calls in one transaction: Multicall3's `aggregate3`, which the
//! facilitator uses to settle many EIP-3009 authorizations at once.
//!
//! Multicall3 is deployed at [`MULTICALL3_ADDRESS`] on Base, Base Sepolia
//! and most EVM chains (the same address everywhere). Each call carries
//! `allowFailure`: a failed call that allows failure is undone alone (its
//! `Result.success` is false), any other failure reverts the whole
//! transaction. Who succeeded is read back from the receipt's logs, not from
//! the return value (a mined transaction returns nothing readable): see
//! [`crate::token::authorization_paid`].

use alloy::primitives::{address, Address, Bytes};
use alloy::sol;
use alloy::sol_types::SolCall;

sol! {
    interface IMulticall3 {
        struct Call3 {
            address target;
            bool allowFailure;
            bytes callData;
        }
        struct Result {
            bool success;
            bytes returnData;
        }
        function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory returnData);
    }
}

/// Multicall3's canonical address (the same on every chain it is on).
pub const MULTICALL3_ADDRESS: Address = address!("cA11bde05977b3631167028862bE2a173976CA11");

/// Calldata of `aggregate3` making each `(target, calldata)` call in turn,
/// every one allowed to fail alone (`allow_failure`) or none.
pub fn aggregate3_calldata(
    calls: impl IntoIterator<Item = (Address, Bytes)>,
    allow_failure: bool,
) -> Bytes {
    let calls = calls
        .into_iter()
        .map(|(target, call_data)| IMulticall3::Call3 {
            target,
            allowFailure: allow_failure,
            callData: call_data,
        })
        .collect();
    IMulticall3::aggregate3Call { calls }.abi_encode().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate3_has_multicall3s_selector_and_layout() {
        assert_eq!(
            IMulticall3::aggregate3Call::SELECTOR,
            [0x82, 0xad, 0x56, 0xcb]
        );
        let data = aggregate3_calldata(
            [
                (MULTICALL3_ADDRESS, Bytes::from_static(&[1, 2])),
                (Address::ZERO, Bytes::from_static(&[3])),
            ],
            true,
        );
        let decoded = IMulticall3::aggregate3Call::abi_decode(&data).unwrap();
        assert_eq!(decoded.calls.len(), 2);
        assert!(decoded.calls.iter().all(|call| call.allowFailure));
        assert_eq!(decoded.calls[1].callData, Bytes::from_static(&[3]));
    }
}
