//! The chain as Tessera's payment services read it.
//!
//! - [`chain`]: a JSON-RPC endpoint with a per-request timeout, typed
//!   `eth_call`s, and failures sorted into "the chain said no" and "the
//!   chain did not answer".
//! - [`token`]: the EIP-3009 token and ERC-1271 wallet interfaces.
//! - [`signature`]: who signed an authorization: the payer's own ECDSA key,
//!   recovered locally, or else a contract wallet that says so on chain.
//! - [`batch`]: Multicall3's `aggregate3`, many calls in one transaction.

pub mod batch;
pub mod chain;
pub mod signature;
pub mod token;

pub use chain::{Chain, ChainError};
pub use signature::{check_signature, SignatureKind, SignatureRefused};
