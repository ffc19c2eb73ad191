//! Shared harness for Tessera's integration tests and bench: backends on the
//! real servers, servers on free ports, and a Redis of our own to kill.

pub mod binaries;
pub mod broken;
pub mod chain;
pub mod conformance;
pub mod gateway_http;
pub mod harness;
pub mod nemesis;
pub mod paid;
pub mod postgres_server;
pub mod proxy;
pub mod redis_server;
