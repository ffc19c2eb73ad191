//! Tessera's x402 facilitator (`tessera-facilitator`): verifies payments of
//! the `exact` scheme on an EVM chain (EIP-3009 `transferWithAuthorization`
//! signed as EIP-712 typed data) and settles them on chain from its own key.
//!
//! It speaks the standard facilitator HTTP API, so any x402 resource server
//! can use it ([`http`]: `POST /verify`, `POST /settle`, `GET /supported`),
//! and the same over gRPC ([`grpc`], `tessera.facilitator.v1`, the documents
//! as JSON strings). Both faces call one [`Facilitator`].
//!
//! - [`verify`]: the checklist and its reasons (x402 v2 spec §9).
//! - [`settle`]: re-verify, send, wait for the receipt; what each outcome
//!   answers.
//! - [`batch`]: many authorizations in one transaction (Multicall3's
//!   `aggregate3`), up to `FACILITATOR_BATCHES_IN_FLIGHT` sent batches per
//!   settling key awaiting their receipts; a batched settle reads no chain
//!   state of its own unless its batch's estimate fails.
//! - [`nonces`]: why each settling key's transaction nonces survive restarts
//!   and concurrent settles without a database.
//!
//! **Answers, not errors.** A request whose body is a facilitator request
//! always gets HTTP 200 (gRPC OK): a failed check is `isValid: false` /
//! `success: false` with the reason, as the reference facilitator answers.
//! Only a body that is not a facilitator request at all is HTTP 400
//! (`{"error": "…"}`; gRPC `INVALID_ARGUMENT`).
//!
//! **When the chain is down** (the RPC endpoint refuses, times out after
//! `FACILITATOR_RPC_TIMEOUT_SECS`, or answers garbage), a resource server
//! sees, still with HTTP 200:
//!
//! - `/verify`: `{"isValid": false, "invalidReason": "unexpected_verify_error",
//!   "invalidMessage": "chain RPC unavailable: …", "payer": …}`
//! - `/settle`: `{"success": false, "errorReason": "unexpected_settle_error",
//!   "errorMessage": "chain RPC unavailable: …", "transaction": ""}` when
//!   nothing was sent; with a `transaction` hash when the transaction went
//!   out and its receipt did not come back within
//!   `FACILITATOR_RECEIPT_TIMEOUT_SECS` (the outcome is then unknown, see
//!   [`settle`]).
//!
//! `unexpected_*` reasons are the facilitator's failure, not the payer's: a
//! resource server should answer them as "service unavailable", not as a
//! bad payment. Sending and confirming a settlement takes at most a few RPC
//! timeouts plus the receipt timeout; when batching, a settle may first
//! wait for a free slot of a settling key (each key has up to
//! `FACILITATOR_BATCHES_IN_FLIGHT` batches awaiting their receipts), so
//! under a load beyond what the keys' batches carry it waits longer.

pub mod batch;
pub mod config;
pub mod grpc;
pub mod http;
mod in_flight;
pub mod nonces;
mod send;
pub mod settle;
pub mod verify;

use alloy::primitives::Address;
use std::sync::Arc;
use tessera_runtime::dependency::{observe, Dependency};
use tessera_runtime::Shutdown;
use tessera_x402::facilitator::{SupportedKind, SupportedResponse};
use tessera_x402::Network;
use tokio::net::TcpListener;

pub use batch::{Urgency, URGENCY_HEADER};
pub use config::{BatchConfig, FacilitatorConfig, SettlementKey};
pub use tessera_evm::{Chain, ChainError};
pub use verify::{Rejection, SignatureKind, Simulate, Verified};

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = grpc::SERVICE_NAME;

/// The only scheme served.
pub const SCHEME: &str = "exact";

/// A settling key and its nonce allocator.
#[derive(Debug)]
pub(crate) struct Settler {
    pub(crate) key: SettlementKey,
    pub(crate) nonces: nonces::NonceAllocator,
}

/// One facilitator on one chain; both faces share it (`Arc`).
#[derive(Debug)]
pub struct Facilitator {
    chain: Chain,
    network: Network,
    /// The settling keys, `FACILITATOR_PRIVATE_KEY` first; none: verify only.
    settlers: Vec<Arc<Settler>>,
    sender: Arc<send::Sender>,
    /// `None`: each settle sends its own transaction (batching is off, or
    /// there is no batch contract).
    batcher: Option<batch::Batcher>,
    /// Without a batcher, the settler whose turn is next.
    next_settler: std::sync::atomic::AtomicUsize,
    /// Authorizations being settled now, as (token, from, nonce): a second
    /// settle of the same one follows the first and answers its outcome
    /// instead of sending a transaction that could only revert.
    in_flight: in_flight::InFlightSet,
}

/// Why a facilitator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The chain did not answer (usable): worth retrying.
    #[error("chain RPC {url}: {source}")]
    Chain {
        url: String,
        #[source]
        source: ChainError,
    },
    /// The configuration is refused ([`FacilitatorConfig::validate`]):
    /// retrying cannot help.
    #[error("invalid facilitator configuration: {0}")]
    Config(String),
}

impl Facilitator {
    /// Reads the chain id from the RPC endpoint and, for each settling key,
    /// its pending transaction count (the first nonce to use); when
    /// batching, checks that the batch contract has code (else warns and
    /// sends every settlement alone) and starts a worker per key.
    pub async fn connect(config: &FacilitatorConfig) -> Result<Self, StartError> {
        config
            .validate()
            .map_err(|error| StartError::Config(format!("{error:#}")))?;
        let failed = |source| StartError::Chain {
            url: config.rpc_url.clone(),
            source,
        };
        let chain = Chain::new(&config.rpc_url, config.rpc_timeout)
            .map_err(failed)?
            .observed(|method, call| observe(Dependency::Chain, method, call));
        let chain_id = chain.chain_id().await.map_err(failed)?;
        batch::init_metrics();
        let mut settlers = Vec::new();
        for key in config.settlement_keys() {
            let next = chain.pending_nonce(key.address()).await.map_err(failed)?;
            tracing::info!(address = %key.address(), next_nonce = next, "settling key loaded");
            settlers.push(Arc::new(Settler {
                key,
                nonces: nonces::NonceAllocator::new(next),
            }));
        }
        if settlers.is_empty() {
            tracing::warn!(
                "no FACILITATOR_PRIVATE_KEY: verify only, every settle answers unexpected_settle_error"
            );
        }
        let sender = Arc::new(send::Sender::new(
            chain.clone(),
            chain_id,
            config.receipt_timeout,
        ));
        let plan = batch::Plan {
            max: config.batch.max,
            window: config.batch.window,
            contract: config.batch.contract,
            in_flight: config.batch.in_flight,
        };
        let batching = plan.max > 1 && !settlers.is_empty() && {
            let code = chain.code_at(plan.contract).await.map_err(failed)?;
            if code.is_empty() {
                tracing::warn!(
                    contract = %plan.contract,
                    "no code at the batch contract ({}): every settlement is sent alone",
                    config::BATCH_CONTRACT_ENV
                );
            }
            !code.is_empty()
        };
        let batcher = batching.then(|| {
            tracing::info!(
                contract = %plan.contract,
                max = plan.max,
                window_ms = plan.window.as_millis() as u64,
                in_flight = plan.in_flight,
                keys = settlers.len(),
                "settlements are batched"
            );
            batch::Batcher::start(sender.clone(), &settlers, plan)
        });
        Ok(Facilitator {
            chain,
            network: Network::new(chain_id),
            settlers,
            sender,
            batcher,
            next_settler: Default::default(),
            in_flight: Default::default(),
        })
    }

    /// The chain served, from the RPC endpoint's `eth_chainId`.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The address of the main settling key (`FACILITATOR_PRIVATE_KEY`), if
    /// this facilitator settles.
    pub fn settlement_address(&self) -> Option<Address> {
        self.settlers.first().map(|s| s.key.address())
    }

    /// Every address that sends settlements, the main key's first.
    pub fn settlement_addresses(&self) -> Vec<Address> {
        self.settlers.iter().map(|s| s.key.address()).collect()
    }

    /// The next transaction nonce of the main settling key, as allocated
    /// here (`None` when unknown until the next re-sync).
    pub async fn next_settlement_nonce(&self) -> Option<u64> {
        match self.settlers.first() {
            Some(settler) => settler.nonces.peek().await,
            None => None,
        }
    }

    /// Each settling key's address and next nonce, as allocated here.
    pub async fn next_settlement_nonces(&self) -> Vec<(Address, Option<u64>)> {
        let mut nonces = Vec::with_capacity(self.settlers.len());
        for settler in &self.settlers {
            nonces.push((settler.key.address(), settler.nonces.peek().await));
        }
        nonces
    }

    /// The most authorizations settled in one transaction: the configured
    /// `FACILITATOR_BATCH_MAX` when batching, 1 when not (no batch contract,
    /// or no key).
    pub fn batch_max(&self) -> usize {
        self.batcher.as_ref().map_or(1, |b| b.plan().max)
    }

    /// Settles handed to the batcher and not yet in a sent transaction.
    pub fn settlements_waiting(&self) -> usize {
        self.batcher.as_ref().map_or(0, batch::Batcher::waiting)
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// How the network is spelled for a request of `x402_version`: v1 uses
    /// the network's name where it has one (`base-sepolia`), v2 CAIP-2.
    pub fn network_label(&self, x402_version: u32) -> String {
        match (x402_version, self.network.v1_name()) {
            (1, Some(name)) => name.to_string(),
            _ => self.network.caip2(),
        }
    }

    /// `GET /supported`: `exact` on our network for x402 v1 and v2, and our
    /// settling addresses under `eip155:*`.
    pub fn supported(&self) -> SupportedResponse {
        let kinds = [1, 2]
            .into_iter()
            .map(|version| SupportedKind {
                x402_version: version,
                scheme: SCHEME.to_string(),
                network: self.network_label(version),
                extra: None,
            })
            .collect();
        let mut signers = std::collections::BTreeMap::new();
        let addresses = self.settlement_addresses();
        if !addresses.is_empty() {
            signers.insert(
                "eip155:*".to_string(),
                addresses.iter().map(|a| a.to_checksum(None)).collect(),
            );
        }
        SupportedResponse {
            kinds,
            extensions: Vec::new(),
            signers,
        }
    }
}

/// Serves the HTTP API on `http` and gRPC (with health and reflection) on
/// `grpc` until `shutdown` fires, `/verify` and `/settle` (HTTP and gRPC)
/// requiring one of `api_keys` (`FacilitatorConfig::api_keys`) when any is
/// set; if one server stops, the other is stopped too.
pub async fn serve(
    facilitator: Arc<Facilitator>,
    api_keys: config::ApiKeys,
    http: TcpListener,
    grpc: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let grpc_server = tessera_runtime::grpc::GrpcServer::new(
        SERVICE_NAME,
        grpc::server(facilitator.clone(), api_keys.clone()),
    );
    let mut grpc_task = tokio::spawn(grpc_server.serve(grpc, shutdown.clone()));
    let mut http_task = tokio::spawn(http::serve(
        http,
        http::router(facilitator, api_keys),
        shutdown.clone(),
    ));
    let (first, other) = tokio::select! {
        result = &mut grpc_task => (result, http_task),
        result = &mut http_task => (result, grpc_task),
    };
    shutdown.trigger();
    first??;
    other.await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chain_calls_are_timed_and_failures_counted_by_rpc_method() {
        // Nothing listens on port 1: the connection is refused.
        let config = FacilitatorConfig::new("http://127.0.0.1:1", None);
        assert!(Facilitator::connect(&config).await.is_err());
        let text = tessera_runtime::metrics::render();
        for series in [
            "tessera_dependency_call_duration_seconds_count{dependency=\"chain\",operation=\"eth_chainId\"} 1",
            "tessera_dependency_call_errors_total{dependency=\"chain\",operation=\"eth_chainId\"} 1",
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }
}
