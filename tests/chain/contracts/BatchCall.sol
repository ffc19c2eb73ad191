// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title BatchCall — several calls in one transaction.
/// @notice Written for Tessera's chain tests. The facilitator settles many
/// EIP-3009 authorizations in one transaction through the `aggregate3`
/// interface of Multicall3 (deployed at 0xcA11bde05977b3631167028862bE2a173976CA11
/// on Base and most chains); the tests install this contract's runtime code
/// at that address, so the facilitator's default configuration works on
/// anvil as on Base. It has no storage, constructor or immutables, so its
/// runtime code runs the same at any address.
///
/// The calls run in order, each a plain `call` from this contract with all
/// the gas left. A call that fails is recorded as `success = false` with
/// its revert data when it allows failure: its own effects are undone, the
/// others' stay. A failed call that does not allow failure reverts the whole
/// transaction with `CallFailed(index, revertData)`. Ether sent along is
/// not forwarded to the calls (the function is `payable` only to match the
/// interface): send none.
contract BatchCall {
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    /// The call at `index` failed and did not allow failure.
    error CallFailed(uint256 index, bytes returnData);

    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory results) {
        uint256 count = calls.length;
        results = new Result[](count);
        for (uint256 index = 0; index < count; ++index) {
            Call3 calldata item = calls[index];
            (bool success, bytes memory returnData) = item.target.call(item.callData);
            if (!success && !item.allowFailure) {
                revert CallFailed(index, returnData);
            }
            results[index] = Result(success, returnData);
        }
    }
}
