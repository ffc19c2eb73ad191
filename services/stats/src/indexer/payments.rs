//! Which of the token's transfers are x402 payments.
//!
//! An x402 `exact` payment on an EVM chain is an EIP-3009
//! `transferWithAuthorization`: in one transaction the token emits
//! `AuthorizationUsed(authorizer, nonce)` and the `Transfer` from the
//! authorizer to the payTo. Every other movement of the token (an
//! exchange's withdrawal, a swap through a pool, a plain `transfer`) uses
//! no authorization. So a `Transfer` counts when its transaction used an
//! authorization of the token's whose authorizer is the transfer's `from`;
//! each authorization vouches for one transfer, so a transaction that also
//! moves the authorizer's tokens another way (a contract wallet batching
//! calls) counts no more transfers from it than it used authorizations.
//!
//! Mints (from the zero address), burns (to it) and logs a node marks
//! `removed` (reorged out) never count.

use crate::store::sellers::Received;
use alloy::primitives::{Address, B256};
use alloy::rpc::types::Log;
use alloy::sol;
use alloy::sol_types::SolEvent;
use std::collections::{BTreeMap, HashMap};

sol! {
    /// ERC-20's transfer event (USDC's, and every EIP-3009 token's).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// EIP-3009's: `authorizer`'s signed authorization `nonce` was used
    /// (by `transferWithAuthorization` or `receiveWithAuthorization`).
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
}

/// The events `eth_getLogs` asks the token for (topic 0).
pub const EVENTS: [B256; 2] = [Transfer::SIGNATURE_HASH, AuthorizationUsed::SIGNATURE_HASH];

/// The x402 payments among `logs` (the token's `Transfer` and
/// `AuthorizationUsed` logs of whole blocks) summed by recipient (0x,
/// lowercase).
pub fn tally(asset: Address, logs: &[Log]) -> BTreeMap<String, Received> {
    let of_asset = || {
        logs.iter()
            .filter(move |log| !log.removed && log.address() == asset)
    };
    // Authorizations not yet matched to a transfer, by (transaction, authorizer).
    let mut unspent: HashMap<(B256, Address), u32> = HashMap::new();
    for log in of_asset().filter(|log| log.topic0() == Some(&AuthorizationUsed::SIGNATURE_HASH)) {
        let (Some(tx), Ok(used)) = (log.transaction_hash, log.log_decode::<AuthorizationUsed>())
        else {
            continue;
        };
        *unspent.entry((tx, used.inner.data.authorizer)).or_default() += 1;
    }
    let mut received: BTreeMap<String, Received> = BTreeMap::new();
    for log in of_asset().filter(|log| log.topic0() == Some(&Transfer::SIGNATURE_HASH)) {
        let (Some(tx), Ok(transfer)) = (log.transaction_hash, log.log_decode::<Transfer>()) else {
            tracing::debug!(?log, "not an ERC-20 Transfer log of a transaction; skipped");
            continue;
        };
        let Transfer { from, to, value } = transfer.inner.data;
        if from == Address::ZERO || to == Address::ZERO {
            continue;
        }
        let Some(authorizations) = unspent.get_mut(&(tx, from)).filter(|left| **left > 0) else {
            continue;
        };
        *authorizations -= 1;
        let seller = received.entry(alloy::hex::encode_prefixed(to)).or_default();
        seller.volume = seller.volume.saturating_add(value);
        seller.transactions += 1;
    }
    received
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, U256};

    const ASSET: Address = address!("0x1111111111111111111111111111111111111111");
    const PAYER: Address = address!("0x3333333333333333333333333333333333333333");
    const SELLER: Address = address!("0xABCDEFabcdefABCDEFabcdefABCDEFabcdefABCD");
    const EXCHANGE: Address = address!("0x4444444444444444444444444444444444444444");

    fn tx(number: u8) -> B256 {
        B256::repeat_byte(number)
    }

    fn log_of(asset: Address, tx: B256, data: alloy::primitives::LogData) -> Log {
        Log {
            inner: alloy::primitives::Log {
                address: asset,
                data,
            },
            transaction_hash: Some(tx),
            ..Log::default()
        }
    }

    fn transfer(tx: B256, from: Address, to: Address, value: u64) -> Log {
        let event = Transfer {
            from,
            to,
            value: U256::from(value),
        };
        log_of(ASSET, tx, event.encode_log_data())
    }

    fn authorization(asset: Address, tx: B256, authorizer: Address) -> Log {
        let event = AuthorizationUsed {
            authorizer,
            nonce: tx,
        };
        log_of(asset, tx, event.encode_log_data())
    }

    fn board(received: &BTreeMap<String, Received>) -> Vec<(String, u64, u64)> {
        received
            .iter()
            .map(|(to, r)| (to.clone(), r.volume.to::<u64>(), r.transactions))
            .collect()
    }

    fn seller() -> String {
        alloy::hex::encode_prefixed(SELLER)
    }

    #[test]
    fn a_transfer_counts_with_an_authorization_of_its_payer_in_its_transaction() {
        let mut reorged = [
            authorization(ASSET, tx(9), PAYER),
            transfer(tx(9), PAYER, SELLER, 1000),
        ];
        for log in &mut reorged {
            log.removed = true;
        }
        let logs = [
            // x402 payments: the authorization, then its transfer.
            authorization(ASSET, tx(1), PAYER),
            transfer(tx(1), PAYER, SELLER, 5),
            authorization(ASSET, tx(2), PAYER),
            transfer(tx(2), PAYER, SELLER, 7),
            // A plain transfer, to the same seller and to an exchange.
            transfer(tx(3), PAYER, SELLER, 100),
            transfer(tx(4), PAYER, EXCHANGE, 1_000_000),
            // Someone else's authorization in the transfer's transaction.
            authorization(ASSET, tx(5), EXCHANGE),
            transfer(tx(5), PAYER, SELLER, 200),
            // The payer's authorization, but in another transaction.
            authorization(ASSET, tx(6), PAYER),
            transfer(tx(7), PAYER, SELLER, 300),
            // Another token's authorization.
            authorization(EXCHANGE, tx(8), PAYER),
            transfer(tx(8), PAYER, SELLER, 400),
            // A mint.
            authorization(ASSET, tx(10), PAYER),
            transfer(tx(10), Address::ZERO, SELLER, 500),
        ];
        let all: Vec<Log> = logs.into_iter().chain(reorged).collect();
        assert_eq!(board(&tally(ASSET, &all)), [(seller(), 12, 2)]);
    }

    #[test]
    fn an_authorization_vouches_for_one_transfer_of_its_transaction() {
        let logs = [
            authorization(ASSET, tx(1), PAYER),
            transfer(tx(1), PAYER, SELLER, 5),
            transfer(tx(1), PAYER, EXCHANGE, 1_000_000),
            // Two authorizations batched in one transaction: two payments.
            authorization(ASSET, tx(2), PAYER),
            authorization(ASSET, tx(2), PAYER),
            transfer(tx(2), PAYER, SELLER, 7),
            transfer(tx(2), PAYER, SELLER, 8),
        ];
        assert_eq!(board(&tally(ASSET, &logs)), [(seller(), 20, 3)]);
    }

    #[test]
    fn a_log_without_its_transaction_is_skipped() {
        let mut logs = [
            authorization(ASSET, tx(1), PAYER),
            transfer(tx(1), PAYER, SELLER, 5),
        ];
        logs[1].transaction_hash = None;
        assert!(tally(ASSET, &logs).is_empty());
    }
}
