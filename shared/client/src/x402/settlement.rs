//! What a served, paid call says about its payment: the `payment-response`
//! trailing metadata (x402's `PAYMENT-RESPONSE`), read into typed values.

use alloy::primitives::{Address, B256, U256};
use tessera_x402::exact::{decimal, parse_address, parse_b256};
use tessera_x402::facilitator::SettleResponse;
use tessera_x402::Network;
use tonic::metadata::MetadataMap;

/// The metadata key a served call's settlement arrives in.
pub const PAYMENT_RESPONSE: &str = "payment-response";

/// The settlement of one paid call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The transfer is on chain. False while it is still pending
    /// (`error_reason` says so) or when it failed.
    pub success: bool,
    /// The settling transaction; `None` until there is one.
    pub transaction: Option<B256>,
    pub network: Option<Network>,
    pub payer: Option<Address>,
    pub amount: Option<U256>,
    pub error_reason: Option<String>,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettlementError {
    #[error("payment-response is not ASCII")]
    NotAscii,
    #[error("payment-response is unreadable: {0}")]
    Unreadable(String),
    #[error("payment-response field {field} is malformed: {value:?}")]
    Malformed { field: &'static str, value: String },
}

impl Settlement {
    /// The settlement in `metadata` (a unary response's, where tonic puts
    /// the trailers); `None` when the call was not paid.
    pub fn from_metadata(metadata: &MetadataMap) -> Option<Result<Settlement, SettlementError>> {
        let value = metadata.get(PAYMENT_RESPONSE)?;
        Some(
            value
                .to_str()
                .map_err(|_| SettlementError::NotAscii)
                .and_then(Settlement::from_header),
        )
    }

    /// Reads the base64 JSON `SettleResponse` of the header.
    pub fn from_header(header: &str) -> Result<Settlement, SettlementError> {
        let wire: SettleResponse = tessera_x402::decode_header(header)
            .map_err(|e| SettlementError::Unreadable(e.to_string()))?;
        Settlement::try_from(wire)
    }
}

impl TryFrom<SettleResponse> for Settlement {
    type Error = SettlementError;

    fn try_from(wire: SettleResponse) -> Result<Self, SettlementError> {
        fn typed<T>(
            field: &'static str,
            value: Option<&str>,
            parse: impl Fn(&str) -> Option<T>,
        ) -> Result<Option<T>, SettlementError> {
            match value.filter(|text| !text.is_empty()) {
                None => Ok(None),
                Some(text) => parse(text).map(Some).ok_or(SettlementError::Malformed {
                    field,
                    value: text.to_string(),
                }),
            }
        }
        Ok(Settlement {
            success: wire.success,
            transaction: typed("transaction", Some(&wire.transaction), parse_b256)?,
            network: typed("network", Some(&wire.network), Network::parse)?,
            payer: typed("payer", wire.payer.as_deref(), parse_address)?,
            amount: typed("amount", wire.amount.as_deref(), decimal)?,
            error_reason: wire.error_reason,
            error_message: wire.error_message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_settled_and_a_pending_response() {
        let settled = tessera_x402::encode_header(&json!({
            "success": true,
            "transaction": "0x9a6bd1a4a1b8e55bfae3bb4e1b3f6d5c0d2f8d1e9e2c3b4a5968778695a4b3c2",
            "network": "eip155:84532",
            "payer": "0x857B06519E91E3A54538791BDBB0E22373E36B66",
        }));
        let mut metadata = MetadataMap::new();
        metadata.insert(PAYMENT_RESPONSE, settled.parse().unwrap());
        let settlement = Settlement::from_metadata(&metadata).unwrap().unwrap();
        assert!(settlement.success);
        assert!(settlement.transaction.is_some());
        assert_eq!(settlement.network, Some(Network::new(84532)));
        assert_eq!(
            settlement.payer,
            Some(alloy::primitives::address!(
                "857b06519e91e3a54538791bdbb0e22373e36b66"
            ))
        );

        let pending = Settlement::from_header(&tessera_x402::encode_header(&json!({
            "success": false, "transaction": "", "network": "eip155:84532",
            "errorReason": "settlement_pending",
        })))
        .unwrap();
        assert!(!pending.success);
        assert_eq!(pending.transaction, None);
        assert_eq!(pending.error_reason.as_deref(), Some("settlement_pending"));
    }

    #[test]
    fn unpaid_calls_have_none_and_bad_ones_say_which_field() {
        assert_eq!(Settlement::from_metadata(&MetadataMap::new()), None);
        let bad = tessera_x402::encode_header(&json!({
            "success": true, "transaction": "0x12", "network": "eip155:84532",
        }));
        assert_eq!(
            Settlement::from_header(&bad),
            Err(SettlementError::Malformed {
                field: "transaction",
                value: "0x12".into()
            })
        );
        assert!(matches!(
            Settlement::from_header("%%%"),
            Err(SettlementError::Unreadable(_))
        ));
    }
}
