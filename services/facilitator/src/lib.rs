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
//! - [`nonces`]: why the settling key's transaction nonces survive restarts
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
//! bad payment. A settle never takes longer than a few RPC timeouts plus
//! the receipt timeout.

pub mod config;
pub mod grpc;
pub mod http;
pub mod nonces;
pub mod settle;
pub mod verify;

use alloy::primitives::Address;
use std::sync::Arc;
use std::time::Duration;
use tessera_runtime::dependency::{observe, Dependency};
use tessera_runtime::Shutdown;
use tessera_x402::facilitator::{SupportedKind, SupportedResponse};
use tessera_x402::Network;
use tokio::net::TcpListener;

pub use config::{FacilitatorConfig, SettlementKey};
pub use tessera_evm::{Chain, ChainError};
pub use verify::{Rejection, SignatureKind, Simulate, Verified};

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = grpc::SERVICE_NAME;

/// The only scheme served.
pub const SCHEME: &str = "exact";

/// The settling key and its nonce allocator.
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
    settler: Option<Settler>,
    receipt_timeout: Duration,
    /// Authorizations being settled now, as (token, from, nonce): a second
    /// settle of the same one is refused instead of sending a transaction
    /// that could only revert.
    in_flight: std::sync::Mutex<std::collections::HashSet<tessera_x402::AuthorizationKey>>,
}

/// Why a facilitator could not start.
#[derive(Debug, thiserror::Error)]
#[error("chain RPC {url}: {source}")]
pub struct StartError {
    pub url: String,
    #[source]
    pub source: ChainError,
}

impl Facilitator {
    /// Reads the chain id from the RPC endpoint and, with a settling key,
    /// the key's pending transaction count (the first nonce to use).
    pub async fn connect(config: &FacilitatorConfig) -> Result<Self, StartError> {
        let failed = |source| StartError {
            url: config.rpc_url.clone(),
            source,
        };
        let chain = Chain::new(&config.rpc_url, config.rpc_timeout)
            .map_err(failed)?
            .observed(|method, call| observe(Dependency::Chain, method, call));
        let chain_id = chain.chain_id().await.map_err(failed)?;
        let settler = match &config.settlement_key {
            Some(key) => {
                let next = chain.pending_nonce(key.address()).await.map_err(failed)?;
                tracing::info!(address = %key.address(), next_nonce = next, "settling key loaded");
                Some(Settler {
                    key: key.clone(),
                    nonces: nonces::NonceAllocator::new(next),
                })
            }
            None => {
                tracing::warn!(
                    "no FACILITATOR_PRIVATE_KEY: verify only, every settle answers unexpected_settle_error"
                );
                None
            }
        };
        Ok(Facilitator {
            chain,
            network: Network::new(chain_id),
            settler,
            receipt_timeout: config.receipt_timeout,
            in_flight: Default::default(),
        })
    }

    /// The chain served, from the RPC endpoint's `eth_chainId`.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The address that sends settlements, if this facilitator settles.
    pub fn settlement_address(&self) -> Option<Address> {
        self.settler.as_ref().map(|s| s.key.address())
    }

    /// The next transaction nonce of the settling key, as allocated here.
    pub async fn next_settlement_nonce(&self) -> Option<u64> {
        match &self.settler {
            Some(settler) => settler.nonces.peek().await,
            None => None,
        }
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
    /// settling address under `eip155:*`.
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
        if let Some(address) = self.settlement_address() {
            signers.insert("eip155:*".to_string(), vec![address.to_checksum(None)]);
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
