//! The exact-scheme EVM checklist: a facilitator request in, a
//! [`VerifyResponse`] with a spec §9 reason out.
//!
//! Order (the first failure answers):
//!
//! | check | reason |
//! |---|---|
//! | `x402Version` 1 or 2, the payload's equal to the request's | `invalid_x402_version` |
//! | the payload has the shape of its version | `invalid_payload` |
//! | the requirements have the shape of the version | `invalid_payment_requirements` |
//! | scheme `exact` in payload and requirements | `unsupported_scheme` |
//! | payload network == requirements network == our chain | `invalid_network` |
//! | `extra.name` / `extra.version` present | `invalid_payment_requirements` |
//! | v2: `accepted` == requirements in scheme, network, asset, payTo, amount | `invalid_payment_requirements` |
//! | `authorization.to` == `payTo` | `invalid_exact_evm_payload_recipient_mismatch` |
//! | `authorization.value` == `amount` (strictly) | `invalid_exact_evm_payload_authorization_value_mismatch` |
//! | `validAfter` <= now | `invalid_exact_evm_payload_authorization_valid_after` |
//! | `validBefore` >= now + 6 s | `invalid_exact_evm_payload_authorization_valid_before` |
//! | a 65-byte low-s ECDSA signature recovers to `from`, else `from` has code and ERC-1271 `isValidSignature` returns the magic value | `invalid_exact_evm_payload_signature` |
//! | the asset answers `authorizationState` and `balanceOf` | `invalid_payment_requirements` |
//! | `authorizationState(from, nonce)` is false | `invalid_transaction_state` |
//! | `balanceOf(from)` >= value | `insufficient_funds` |
//! | `eth_call` of the transfer from the facilitator's address succeeds (verify only) | `invalid_transaction_state`, revert text in `invalidMessage` |
//!
//! Any RPC failure is `unexpected_verify_error` with a message starting
//! `chain RPC unavailable:`; see [`crate`] for what a resource server sees.

use alloy::primitives::{Address, Bytes, Signature, B256, U256};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};
use tessera_x402::facilitator::{FacilitatorRequest, VerifyResponse};
use tessera_x402::payment::PayloadError;
use tessera_x402::{reason, Network, PaymentPayload, Requirements, RequirementsV1};

use crate::chain::ChainError;
use crate::eip3009::{self, IEip3009Token, TransferWithAuthorization, ERC1271_MAGIC_VALUE};
use crate::Facilitator;

/// `validBefore` must leave this much time for the transaction to land.
pub const VALID_BEFORE_GRACE_SECS: u64 = 6;

/// A request that failed a check: the §9 reason, a human message, and the
/// payer once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: &'static str,
    pub message: String,
    pub payer: Option<Address>,
}

impl Rejection {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            reason,
            message: message.into(),
            payer: None,
        }
    }

    fn payer(mut self, payer: Address) -> Self {
        self.payer = Some(payer);
        self
    }

    pub fn into_response(self) -> VerifyResponse {
        VerifyResponse::invalid(
            self.reason,
            self.message,
            self.payer.map(|p| p.to_checksum(None)),
        )
    }
}

/// How the signature was proven, which decides the settlement overload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// `from` is the ECDSA signer: `transferWithAuthorization(…, v, r, s)`.
    Ecdsa { v: u8, r: B256, s: B256 },
    /// `from` is a contract that accepted it through ERC-1271:
    /// `transferWithAuthorization(…, bytes signature)`.
    Contract,
}

/// A payment that passed the checklist.
#[derive(Debug, Clone)]
pub struct Verified {
    pub x402_version: u32,
    pub network: Network,
    pub token: Address,
    pub authorization: TransferWithAuthorization,
    pub signature: Bytes,
    pub kind: SignatureKind,
}

impl Verified {
    pub fn payer(&self) -> Address {
        self.authorization.from
    }

    /// Calldata of the settlement: the overload that matches the signature.
    pub fn transfer_calldata(&self) -> Bytes {
        let a = &self.authorization;
        let data = match self.kind {
            SignatureKind::Ecdsa { v, r, s } => IEip3009Token::transferWithAuthorization_0Call {
                from: a.from,
                to: a.to,
                value: a.value,
                validAfter: a.validAfter,
                validBefore: a.validBefore,
                nonce: a.nonce,
                v,
                r,
                s,
            }
            .abi_encode(),
            SignatureKind::Contract => IEip3009Token::transferWithAuthorization_1Call {
                from: a.from,
                to: a.to,
                value: a.value,
                validAfter: a.validAfter,
                validBefore: a.validBefore,
                nonce: a.nonce,
                signature: self.signature.clone(),
            }
            .abi_encode(),
        };
        data.into()
    }

    /// The settlement as a call from `sender` (no gas or nonce yet).
    pub fn transfer_request(&self, sender: Address) -> TransactionRequest {
        TransactionRequest::default()
            .from(sender)
            .to(self.token)
            .input(self.transfer_calldata().into())
    }
}

/// Whether the transfer itself is simulated (verify) or not (settle's
/// re-verification, whose gas estimate simulates it anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulate {
    Yes,
    No,
}

/// What was read from the request, before anything on chain.
pub(crate) struct Parsed {
    pub(crate) x402_version: u32,
    network: Network,
    pub(crate) token: Address,
    name: String,
    version: String,
    pub(crate) authorization: TransferWithAuthorization,
    signature: Bytes,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Facilitator {
    /// Verifies a facilitator request: never fails, a failed check is an
    /// `isValid: false` answer.
    pub async fn verify(&self, request: &FacilitatorRequest) -> VerifyResponse {
        match self.check(request, Simulate::Yes, unix_now()).await {
            Ok(verified) => VerifyResponse::valid(verified.payer().to_checksum(None)),
            Err(rejection) => {
                tracing::debug!(reason = rejection.reason, message = %rejection.message, "verify: invalid");
                rejection.into_response()
            }
        }
    }

    /// The whole checklist at time `now` (unix seconds).
    pub async fn check(
        &self,
        request: &FacilitatorRequest,
        simulate: Simulate,
        now: u64,
    ) -> Result<Verified, Rejection> {
        let parsed = parse(request, self.network())?;
        let payer = parsed.authorization.from;
        let at = |rejection: Rejection| rejection.payer(payer);
        check_time(&parsed.authorization, now).map_err(at)?;

        let domain = eip3009::domain(
            &parsed.name,
            &parsed.version,
            parsed.network.chain_id,
            parsed.token,
        );
        let hash = parsed.authorization.signing_hash(&domain);
        let kind = self
            .check_signature(payer, hash, &parsed.signature)
            .await
            .map_err(at)?;
        let verified = Verified {
            x402_version: parsed.x402_version,
            network: parsed.network,
            token: parsed.token,
            authorization: parsed.authorization,
            signature: parsed.signature,
            kind,
        };
        self.check_state(&verified, simulate).await.map_err(at)?;
        Ok(verified)
    }

    async fn check_signature(
        &self,
        from: Address,
        hash: B256,
        signature: &Bytes,
    ) -> Result<SignatureKind, Rejection> {
        let mut why = String::from("the signature does not recover to authorization.from");
        if signature.len() == 65 {
            match Signature::from_raw(signature) {
                Ok(parsed) if parsed.normalize_s().is_some() => {
                    why = "the signature has a high s value (not canonical; EIP-2)".into();
                }
                Ok(parsed) => {
                    if parsed.recover_address_from_prehash(&hash).ok() == Some(from) {
                        return Ok(SignatureKind::Ecdsa {
                            v: 27 + u8::from(parsed.v()),
                            r: parsed.r().into(),
                            s: parsed.s().into(),
                        });
                    }
                }
                Err(e) => why = format!("the signature is not r‖s‖v: {e}"),
            }
        } else {
            why = format!(
                "the signature is {} bytes and authorization.from is no contract wallet",
                signature.len()
            );
        }
        // Not `from`'s own ECDSA signature: `from` may be a contract wallet.
        let code = self.chain.code_at(from).await.map_err(unexpected)?;
        if code.is_empty() {
            return Err(Rejection::new(reason::SIGNATURE, why));
        }
        match self
            .chain
            .is_valid_signature(from, hash, signature.clone())
            .await
        {
            Ok(magic) if magic == ERC1271_MAGIC_VALUE.0 => Ok(SignatureKind::Contract),
            Ok(_) | Err(ChainError::Reverted(_)) | Err(ChainError::Refused(_)) => Err(Rejection::new(
                reason::SIGNATURE,
                "authorization.from is a contract whose ERC-1271 isValidSignature rejects the signature",
            )),
            Err(error) => Err(unexpected(error)),
        }
    }

    /// Nonce unused, balance, and (verify) the transfer simulated, read
    /// concurrently.
    async fn check_state(&self, verified: &Verified, simulate: Simulate) -> Result<(), Rejection> {
        let a = &verified.authorization;
        let simulation = async {
            match simulate {
                Simulate::Yes => {
                    let sender = self.settlement_address().unwrap_or(Address::ZERO);
                    Some(self.chain.simulate(verified.transfer_request(sender)).await)
                }
                Simulate::No => None,
            }
        };
        let (used, balance, simulated) = tokio::join!(
            self.chain
                .authorization_used(verified.token, a.from, a.nonce),
            self.chain.balance_of(verified.token, a.from),
            simulation,
        );
        let not_a_token = |error: ChainError| match error {
            ChainError::Unavailable(_) => unexpected(error),
            ChainError::Reverted(text) | ChainError::Refused(text) => Rejection::new(
                reason::INVALID_PAYMENT_REQUIREMENTS,
                format!(
                    "asset {} does not answer as an EIP-3009 token: {text}",
                    verified.token
                ),
            ),
        };
        if used.map_err(not_a_token)? {
            return Err(Rejection::new(
                reason::INVALID_TRANSACTION_STATE,
                format!(
                    "authorization nonce {} of {} is already used or canceled",
                    a.nonce, a.from
                ),
            ));
        }
        let balance = balance.map_err(not_a_token)?;
        if balance < a.value {
            return Err(Rejection::new(
                reason::INSUFFICIENT_FUNDS,
                format!(
                    "balance {balance} of {} is below the value {}",
                    a.from, a.value
                ),
            ));
        }
        match simulated {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(ChainError::Reverted(text))) | Some(Err(ChainError::Refused(text))) => {
                Err(Rejection::new(
                    reason::INVALID_TRANSACTION_STATE,
                    format!("the transfer would revert: {text}"),
                ))
            }
            Some(Err(error)) => Err(unexpected(error)),
        }
    }
}

fn unexpected(error: ChainError) -> Rejection {
    Rejection::new(reason::UNEXPECTED_VERIFY_ERROR, error.to_string())
}

/// The request's payment as `check` reads it (recipient and value already
/// matched against the requirements), without any chain call.
pub(crate) fn parse_for_settle(
    request: &FacilitatorRequest,
    ours: Network,
) -> Result<Parsed, Rejection> {
    parse(request, ours)
}

fn parse(request: &FacilitatorRequest, ours: Network) -> Result<Parsed, Rejection> {
    let version = request.x402_version;
    if version != 1 && version != 2 {
        return Err(Rejection::new(
            reason::INVALID_X402_VERSION,
            format!("x402Version {version} is not supported (1 or 2)"),
        ));
    }
    let payload =
        PaymentPayload::from_value(request.payment_payload.clone()).map_err(|e| match e {
            PayloadError::Version(_) => Rejection::new(reason::INVALID_X402_VERSION, e.to_string()),
            PayloadError::Malformed(_) => Rejection::new(reason::INVALID_PAYLOAD, e.to_string()),
        })?;
    if payload.version() != version {
        return Err(Rejection::new(
            reason::INVALID_X402_VERSION,
            format!(
                "the request says x402Version {version} but the payload {}",
                payload.version()
            ),
        ));
    }
    let requirements = parse_requirements(version, &request.payment_requirements)?;

    if requirements.scheme != "exact" || payload.scheme() != "exact" {
        return Err(Rejection::new(
            reason::UNSUPPORTED_SCHEME,
            format!(
                "scheme {:?} (requirements) / {:?} (payload): this facilitator supports \"exact\"",
                requirements.scheme,
                payload.scheme()
            ),
        ));
    }

    let network = Network::parse(&requirements.network).ok_or_else(|| {
        Rejection::new(
            reason::INVALID_NETWORK,
            format!(
                "unknown network {:?} in the requirements",
                requirements.network
            ),
        )
    })?;
    match payload.network() {
        Some(paid) if paid == network => {}
        _ => {
            return Err(Rejection::new(
                reason::INVALID_NETWORK,
                "the payload's network differs from the requirements'",
            ))
        }
    }
    if network != ours {
        return Err(Rejection::new(
            reason::INVALID_NETWORK,
            format!("network {network} is not served here (this facilitator is on {ours})"),
        ));
    }

    let (name, domain_version) = requirements.eip712_domain().ok_or_else(|| {
        Rejection::new(
            reason::INVALID_PAYMENT_REQUIREMENTS,
            "extra.name and extra.version (the token's EIP-712 domain) are required",
        )
    })?;
    let (name, domain_version) = (name.to_string(), domain_version.to_string());

    let token: Address = parse_field(&requirements.asset, "asset")?;
    let pay_to: Address = parse_field(&requirements.pay_to, "payTo")?;
    let amount = decimal(&requirements.amount).ok_or_else(|| {
        Rejection::new(
            reason::INVALID_PAYMENT_REQUIREMENTS,
            format!("amount {:?} is not a decimal integer", requirements.amount),
        )
    })?;

    if let PaymentPayload::V2 { accepted, .. } = &payload {
        accepted_matches(accepted, &requirements, network, token, pay_to, amount)?;
    }

    let exact = payload
        .exact_evm()
        .map_err(|e| Rejection::new(reason::INVALID_PAYLOAD, e.to_string()))?;
    let auth = &exact.authorization;
    let bad = |field: &str, value: &str| {
        Rejection::new(
            reason::INVALID_PAYLOAD,
            format!("authorization.{field} {value:?} is malformed"),
        )
    };
    let from: Address = auth.from.parse().map_err(|_| bad("from", &auth.from))?;
    let at = |rejection: Rejection| rejection.payer(from);
    let to: Address = auth.to.parse().map_err(|_| at(bad("to", &auth.to)))?;
    let value = decimal(&auth.value).ok_or_else(|| at(bad("value", &auth.value)))?;
    let valid_after =
        decimal(&auth.valid_after).ok_or_else(|| at(bad("validAfter", &auth.valid_after)))?;
    let valid_before =
        decimal(&auth.valid_before).ok_or_else(|| at(bad("validBefore", &auth.valid_before)))?;
    let nonce: B256 = auth
        .nonce
        .parse()
        .map_err(|_| at(bad("nonce", &auth.nonce)))?;
    let signature: Bytes = alloy::hex::decode(exact.signature.trim())
        .map_err(|_| {
            at(Rejection::new(
                reason::INVALID_PAYLOAD,
                "signature is not hex",
            ))
        })?
        .into();

    if to != pay_to {
        return Err(at(Rejection::new(
            reason::RECIPIENT_MISMATCH,
            format!("authorization.to {to} is not payTo {pay_to}"),
        )));
    }
    if value != amount {
        return Err(at(Rejection::new(
            reason::VALUE_MISMATCH,
            format!("authorization.value {value} must equal the amount {amount} exactly"),
        )));
    }

    Ok(Parsed {
        x402_version: version,
        network,
        token,
        name,
        version: domain_version,
        authorization: TransferWithAuthorization {
            from,
            to,
            value,
            validAfter: valid_after,
            validBefore: valid_before,
            nonce,
        },
        signature,
    })
}

fn check_time(authorization: &TransferWithAuthorization, now: u64) -> Result<(), Rejection> {
    if authorization.validAfter > U256::from(now) {
        return Err(Rejection::new(
            reason::VALID_AFTER,
            format!(
                "the authorization is valid only after {} (now {now})",
                authorization.validAfter
            ),
        ));
    }
    if authorization.validBefore < U256::from(now + VALID_BEFORE_GRACE_SECS) {
        return Err(Rejection::new(
            reason::VALID_BEFORE,
            format!(
                "the authorization expires at {}; it must be valid until at least {} (now + {VALID_BEFORE_GRACE_SECS} s)",
                authorization.validBefore,
                now + VALID_BEFORE_GRACE_SECS
            ),
        ));
    }
    Ok(())
}

/// The requirements in the v2 shape; v1 ones (`maxAmountRequired`, network
/// names) are normalized.
fn parse_requirements(version: u32, value: &Value) -> Result<Requirements, Rejection> {
    let malformed = |e: serde_json::Error| {
        Rejection::new(
            reason::INVALID_PAYMENT_REQUIREMENTS,
            format!("malformed paymentRequirements: {e}"),
        )
    };
    if version == 1 {
        let v1: RequirementsV1 = serde_json::from_value(value.clone()).map_err(malformed)?;
        v1.normalize().ok_or_else(|| {
            Rejection::new(
                reason::INVALID_NETWORK,
                format!("unknown network {:?} in the requirements", v1.network),
            )
        })
    } else {
        serde_json::from_value(value.clone()).map_err(malformed)
    }
}

/// v2: what the client says it accepted must be what the server requires.
fn accepted_matches(
    accepted: &Requirements,
    required: &Requirements,
    network: Network,
    token: Address,
    pay_to: Address,
    amount: U256,
) -> Result<(), Rejection> {
    let mismatch = |field: &str| {
        Rejection::new(
            reason::INVALID_PAYMENT_REQUIREMENTS,
            format!("the payload accepted another {field} than the requirements"),
        )
    };
    if accepted.scheme != required.scheme {
        return Err(mismatch("scheme"));
    }
    if Network::parse(&accepted.network) != Some(network) {
        return Err(mismatch("network"));
    }
    if accepted.asset.parse::<Address>().ok() != Some(token) {
        return Err(mismatch("asset"));
    }
    if accepted.pay_to.parse::<Address>().ok() != Some(pay_to) {
        return Err(mismatch("payTo"));
    }
    if decimal(&accepted.amount) != Some(amount) {
        return Err(mismatch("amount"));
    }
    Ok(())
}

fn parse_field(text: &str, field: &str) -> Result<Address, Rejection> {
    text.parse().map_err(|_| {
        Rejection::new(
            reason::INVALID_PAYMENT_REQUIREMENTS,
            format!("{field} {text:?} is not an address"),
        )
    })
}

/// A non-negative decimal integer below 2^256, digits only.
fn decimal(text: &str) -> Option<U256> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    U256::from_str_radix(text, 10).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_digits_only() {
        assert_eq!(decimal("1000"), Some(U256::from(1000)));
        assert_eq!(decimal("0"), Some(U256::ZERO));
        for bad in ["", "0x10", "-1", "1e3", " 1", "1.0"] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
        assert_eq!(decimal(&"9".repeat(80)), None);
    }

    #[test]
    fn the_time_window_has_a_grace_before_expiry() {
        let mut auth = TransferWithAuthorization {
            from: Address::ZERO,
            to: Address::ZERO,
            value: U256::ZERO,
            validAfter: U256::from(100),
            validBefore: U256::from(206),
            nonce: B256::ZERO,
        };
        assert!(check_time(&auth, 200).is_ok());
        assert_eq!(
            check_time(&auth, 201).unwrap_err().reason,
            reason::VALID_BEFORE
        );
        assert_eq!(
            check_time(&auth, 99).unwrap_err().reason,
            reason::VALID_AFTER
        );
        auth.validAfter = U256::from(200);
        assert!(check_time(&auth, 200).is_ok());
    }
}
