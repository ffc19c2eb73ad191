//! Tessera pow service (`tessera.pow.v1.PowService`): the free
//! proof-of-work tier for the cpu-tier tools (the catalog's tier).
//!
//! `IssueChallenge(slug)` mints a random challenge and a token signed with
//! `POW_SECRET` (HMAC-SHA256: any replica with the secret checks it, no
//! shared state). A caller finds a nonce such that
//! `sha256(challenge ":" nonce)` has `difficulty` leading zero bits and sends
//! `X-Pow-Solution: token:nonce` with its call. `Redeem` checks the token
//! (signature, expiry, tool) and the work, then claims the challenge once in
//! the claim store ([`claims`]); the gateway `Release`s the claim when the
//! call is not served, so a solution is spent only by a served call.

pub mod claims;
pub mod config;
mod payable;
mod service;
pub mod token;

pub use config::{PowConfig, Store};
pub use payable::pow_route;
pub use service::{Pow, PowServer};

use tessera_proto::pow::v1::pow_service_server::PowServiceServer;

/// Fully qualified gRPC service name (`NamedService::NAME`), for health and
/// reflection.
pub const SERVICE_NAME: &str = tessera_proto::pow::v1::pow_service_server::SERVICE_NAME;

/// The tonic server over `pow`, ready for `GrpcServer::new`/`add`.
pub fn server(pow: Pow) -> PowServiceServer<PowServer> {
    PowServiceServer::new(PowServer::new(pow))
}

#[cfg(test)]
mod tests;
