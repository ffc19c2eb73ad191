//! Rate limits keyed by a string (a client IP, a wallet), with GCRA.
//!
//! GCRA (the generic cell rate algorithm) keeps one number per key: the
//! theoretical arrival time (TAT) of the next request at the steady rate.
//! Each request regains nothing and costs one emission interval `T`
//! (`period / limit`); it is allowed when it comes no earlier than
//! `TAT - T * (burst - 1)`, which moves the TAT on by `T`. A refused request
//! changes nothing, and a key whose TAT has passed is as good as new.
//!
//! Two backends give the same answers:
//! - [`Limiter::local`]: cells in this process (`governor`). No I/O, but each
//!   replica counts alone, so N replicas allow N times the quota. Use it for a
//!   single replica, or where a per-replica limit is enough.
//! - [`Limiter::redis`]: cells in Redis, updated by one Lua script on the
//!   Redis clock. Every replica using the same Redis and limiter name shares
//!   one budget per key. Costs a round trip per check, and fails (with an
//!   `Unavailable` error) when Redis does: the caller decides whether to
//!   fail open.

mod key;
mod local;
mod quota;
mod redis_cells;

pub use key::MAX_KEY_BYTES;
pub use quota::{Decision, Quota};

use local::LocalCells;
use redis_cells::RedisCells;
use std::sync::Arc;
use tessera_error::Error;

/// Counts requests per key against one [`Quota`]. Clones share the cells.
#[derive(Clone)]
pub struct Limiter {
    quota: Quota,
    cells: Cells,
}

#[derive(Clone)]
enum Cells {
    Local(Arc<LocalCells>),
    Redis(Arc<RedisCells>),
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.cells {
            Cells::Local(_) => "local",
            Cells::Redis(_) => "redis",
        };
        f.debug_struct("Limiter")
            .field("kind", &kind)
            .field("quota", &self.quota)
            .finish()
    }
}

impl Limiter {
    /// Cells in this process (governor, keyed by `String`). Keys whose cell
    /// is full again are forgotten every few thousand checks, so memory
    /// stays bounded by the keys in use.
    ///
    /// # Panics
    /// When `quota` is not [valid](Quota::is_valid); the `Quota`
    /// constructors only build valid ones.
    pub fn local(quota: Quota) -> Self {
        assert!(quota.is_valid(), "{}", quota.invalid_reason());
        Limiter {
            quota,
            cells: Cells::Local(Arc::new(LocalCells::new(quota))),
        }
    }

    /// Cells in Redis, shared by every process using the same `name` and
    /// Redis: key `tessera:ratelimit:<name>:<key>`, expiring when the cell
    /// is full again. Connects now: fails on a bad URL, an unreachable Redis,
    /// a name outside `[A-Za-z0-9_.-]{1,64}` or an invalid quota.
    /// Needs Redis 5 or later (`TIME` inside a script).
    pub async fn redis(url: &str, name: &str, quota: Quota) -> anyhow::Result<Self> {
        anyhow::ensure!(quota.is_valid(), "{}", quota.invalid_reason());
        let cells = RedisCells::connect(url, name, quota).await?;
        Ok(Limiter {
            quota,
            cells: Cells::Redis(Arc::new(cells)),
        })
    }

    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Counts one request against `key` (any string up to
    /// [`MAX_KEY_BYTES`]; longer ones are refused with `InvalidArgument`,
    /// not hashed). A limited request is not counted. Fails with
    /// `Unavailable` (`RATE_LIMIT_STORE_UNAVAILABLE`) when Redis does not
    /// answer within 5 s or answers an error.
    pub async fn check(&self, key: &str) -> Result<Decision, Error> {
        key::check_key(key)?;
        match &self.cells {
            Cells::Local(cells) => Ok(cells.check(key)),
            Cells::Redis(cells) => cells.check(key).await,
        }
    }
}
