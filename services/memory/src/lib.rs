//! Agent memory: a namespace-scoped JSON key-value store with compare-and-swap,
//! atomic counters, TTL leases, etags and per-key revisions (fencing tokens).
//!
//! [`Memory`] validates requests and applies them through a [`MemoryStore`]:
//! [`embedded::EmbeddedStore`] (SQLite, for `make run`) or
//! [`durable::DurableStore`] (Redis hot path, PostgreSQL source of truth).
//! A namespace may let another read or write it through [`grants`]; the
//! check is in [`Memory`], so every face and gRPC client gets it.

pub mod canonical;
pub mod config;
pub mod durable;
pub mod embedded;
pub mod grants;
pub mod grpc;
pub mod model;
pub mod ops;
pub mod service;
pub mod store;
pub mod watch;

pub use grants::{AccessMode, Grant};
pub use model::{CasOutcome, Deleted, Entry, Limits, ListPage, TtlChange};
pub use service::Memory;
pub use store::MemoryStore;
