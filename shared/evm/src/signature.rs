//! Whether `from` signed an authorization. An EOA's signature is recovered
//! locally, with no RPC; only when that fails is the chain asked whether
//! `from` is a contract wallet that accepts the signature (ERC-1271). So a
//! flood of mis-signed payments from ordinary addresses costs one `eth_getCode`
//! each, and a forged one never gets further.

use crate::chain::{Chain, ChainError};
use crate::token::ERC1271_MAGIC_VALUE;
use alloy::primitives::{Address, Bytes, B256};
use tessera_x402::eip3009::{recover_ecdsa, EcdsaParts};

/// How the signature was proven, which decides the settlement overload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// `from` is the ECDSA signer: `transferWithAuthorization(…, v, r, s)`.
    Ecdsa(EcdsaParts),
    /// `from` is a contract that accepted it through ERC-1271:
    /// `transferWithAuthorization(…, bytes signature)`.
    Contract,
}

/// The signature is not `from`'s (the message says why), or the chain could
/// not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefused {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Unavailable(ChainError),
}

/// Checks that `signature` over `hash` is `from`'s.
pub async fn check_signature(
    chain: &Chain,
    from: Address,
    hash: B256,
    signature: &Bytes,
) -> Result<SignatureKind, SignatureRefused> {
    let why = match recover_ecdsa(from, hash, signature) {
        Ok(parts) => return Ok(SignatureKind::Ecdsa(parts)),
        Err(why) => why.to_string(),
    };
    let code = chain
        .code_at(from)
        .await
        .map_err(SignatureRefused::Unavailable)?;
    if code.is_empty() {
        return Err(SignatureRefused::Invalid(why));
    }
    match chain.is_valid_signature(from, hash, signature.clone()).await {
        Ok(magic) if magic == ERC1271_MAGIC_VALUE.0 => Ok(SignatureKind::Contract),
        Ok(_) | Err(ChainError::Reverted(_)) | Err(ChainError::Refused(_)) => {
            Err(SignatureRefused::Invalid(
                "authorization.from is a contract whose ERC-1271 isValidSignature rejects the signature"
                    .into(),
            ))
        }
        Err(error) => Err(SignatureRefused::Unavailable(error)),
    }
}
