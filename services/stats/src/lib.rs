//! Tessera stats service (`tessera.stats.v1.StatsService`): call accounting
//! and the seller leaderboard.
//!
//! - `RecordCalls`: the gateway's call events, in batches of at most
//!   [`event::MAX_BATCH`], checked ([`event`]) and added to the counts in
//!   one transaction ([`store::calls`]).
//! - `Summary`: totals, by route, by rail (USDC by network, proof of work,
//!   free, Idempotency-Key replay), charged-but-failed calls, revenue in
//!   atomic units, the daily series and the last 25 calls.
//! - `Leaderboard`: x402 sellers (the recipients of the configured asset's
//!   `Transfer`s made by EIP-3009 `transferWithAuthorization`, as x402
//!   settles) ranked by volume, indexed from the chain in bounded block
//!   ranges with a checkpoint ([`indexer`], [`store::sellers`]). With no
//!   chain configured it answers no sellers and an empty asset.
//!
//! The counts live in PostgreSQL (replicas) or a SQLite file (the embedded
//! default); see [`config`] for the environment.

pub mod config;
pub mod event;
pub mod indexer;
mod service;
pub mod store;

pub use config::{ChainConfig, StatsConfig, Store, DEFAULT_ADDR};
pub use indexer::{Indexer, Pass};
pub use service::{Stats, DEFAULT_TOP, INVALID_TOP, MAX_TOP};
pub use store::sellers::Token;
pub use store::StatsStore;

use tessera_proto::stats::v1::stats_service_server::StatsServiceServer;

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = tessera_proto::stats::v1::stats_service_server::SERVICE_NAME;

/// The tonic server over `stats`, ready for `GrpcServer::new`/`add`.
pub fn server(stats: Stats) -> StatsServiceServer<Stats> {
    StatsServiceServer::new(stats)
}
