//! The durable store's change log: a Redis stream per namespace
//! (`tm:{ns}:w`), appended by the write script itself, so the log's order is
//! the order writes took effect, and announced on the channel `tm:w`.
//!
//! A change is shown to a watch only once PostgreSQL holds it (or a newer
//! state of its key from the same history): a state the generation guard
//! fences off never happened, and its entry in the stream is skipped. A
//! cursor is a stream id; it is honoured only while its entry is in the
//! stream and was written by the Redis process serving now (a restarted or
//! restored Redis may have lost what followed it): otherwise a gap.

use super::keys::{namespace_of_changes, Slot};
use super::link::RedisLink;
use super::persist::Persister;
use super::pg::Verdict;
use super::scripts::Scripts;
use crate::model::Entry;
use crate::ops::Stored;
use crate::watch::{invalid_cursor, Change, ChangeLog, Cursor, Read, Target, Wakeups};
use futures::StreamExt;
use std::sync::{Arc, Once};
use std::time::Duration;
use tessera_error::Result;

/// The channel every write announces its namespace's stream on.
const CHANNEL: &str = "tm:w";
/// Fields per stream entry in `watch_read.lua`'s reply.
const STRIDE: usize = 10;
/// How often a watch reads the stream without being woken.
const POLL_EVERY: Duration = Duration::from_secs(2);

pub struct DurableChanges {
    redis: Arc<RedisLink>,
    scripts: Arc<Scripts>,
    persister: Persister,
    wakeups: Arc<Wakeups>,
    listening: Once,
}

impl DurableChanges {
    pub fn new(redis: Arc<RedisLink>, scripts: Arc<Scripts>, persister: Persister) -> Self {
        DurableChanges {
            redis,
            scripts,
            persister,
            wakeups: Arc::default(),
            listening: Once::new(),
        }
    }

    fn slot(namespace: &str) -> Slot {
        Slot::new(namespace, "")
    }

    /// Whether the logged state (`gen`, `stored`) of `key` happened: made
    /// durable as a read would, a state fenced off was never acknowledged.
    async fn happened(
        &self,
        namespace: &str,
        key: &str,
        stored: &Stored,
        gen: i64,
    ) -> Result<Verdict> {
        self.persister.persist(namespace, key, stored, gen).await
    }
}

/// Listens on [`CHANNEL`] for as long as the process runs, waking the
/// watches of each namespace announced; after any break it wakes them all
/// (announcements may have been missed) and listens again.
async fn listen(redis: Arc<RedisLink>, wakeups: Arc<Wakeups>) {
    loop {
        match redis.pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(CHANNEL).await {
                Ok(()) => {
                    wakeups.wake_all();
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if let Ok(stream) = message.get_payload::<String>() {
                            if let Some(namespace) = namespace_of_changes(&stream) {
                                wakeups.wake(namespace);
                            }
                        }
                    }
                    tracing::warn!("the memory change channel closed; subscribing again");
                }
                Err(error) => tracing::warn!(%error, "could not subscribe to memory changes"),
            },
            Err(error) => tracing::warn!(%error, "could not connect to listen for memory changes"),
        }
        wakeups.wake_all();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A stream id, `<ms>-<seq>`.
fn is_stream_id(cursor: &str) -> bool {
    cursor
        .split_once('-')
        .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok())
}

/// One logged write of `watch_read.lua`'s reply: id t k r g v c u x d.
struct Logged<'a> {
    id: &'a str,
    kind: &'a str,
    key: &'a str,
    stored: Stored,
    gen: i64,
    /// Redis already records it durable: PostgreSQL need not be asked.
    marked_durable: bool,
}

impl<'a> Logged<'a> {
    fn parse(fields: &'a [String]) -> Option<Self> {
        let int = |i: usize| fields[i].parse::<i64>().ok();
        let expires = int(8)?;
        Some(Logged {
            id: &fields[0],
            kind: &fields[1],
            key: &fields[2],
            stored: Stored {
                value: (fields[1] == "p").then(|| fields[5].clone()),
                revision: int(3)? as u64,
                created_at_ms: int(6)?,
                updated_at_ms: int(7)?,
                expires_at_ms: (expires != 0).then_some(expires),
            },
            gen: int(4)?,
            marked_durable: fields[9] == "1",
        })
    }
}

#[async_trait::async_trait]
impl ChangeLog for DurableChanges {
    fn check_cursor(&self, cursor: &str) -> Result<()> {
        if is_stream_id(cursor) {
            Ok(())
        } else {
            Err(invalid_cursor(cursor))
        }
    }

    fn poll_every(&self) -> Option<Duration> {
        // Announcements reach this process over pub/sub, which may drop
        // some while it reconnects (then it wakes every watch anyway).
        Some(POLL_EVERY)
    }

    async fn head(&self, namespace: &str) -> Result<Cursor> {
        let reply = self
            .redis
            .run(&self.scripts.watch_head, &Self::slot(namespace), &[])
            .await?;
        reply
            .into_iter()
            .next()
            .ok_or_else(|| tessera_error::Error::internal("the change stream named no head"))
    }

    async fn after(
        &self,
        namespace: &str,
        cursor: &str,
        limit: usize,
        wanted: &Target,
    ) -> Result<Read> {
        if !is_stream_id(cursor) {
            return Err(invalid_cursor(cursor));
        }
        let args = [cursor.to_string(), limit.to_string()];
        let reply = self
            .redis
            .run(&self.scripts.watch_read, &Self::slot(namespace), &args)
            .await?;
        let mut read = Read {
            changes: Vec::new(),
            cursor: cursor.to_string(),
            gap: reply.first().map(String::as_str) != Some("OK"),
            more: false,
        };
        if read.gap {
            return Ok(read);
        }
        let logged: Vec<Logged> = reply[1..]
            .chunks_exact(STRIDE)
            .filter_map(Logged::parse)
            .collect();
        read.more = logged.len() >= limit;
        let checks = logged.iter().map(|write| async move {
            if write.kind == "b" || !wanted.accepts(write.key) {
                return Ok(None);
            }
            if write.marked_durable {
                return Ok(Some(Verdict::Durable));
            }
            self.happened(namespace, write.key, &write.stored, write.gen)
                .await
                .map(Some)
        });
        let verdicts = futures::future::join_all(checks).await;
        for (write, verdict) in logged.iter().zip(verdicts) {
            match verdict? {
                None => {}
                Some(Verdict::Durable) => read.changes.push(Change {
                    cursor: write.id.to_string(),
                    key: write.key.to_string(),
                    revision: write.stored.revision,
                    entry: write.stored.value.clone().map(|value| Entry {
                        namespace: namespace.to_string(),
                        key: write.key.to_string(),
                        value,
                        revision: write.stored.revision,
                        created_at_ms: write.stored.created_at_ms,
                        updated_at_ms: write.stored.updated_at_ms,
                        expires_at_ms: write.stored.expires_at_ms,
                    }),
                }),
                // Fenced off: it never happened.
                Some(Verdict::Lost) => {}
                // The key's history was lost twice over: whether this
                // happened is unknown, so the log cannot be trusted past it.
                Some(Verdict::Unknown) => {
                    read.gap = true;
                    return Ok(read);
                }
            }
            read.cursor = write.id.to_string();
        }
        Ok(read)
    }

    async fn find(&self, namespace: &str, key: &str, revision: u64) -> Result<Option<Cursor>> {
        let args = [key.to_string(), revision.to_string()];
        let reply = self
            .redis
            .run(&self.scripts.watch_find, &Self::slot(namespace), &args)
            .await?;
        Ok(reply.into_iter().next())
    }

    fn wakeups(&self, namespace: &str) -> tokio::sync::watch::Receiver<u64> {
        self.listening.call_once(|| {
            tokio::spawn(listen(self.redis.clone(), self.wakeups.clone()));
        });
        self.wakeups.subscribe(namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_stream_ids() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(!is_stream_id("12"));
        assert!(!is_stream_id("a-b"));
        assert!(!is_stream_id("-1-0"));
    }

    #[test]
    fn a_logged_write_parses_from_the_reply() {
        let fields: Vec<String> = ["5-0", "p", "k", "3", "2", "\"v\"", "10", "20", "0", "1"]
            .map(String::from)
            .to_vec();
        let logged = Logged::parse(&fields).unwrap();
        assert_eq!(
            (logged.id, logged.kind, logged.key, logged.gen),
            ("5-0", "p", "k", 2)
        );
        assert_eq!(logged.stored.value.as_deref(), Some("\"v\""));
        assert_eq!(logged.stored.expires_at_ms, None);
        assert!(logged.marked_durable);
        let deleted: Vec<String> = ["6-0", "d", "k", "4", "2", "", "10", "30", "0", "0"]
            .map(String::from)
            .to_vec();
        assert_eq!(Logged::parse(&deleted).unwrap().stored.value, None);
    }
}
