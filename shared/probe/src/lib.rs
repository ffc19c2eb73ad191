//! Is it up? Reachability probes and what they have seen.
//!
//! A [`Check`] is one way to ask a dependency whether it answers: Redis
//! `PING`, PostgreSQL `SELECT 1` (each on a fresh connection, so a probe
//! measures what a new client would meet, not a pooled connection's luck),
//! JSON-RPC `eth_blockNumber`, an HTTP `GET` that must answer 2xx, or any
//! async check. A [`Board`] runs its checks every so often and keeps, per
//! check, a [`Record`]: the last outcome and its latency, since when it has
//! been up, and its availability over the last probes.

mod board;
mod check;
mod record;

pub use board::{Board, Entry};
pub use check::{Check, Outcome};
pub use record::{public_error, Record, Snapshot, State, MAX_ERROR_CHARS, WINDOW};

/// Unix milliseconds now.
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
