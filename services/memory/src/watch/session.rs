//! One watch: where it starts, what it reports, when it ends.
//!
//! A key watch starts from the key's revision the client last saw: the
//! changes after it are replayed from the log when the log still holds the
//! change that made that revision, else the current state is sent as one
//! compacted event. A prefix watch starts from a cursor (or from now). Both
//! then follow the log from a head read *before* the current state, so no
//! write falls between the two; a key's changes are reported only above the
//! revision already reported, so none is reported twice.

use super::{ChangeLog, Cursor, KeyState};
use crate::model::{now_ms, Entry, ListCursor, ListQuery};
use crate::store::MemoryStore;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tessera_error::Result;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Log entries read at once.
const READ_BATCH: usize = 256;
/// Retry delay when a timer fires before the store's clock says expired.
const EXPIRY_RECHECK: Duration = Duration::from_millis(20);
/// Events buffered for a slow client before the watch waits on it.
const BUFFERED_EVENTS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Key(String),
    Prefix(String),
}

impl Target {
    pub fn accepts(&self, key: &str) -> bool {
        match self {
            Target::Key(watched) => watched == key,
            Target::Prefix(prefix) => key.starts_with(prefix.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// Canonical, and the caller may read it.
    pub namespace: String,
    pub target: Target,
    pub since_revision: u64,
    pub since_cursor: Option<Cursor>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Progress,
    Put,
    Delete,
    Expire,
    Resync,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub key: String,
    pub revision: u64,
    pub entry: Option<Entry>,
    pub cursor: Cursor,
    pub compacted: bool,
}

/// Starts the watch `spec` on `store`; its events arrive on the receiver,
/// which closes when the watch times out or fails (an `Err` comes last).
/// Dropping the receiver ends the watch.
/// `permit` is held for as long as the watch runs.
pub fn watch(
    store: Arc<dyn MemoryStore>,
    spec: WatchSpec,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> mpsc::Receiver<Result<WatchEvent>> {
    let (sink, events) = mpsc::channel(BUFFERED_EVENTS);
    tokio::spawn(async move {
        let _permit = permit;
        let deadline = Instant::now() + spec.timeout;
        let mut session = Session {
            log: store.changes(),
            store,
            spec,
            sink: sink.clone(),
            deadline,
            position: String::new(),
            reported: HashMap::new(),
            expiries: Expiries::default(),
        };
        if let Err(error) = session.run().await {
            // Within the deadline too: a client that stopped reading must
            // not hold the watch open.
            let _ = tokio::time::timeout_at(deadline, sink.send(Err(error))).await;
        }
    });
    events
}

/// The client went away: stop quietly.
struct Gone;

enum Stop {
    Gone,
    Failed(tessera_error::Error),
}

impl From<tessera_error::Error> for Stop {
    fn from(error: tessera_error::Error) -> Self {
        Stop::Failed(error)
    }
}

impl From<Gone> for Stop {
    fn from(_: Gone) -> Self {
        Stop::Gone
    }
}

struct Session {
    store: Arc<dyn MemoryStore>,
    log: Arc<dyn ChangeLog>,
    spec: WatchSpec,
    sink: mpsc::Sender<Result<WatchEvent>>,
    /// When the watch ends, whatever it is doing.
    deadline: Instant,
    /// The last log entry read.
    position: Cursor,
    /// Per key, the revision reported last (changes at or below it are old).
    reported: HashMap<String, u64>,
    expiries: Expiries,
}

impl Session {
    async fn run(&mut self) -> Result<()> {
        match self.follow().await {
            Ok(()) | Err(Stop::Gone) => Ok(()),
            Err(Stop::Failed(error)) => Err(error),
        }
    }

    async fn follow(&mut self) -> std::result::Result<(), Stop> {
        let namespace = self.spec.namespace.clone();
        let mut wakeups = self.log.wakeups(&namespace);
        self.start().await?;
        let poll_every = self.log.poll_every();
        loop {
            if Instant::now() >= self.deadline {
                return self.finish().await;
            }
            let read = self
                .log
                .after(&namespace, &self.position, READ_BATCH, &self.spec.target)
                .await?;
            for change in read.changes {
                self.position = change.cursor.clone();
                self.report_change(change.key, change.revision, change.entry, false)
                    .await?;
            }
            self.position = read.cursor;
            if read.gap {
                self.recover_from_gap().await?;
                continue;
            }
            if read.more {
                continue;
            }
            let next_expiry = self.expiries.next_due();
            tokio::select! {
                _ = self.sink.closed() => return Err(Gone.into()),
                _ = tokio::time::sleep_until(self.deadline) => return self.finish().await,
                _ = wakeups.changed() => {}
                _ = tokio::time::sleep(poll_every.unwrap_or(Duration::MAX)), if poll_every.is_some() => {}
                _ = sleep_until_ms(next_expiry), if next_expiry.is_some() => {
                    self.report_expiries().await?;
                }
            }
        }
    }

    /// At the deadline: a last PROGRESS with where the watch got to, so a
    /// quiet watch's client resumes from there (not from where it began).
    async fn finish(&mut self) -> std::result::Result<(), Stop> {
        let (key, revision) = match &self.spec.target {
            Target::Key(key) => (key.as_str(), self.reported_revision(key)),
            Target::Prefix(_) => ("", 0),
        };
        let last = progress(key, revision, &self.position);
        // Best effort: a client that stopped reading is not waited for.
        let _ = self.sink.try_send(Ok(last));
        Ok(())
    }

    /// Sets the starting position and reports what the client missed. What
    /// can fail runs before the first event, so a watch that cannot start
    /// fails as a call (and is not charged) rather than as a stream.
    async fn start(&mut self) -> std::result::Result<(), Stop> {
        let namespace = self.spec.namespace.clone();
        let head = self.log.head(&namespace).await?;
        match self.spec.target.clone() {
            Target::Key(key) => {
                let since = self.spec.since_revision;
                self.reported.insert(key.clone(), since);
                if let Some(cursor) = self.spec.since_cursor.clone() {
                    self.position = cursor;
                    self.track_key(&key).await?;
                    self.send(progress(&key, since, &self.position)).await?;
                    return Ok(());
                }
                let state = self.store.key_state(&namespace, &key).await?;
                let replay = if state.revision > since && since > 0 {
                    self.log.find(&namespace, &key, since).await?
                } else {
                    None
                };
                match replay {
                    Some(cursor) => {
                        self.position = cursor;
                        self.track_key(&key).await?;
                        self.send(progress(&key, since, &self.position)).await?;
                    }
                    None => {
                        self.position = head;
                        self.track_key(&key).await?;
                        self.send(progress(&key, since.min(state.revision), &self.position))
                            .await?;
                        self.catch_up(&key, since, state).await?;
                    }
                }
            }
            Target::Prefix(prefix) => {
                self.position = self.spec.since_cursor.clone().unwrap_or(head);
                self.track_prefix(&prefix).await?;
                self.send(progress("", 0, &self.position)).await?;
            }
        }
        Ok(())
    }

    /// Brings a key watch that starts from revision `since` up to `state`
    /// without the log: the current state as one compacted event when the
    /// key moved past `since` (or when the client's `since` is ahead of the
    /// store, which only a store restored from an older copy can cause),
    /// and an expiry of `since` itself, which the client may not have seen
    /// (reported at least once: expiry is not a write).
    async fn catch_up(
        &mut self,
        key: &str,
        since: u64,
        state: KeyState,
    ) -> std::result::Result<(), Stop> {
        if state.revision > since {
            return self.report_state(key, state, true).await;
        }
        if state.revision < since {
            // Start over from what the store holds.
            self.reported.insert(key.to_string(), 0);
            if state.revision > 0 {
                return self.report_state(key, state, true).await;
            }
            return Ok(());
        }
        if since > 0 && state.expired && state.entry.is_none() {
            return self.report_expiry(key, since).await;
        }
        Ok(())
    }

    /// After a gap: a key watch reports the key's current state (if newer
    /// than what it reported); a prefix watch tells the client to resync.
    async fn recover_from_gap(&mut self) -> std::result::Result<(), Stop> {
        let namespace = self.spec.namespace.clone();
        let head = self.log.head(&namespace).await?;
        match self.spec.target.clone() {
            Target::Key(key) => {
                let state = self.store.key_state(&namespace, &key).await?;
                self.position = head;
                if state.revision > self.reported_revision(&key) {
                    self.report_state(&key, state, true).await?;
                }
                self.track_key(&key).await?;
            }
            Target::Prefix(prefix) => {
                self.position = head;
                let resync = WatchEvent {
                    kind: EventKind::Resync,
                    key: String::new(),
                    revision: 0,
                    entry: None,
                    cursor: self.position.clone(),
                    compacted: false,
                };
                self.send(resync).await?;
                self.reported.clear();
                self.expiries = Expiries::default();
                self.track_prefix(&prefix).await?;
            }
        }
        Ok(())
    }

    fn reported_revision(&self, key: &str) -> u64 {
        self.reported.get(key).copied().unwrap_or(0)
    }

    /// Reports a logged write unless an event at or above its revision was
    /// reported already.
    async fn report_change(
        &mut self,
        key: String,
        revision: u64,
        entry: Option<Entry>,
        compacted: bool,
    ) -> std::result::Result<(), Stop> {
        if revision <= self.reported_revision(&key) {
            return Ok(());
        }
        self.reported.insert(key.clone(), revision);
        match &entry {
            Some(entry) => self.expiries.track(&key, revision, entry.expires_at_ms),
            None => self.expiries.forget(&key),
        }
        let kind = if entry.is_some() {
            EventKind::Put
        } else {
            EventKind::Delete
        };
        let event = WatchEvent {
            kind,
            key,
            revision,
            entry,
            cursor: self.position.clone(),
            compacted,
        };
        self.send(event).await.map_err(Stop::from)
    }

    /// Reports a key's current state as one event.
    async fn report_state(
        &mut self,
        key: &str,
        state: KeyState,
        compacted: bool,
    ) -> std::result::Result<(), Stop> {
        if state.expired && state.entry.is_none() {
            self.reported.insert(key.to_string(), state.revision);
            self.expiries.forget(key);
            let event = WatchEvent {
                kind: EventKind::Expire,
                key: key.to_string(),
                revision: state.revision,
                entry: None,
                cursor: self.position.clone(),
                compacted,
            };
            return self.send(event).await.map_err(Stop::from);
        }
        self.report_change(key.to_string(), state.revision, state.entry, compacted)
            .await
    }

    /// Reports each tracked entry that has reached its TTL, as the store's
    /// clock judges; one still live is checked again shortly.
    async fn report_expiries(&mut self) -> std::result::Result<(), Stop> {
        let namespace = self.spec.namespace.clone();
        for (key, revision) in self.expiries.due(now_ms()) {
            let state = self.store.key_state(&namespace, &key).await?;
            if state.revision != revision {
                // Written since: the log reports it.
                continue;
            }
            match &state.entry {
                Some(entry) => {
                    let at = entry
                        .expires_at_ms
                        .map(|at| at.max(now_ms() + EXPIRY_RECHECK.as_millis() as i64));
                    self.expiries.track(&key, revision, at);
                }
                None => self.report_expiry(&key, revision).await?,
            }
        }
        Ok(())
    }

    async fn report_expiry(&mut self, key: &str, revision: u64) -> std::result::Result<(), Stop> {
        self.expiries.forget(key);
        let event = WatchEvent {
            kind: EventKind::Expire,
            key: key.to_string(),
            revision,
            entry: None,
            cursor: self.position.clone(),
            compacted: false,
        };
        self.send(event).await.map_err(Stop::from)
    }

    /// Tracks the key's current expiry (a watch reports it when it comes).
    async fn track_key(&mut self, key: &str) -> Result<()> {
        let state = self.store.key_state(&self.spec.namespace, key).await?;
        if let Some(entry) = &state.entry {
            if state.revision >= self.reported_revision(key) {
                self.expiries
                    .track(key, state.revision, entry.expires_at_ms);
            }
        }
        Ok(())
    }

    /// Tracks the expiry of every live key under `prefix`.
    async fn track_prefix(&mut self, prefix: &str) -> Result<()> {
        let mut after: Option<ListCursor> = None;
        loop {
            let query = ListQuery {
                prefix: prefix.to_string(),
                limit: 1000,
                after: after.clone(),
            };
            let page = self.store.list(&self.spec.namespace, query).await?;
            for entry in &page.entries {
                if entry.revision >= self.reported_revision(&entry.key) {
                    self.expiries
                        .track(&entry.key, entry.revision, entry.expires_at_ms);
                }
            }
            match page.next_cursor {
                Some(cursor) => after = Some(ListCursor::decode(&cursor)?),
                None => return Ok(()),
            }
        }
    }

    /// Sends `event`, waiting for a slow client at most until the deadline
    /// (then the watch ends as if the client had gone).
    async fn send(&self, event: WatchEvent) -> std::result::Result<(), Gone> {
        match tokio::time::timeout_at(self.deadline, self.sink.send(Ok(event))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Gone),
        }
    }
}

fn progress(key: &str, revision: u64, cursor: &str) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Progress,
        key: key.to_string(),
        revision,
        entry: None,
        cursor: cursor.to_string(),
        compacted: false,
    }
}

async fn sleep_until_ms(at_ms: Option<i64>) {
    let wait = at_ms.map_or(0, |at| (at - now_ms()).max(0) as u64);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

/// The live entries a watch knows will expire, soonest first.
#[derive(Default)]
struct Expiries {
    by_key: HashMap<String, (u64, i64)>,
    queue: BTreeSet<(i64, String)>,
}

impl Expiries {
    /// `key` (revision `revision`) expires at `at`; `None` never.
    fn track(&mut self, key: &str, revision: u64, at: Option<i64>) {
        self.forget(key);
        if let Some(at) = at {
            self.by_key.insert(key.to_string(), (revision, at));
            self.queue.insert((at, key.to_string()));
        }
    }

    fn forget(&mut self, key: &str) {
        if let Some((_, at)) = self.by_key.remove(key) {
            self.queue.remove(&(at, key.to_string()));
        }
    }

    fn next_due(&self) -> Option<i64> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// The keys due by `now`, with the revision tracked, no longer tracked.
    fn due(&mut self, now: i64) -> Vec<(String, u64)> {
        let mut due = Vec::new();
        while let Some((at, key)) = self.queue.first().cloned() {
            if at > now {
                break;
            }
            self.queue.remove(&(at, key.clone()));
            if let Some((revision, _)) = self.by_key.remove(&key) {
                due.push((key, revision));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_come_due_soonest_first_and_a_retrack_replaces() {
        let mut expiries = Expiries::default();
        expiries.track("b", 2, Some(200));
        expiries.track("a", 1, Some(100));
        expiries.track("c", 3, None);
        assert_eq!(expiries.next_due(), Some(100));
        expiries.track("a", 4, Some(300));
        assert_eq!(expiries.next_due(), Some(200));
        assert_eq!(expiries.due(250), vec![("b".to_string(), 2)]);
        expiries.forget("a");
        assert_eq!(expiries.next_due(), None);
        assert!(expiries.due(i64::MAX).is_empty());
    }

    #[test]
    fn a_key_target_is_exact_and_a_prefix_target_is_a_prefix() {
        assert!(Target::Key("a/b".into()).accepts("a/b"));
        assert!(!Target::Key("a/b".into()).accepts("a/bc"));
        assert!(Target::Prefix("a/".into()).accepts("a/bc"));
        assert!(Target::Prefix(String::new()).accepts("anything"));
        assert!(!Target::Prefix("a/".into()).accepts("b/a"));
    }
}
