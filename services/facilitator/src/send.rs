//! Sending a settlement transaction from a settling key: estimate its gas,
//! take the fees, sign it under the key's [`NonceAllocator`] and hand it to
//! the node (re-syncing and retrying when the node says the nonce was
//! stale), then poll for its receipt.
//!
//! [`NonceAllocator`]: crate::nonces::NonceAllocator

use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::B256;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tessera_evm::{Chain, ChainError};
use tessera_x402::reason;
use tokio::time::Instant;

use crate::nonces::is_nonce_conflict;
use crate::Settler;

/// Headroom over the gas estimate (the recipient's first receipt of the
/// token costs more than later ones, and a batch's calls each keep back
/// 1/64 of the gas; unused gas is not paid).
pub(crate) const GAS_HEADROOM_PERCENT: u64 = 25;
/// Sends retried after the node said our nonce was stale.
const NONCE_RETRIES: usize = 3;
/// The receipt is polled every 25 ms at first, backing off to this: a key's
/// batch holds one of its in-flight slots until its receipt is in.
const MAX_RECEIPT_POLL: Duration = Duration::from_millis(500);

/// The most gas one transaction may ask for, whatever the block allows:
/// EIP-7825's cap (2^24), which nodes enforce from Osaka on.
const TRANSACTION_GAS_CAP: u64 = 1 << 24;
/// How long a read block gas limit is used before it is read again.
const GAS_LIMIT_MAX_AGE: Duration = Duration::from_secs(60);
/// Gas per authorization assumed before a batch has been mined (a
/// transferWithAuthorization costs some 40-60k inside a batch).
const GAS_PER_ITEM_AT_FIRST: u64 = 60_000;

/// The gas limit a settlement transaction asks for when its estimate is
/// `gas`.
pub(crate) fn gas_limit(gas: u64) -> u64 {
    gas + gas * GAS_HEADROOM_PERCENT / 100
}

/// A settlement that did not succeed, before it becomes a response.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) transaction: Option<B256>,
}

impl Failure {
    pub(crate) fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Failure {
            reason,
            message: message.into(),
            transaction: None,
        }
    }

    pub(crate) fn with_tx(mut self, hash: B256) -> Self {
        self.transaction = Some(hash);
        self
    }

    /// Whether the transaction went out (the outcome is then unknown).
    pub(crate) fn sent(&self) -> bool {
        self.transaction.is_some()
    }
}

/// Sends settlement transactions on one chain; shared by the requests and
/// the batch workers.
#[derive(Debug)]
pub(crate) struct Sender {
    pub(crate) chain: Chain,
    pub(crate) chain_id: u64,
    pub(crate) receipt_timeout: Duration,
    /// The block gas limit last read, and when.
    block_gas_limit: std::sync::Mutex<Option<(u64, Instant)>>,
    /// Gas per authorization of the last mined batch; 0 = none yet.
    gas_per_item: AtomicU64,
}

impl Sender {
    pub(crate) fn new(chain: Chain, chain_id: u64, receipt_timeout: Duration) -> Self {
        Sender {
            chain,
            chain_id,
            receipt_timeout,
            block_gas_limit: std::sync::Mutex::new(None),
            gas_per_item: AtomicU64::new(0),
        }
    }

    /// The most gas a settlement transaction may ask for: the block's gas
    /// limit (read at most once a minute), at most EIP-7825's cap. A
    /// transaction asking for more is refused by the node, or never mined.
    pub(crate) async fn gas_ceiling(&self) -> u64 {
        let known = *self.block_gas_limit.lock().expect("not poisoned");
        let block = match known {
            Some((limit, read)) if read.elapsed() < GAS_LIMIT_MAX_AGE => limit,
            _ => match self.chain.block_gas_limit().await {
                Ok(limit) => {
                    *self.block_gas_limit.lock().expect("not poisoned") =
                        Some((limit, Instant::now()));
                    limit
                }
                // Unread: the last one read, else only the cap.
                Err(_) => known.map_or(TRANSACTION_GAS_CAP, |(limit, _)| limit),
            },
        };
        block.min(TRANSACTION_GAS_CAP)
    }

    /// How many authorizations one transaction can carry under `ceiling`,
    /// at the gas per item of the last mined batch (at least one).
    pub(crate) fn items_within(&self, ceiling: u64) -> usize {
        let per_item = match self.gas_per_item.load(Ordering::Relaxed) {
            0 => GAS_PER_ITEM_AT_FIRST,
            seen => seen,
        };
        (ceiling / gas_limit(per_item)).max(1) as usize
    }

    /// Notes a mined batch's gas per authorization.
    pub(crate) fn mined(&self, gas_used: u64, items: usize) {
        if items > 0 {
            self.gas_per_item
                .store(gas_used.div_ceil(items as u64), Ordering::Relaxed);
        }
    }

    /// Takes the fees, adds the gas limit (`gas` plus headroom), signs with
    /// the settler's next nonce and hands the transaction to the node.
    pub(crate) async fn send(
        &self,
        settler: &Settler,
        request: TransactionRequest,
        gas: u64,
    ) -> Result<B256, Failure> {
        let (max_fee, priority_fee) = self
            .chain
            .fees()
            .await
            .map_err(|e| Failure::new(reason::UNEXPECTED_SETTLE_ERROR, e.to_string()))?;
        let request = request
            .with_chain_id(self.chain_id)
            .with_gas_limit(gas_limit(gas))
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(priority_fee);

        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.submit(settler, request.clone()).await {
                Ok(hash) => return Ok(hash),
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
        }
    }

    /// Allocates the nonce, signs and hands the transaction to the node,
    /// all under the allocator's lock.
    async fn submit(&self, settler: &Settler, request: TransactionRequest) -> Result<B256, Sent> {
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
            tracing::debug!(%sender, nonce, tx = %hash, "settlement submitted");
        }
        result.map(|(_, hash)| hash)
    }

    /// Polls for the receipt until `receipt_timeout`.
    pub(crate) async fn wait_for_receipt(&self, hash: B256) -> Result<TransactionReceipt, Failure> {
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
            interval = (interval * 2).min(MAX_RECEIPT_POLL);
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

/// How a submission failed.
enum Sent {
    /// Nothing was sent (nonce read or signing failed).
    NotBefore(String),
    /// The node answered with an error: nothing is in its pool.
    Refused(String),
    /// The request went out but no answer came back: it may be in the pool.
    Unknown(B256, String),
}
