//! Settlement: re-verify, then settle on chain from one of the
//! facilitator's keys, alone or in a batch ([`crate::batch`]), and wait for
//! the receipt.
//!
//! | outcome | `success` | `errorReason` | `transaction` |
//! |---|---|---|---|
//! | mined: status 1 when sent alone; in a batch, the receipt has this authorization's `AuthorizationUsed` and `Transfer` logs | true | - | tx hash |
//! | a check failed (incl. a spent nonce: replay; batched, the chain state is read only when the batch's estimate reverts) | false | the verify reason | "" |
//! | the nonce is spent by a mined transaction that paid exactly this payment (a retry, a batch that was not seen mined, another replica) | true | - | that tx hash |
//! | the same authorization is being settled by a concurrent request | as that request's | | |
//! | the transfer would revert (gas estimate, sent alone) | false | `invalid_transaction_state` | "" |
//! | mined, reverted; or mined in a batch without this authorization's transfer (it failed alone), and its nonce is not spent by another transaction that paid it | false | `invalid_transaction_state` | tx hash |
//! | sent, no receipt within the timeout, or the node's answer to the send was lost | false | `unexpected_settle_error` | tx hash: **may still be mined** |
//! | no settling key, chain unreachable before sending, node refused the tx | false | `unexpected_settle_error` | "" |
//!
//! A `transaction` on a failed settle means the outcome is unknown, not
//! that nothing happened: look the hash up (or settle again: a landed
//! transfer has spent the EIP-3009 nonce, so a second settle reconciles
//! with it and can never charge twice).

use alloy::primitives::B256;
use std::sync::atomic::Ordering;
use tessera_x402::facilitator::{FacilitatorRequest, SettleResponse};
use tessera_x402::reason;

use crate::batch::Urgency;
use crate::in_flight::{Claim, InFlight};
use crate::send::Failure;
use crate::verify::{unix_now, Simulate, Verified};
use crate::Facilitator;

impl Facilitator {
    /// Settles a facilitator request: never fails, a failure is a
    /// `success: false` answer.
    pub async fn settle(&self, request: &FacilitatorRequest) -> SettleResponse {
        self.settle_with(request, Urgency::Now).await
    }

    /// [`Facilitator::settle`], waiting in its batch's queue as `urgency`
    /// says (see [`crate::batch`]).
    pub async fn settle_with(
        &self,
        request: &FacilitatorRequest,
        urgency: Urgency,
    ) -> SettleResponse {
        // Batched, a settle reads no chain state of its own: its local
        // checks, then the batch, whose estimate simulates every transfer at
        // once (a spent nonce or a short balance is found there, see
        // [`crate::batch`]). Alone, the chain is read first: a spent nonce
        // reconciles, then the whole checklist.
        let batched = self.batcher.is_some();
        if !batched {
            if let Some(settled) = self.reconcile(request).await {
                return settled;
            }
        }
        let checked = if batched {
            self.check_local(request, unix_now()).await
        } else {
            self.check(request, Simulate::No, unix_now()).await
        };
        let verified = match checked {
            Ok(verified) => verified,
            Err(rejection) => {
                if batched {
                    // A payment settled before (a retry past its
                    // validity, say) still answers the transaction that
                    // paid it, as without batching: read only now.
                    if let Some(settled) = self.reconcile(request).await {
                        return settled;
                    }
                } else if rejection.reason == reason::INVALID_TRANSACTION_STATE {
                    // The nonce was spent since `reconcile` looked (a
                    // concurrent settle's transfer landed): by this payment?
                    if let Some(settled) = self.reconciled_or_unknown(request).await {
                        return settled;
                    }
                }
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
        let outcome = match InFlight::claim(&self.in_flight, &verified) {
            Claim::Held(claim) => self.settle_verified(&verified, claim, urgency).await,
            Claim::Followed(first) => {
                tracing::info!(%payer, "settle: already being settled; answering that settlement's outcome");
                first.outcome().await
            }
        };
        if let Err(failure) = &outcome {
            if failure.reason == reason::INVALID_TRANSACTION_STATE {
                // Failed on chain, or refused before sending because its
                // nonce is spent (a batch's estimate failed, and its state
                // was read): if another settlement (another replica, a
                // retry, an earlier batch) spent the nonce and paid this
                // payment, or may still, that one is the answer. Refused
                // before sending, any answer of the chain's about the spent
                // nonce (cancelled, spent by a transfer that did not pay
                // this) is the more precise one.
                if let Some(reconciled) = self.reconcile(request).await {
                    let unknown =
                        reconciled.error_reason.as_deref() == Some(reason::UNEXPECTED_SETTLE_ERROR);
                    if reconciled.success || unknown || !failure.sent() {
                        return reconciled;
                    }
                }
            }
        }
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

    /// After a failure that a spent nonce explains: [`Self::reconcile`]'s
    /// answer when it settles the payment (the transaction that spent the
    /// nonce paid it) or says it may still (a spend not mined yet).
    async fn reconciled_or_unknown(&self, request: &FacilitatorRequest) -> Option<SettleResponse> {
        let reconciled = self.reconcile(request).await?;
        let unknown = reconciled.error_reason.as_deref() == Some(reason::UNEXPECTED_SETTLE_ERROR);
        (reconciled.success || unknown).then_some(reconciled)
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
            // `authorizationState` is read at the pending block: a spend
            // still in the pool (a batch sent before a restart) shows as
            // used with no mined log yet. Only a mined cancellation is final.
            let cancelled = self
                .chain
                .authorization_canceller(token, from, nonce)
                .await
                .ok()?;
            if cancelled.is_some() {
                return Some(answer(
                    false,
                    String::new(),
                    Some("the authorization was cancelled".into()),
                ));
            }
            return Some(SettleResponse {
                error_reason: Some(reason::UNEXPECTED_SETTLE_ERROR.to_string()),
                error_message: Some(
                    "the authorization's nonce is spent by a transaction not mined yet: settle again later"
                        .into(),
                ),
                ..answer(false, String::new(), None)
            });
        };
        let receipt = self.chain.receipt(hash).await.ok()??;
        let paid =
            tessera_evm::token::authorization_paid(receipt.logs(), token, &authorization.message());
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

    /// Settles a verified authorization from one of our keys: through the
    /// batcher when batching, else in its own transaction at once (the
    /// keys taken in turn). `claim` is held until the outcome is known.
    async fn settle_verified(
        &self,
        verified: &Verified,
        claim: InFlight,
        urgency: Urgency,
    ) -> Result<B256, Failure> {
        if self.settlers.is_empty() {
            return Err(Failure::new(
                reason::UNEXPECTED_SETTLE_ERROR,
                "this facilitator only verifies: it has no settling key (FACILITATOR_PRIVATE_KEY)",
            ));
        }
        if let Some(batcher) = &self.batcher {
            return batcher.settle(verified.clone(), claim, urgency).await;
        }
        let turn = self.next_settler.fetch_add(1, Ordering::Relaxed) % self.settlers.len();
        let outcome =
            crate::batch::settle_alone(&self.sender, &self.settlers[turn], verified).await;
        claim.finish(&outcome);
        outcome
    }
}
