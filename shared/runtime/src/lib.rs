//! Plumbing every Tessera service shares: env config, telemetry, a gRPC
//! server with health, reflection and grpc-web, Prometheus metrics, and
//! graceful shutdown.

pub mod config;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;

pub use shutdown::Shutdown;
