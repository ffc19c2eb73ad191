//! Watching keys instead of polling them.
//!
//! Every write a store acknowledges is in its namespace's [`ChangeLog`], in
//! the order the writes took effect, written by the write itself (the same
//! SQLite transaction; the same Redis script, and a change is shown only
//! once PostgreSQL holds it). A watch ([`session`]) reads the log from a
//! position (a [`Cursor`]) and reports the changes of its key or prefix;
//! expiries, which are not writes, it finds by timer. The log keeps the last
//! [`LOG_LENGTH`] changes per namespace: a position older than that, or one
//! the cache lost, is a gap, reported as a compacted current state (one key)
//! or a resync (a prefix).

pub mod session;
mod wakeups;

pub use session::{watch, EventKind, Target, WatchEvent, WatchSpec};

use tokio::sync::mpsc;

/// A started watch's events: its first, then the rest as they come; `None`
/// once it has ended (an `Err` comes last when it fails).
#[derive(Debug)]
pub struct WatchEvents {
    first: Option<WatchEvent>,
    rest: mpsc::Receiver<Result<WatchEvent>>,
}

impl WatchEvents {
    pub fn new(first: WatchEvent, rest: mpsc::Receiver<Result<WatchEvent>>) -> Self {
        WatchEvents {
            first: Some(first),
            rest,
        }
    }

    pub async fn recv(&mut self) -> Option<Result<WatchEvent>> {
        match self.first.take() {
            Some(first) => Some(Ok(first)),
            None => self.rest.recv().await,
        }
    }
}
pub use wakeups::Wakeups;

use crate::model::Entry;
use tessera_error::{Error, Result};

/// Changes kept per namespace (older ones are trimmed).
pub const LOG_LENGTH: usize = 256;

/// A position in one namespace's change log: the last change read. Opaque
/// to clients; each backend spells its own.
pub type Cursor = String;

/// A logged write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub cursor: Cursor,
    pub key: String,
    /// The key's revision after the write.
    pub revision: u64,
    /// The new state; `None` for a delete.
    pub entry: Option<Entry>,
}

/// What a read of the log after a cursor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The changes after the cursor, oldest first, of the keys asked for.
    pub changes: Vec<Change>,
    /// Where the read ended: the last change read, whether asked for or
    /// not (pass it to the next read).
    pub cursor: Cursor,
    /// The log does not continue from `cursor` (trimmed past it, or lost):
    /// what happened after it is unknown.
    pub gap: bool,
    /// The read stopped at its limit: more entries follow `cursor`.
    pub more: bool,
}

#[async_trait::async_trait]
pub trait ChangeLog: Send + Sync {
    /// `INVALID_CURSOR` unless `cursor` is spelled as this log's cursors are.
    fn check_cursor(&self, cursor: &str) -> Result<()>;

    /// How often a watch reads the log without being woken; `None` when
    /// every change wakes it (in process).
    fn poll_every(&self) -> Option<std::time::Duration>;

    /// A position after every change logged so far in `namespace`.
    async fn head(&self, namespace: &str) -> Result<Cursor>;

    /// At most `limit` log entries after `cursor`, keeping the changes of
    /// the keys `wanted` names.
    async fn after(
        &self,
        namespace: &str,
        cursor: &str,
        limit: usize,
        wanted: &Target,
    ) -> Result<Read>;

    /// The position of the change that made `key` revision `revision`, if
    /// the log still holds it.
    async fn find(&self, namespace: &str, key: &str, revision: u64) -> Result<Option<Cursor>>;

    /// Ticks whenever `namespace` may have new changes. A hint only: a
    /// watch also reads the log now and then on its own.
    fn wakeups(&self, namespace: &str) -> tokio::sync::watch::Receiver<u64>;
}

/// A key's current state, for a watch to start from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyState {
    /// 0 when the key was never written.
    pub revision: u64,
    /// The live entry.
    pub entry: Option<Entry>,
    /// The entry of `revision` reached its TTL (rather than being deleted).
    pub expired: bool,
}

impl KeyState {
    /// The state `stored` of `key` is at `now` (the store's clock).
    pub fn of(namespace: &str, key: &str, stored: &crate::ops::Stored, now: i64) -> Self {
        KeyState {
            revision: stored.revision,
            entry: stored.to_entry(namespace, key, now),
            expired: stored.value.is_some() && !stored.is_live(now),
        }
    }
}

pub(crate) fn invalid_cursor(cursor: &str) -> Error {
    Error::invalid(
        "INVALID_CURSOR",
        format!("since_cursor {cursor:?} is not a cursor this server gave"),
    )
}
