//! Idempotency-Key support for the REST gateway (Stripe /
//! draft-ietf-httpapi-idempotency-key-header style): the store of in-flight
//! claims and completed responses.
//!
//! A request with an `Idempotency-Key` is named by a [`CacheKey`] (method,
//! path, key, credential) and described by a [`Fingerprint`] (query and
//! body). The first such request claims the key ([`Begin::Claimed`]) and
//! runs; its response is then kept ([`IdempotencyStore::complete`]) for
//! [`Limits::ttl`] (24 h by default) and replayed byte for byte to every
//! retry with the same fingerprint. A call that fails or is not paid
//! releases its claim: nothing is kept and a retry runs afresh. A retry
//! with another fingerprint is refused ([`Begin::Mismatch`]); one that
//! arrives while the first still runs sees [`Begin::InFlight`] and polls.
//!
//! An in-flight claim is a lease ([`Limits::lease`], 120 s by default): a
//! gateway that dies mid-call does not block the key forever; once the
//! lease has run out a retry claims the key and runs again, and the dead
//! call's late completion is refused.
//!
//! Entries live in Redis, shared by every gateway replica, or in SQLite for
//! the one-process embedded default (bounded by [`Limits::max_entries`]).
//! A Redis that loses its data (restart without persistence, eviction)
//! forgets entries: a retry then runs again instead of replaying.

pub mod key;
pub mod response;
pub mod store;

pub use key::{CacheKey, Fingerprint};
pub use response::StoredResponse;
pub use store::{Begin, Claim, IdempotencyStore, Limits};
