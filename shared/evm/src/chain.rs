//! The chain as the facilitator sees it: a JSON-RPC provider with a
//! per-request timeout, typed `eth_call`s, and RPC failures sorted into
//! "the chain said no" (a revert) and "the chain did not answer". Each
//! call can be watched by its JSON-RPC method ([`Chain::observed`]), e.g.
//! to time it, without this crate knowing how.

use alloy::network::Ethereum;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::client::ClientBuilder;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolCall;
use alloy::transports::http::reqwest;
use alloy::transports::{RpcError, TransportError};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::token::{IEip3009Token, IERC1271};

/// Why an RPC call did not give an answer we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The call executed and reverted; the text is the decoded reason.
    #[error("reverted: {0}")]
    Reverted(String),
    /// The node answered with an error that is not a revert (e.g. a
    /// rejected transaction); the text is the node's message.
    #[error("the node refused: {0}")]
    Refused(String),
    /// No usable answer: connection refused, timeout, malformed reply.
    #[error("chain RPC unavailable: {0}")]
    Unavailable(String),
}

impl ChainError {
    fn from_transport(error: TransportError) -> Self {
        match &error {
            RpcError::ErrorResp(payload) => {
                if let Some(data) = payload.as_revert_data() {
                    let reason = alloy::sol_types::decode_revert_reason(&data)
                        .unwrap_or_else(|| format!("{} (data {data})", payload.message));
                    return ChainError::Reverted(reason);
                }
                if payload.message.to_ascii_lowercase().contains("revert") {
                    return ChainError::Reverted(payload.message.to_string());
                }
                ChainError::Refused(payload.message.to_string())
            }
            _ => ChainError::Unavailable(error.to_string()),
        }
    }

    /// The failure's short name (`error.type` of an observed call), or
    /// `None` for a revert: the chain answered, the call said no.
    fn failure(&self) -> Option<&'static str> {
        match self {
            ChainError::Reverted(_) => None,
            ChainError::Refused(_) => Some("refused"),
            ChainError::Unavailable(_) => Some("unavailable"),
        }
    }
}

/// One JSON-RPC call as an [`RpcObserver`] sees it: it ends `Err` with the
/// failure's short name when it failed, `refused` (the node answered an
/// error other than a revert) or `unavailable` (no usable answer); a
/// revert is an answer.
pub type RpcCall<'a> = Pin<Box<dyn Future<Output = Result<(), &'static str>> + Send + 'a>>;

/// Wraps every JSON-RPC call a [`Chain`] makes, with its method (e.g. to
/// time and trace it), and must run the call it is given to its end.
pub type RpcObserver = for<'a> fn(&'static str, RpcCall<'a>) -> RpcCall<'a>;

/// A gas limit for a call that used `gas_used`: refunds (EIP-3529: at most
/// a fifth of the gas before them, a quarter of what is left after) are
/// taken back only at the end, so the call needs them up front; and each
/// call frame keeps 1/64 of its gas back from the one it calls (EIP-150),
/// so nested calls need a little more again (64/63 for each of three
/// levels: batch, token, signature precompile), plus a call's stipend.
pub fn limit_for_gas_used(gas_used: u64) -> u64 {
    const CALL_STIPEND: u64 = 2_300;
    let before_refunds = u128::from(gas_used) * 5 / 4;
    let nested = before_refunds * 64 * 64 * 64 / (63 * 63 * 63);
    u64::try_from(nested)
        .unwrap_or(u64::MAX)
        .saturating_add(CALL_STIPEND)
}

/// Whether a node's error message says it has no such JSON-RPC method.
fn is_method_not_found(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "method not found",
        "does not exist",
        "not supported",
        "unsupported method",
    ]
    .iter()
    .any(|phrase| message.contains(phrase))
}

/// A JSON-RPC endpoint over plain HTTP.
#[derive(Debug, Clone)]
pub struct Chain {
    provider: RootProvider<Ethereum>,
    url: String,
    observer: Option<RpcObserver>,
    /// The node answered `eth_createAccessList` "method not found".
    access_list_unsupported: Arc<AtomicBool>,
}

impl Chain {
    /// No request is made here; every later request gives up after
    /// `rpc_timeout`.
    pub fn new(url: &str, rpc_timeout: Duration) -> Result<Self, ChainError> {
        let parsed: reqwest::Url = url
            .parse()
            .map_err(|e| ChainError::Unavailable(format!("{url:?} is not a URL: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(rpc_timeout)
            .connect_timeout(rpc_timeout)
            .build()
            .map_err(|e| ChainError::Unavailable(format!("HTTP client: {e}")))?;
        let rpc = ClientBuilder::default().http_with_client(client, parsed);
        Ok(Chain {
            provider: RootProvider::new(rpc),
            url: url.to_string(),
            observer: None,
            access_list_unsupported: Arc::default(),
        })
    }

    /// Every later JSON-RPC call of this chain goes through `observer`.
    pub fn observed(mut self, observer: RpcObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs `call`, the JSON-RPC `method`, through the observer if any.
    async fn rpc<T: Send>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, ChainError>> + Send,
    ) -> Result<T, ChainError> {
        let Some(observe) = self.observer else {
            return call.await;
        };
        let mut answer = None;
        let observed = observe(
            method,
            Box::pin(async {
                let result = call.await;
                let outcome = result.as_ref().err().and_then(ChainError::failure);
                answer = Some(result);
                outcome.map_or(Ok(()), Err)
            }),
        );
        let _ = observed.await;
        answer.unwrap_or_else(|| {
            Err(ChainError::Unavailable(format!(
                "{method} was not run by the RPC observer"
            )))
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn provider(&self) -> &RootProvider<Ethereum> {
        &self.provider
    }

    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        self.rpc("eth_chainId", async {
            self.provider
                .get_chain_id()
                .await
                .map_err(ChainError::from_transport)
        })
        .await
    }

    /// The latest block's gas limit: no transaction may ask for more.
    pub async fn block_gas_limit(&self) -> Result<u64, ChainError> {
        let block = self
            .rpc("eth_getBlockByNumber", async {
                self.provider
                    .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
                    .await
                    .map_err(ChainError::from_transport)
            })
            .await?;
        block
            .map(|block| block.header.gas_limit)
            .ok_or_else(|| ChainError::Unavailable("the node has no latest block".into()))
    }

    /// `eth_getTransactionCount(address, "pending")`: mined plus pooled.
    pub async fn pending_nonce(&self, address: Address) -> Result<u64, ChainError> {
        self.rpc("eth_getTransactionCount", async {
            self.provider
                .get_transaction_count(address)
                .pending()
                .await
                .map_err(ChainError::from_transport)
        })
        .await
    }

    pub async fn code_at(&self, address: Address) -> Result<Bytes, ChainError> {
        self.rpc("eth_getCode", async {
            self.provider
                .get_code_at(address)
                .await
                .map_err(ChainError::from_transport)
        })
        .await
    }

    /// `eth_call` of `call` on `to`, as `from`.
    pub async fn call<C: SolCall>(
        &self,
        from: Option<Address>,
        to: Address,
        call: &C,
    ) -> Result<C::Return, ChainError> {
        let mut request = TransactionRequest::default()
            .to(to)
            .input(Bytes::from(call.abi_encode()).into());
        if let Some(from) = from {
            request = request.from(from);
        }
        let output = self
            .rpc("eth_call", async {
                self.provider
                    .call(request)
                    .await
                    .map_err(ChainError::from_transport)
            })
            .await?;
        C::abi_decode_returns(&output).map_err(|e| {
            ChainError::Reverted(format!(
                "{} returned an undecodable answer ({e}); is {to} the contract it claims to be?",
                C::SIGNATURE
            ))
        })
    }

    pub async fn authorization_used(
        &self,
        token: Address,
        authorizer: Address,
        nonce: B256,
    ) -> Result<bool, ChainError> {
        self.call(
            None,
            token,
            &IEip3009Token::authorizationStateCall { authorizer, nonce },
        )
        .await
    }

    /// The transaction that spent `authorizer`'s EIP-3009 `nonce` on
    /// `token` (its `AuthorizationUsed` log), if a mined one did.
    pub async fn authorization_spender(
        &self,
        token: Address,
        authorizer: Address,
        nonce: B256,
    ) -> Result<Option<B256>, ChainError> {
        use alloy::sol_types::SolEvent;
        self.nonce_log(
            token,
            IEip3009Token::AuthorizationUsed::SIGNATURE_HASH,
            authorizer,
            nonce,
        )
        .await
    }

    /// The transaction that cancelled `authorizer`'s EIP-3009 `nonce` on
    /// `token` (its `AuthorizationCanceled` log), if a mined one did.
    pub async fn authorization_canceller(
        &self,
        token: Address,
        authorizer: Address,
        nonce: B256,
    ) -> Result<Option<B256>, ChainError> {
        use alloy::sol_types::SolEvent;
        self.nonce_log(
            token,
            IEip3009Token::AuthorizationCanceled::SIGNATURE_HASH,
            authorizer,
            nonce,
        )
        .await
    }

    /// The transaction of the first mined `event(authorizer, nonce)` log of
    /// `token`.
    async fn nonce_log(
        &self,
        token: Address,
        event: B256,
        authorizer: Address,
        nonce: B256,
    ) -> Result<Option<B256>, ChainError> {
        let filter = alloy::rpc::types::Filter::new()
            .address(token)
            .event_signature(event)
            .topic1(authorizer.into_word())
            .topic2(nonce)
            .from_block(0);
        let logs = self
            .rpc("eth_getLogs", async {
                self.provider
                    .get_logs(&filter)
                    .await
                    .map_err(ChainError::from_transport)
            })
            .await?;
        Ok(logs.first().and_then(|log| log.transaction_hash))
    }

    pub async fn balance_of(&self, token: Address, account: Address) -> Result<U256, ChainError> {
        self.call(None, token, &IEip3009Token::balanceOfCall { account })
            .await
    }

    /// ERC-1271: the 4 bytes the wallet returns (the magic value if it
    /// accepts the signature).
    pub async fn is_valid_signature(
        &self,
        wallet: Address,
        hash: B256,
        signature: Bytes,
    ) -> Result<[u8; 4], ChainError> {
        let magic = self
            .call(
                None,
                wallet,
                &IERC1271::isValidSignatureCall { hash, signature },
            )
            .await?;
        Ok(magic.0)
    }

    /// `eth_call` with raw input; `Ok` = the call would succeed now.
    pub async fn simulate(&self, request: TransactionRequest) -> Result<Bytes, ChainError> {
        self.rpc("eth_call", async {
            self.provider
                .call(request)
                .await
                .map_err(ChainError::from_transport)
        })
        .await
    }

    /// A gas limit `request` succeeds with now; a revert if it would fail.
    ///
    /// Asked by `eth_createAccessList`, which runs the call once or twice,
    /// rather than `eth_estimateGas`, whose search runs it once per probe:
    /// anvil's bisects to the last unit of gas, some 24 runs of every
    /// authorization in a batch, each recovering its signer (most of the
    /// chain's CPU under settlement load). Its `gasUsed` is what the call
    /// used, after refunds, so the limit adds what the call needs before
    /// them ([`limit_for_gas_used`]). A node without the method (it answers
    /// "method not found") is asked `eth_estimateGas` from then on.
    pub async fn estimate_gas(&self, request: TransactionRequest) -> Result<u64, ChainError> {
        if !self.access_list_unsupported.load(Ordering::Relaxed) {
            match self.gas_used(&request).await {
                Err(ChainError::Refused(message)) if is_method_not_found(&message) => {
                    tracing::info!(%message, "the node has no eth_createAccessList; estimating with eth_estimateGas");
                    self.access_list_unsupported.store(true, Ordering::Relaxed);
                }
                used => return used.map(limit_for_gas_used),
            }
        }
        self.rpc("eth_estimateGas", async {
            self.provider
                .estimate_gas(request)
                .await
                .map_err(ChainError::from_transport)
        })
        .await
    }

    /// The gas `request` uses now (`eth_createAccessList`'s `gasUsed`).
    async fn gas_used(&self, request: &TransactionRequest) -> Result<u64, ChainError> {
        let answer = self
            .rpc("eth_createAccessList", async {
                self.provider
                    .create_access_list(request)
                    .await
                    .map_err(ChainError::from_transport)
            })
            .await?;
        // geth answers a failing call with a result naming its error
        // (anvil with a JSON-RPC error, sorted by `from_transport`).
        if let Some(error) = answer.error {
            return Err(match error.to_ascii_lowercase().contains("revert") {
                true => ChainError::Reverted(error),
                false => ChainError::Refused(error),
            });
        }
        u64::try_from(answer.gas_used).map_err(|_| {
            ChainError::Unavailable(format!("gasUsed {} out of range", answer.gas_used))
        })
    }

    /// `(max_fee_per_gas, max_priority_fee_per_gas)`.
    pub async fn fees(&self) -> Result<(u128, u128), ChainError> {
        // alloy estimates from one `eth_feeHistory` (and reads the latest
        // block, unobserved, on a chain whose latest base fee reads 0).
        let estimate = self
            .rpc("eth_feeHistory", async {
                self.provider
                    .estimate_eip1559_fees()
                    .await
                    .map_err(ChainError::from_transport)
            })
            .await?;
        Ok((estimate.max_fee_per_gas, estimate.max_priority_fee_per_gas))
    }

    /// Hands a signed transaction to the node.
    pub async fn send_raw(&self, encoded: &[u8]) -> Result<B256, ChainError> {
        self.rpc("eth_sendRawTransaction", async {
            let pending = self
                .provider
                .send_raw_transaction(encoded)
                .await
                .map_err(ChainError::from_transport)?;
            Ok(*pending.tx_hash())
        })
        .await
    }

    pub async fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>, ChainError> {
        self.rpc("eth_getTransactionReceipt", async {
            self.provider
                .get_transaction_receipt(hash)
                .await
                .map_err(ChainError::from_transport)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_covers_refunds_and_nested_calls() {
        // A batch that used 4.3M gas after refunds may have needed 5.4M
        // before them, and a little more through three nested calls.
        let limit = limit_for_gas_used(4_300_000);
        assert!(limit > 4_300_000 * 5 / 4, "{limit}");
        assert!(limit < 4_300_000 * 4 / 3, "{limit}");
        assert_eq!(limit_for_gas_used(u64::MAX), u64::MAX);
    }

    #[test]
    fn method_not_found_is_told_apart() {
        assert!(is_method_not_found("Method not found"));
        assert!(is_method_not_found(
            "the method eth_createAccessList does not exist/is not available"
        ));
        assert!(!is_method_not_found(
            "execution reverted: FiatToken: invalid signature"
        ));
        assert!(!is_method_not_found(
            "insufficient funds for gas * price + value"
        ));
    }
}
