//! Settlement: re-verify, send `transferWithAuthorization` from the
//! facilitator's key, wait for the receipt.
//!
//! | outcome | `success` | `errorReason` | `transaction` |
//! |---|---|---|---|
//! | mined, status 1 | true | - | tx hash |
//! | a check failed (incl. a spent nonce: replay) | false | the verify reason | "" |
//! | the same authorization is being settled by a concurrent request | false | `invalid_transaction_state` | "" |
//! | the transfer would revert (gas estimate) | false | `invalid_transaction_state` | "" |
//! | mined, reverted | false | `invalid_transaction_state` | tx hash |
//! | sent, no receipt within the timeout, or the node's answer to the send was lost | false | `unexpected_settle_error` | tx hash: **may still be mined** |
//! | no settling key, chain unreachable before sending, node refused the tx | false | `unexpected_settle_error` | "" |
//!
//! A `transaction` on a failed settle means the outcome is unknown, not
//! that nothing happened: look the hash up (or settle again: a landed
//! transfer has spent the EIP-3009 nonce, so a second settle answers
//! `invalid_transaction_state` and can never charge twice).

use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::B256;
use alloy::rpc::types::TransactionReceipt;
use std::time::Duration;
use tessera_x402::facilitator::{FacilitatorRequest, SettleResponse};
use tessera_x402::{reason, AuthorizationKey};
use tokio::time::Instant;

use crate::nonces::is_nonce_conflict;
use crate::verify::{unix_now, Simulate, Verified};
use crate::{Facilitator, Settler};
use tessera_evm::ChainError;

/// Headroom over the gas estimate (the recipient's first receipt of the
/// token costs more than later ones; unused gas is not paid).
const GAS_HEADROOM_PERCENT: u64 = 25;
/// Sends retried after the node said our nonce was stale.
const NONCE_RETRIES: usize = 3;

/// A settlement that did not succeed, before it becomes a response.
struct Failure {
    reason: &'static str,
    message: String,
    transaction: Option<B256>,
}

impl Failure {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Failure {
            reason,
            message: message.into(),
            transaction: None,
        }
    }

    fn with_tx(mut self, hash: B256) -> Self {
        self.transaction = Some(hash);
        self
    }
}

impl Facilitator {
    /// Settles a facilitator request: never fails, a failure is a
    /// `success: false` answer.
    pub async fn settle(&self, request: &FacilitatorRequest) -> SettleResponse {
        if let Some(settled) = self.reconcile(request).await {
            return settled;
        }
        let verified = match self.check(request, Simulate::No, unix_now()).await {
            Ok(verified) => verified,
            Err(rejection) => {
                let reason = if rejection.reason == reason::UNEXPECTED_VERIFY_ERROR {
                    reason::UNEXPECTED_SETTLE_ERROR
                } else {
                    rejection.reason
                };
                tracing::info!(reason, message = %rejection.message, "settle: refused");
                return SettleResponse {
                    success: false,
                    error_reason: Some(reason.to_string()),
                    error_message: Some(rejection.message),
                    payer: rejection.payer.map(|p| p.to_checksum(None)),
                    transaction: String::new(),
                    network: self.network_label(request.x402_version),
                    amount: None,
                    extensions: None,
                };
            }
        };
        let payer = verified.payer().to_checksum(None);
        let network = self.network_label(verified.x402_version);
        let amount = Some(verified.authorization.value.to_string());
        let outcome = match InFlight::claim(self, &verified) {
            Some(_claim) => self.send_and_confirm(&verified).await,
            None => Err(Failure::new(
                reason::INVALID_TRANSACTION_STATE,
                "this authorization is being settled by another request",
            )),
        };
        match outcome {
            Ok(hash) => {
                tracing::info!(%payer, tx = %hash, value = %verified.authorization.value, "settled");
                SettleResponse {
                    success: true,
                    error_reason: None,
                    error_message: None,
                    payer: Some(payer),
                    transaction: hash.to_string(),
                    network,
                    amount,
                    extensions: None,
                }
            }
            Err(failure) => {
                tracing::warn!(
                    %payer,
                    reason = failure.reason,
                    message = %failure.message,
                    tx = ?failure.transaction,
                    "settle failed"
                );
                SettleResponse {
                    success: false,
                    error_reason: Some(failure.reason.to_string()),
                    error_message: Some(failure.message),
                    payer: Some(payer),
                    transaction: failure
                        .transaction
                        .map(|h| h.to_string())
                        .unwrap_or_default(),
                    network,
                    amount,
                    extensions: None,
                }
            }
        }
    }

    /// A settle of an authorization whose nonce is already spent: if the
    /// transaction that spent it paid exactly this payment (a `Transfer`
    /// from the payer to payTo of the amount, beside the `AuthorizationUsed`
    /// log), the payment is settled by it: answer success with that hash, as
    /// many times as asked. This is how a settle that timed out is retried
    /// without a second charge, and it needs no store of our own: the chain
    /// is the record. `None`: not spent (or not readable), settle normally.
    async fn reconcile(&self, request: &FacilitatorRequest) -> Option<SettleResponse> {
        let parsed = crate::verify::parse_for_settle(request, self.network()).ok()?;
        let authorization = &parsed.payment.authorization;
        let (token, from, nonce) = (
            parsed.required.asset,
            authorization.from,
            authorization.nonce,
        );
        if !self
            .chain
            .authorization_used(token, from, nonce)
            .await
            .ok()?
        {
            return None;
        }
        let network = self.network_label(parsed.x402_version);
        let answer = |success: bool, transaction: String, message: Option<String>| SettleResponse {
            success,
            error_reason: (!success).then(|| reason::INVALID_TRANSACTION_STATE.to_string()),
            error_message: message,
            payer: Some(from.to_checksum(None)),
            transaction,
            network: network.clone(),
            amount: Some(authorization.value.to_string()),
            extensions: None,
        };
        let spender = self
            .chain
            .authorization_spender(token, from, nonce)
            .await
            .ok()?;
        let Some(hash) = spender else {
            return Some(answer(
                false,
                String::new(),
                Some("the authorization was cancelled".into()),
            ));
        };
        let receipt = self.chain.receipt(hash).await.ok()??;
        let paid = receipt.inner.logs().iter().any(|log| {
            use alloy::sol_types::SolEvent;
            log.address() == token
                && tessera_evm::token::IEip3009Token::Transfer::decode_log(&log.inner).is_ok_and(
                    |transfer| {
                        transfer.from == from
                            && transfer.to == authorization.to
                            && transfer.value == authorization.value
                    },
                )
        });
        if paid {
            tracing::info!(payer = %from, tx = %hash, "settle: already settled by this transaction");
            Some(answer(true, hash.to_string(), None))
        } else {
            Some(answer(
                false,
                String::new(),
                Some(format!(
                    "the nonce was spent by {hash}, which did not pay this payment"
                )),
            ))
        }
    }

    async fn send_and_confirm(&self, verified: &Verified) -> Result<B256, Failure> {
        let settler = self.settler.as_ref().ok_or_else(|| {
            Failure::new(
                reason::UNEXPECTED_SETTLE_ERROR,
                "this facilitator only verifies: it has no settling key (FACILITATOR_PRIVATE_KEY)",
            )
        })?;
        let sender = settler.key.address();
        let request = verified.transfer_request(sender);

        // Both before taking the nonce: a transfer that would revert costs
        // neither gas nor a nonce.
        let gas = self
            .chain
            .estimate_gas(request.clone())
            .await
            .map_err(|error| match error {
                ChainError::Reverted(text) | ChainError::Refused(text) => Failure::new(
                    reason::INVALID_TRANSACTION_STATE,
                    format!("the transfer would revert: {text}"),
                ),
                ChainError::Unavailable(_) => {
                    Failure::new(reason::UNEXPECTED_SETTLE_ERROR, error.to_string())
                }
            })?;
        let (max_fee, priority_fee) = self
            .chain
            .fees()
            .await
            .map_err(|e| Failure::new(reason::UNEXPECTED_SETTLE_ERROR, e.to_string()))?;
        let request = request
            .with_chain_id(self.network.chain_id)
            .with_gas_limit(gas + gas * GAS_HEADROOM_PERCENT / 100)
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(priority_fee);

        let mut attempt = 0;
        let hash = loop {
            attempt += 1;
            match self.submit(settler, request.clone()).await {
                Ok(hash) => break hash,
                Err(Sent::Refused(message))
                    if attempt <= NONCE_RETRIES && is_nonce_conflict(&message) =>
                {
                    tracing::warn!(%message, attempt, "settlement nonce was stale; re-synced, retrying");
                }
                Err(Sent::Refused(message)) => {
                    return Err(Failure::new(
                        reason::UNEXPECTED_SETTLE_ERROR,
                        format!("the node refused the settlement transaction: {message}"),
                    ))
                }
                Err(Sent::NotBefore(message)) => {
                    return Err(Failure::new(reason::UNEXPECTED_SETTLE_ERROR, message))
                }
                Err(Sent::Unknown(hash, message)) => {
                    return Err(Failure::new(
                        reason::UNEXPECTED_SETTLE_ERROR,
                        format!(
                            "the node's answer to the settlement transaction was lost ({message}); it may still be mined"
                        ),
                    )
                    .with_tx(hash))
                }
            }
        };

        let receipt = self.wait_for_receipt(hash).await?;
        if receipt.status() {
            Ok(hash)
        } else {
            Err(Failure::new(
                reason::INVALID_TRANSACTION_STATE,
                format!(
                    "transferWithAuthorization reverted on chain in block {}",
                    receipt.block_number.unwrap_or_default()
                ),
            )
            .with_tx(hash))
        }
    }

    /// Allocates the nonce, signs and hands the transaction to the node,
    /// all under the allocator's lock.
    async fn submit(
        &self,
        settler: &Settler,
        request: alloy::rpc::types::TransactionRequest,
    ) -> Result<B256, Sent> {
        let sender = settler.key.address();
        let wallet = EthereumWallet::from(settler.key.signer().clone());
        let result = settler
            .nonces
            .submit(
                || async {
                    self.chain
                        .pending_nonce(sender)
                        .await
                        .map_err(|e| Sent::NotBefore(format!("reading the settlement nonce: {e}")))
                },
                |nonce| async move {
                    let envelope = request
                        .with_nonce(nonce)
                        .build(&wallet)
                        .await
                        .map_err(|e| Sent::NotBefore(format!("signing the settlement: {e}")))?;
                    let hash = *envelope.tx_hash();
                    let encoded = alloy::eips::eip2718::Encodable2718::encoded_2718(&envelope);
                    match self.chain.send_raw(&encoded).await {
                        Ok(_) => Ok(hash),
                        Err(ChainError::Refused(message)) | Err(ChainError::Reverted(message)) => {
                            Err(Sent::Refused(message))
                        }
                        Err(ChainError::Unavailable(message)) => Err(Sent::Unknown(hash, message)),
                    }
                },
            )
            .await;
        if let Ok((nonce, hash)) = &result {
            tracing::debug!(nonce, tx = %hash, "settlement submitted");
        }
        result.map(|(_, hash)| hash)
    }

    /// Polls for the receipt until `receipt_timeout`.
    async fn wait_for_receipt(&self, hash: B256) -> Result<TransactionReceipt, Failure> {
        let deadline = Instant::now() + self.receipt_timeout;
        let mut interval = Duration::from_millis(25);
        let mut last_error = None;
        loop {
            match tokio::time::timeout_at(deadline, self.chain.receipt(hash)).await {
                Ok(Ok(Some(receipt))) => return Ok(receipt),
                Ok(Ok(None)) => {}
                Ok(Err(error)) => last_error = Some(error),
                Err(_) => break,
            }
            if Instant::now() + interval >= deadline {
                tokio::time::sleep_until(deadline).await;
                break;
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_secs(1));
        }
        let mut message = format!(
            "no receipt within {} s; the transaction may still be mined",
            self.receipt_timeout.as_secs_f32()
        );
        if let Some(error) = last_error {
            message.push_str(&format!(" (last poll: {error})"));
        }
        Err(Failure::new(reason::UNEXPECTED_SETTLE_ERROR, message).with_tx(hash))
    }
}

/// Marks an authorization as being settled for as long as it lives.
struct InFlight<'a> {
    facilitator: &'a Facilitator,
    key: AuthorizationKey,
}

impl<'a> InFlight<'a> {
    fn claim(facilitator: &'a Facilitator, verified: &Verified) -> Option<Self> {
        let key = AuthorizationKey {
            chain_id: verified.network.chain_id,
            asset: verified.token,
            from: verified.authorization.from,
            nonce: verified.authorization.nonce,
        };
        let mut in_flight = facilitator.in_flight.lock().expect("not poisoned");
        // Lazily: an `InFlight` built for a refused claim would, when
        // dropped, remove the holder's key (and lock the held mutex).
        in_flight.insert(key).then(|| InFlight { facilitator, key })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.facilitator.in_flight.lock() {
            in_flight.remove(&self.key);
        }
    }
}

/// How a submission failed.
enum Sent {
    /// Nothing was sent (nonce read or signing failed).
    NotBefore(String),
    /// The node answered with an error: nothing is in its pool.
    Refused(String),
    /// The request went out but no answer came back: it may be in the pool.
    Unknown(B256, String),
}
