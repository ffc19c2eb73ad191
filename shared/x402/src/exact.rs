//! The `exact` scheme on EVM, parsed once at the edge into typed values
//! (alloy `Address`, `U256`, `B256`) so that every spelling a client or an
//! attacker can produce of one authorization (hex case, with or without
//! `0x`, checksummed or not, v1 or v2 wrapping) is the same value, and every
//! comparison happens on types. The resource server and the facilitator both
//! judge a payment with the one [`ExactPayment::matches`].

use crate::eip3009::TransferWithAuthorization;
use crate::network::Network;
use crate::payment::{PaymentPayload, Requirements, ResourceInfo};
use crate::{reason, ExactEvmPayload};
use alloy::primitives::{Address, Bytes, B256, U256};
use std::fmt;

/// The only scheme this module reads.
pub const SCHEME: &str = "exact";

/// A payment or its requirements failed a check: the spec §9 reason and a
/// message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// The token's EIP-712 domain name and version (`extra.name`, `extra.version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDomain {
    pub name: String,
    pub version: String,
}

/// Requirements of the exact scheme on an EVM network, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactRequirements {
    pub network: Network,
    pub amount: U256,
    pub asset: Address,
    pub pay_to: Address,
    pub max_timeout_seconds: u64,
    pub domain: Option<TokenDomain>,
}

impl ExactRequirements {
    /// Reads v2-shaped requirements (v1 ones normalize to this shape first).
    pub fn parse(requirements: &Requirements) -> Result<Self, Refusal> {
        if requirements.scheme != SCHEME {
            return Err(Refusal::new(
                reason::UNSUPPORTED_SCHEME,
                format!(
                    "scheme {:?} is not supported; use \"exact\"",
                    requirements.scheme
                ),
            ));
        }
        let network = Network::parse(&requirements.network).ok_or_else(|| {
            Refusal::new(
                reason::INVALID_NETWORK,
                format!("unknown network {:?}", requirements.network),
            )
        })?;
        let invalid = |field: &str, text: &str| {
            Refusal::new(
                reason::INVALID_PAYMENT_REQUIREMENTS,
                format!("{field} {text:?} is malformed"),
            )
        };
        Ok(ExactRequirements {
            network,
            amount: decimal(&requirements.amount)
                .ok_or_else(|| invalid("amount", &requirements.amount))?,
            asset: parse_address(&requirements.asset)
                .ok_or_else(|| invalid("asset", &requirements.asset))?,
            pay_to: parse_address(&requirements.pay_to)
                .ok_or_else(|| invalid("payTo", &requirements.pay_to))?,
            max_timeout_seconds: requirements.max_timeout_seconds,
            domain: requirements
                .eip712_domain()
                .map(|(name, version)| TokenDomain {
                    name: name.to_string(),
                    version: version.to_string(),
                }),
        })
    }
}

/// An EIP-3009 authorization, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactAuthorization {
    pub from: Address,
    pub to: Address,
    pub value: U256,
    pub valid_after: U256,
    pub valid_before: U256,
    pub nonce: B256,
}

impl ExactAuthorization {
    /// The EIP-712 message the payer signed.
    pub fn message(&self) -> TransferWithAuthorization {
        TransferWithAuthorization {
            from: self.from,
            to: self.to,
            value: self.value,
            validAfter: self.valid_after,
            validBefore: self.valid_before,
            nonce: self.nonce,
        }
    }

    /// Valid at `now` (unix seconds) and still for at least `min_remaining`
    /// seconds after it.
    pub fn check_window(&self, now: u64, min_remaining: u64) -> Result<(), Refusal> {
        if self.valid_after > U256::from(now) {
            return Err(Refusal::new(
                reason::VALID_AFTER,
                format!(
                    "the authorization is valid only after {} (now {now})",
                    self.valid_after
                ),
            ));
        }
        let needed = now.saturating_add(min_remaining);
        if self.valid_before < U256::from(needed) {
            return Err(Refusal::new(
                reason::VALID_BEFORE,
                format!(
                    "the authorization expires at {}; it must be valid until at least {needed} (now + {min_remaining} s)",
                    self.valid_before
                ),
            ));
        }
        Ok(())
    }
}

/// The identity of an authorization: the token contract on its chain, the
/// payer, and the EIP-3009 nonce. Every spelling of one authorization has
/// the same key; the key is what a ledger reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthorizationKey {
    pub chain_id: u64,
    pub asset: Address,
    pub from: Address,
    pub nonce: B256,
}

impl AuthorizationKey {
    /// Lower-case `0x` hex of the asset, payer and nonce: the stored form.
    pub fn asset_hex(&self) -> String {
        format!("{:#x}", self.asset)
    }

    pub fn from_hex(&self) -> String {
        format!("{:#x}", self.from)
    }

    pub fn nonce_hex(&self) -> String {
        format!("{:#x}", self.nonce)
    }
}

/// A client's exact-scheme EVM payment, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactPayment {
    pub x402_version: u32,
    pub network: Network,
    /// v2: the requirements the client says it accepted.
    pub accepted: Option<ExactRequirements>,
    /// v2: the resource the client says it pays for, if it says.
    pub resource: Option<ResourceInfo>,
    pub authorization: ExactAuthorization,
    pub signature: Bytes,
}

impl ExactPayment {
    /// Reads a payload of either version. Fails on another scheme, an
    /// unknown network, or a field that is not what it must be.
    pub fn parse(payload: &PaymentPayload) -> Result<Self, Refusal> {
        if payload.scheme() != SCHEME {
            return Err(Refusal::new(
                reason::UNSUPPORTED_SCHEME,
                format!(
                    "scheme {:?} is not supported; use \"exact\"",
                    payload.scheme()
                ),
            ));
        }
        let network = payload.network().ok_or_else(|| {
            Refusal::new(
                reason::INVALID_NETWORK,
                "the payment's network is not an EVM network this server knows",
            )
        })?;
        let (accepted, resource) = match payload {
            PaymentPayload::V1 { .. } => (None, None),
            PaymentPayload::V2 {
                accepted, resource, ..
            } => (Some(ExactRequirements::parse(accepted)?), resource.clone()),
        };
        let exact: ExactEvmPayload = payload
            .exact_evm()
            .map_err(|e| Refusal::new(reason::INVALID_PAYLOAD, e.to_string()))?;
        let auth = &exact.authorization;
        let bad = |field: &str, value: &str| {
            Refusal::new(
                reason::INVALID_PAYLOAD,
                format!("authorization.{field} {value:?} is malformed"),
            )
        };
        let authorization = ExactAuthorization {
            from: parse_address(&auth.from).ok_or_else(|| bad("from", &auth.from))?,
            to: parse_address(&auth.to).ok_or_else(|| bad("to", &auth.to))?,
            value: decimal(&auth.value).ok_or_else(|| bad("value", &auth.value))?,
            valid_after: decimal(&auth.valid_after)
                .ok_or_else(|| bad("validAfter", &auth.valid_after))?,
            valid_before: decimal(&auth.valid_before)
                .ok_or_else(|| bad("validBefore", &auth.valid_before))?,
            nonce: parse_b256(&auth.nonce).ok_or_else(|| bad("nonce", &auth.nonce))?,
        };
        let signature = parse_hex(&exact.signature)
            .ok_or_else(|| Refusal::new(reason::INVALID_PAYLOAD, "signature is not hex"))?;
        Ok(ExactPayment {
            x402_version: payload.version(),
            network,
            accepted,
            resource,
            authorization,
            signature,
        })
    }

    /// The payer: the authorization's `from`.
    pub fn payer(&self) -> Address {
        self.authorization.from
    }

    /// This authorization's identity for a payment in `asset`.
    pub fn key(&self, asset: Address) -> AuthorizationKey {
        AuthorizationKey {
            chain_id: self.network.chain_id,
            asset,
            from: self.authorization.from,
            nonce: self.authorization.nonce,
        }
    }

    /// Whether this payment pays `required`, checked in the facilitator
    /// checklist's order: network, the v2 `accepted` terms, recipient,
    /// value (strictly equal).
    pub fn matches(&self, required: &ExactRequirements) -> Result<(), Refusal> {
        if self.network != required.network {
            return Err(Refusal::new(
                reason::INVALID_NETWORK,
                format!(
                    "the payment is on {} but this is paid on {}",
                    self.network, required.network
                ),
            ));
        }
        if let Some(accepted) = &self.accepted {
            let differs = [
                ("network", accepted.network != required.network),
                ("asset", accepted.asset != required.asset),
                ("payTo", accepted.pay_to != required.pay_to),
                ("amount", accepted.amount != required.amount),
            ]
            .into_iter()
            .find_map(|(field, differs)| differs.then_some(field));
            if let Some(field) = differs {
                return Err(Refusal::new(
                    reason::INVALID_PAYMENT_REQUIREMENTS,
                    format!("the payment accepted another {field} than this resource requires"),
                ));
            }
        }
        if self.authorization.to != required.pay_to {
            return Err(Refusal::new(
                reason::RECIPIENT_MISMATCH,
                format!(
                    "authorization.to {} is not payTo {}",
                    self.authorization.to, required.pay_to
                ),
            ));
        }
        if self.authorization.value != required.amount {
            return Err(Refusal::new(
                reason::VALUE_MISMATCH,
                format!(
                    "authorization.value {} must equal the amount {} exactly",
                    self.authorization.value, required.amount
                ),
            ));
        }
        Ok(())
    }

    /// The exact-EVM `payload` object in canonical spelling: checksummed
    /// addresses, lower-case `0x` nonce and signature, decimal numbers.
    pub fn canonical_payload(&self) -> serde_json::Value {
        let a = &self.authorization;
        serde_json::to_value(ExactEvmPayload {
            signature: self.signature.to_string(),
            authorization: crate::Authorization {
                from: a.from.to_checksum(None),
                to: a.to.to_checksum(None),
                value: a.value.to_string(),
                valid_after: a.valid_after.to_string(),
                valid_before: a.valid_before.to_string(),
                nonce: a.nonce.to_string(),
            },
        })
        .expect("serializes")
    }
}

/// An EVM address in any case, with or without `0x`; the checksum of a
/// mixed-case spelling is not required (the bytes are what is signed).
pub fn parse_address(text: &str) -> Option<Address> {
    let hex = strip_0x(text.trim());
    (hex.len() == 40).then(|| hex.parse().ok()).flatten()
}

/// 32 bytes of hex in any case, with or without `0x`.
pub fn parse_b256(text: &str) -> Option<B256> {
    let hex = strip_0x(text.trim());
    (hex.len() == 64).then(|| hex.parse().ok()).flatten()
}

fn parse_hex(text: &str) -> Option<Bytes> {
    alloy::hex::decode(strip_0x(text.trim()))
        .ok()
        .map(Bytes::from)
}

fn strip_0x(text: &str) -> &str {
    text.strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text)
}

/// A non-negative decimal integer below 2^256, digits only.
pub fn decimal(text: &str) -> Option<U256> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    U256::from_str_radix(text, 10).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOKEN: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
    const FROM: &str = "0x857b06519E91e3A54538791bDbb0E22373e36b66";
    const NONCE: &str = "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480";

    fn requirements() -> Requirements {
        Requirements {
            scheme: "exact".into(),
            network: "eip155:84532".into(),
            amount: "1000".into(),
            asset: TOKEN.into(),
            pay_to: PAY_TO.into(),
            max_timeout_seconds: 60,
            extra: Some(json!({"name": "USDC", "version": "2"})),
        }
    }

    fn payload(from: &str, to: &str, nonce: &str) -> serde_json::Value {
        json!({"signature": "0x00", "authorization": {
            "from": from, "to": to, "value": "1000", "validAfter": "0",
            "validBefore": "99", "nonce": nonce}})
    }

    fn v2(from: &str, to: &str, nonce: &str) -> PaymentPayload {
        PaymentPayload::from_value(json!({
            "x402Version": 2, "accepted": requirements(), "payload": payload(from, to, nonce),
        }))
        .unwrap()
    }

    fn typed() -> ExactRequirements {
        ExactRequirements::parse(&requirements()).unwrap()
    }

    #[test]
    fn every_spelling_of_one_authorization_has_one_key() {
        let asset = typed().asset;
        let canonical = ExactPayment::parse(&v2(FROM, PAY_TO, NONCE)).unwrap();
        let bare_nonce = NONCE.trim_start_matches("0x");
        let spellings = [
            v2(&FROM.to_lowercase(), PAY_TO, NONCE),
            v2(&FROM.to_uppercase().replacen("0X", "0x", 1), PAY_TO, NONCE),
            v2(FROM, &PAY_TO.to_lowercase(), &NONCE.to_uppercase()),
            v2(FROM, PAY_TO, bare_nonce),
            v2(
                FROM.trim_start_matches("0x"),
                PAY_TO,
                &bare_nonce.to_uppercase(),
            ),
            PaymentPayload::from_value(json!({
                "x402Version": 1, "scheme": "exact", "network": "base-sepolia",
                "payload": payload(FROM, PAY_TO, NONCE),
            }))
            .unwrap(),
        ];
        for spelling in spellings {
            let parsed = ExactPayment::parse(&spelling).unwrap();
            assert_eq!(parsed.key(asset), canonical.key(asset), "{spelling:?}");
            assert_eq!(parsed.authorization, canonical.authorization);
            parsed.matches(&typed()).unwrap();
        }
        let key = canonical.key(asset);
        assert_eq!(key.nonce_hex(), NONCE);
        assert_eq!(key.from_hex(), FROM.to_lowercase());
        assert_eq!(key.asset_hex(), TOKEN.to_lowercase());
    }

    #[test]
    fn malformed_fields_are_invalid_payload() {
        for (from, nonce) in [
            ("0x1234", NONCE),
            (FROM, "0x1234"),
            (FROM, "zz"),
            ("0xg57b06519E91e3A54538791bDbb0E22373e36b66", NONCE),
            (&format!("{FROM}00"), NONCE),
        ] {
            let refusal = ExactPayment::parse(&v2(from, PAY_TO, nonce)).unwrap_err();
            assert_eq!(refusal.reason, reason::INVALID_PAYLOAD, "{from} {nonce}");
        }
    }

    #[test]
    fn a_payment_matches_only_its_own_terms() {
        let payment = ExactPayment::parse(&v2(FROM, PAY_TO, NONCE)).unwrap();
        let mut required = typed();
        required.amount = U256::from(2000);
        assert_eq!(
            payment.matches(&required).unwrap_err().reason,
            reason::INVALID_PAYMENT_REQUIREMENTS
        );
        let v1 = ExactPayment {
            accepted: None,
            ..payment.clone()
        };
        assert_eq!(
            v1.matches(&required).unwrap_err().reason,
            reason::VALUE_MISMATCH
        );
        let mut required = typed();
        required.pay_to = Address::repeat_byte(7);
        assert_eq!(
            v1.matches(&required).unwrap_err().reason,
            reason::RECIPIENT_MISMATCH
        );
        let mut required = typed();
        required.network = Network::new(8453);
        assert_eq!(
            payment.matches(&required).unwrap_err().reason,
            reason::INVALID_NETWORK
        );
    }

    #[test]
    fn the_window_needs_the_time_asked_for() {
        let auth = ExactPayment::parse(&v2(FROM, PAY_TO, NONCE))
            .unwrap()
            .authorization;
        assert!(auth.check_window(50, 49).is_ok());
        assert_eq!(
            auth.check_window(50, 50).unwrap_err().reason,
            reason::VALID_BEFORE
        );
        let later = ExactAuthorization {
            valid_after: U256::from(60),
            ..auth
        };
        assert_eq!(
            later.check_window(50, 0).unwrap_err().reason,
            reason::VALID_AFTER
        );
    }

    #[test]
    fn decimals_are_digits_only() {
        assert_eq!(decimal("1000"), Some(U256::from(1000)));
        assert_eq!(decimal("01000"), Some(U256::from(1000)));
        for bad in ["", "0x10", "-1", "1e3", " 1", "1.0"] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
        assert_eq!(decimal(&"9".repeat(80)), None);
    }

    #[test]
    fn the_canonical_payload_round_trips() {
        let payment = ExactPayment::parse(&v2(
            &FROM.to_lowercase(),
            PAY_TO,
            &NONCE.to_uppercase().replacen("0X", "", 1),
        ))
        .unwrap();
        let canonical = payment.canonical_payload();
        assert_eq!(canonical["authorization"]["from"], FROM);
        assert_eq!(canonical["authorization"]["nonce"], NONCE);
    }
}
