//! Tessera tools service (`tessera.tools.v1.ToolsService`): runs the
//! toolbox's tools ([`tessera_toolbox::all`]) by slug.
//!
//! A tool is pure CPU. A light one (declared `cost: Light`: linear in its
//! bounded input, microseconds) runs inline; any other runs on the blocking
//! pool, never on the async runtime's workers: at most `max_concurrent` at
//! once (a call waits for a slot within its deadline), and a call not done
//! by its deadline is answered DEADLINE_EXCEEDED. A timed-out run keeps its
//! slot until it really ends, so runs that overstay cannot pile up beyond
//! the limit.

pub mod config;
mod service;

pub use config::ToolsConfig;
pub use service::{Runner, ToolsServer};

use tessera_proto::tools::v1::tools_service_server::ToolsServiceServer;

/// Fully qualified gRPC service name, for health and reflection.
pub const SERVICE_NAME: &str = tessera_proto::tools::v1::tools_service_server::SERVICE_NAME;

/// The tonic server over `runner`, ready for `GrpcServer::new`/`add`.
pub fn server(runner: Runner) -> ToolsServiceServer<ToolsServer> {
    ToolsServiceServer::new(ToolsServer::new(runner))
}
