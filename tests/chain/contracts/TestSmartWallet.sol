// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title TestSmartWallet — the smallest ERC-1271 contract wallet.
/// @notice Holds tokens at its own address; a signature is valid for it when
/// it is a 65-byte (r, s, v) ECDSA signature of `hash` itself (no prefix) by
/// the EOA `owner`. TesseraUSD passes the EIP-712 digest as `hash`, so the
/// owner signs the wallet's typed data with an ordinary `signTypedData`.
contract TestSmartWallet {
    bytes4 private constant _MAGIC = 0x1626ba7e; // isValidSignature(bytes32,bytes)
    uint256 private constant _HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes memory signature) external view returns (bytes4) {
        if (signature.length != 65) return 0xffffffff;
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        if (uint256(s) > _HALF_N || (v != 27 && v != 28)) return 0xffffffff;
        address signer = ecrecover(hash, v, r, s);
        return signer != address(0) && signer == owner ? _MAGIC : bytes4(0xffffffff);
    }
}
