//! Waiting for a key (or every key under a prefix) to change, instead of
//! polling it: `Watch`, a server stream of changes in the order they took
//! effect. A watch lasts at most the server's limit (60 s by default); to
//! go on, watch again from the last event's cursor (or, for one key, its
//! revision): nothing is missed in between.

use crate::error::Error;
use crate::model::Entry;
use crate::x402::Settlement;
use std::time::Duration;
use tessera_proto::memory::v1 as pb;
use tonic::Streaming;

/// What to watch, and from where.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// One key; empty = every key under `prefix`.
    pub key: String,
    pub prefix: String,
    /// A key's changes after this revision (0: its current state first).
    pub since_revision: u64,
    /// The changes after the event with this cursor.
    pub since_cursor: String,
    /// How long the watch lasts; `None` = the server's limit.
    pub timeout: Option<Duration>,
}

impl WatchOptions {
    /// The changes of `key` after `revision`.
    pub fn key(key: &str, since_revision: u64) -> Self {
        WatchOptions {
            key: key.to_string(),
            since_revision,
            ..WatchOptions::default()
        }
    }

    /// Every change under `prefix` (from now, or after `since_cursor`).
    pub fn prefix(prefix: &str, since_cursor: &str) -> Self {
        WatchOptions {
            prefix: prefix.to_string(),
            since_cursor: since_cursor.to_string(),
            ..WatchOptions::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// Where the watch starts (first event); no change.
    Progress,
    Put,
    Delete,
    /// The entry of `revision` reached its TTL (the revision stays).
    Expire,
    /// The server's log no longer reaches back to the cursor asked for:
    /// read the current state, then go on from this event's cursor.
    Resync,
}

/// One change.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    pub kind: WatchKind,
    pub key: String,
    pub revision: u64,
    /// The new state, on `Put`.
    pub entry: Option<Entry>,
    /// Pass as `since_cursor` to resume after this event.
    pub cursor: String,
    /// Stands for every change up to `revision` the log no longer held.
    pub compacted: bool,
}

impl TryFrom<pb::WatchEvent> for WatchEvent {
    type Error = Error;

    fn try_from(event: pb::WatchEvent) -> Result<Self, Error> {
        let kind = match pb::watch_event::Kind::try_from(event.kind) {
            Ok(pb::watch_event::Kind::Progress) => WatchKind::Progress,
            Ok(pb::watch_event::Kind::Put) => WatchKind::Put,
            Ok(pb::watch_event::Kind::Delete) => WatchKind::Delete,
            Ok(pb::watch_event::Kind::Expire) => WatchKind::Expire,
            Ok(pb::watch_event::Kind::Resync) => WatchKind::Resync,
            _ => {
                return Err(Error::MalformedReply(format!(
                    "a watch event of kind {}",
                    event.kind
                )))
            }
        };
        Ok(WatchEvent {
            kind,
            key: event.key,
            revision: event.revision,
            entry: event.entry.map(Entry::try_from).transpose()?,
            cursor: event.cursor,
            compacted: event.compacted,
        })
    }
}

/// An open watch.
pub struct Watch {
    events: Streaming<pb::WatchEvent>,
    settlement: Option<Settlement>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Watch {
    /// The stream of a served watch; a paid one says what it was charged in
    /// its initial metadata (and again in its trailers).
    pub(crate) fn new(response: tonic::Response<Streaming<pb::WatchEvent>>) -> Self {
        let settlement = Settlement::from_metadata(response.metadata()).and_then(Result::ok);
        Watch {
            events: response.into_inner(),
            settlement,
        }
    }

    /// The next event; `None` once the watch has ended (its time is up).
    pub async fn next(&mut self) -> Result<Option<WatchEvent>, Error> {
        match self.events.message().await? {
            Some(event) => Ok(Some(WatchEvent::try_from(event)?)),
            None => {
                if let Some(trailers) = self.events.trailers().await? {
                    if let Some(Ok(settlement)) = Settlement::from_metadata(&trailers) {
                        self.settlement = Some(settlement);
                    }
                }
                Ok(None)
            }
        }
    }

    /// What the watch was charged (paid watches only).
    pub fn settlement(&self) -> Option<&Settlement> {
        self.settlement.as_ref()
    }
}
