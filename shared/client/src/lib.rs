//! Rust client of Tessera's public gRPC memory API
//! (`tessera.memory.v1.MemoryService`, on the gateway's HTTP port): typed
//! calls with JSON values, a fencing [`Lock`], and x402 payment built in.
//!
//! - [`Client`]: get, set, delete, list, compare-and-swap, increment and
//!   grants, acting as an [`Identity`]: an agent id (servers in FREE_MODE)
//!   or a [`Payer`] (the wallet is the namespace; every call is paid).
//! - [`X402Layer`]: the tower layer that pays. An unpaid call is answered
//!   UNAUTHENTICATED with an x402 quote in its metadata; the layer signs an
//!   EIP-3009 authorization for the cheapest offer the payer allows — never
//!   above the payer's per-call cap ([`PaymentError::OverCap`]) — and sends
//!   the call once more. A second quote is an error
//!   ([`PaymentError::Refused`]), never a loop. Usable under a raw tonic
//!   client too.
//! - [`Reply`]: every answer comes with the [`Settlement`] of each payment
//!   it made (the `payment-response` trailer), empty in free mode.
//! - [`Error`]: one error, keeping the gRPC code and `ErrorInfo` reason of a
//!   server's refusal, and why a payment was not made.
//!
//! ```no_run
//! use std::time::Duration;
//! use serde_json::json;
//! use tessera_client::{Client, Identity, Lock};
//!
//! # async fn run() -> Result<(), tessera_client::Error> {
//! let client = Client::connect("http://127.0.0.1:8080", Identity::agent("planner-1")).await?;
//! client.set("plan", &json!({"step": 1})).await?;
//! let plan = client.get("plan").await?.into_inner();
//! assert_eq!(plan.map(|entry| entry.value), Some(json!({"step": 1})));
//!
//! // Wait up to 10 s for the lock; its lease lasts 30 s unless renewed.
//! let lock = Lock::acquire(&client, "jobs/42", Duration::from_secs(30), Duration::from_secs(10))
//!     .await?
//!     .into_inner();
//! println!("fencing token {}", lock.fencing_token());
//! lock.release().await?;
//! # Ok(()) }
//! ```
//!
//! Paying with a wallet, at most 0.01 USDC (6 decimals) a call:
//!
//! ```no_run
//! use alloy::signers::local::PrivateKeySigner;
//! use tessera_client::{Client, Identity, Network, Payer, U256};
//!
//! # async fn run(signer: PrivateKeySigner) -> Result<(), tessera_client::Error> {
//! let base = Network::new(8453);
//! let usdc = base.usdc().expect("USDC is known on Base").parse().expect("an address");
//! let payer = Payer::new(signer).allow(base, usdc, U256::from(10_000));
//! let client = Client::connect("https://tessera.example", Identity::Payer(payer)).await?;
//! let visits = client.increment("visits", 1).await?;
//! for settlement in &visits.settlements {
//!     println!("paid in {:?}", settlement.transaction);
//! }
//! # Ok(()) }
//! ```

mod client;
mod error;
mod identity;
mod lock;
mod model;
mod reply;
mod wait;
mod watch;
pub mod x402;

pub use alloy::primitives::{Address, U256};
pub use client::Client;
pub use error::Error;
pub use identity::Identity;
pub use lock::Lock;
pub use model::{Access, Entry, Grant, ListOptions, Page, SetOptions, Swap};
pub use reply::Reply;
pub use tessera_error::ErrorKind;
pub use tessera_x402::Network;
pub use watch::{Watch, WatchEvent, WatchKind, WatchOptions};
pub use x402::{Payer, PaymentError, Settlement, X402Layer, X402Service};
