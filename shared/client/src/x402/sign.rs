//! The payment for a chosen offer: an EIP-3009 `TransferWithAuthorization`
//! of exactly the price to `payTo`, signed under the token's EIP-712 domain,
//! wrapped as an x402 v2 `PaymentPayload`.

use super::payer::Choice;
use super::refusal::PaymentError;
use alloy::primitives::{Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use std::time::{SystemTime, UNIX_EPOCH};
use tessera_x402::eip3009::{self, TransferWithAuthorization};
use tessera_x402::{Authorization, ExactEvmPayload, PaymentPayload, ResourceInfo};

/// How far back an authorization is valid from, so a server whose clock is
/// behind ours still accepts it (the reference client's choice).
const CLOCK_SKEW_SECONDS: u64 = 600;
/// The longest an authorization this client signs stays valid.
const MAX_VALIDITY_SECONDS: u64 = 3600;

/// The `payment-signature` payload paying `choice` for `resource`.
pub(crate) fn payment(
    signer: &PrivateKeySigner,
    choice: &Choice<'_>,
    resource: &ResourceInfo,
) -> Result<PaymentPayload, PaymentError> {
    let terms = &choice.terms;
    let domain = terms
        .domain
        .as_ref()
        .expect("a chosen offer names its token's domain");
    let now = unix_now();
    let authorization = TransferWithAuthorization {
        from: signer.address(),
        to: terms.pay_to,
        value: terms.amount,
        validAfter: U256::from(now.saturating_sub(CLOCK_SKEW_SECONDS)),
        // However long the seller asks for, a signed authorization stays
        // spendable for an hour at most.
        validBefore: U256::from(
            now.saturating_add(terms.max_timeout_seconds.min(MAX_VALIDITY_SECONDS)),
        ),
        nonce: B256::from(rand::random::<[u8; 32]>()),
    };
    let hash = authorization.signing_hash(&eip3009::domain(
        &domain.name,
        &domain.version,
        terms.network.chain_id,
        terms.asset,
    ));
    let signature = signer
        .sign_hash_sync(&hash)
        .map_err(|e| PaymentError::Signing(e.to_string()))?;
    let payload = ExactEvmPayload {
        signature: Bytes::from(signature.as_bytes().to_vec()).to_string(),
        authorization: Authorization {
            from: authorization.from.to_checksum(None),
            to: authorization.to.to_checksum(None),
            value: authorization.value.to_string(),
            valid_after: authorization.validAfter.to_string(),
            valid_before: authorization.validBefore.to_string(),
            nonce: authorization.nonce.to_string(),
        },
    };
    Ok(PaymentPayload::V2 {
        accepted: choice.requirements.clone(),
        resource: Some(resource.clone()),
        payload: serde_json::to_value(payload).expect("a payload serializes"),
        extensions: None,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::Payer;
    use alloy::primitives::address;
    use serde_json::json;
    use tessera_x402::eip3009::recover_ecdsa;
    use tessera_x402::{ExactPayment, ExactRequirements, Network, PaymentRequired, Requirements};

    #[test]
    fn signs_what_the_server_checks() {
        let token = address!("036CbD53842c5426634e7929541eC2318f3dCF7e");
        let requirements = Requirements {
            scheme: "exact".into(),
            network: "eip155:84532".into(),
            amount: "2000".into(),
            asset: token.to_checksum(None),
            pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
            max_timeout_seconds: 60,
            extra: Some(json!({"name": "USDC", "version": "2"})),
        };
        let quote = PaymentRequired {
            x402_version: 2,
            error: None,
            resource: ResourceInfo {
                url: "http://x/tessera.memory.v1.MemoryService/Set".into(),
                description: None,
                mime_type: None,
            },
            accepts: vec![requirements.clone()],
        };
        let signer = PrivateKeySigner::random();
        let payer = Payer::new(signer.clone()).allow(Network::new(84532), token, U256::from(2000));
        let choice = payer.choose(&quote).unwrap();
        let sent = payment(&signer, &choice, &quote.resource).unwrap();

        // Read back as the payment service reads it, and judged by its check.
        let parsed = ExactPayment::parse(&sent).unwrap();
        let terms = ExactRequirements::parse(&requirements).unwrap();
        parsed.matches(&terms).unwrap();
        assert_eq!(parsed.payer(), signer.address());
        assert_eq!(parsed.resource.as_ref(), Some(&quote.resource));
        let now = unix_now();
        parsed.authorization.check_window(now, 59).unwrap();
        assert!(parsed.authorization.check_window(now, 61).is_err());
        let hash = parsed
            .authorization
            .message()
            .signing_hash(&eip3009::domain("USDC", "2", 84532, token));
        recover_ecdsa(signer.address(), hash, &parsed.signature).unwrap();

        let again = payment(&signer, &choice, &quote.resource).unwrap();
        assert_ne!(
            ExactPayment::parse(&again).unwrap().authorization.nonce,
            parsed.authorization.nonce,
            "every payment is a new authorization"
        );
    }
}
