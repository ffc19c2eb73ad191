//! What a resource server and a paying client exchange.

use crate::network::Network;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The resource being bought (v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// Payment requirements in the v2 shape (also what v1 ones normalize to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirements {
    pub scheme: String,
    /// CAIP-2, e.g. `eip155:8453`.
    pub network: String,
    /// Atomic units, decimal.
    pub amount: String,
    pub asset: String,
    pub pay_to: String,
    pub max_timeout_seconds: u64,
    /// For EIP-3009 assets: the token's EIP-712 `{name, version}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

impl Requirements {
    /// The EIP-712 domain name and version from `extra`.
    pub fn eip712_domain(&self) -> Option<(&str, &str)> {
        let extra = self.extra.as_ref()?;
        Some((
            extra.get("name")?.as_str()?,
            extra.get("version")?.as_str()?,
        ))
    }

    /// The v1 shape of these requirements (v1 names its networks).
    pub fn to_v1(&self, resource: &ResourceInfo) -> Option<RequirementsV1> {
        let network = Network::parse(&self.network)?.v1_name()?;
        Some(RequirementsV1 {
            scheme: self.scheme.clone(),
            network: network.to_string(),
            max_amount_required: self.amount.clone(),
            resource: resource.url.clone(),
            description: resource.description.clone().unwrap_or_default(),
            mime_type: resource.mime_type.clone(),
            output_schema: None,
            pay_to: self.pay_to.clone(),
            max_timeout_seconds: self.max_timeout_seconds,
            asset: self.asset.clone(),
            extra: self.extra.clone(),
        })
    }
}

/// Payment requirements in the v1 shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementsV1 {
    pub scheme: String,
    pub network: String,
    pub max_amount_required: String,
    pub resource: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    pub pay_to: String,
    pub max_timeout_seconds: u64,
    pub asset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

impl RequirementsV1 {
    pub fn normalize(&self) -> Option<Requirements> {
        Some(Requirements {
            scheme: self.scheme.clone(),
            network: Network::parse(&self.network)?.caip2(),
            amount: self.max_amount_required.clone(),
            asset: self.asset.clone(),
            pay_to: self.pay_to.clone(),
            max_timeout_seconds: self.max_timeout_seconds,
            extra: self.extra.clone(),
        })
    }
}

/// The 402 answer: the `PAYMENT-REQUIRED` header (v2) and the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    pub x402_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub resource: ResourceInfo,
    pub accepts: Vec<Requirements>,
}

/// A client's payment, v1 or v2, told apart by `x402Version`.
// One per request, parsed and dropped: boxing v2 would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentPayload {
    V1 {
        scheme: String,
        network: String,
        payload: Value,
    },
    V2 {
        accepted: Requirements,
        resource: Option<ResourceInfo>,
        payload: Value,
        extensions: Option<Value>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireV1 {
    scheme: String,
    network: String,
    payload: Value,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireV2 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource: Option<ResourceInfo>,
    accepted: Requirements,
    payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extensions: Option<Value>,
}

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("x402Version {0} is not supported (1 or 2)")]
    Version(i64),
    #[error("malformed payment payload: {0}")]
    Malformed(String),
}

impl PaymentPayload {
    pub fn from_value(value: Value) -> Result<Self, PayloadError> {
        let version = value.get("x402Version").and_then(Value::as_i64);
        let malformed = |e: serde_json::Error| PayloadError::Malformed(e.to_string());
        match version {
            Some(1) => {
                let wire: WireV1 = serde_json::from_value(value).map_err(malformed)?;
                Ok(PaymentPayload::V1 {
                    scheme: wire.scheme,
                    network: wire.network,
                    payload: wire.payload,
                })
            }
            Some(2) => {
                let wire: WireV2 = serde_json::from_value(value).map_err(malformed)?;
                Ok(PaymentPayload::V2 {
                    accepted: wire.accepted,
                    resource: wire.resource,
                    payload: wire.payload,
                    extensions: wire.extensions,
                })
            }
            Some(other) => Err(PayloadError::Version(other)),
            None => Err(PayloadError::Malformed("x402Version is missing".into())),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            PaymentPayload::V1 {
                scheme,
                network,
                payload,
            } => serde_json::json!({
                "x402Version": 1, "scheme": scheme, "network": network, "payload": payload,
            }),
            PaymentPayload::V2 {
                accepted,
                resource,
                payload,
                extensions,
            } => {
                let mut value = serde_json::to_value(WireV2 {
                    resource: resource.clone(),
                    accepted: accepted.clone(),
                    payload: payload.clone(),
                    extensions: extensions.clone(),
                })
                .expect("serializes");
                value["x402Version"] = 2.into();
                value
            }
        }
    }

    pub fn version(&self) -> u32 {
        match self {
            PaymentPayload::V1 { .. } => 1,
            PaymentPayload::V2 { .. } => 2,
        }
    }

    pub fn scheme(&self) -> &str {
        match self {
            PaymentPayload::V1 { scheme, .. } => scheme,
            PaymentPayload::V2 { accepted, .. } => &accepted.scheme,
        }
    }

    /// The network as CAIP-2, if it is one we can name.
    pub fn network(&self) -> Option<Network> {
        match self {
            PaymentPayload::V1 { network, .. } => Network::parse(network),
            PaymentPayload::V2 { accepted, .. } => Network::parse(&accepted.network),
        }
    }

    pub fn payload(&self) -> &Value {
        match self {
            PaymentPayload::V1 { payload, .. } | PaymentPayload::V2 { payload, .. } => payload,
        }
    }

    /// The exact-scheme EVM payload inside.
    pub fn exact_evm(&self) -> Result<ExactEvmPayload, PayloadError> {
        serde_json::from_value(self.payload().clone())
            .map_err(|e| PayloadError::Malformed(e.to_string()))
    }
}

/// `payload` of the exact scheme on EVM: an EIP-3009 authorization and its
/// signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactEvmPayload {
    pub signature: String,
    pub authorization: Authorization,
}

/// `TransferWithAuthorization` fields; numbers are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    pub from: String,
    pub to: String,
    pub value: String,
    pub valid_after: String,
    pub valid_before: String,
    /// 32 bytes, 0x-hex.
    pub nonce: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn requirements() -> Requirements {
        Requirements {
            scheme: "exact".into(),
            network: "eip155:84532".into(),
            amount: "1000".into(),
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            pay_to: "0x0000000000000000000000000000000000000001".into(),
            max_timeout_seconds: 60,
            extra: Some(json!({"name": "USDC", "version": "2"})),
        }
    }

    #[test]
    fn v2_payload_round_trips_with_camel_case_fields() {
        let value = json!({
            "x402Version": 2,
            "accepted": requirements(),
            "payload": {"signature": "0x00", "authorization": {
                "from": "0xa", "to": "0xb", "value": "1000", "validAfter": "0",
                "validBefore": "99", "nonce": "0x01"}},
        });
        let payload = PaymentPayload::from_value(value.clone()).unwrap();
        assert_eq!(payload.version(), 2);
        assert_eq!(payload.network(), Some(Network::new(84532)));
        assert_eq!(
            payload.exact_evm().unwrap().authorization.valid_before,
            "99"
        );
        assert_eq!(payload.to_value(), value);
        assert_eq!(
            serde_json::to_value(requirements()).unwrap()["payTo"],
            "0x0000000000000000000000000000000000000001"
        );
        assert_eq!(
            serde_json::to_value(requirements()).unwrap()["maxTimeoutSeconds"],
            60
        );
    }

    #[test]
    fn v1_payloads_and_requirements_normalize() {
        let payload = PaymentPayload::from_value(json!({
            "x402Version": 1, "scheme": "exact", "network": "base-sepolia", "payload": {}
        }))
        .unwrap();
        assert_eq!(payload.network().unwrap().caip2(), "eip155:84532");
        let resource = ResourceInfo {
            url: "http://x/api/memory".into(),
            description: None,
            mime_type: None,
        };
        let v1 = requirements().to_v1(&resource).unwrap();
        assert_eq!(v1.network, "base-sepolia");
        assert_eq!(v1.max_amount_required, "1000");
        assert_eq!(v1.normalize().unwrap(), requirements());
    }

    #[test]
    fn bad_versions_and_shapes_are_named() {
        assert_eq!(
            PaymentPayload::from_value(json!({"x402Version": 3})).unwrap_err(),
            PayloadError::Version(3)
        );
        assert!(matches!(
            PaymentPayload::from_value(json!({"x402Version": 2})),
            Err(PayloadError::Malformed(_))
        ));
        assert!(matches!(
            PaymentPayload::from_value(json!({})),
            Err(PayloadError::Malformed(_))
        ));
    }

    #[test]
    fn domain_comes_from_extra() {
        assert_eq!(requirements().eip712_domain(), Some(("USDC", "2")));
        let mut bare = requirements();
        bare.extra = None;
        assert_eq!(bare.eip712_domain(), None);
    }
}
