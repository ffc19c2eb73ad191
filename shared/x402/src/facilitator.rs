//! The facilitator HTTP API: `POST /verify`, `POST /settle`, `GET /supported`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Body of `/verify` and `/settle`. Payload and requirements stay JSON here:
/// their shape depends on `x402Version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorRequest {
    pub x402_version: u32,
    pub payment_payload: Value,
    pub payment_requirements: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub is_valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

impl VerifyResponse {
    pub fn valid(payer: String) -> Self {
        VerifyResponse {
            is_valid: true,
            payer: Some(payer),
            ..Default::default()
        }
    }

    pub fn invalid(reason: &str, message: impl Into<String>, payer: Option<String>) -> Self {
        VerifyResponse {
            is_valid: false,
            invalid_reason: Some(reason.to_string()),
            invalid_message: Some(message.into()),
            payer,
        }
    }
}

/// Also the `PAYMENT-RESPONSE` header's content.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Transaction hash; empty on failure.
    pub transaction: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// x402 v2 `extensions` (spec §5.3): e.g. where a pending settlement
    /// can be looked up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    pub x402_version: u32,
    pub scheme: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    pub kinds: Vec<SupportedKind>,
    #[serde(default)]
    pub extensions: Vec<String>,
    /// CAIP-2 family (`eip155:*`) → signer addresses.
    #[serde(default)]
    pub signers: std::collections::BTreeMap<String, Vec<String>>,
}

/// The header (HTTP) or metadata key (gRPC) naming a `/settle`'s
/// [`Urgency`] (ours, not the x402 spec's: a facilitator that does not know
/// it settles every request alike); its value `background` asks [`Urgency::Background`], any
/// other (or none) is [`Urgency::Now`].
pub const URGENCY_HEADER: &str = "x-settle-urgency";

/// Whether a settle's caller waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Urgency {
    /// Its caller waits: it goes into the next batch before any
    /// background settle.
    #[default]
    Now,
    /// Settling a call already answered: it waits behind every urgent one.
    Background,
}

impl Urgency {
    /// From the header's value, if any (see [`URGENCY_HEADER`]).
    pub fn from_header(value: Option<&[u8]>) -> Urgency {
        match value {
            Some(value) if value.eq_ignore_ascii_case(b"background") => Urgency::Background,
            _ => Urgency::Now,
        }
    }

    /// The header's value that asks this urgency.
    pub fn header_value(self) -> &'static str {
        match self {
            Urgency::Now => "now",
            Urgency::Background => "background",
        }
    }
}
