//! The storage trait both backends implement. Inputs arrive validated and
//! canonical (see [`crate::Memory`]); each call is atomic.

use crate::grants::{AccessMode, Grant};
use crate::model::{CasOutcome, Deleted, Entry, ListPage, ListQuery, TtlChange};
use crate::ops::Number;
use crate::watch::{ChangeLog, KeyState};
use std::sync::Arc;
use tessera_error::Result;

#[async_trait::async_trait]
pub trait MemoryStore: Send + Sync + 'static {
    /// The live entry, or `None` when absent or expired.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Entry>>;

    /// Upsert; with `if_match`, only when the current revision equals it.
    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: String,
        ttl: TtlChange,
        if_match: Option<u64>,
    ) -> Result<Entry>;

    async fn delete(&self, namespace: &str, key: &str, if_match: Option<u64>) -> Result<Deleted>;

    /// Live entries, newest first.
    async fn list(&self, namespace: &str, query: ListQuery) -> Result<ListPage>;

    /// `expected: None` = absent or expired; `value: None` = delete on match.
    async fn cas(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
        ttl: TtlChange,
    ) -> Result<CasOutcome>;

    async fn incr(&self, namespace: &str, key: &str, by: Number, ttl: TtlChange) -> Result<Entry>;

    /// Creates or replaces `namespace`'s grant to `grantee` (mode, expiry
    /// `ttl_seconds` from now on the store's clock, and creation time).
    /// Expired grants of `namespace` are dropped first; a new grantee past
    /// `Limits::max_grants` active grants is `QuotaExceeded`.
    async fn grant(
        &self,
        namespace: &str,
        grantee: &str,
        mode: AccessMode,
        ttl_seconds: Option<u64>,
    ) -> Result<Grant>;

    /// Removes the grant; `true` when an active one was removed.
    async fn revoke(&self, namespace: &str, grantee: &str) -> Result<bool>;

    /// `namespace`'s active grants, ordered by grantee.
    async fn list_grants(&self, namespace: &str) -> Result<Vec<Grant>>;

    /// The mode of `namespace`'s active grant to `grantee`, if any: one
    /// primary-key lookup, made only for cross-namespace calls.
    async fn grant_mode(&self, namespace: &str, grantee: &str) -> Result<Option<AccessMode>>;

    /// The key's revision and live entry, read as `get` reads (what it
    /// shows is durable), for a watch to start from.
    async fn key_state(&self, namespace: &str, key: &str) -> Result<KeyState>;

    /// The log of this store's acknowledged writes, for watches.
    fn changes(&self) -> Arc<dyn ChangeLog>;

    /// Readiness of the backing servers.
    async fn ping(&self) -> Result<()>;

    /// Forgets keys deleted or expired more than `grace` ago, returning how
    /// many. A key written again later keeps counting revisions above every
    /// revision its namespace ever reclaimed (a fencing token never repeats).
    async fn reclaim(&self, grace: std::time::Duration) -> Result<u64>;
}
