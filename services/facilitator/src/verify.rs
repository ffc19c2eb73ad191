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
//! | *(chain state from here: settle without batching reads it before sending; a batched settle only when its batch's estimate reverts, see [`crate::batch`])* | |
//! | the asset answers `authorizationState` and `balanceOf` | `invalid_payment_requirements` |
//! | `authorizationState(from, nonce)` is false | `invalid_transaction_state` |
//! | `balanceOf(from)` >= value | `insufficient_funds` |
//! | `eth_call` of the transfer from the facilitator's address succeeds (verify only) | `invalid_transaction_state`, revert text in `invalidMessage` |
//!
//! Any RPC failure is `unexpected_verify_error` with a message starting
//! `chain RPC unavailable:`; see [`crate`] for what a resource server sees.

use alloy::primitives::{Address, Bytes};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};
use tessera_evm::token::IEip3009Token;
use tessera_evm::{Chain, ChainError, SignatureRefused};
use tessera_x402::eip3009::{self, TransferWithAuthorization};
use tessera_x402::facilitator::{FacilitatorRequest, VerifyResponse};
use tessera_x402::payment::PayloadError;
use tessera_x402::{
    reason, ExactPayment, ExactRequirements, Network, PaymentPayload, Refusal, Requirements,
    RequirementsV1,
};

use crate::Facilitator;

pub use tessera_evm::SignatureKind;

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

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Self {
        Rejection::new(refusal.reason, refusal.message)
    }
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
            SignatureKind::Ecdsa(parts) => IEip3009Token::transferWithAuthorization_0Call {
                from: a.from,
                to: a.to,
                value: a.value,
                validAfter: a.validAfter,
                validBefore: a.validBefore,
                nonce: a.nonce,
                v: parts.v,
                r: parts.r,
                s: parts.s,
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
    pub(crate) required: ExactRequirements,
    pub(crate) payment: ExactPayment,
    domain: tessera_x402::exact::TokenDomain,
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

    /// The whole checklist at time `now` (unix seconds): the local checks
    /// (terms, validity window, signature), then the chain state (nonce
    /// unused, balance, and for verify the transfer simulated).
    pub async fn check(
        &self,
        request: &FacilitatorRequest,
        simulate: Simulate,
        now: u64,
    ) -> Result<Verified, Rejection> {
        let verified = self.check_local(request, now).await?;
        let simulate_from = match simulate {
            Simulate::Yes => Some(self.settlement_address().unwrap_or(Address::ZERO)),
            Simulate::No => None,
        };
        check_state(&self.chain, &verified, simulate_from)
            .await
            .map_err(|rejection| rejection.payer(verified.payer()))?;
        Ok(verified)
    }

    /// The checklist up to the signature, at time `now`: the request's
    /// terms, the validity window and the EIP-712 signature. No chain state
    /// is read (only an ERC-1271 wallet's `isValidSignature`, for a
    /// signature that is not the payer's own ECDSA one). A batched settle
    /// does only these before its batch, whose gas estimate simulates every
    /// transfer at once ([`crate::batch`]).
    pub(crate) async fn check_local(
        &self,
        request: &FacilitatorRequest,
        now: u64,
    ) -> Result<Verified, Rejection> {
        let parsed = parse(request, self.network())?;
        let payer = parsed.payment.payer();
        let at = |rejection: Rejection| rejection.payer(payer);
        parsed
            .payment
            .authorization
            .check_window(now, VALID_BEFORE_GRACE_SECS)
            .map_err(|refusal| at(refusal.into()))?;

        let domain = eip3009::domain(
            &parsed.domain.name,
            &parsed.domain.version,
            parsed.required.network.chain_id,
            parsed.required.asset,
        );
        let message = parsed.payment.authorization.message();
        let hash = message.signing_hash(&domain);
        let kind =
            tessera_evm::check_signature(&self.chain, payer, hash, &parsed.payment.signature)
                .await
                .map_err(|refused| match refused {
                    SignatureRefused::Invalid(why) => at(Rejection::new(reason::SIGNATURE, why)),
                    SignatureRefused::Unavailable(error) => at(unexpected(error)),
                })?;
        Ok(Verified {
            x402_version: parsed.x402_version,
            network: parsed.required.network,
            token: parsed.required.asset,
            authorization: message,
            signature: parsed.payment.signature,
            kind,
        })
    }
}

/// The chain state of a verified authorization: nonce unused, balance,
/// and (`simulate_from`: verify) the transfer simulated from that address,
/// read concurrently. Settle without batching checks these before sending;
/// a batch only when its estimate says some transfer would fail.
pub(crate) async fn check_state(
    chain: &Chain,
    verified: &Verified,
    simulate_from: Option<Address>,
) -> Result<(), Rejection> {
    let a = &verified.authorization;
    let simulation = async {
        match simulate_from {
            Some(sender) => Some(chain.simulate(verified.transfer_request(sender)).await),
            None => None,
        }
    };
    let (used, balance, simulated) = tokio::join!(
        chain.authorization_used(verified.token, a.from, a.nonce),
        chain.balance_of(verified.token, a.from),
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
    let required = ExactRequirements::parse(&requirements)?;
    let payment = ExactPayment::parse(&payload)?;
    payment
        .matches(&required)
        .map_err(|refusal| Rejection::from(refusal).payer(payment.payer()))?;
    if required.network != ours {
        return Err(Rejection::new(
            reason::INVALID_NETWORK,
            format!(
                "network {} is not served here (this facilitator is on {ours})",
                required.network
            ),
        ));
    }
    let domain = required.domain.clone().ok_or_else(|| {
        Rejection::new(
            reason::INVALID_PAYMENT_REQUIREMENTS,
            "extra.name and extra.version (the token's EIP-712 domain) are required",
        )
    })?;
    Ok(Parsed {
        x402_version: version,
        required,
        payment,
        domain,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{B256, U256};

    #[test]
    fn the_time_window_has_a_grace_before_expiry() {
        let auth = tessera_x402::ExactAuthorization {
            from: Address::ZERO,
            to: Address::ZERO,
            value: U256::ZERO,
            valid_after: U256::from(100),
            valid_before: U256::from(206),
            nonce: B256::ZERO,
        };
        assert!(auth.check_window(200, VALID_BEFORE_GRACE_SECS).is_ok());
        assert_eq!(
            auth.check_window(201, VALID_BEFORE_GRACE_SECS)
                .unwrap_err()
                .reason,
            reason::VALID_BEFORE
        );
        assert_eq!(
            auth.check_window(99, VALID_BEFORE_GRACE_SECS)
                .unwrap_err()
                .reason,
            reason::VALID_AFTER
        );
    }
}
