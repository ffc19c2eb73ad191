//! Plumbing every Tessera service shares: env config, telemetry, a gRPC
//! server with health, reflection and grpc-web, the internal service token
//! ([`grpc_auth`]), Prometheus metrics, and graceful shutdown.

pub mod config;
pub mod dependency;
pub mod grpc;
pub mod grpc_auth;
pub mod http;
pub mod metrics;
pub mod metrics_endpoint;
pub mod shutdown;
pub mod telemetry;
pub mod trace;

pub use shutdown::Shutdown;
