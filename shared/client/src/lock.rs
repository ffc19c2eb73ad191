//! A lease lock on one key, built from compare-and-swap.
//!
//! Acquiring writes a value naming this holder where there is none; renewing
//! and releasing swap only while that value is still there. The key's
//! revision at acquisition is the holder's fencing token: it grows with
//! every holder, so a resource that remembers the highest token it has seen
//! can turn away a holder whose lease ended while it was paused.
//!
//! Every try is a call (and, when paid, a payment), including one that finds
//! the lock taken; between tries a waiter watches the key (one call however
//! long it waits, up to a minute) rather than polling it.

use crate::client::Client;
use crate::error::Error;
use crate::reply::Reply;
use crate::wait::Waits;
use crate::watch::{WatchKind, WatchOptions};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime};

/// A held lease on `key`. Dropping it does not release it: it expires after
/// its TTL.
#[derive(Debug)]
pub struct Lock {
    client: Client,
    key: String,
    /// What the key holds while this holder has it.
    holder: Value,
    ttl: Duration,
    fencing_token: u64,
    expires_at: Option<SystemTime>,
}

impl Lock {
    /// One try: the lock if `key` was free, else `None`.
    pub async fn try_acquire(
        client: &Client,
        key: &str,
        ttl: Duration,
    ) -> Result<Reply<Option<Lock>>, Error> {
        Ok(Self::attempt(client, key, ttl)
            .await?
            .map(|attempt| attempt.ok()))
    }

    /// Tries until the lock is had or `wait` has passed
    /// ([`Error::LockTimeout`]). Between tries it watches the key until the
    /// holder releases it or its lease runs out (a server without Watch:
    /// backs off and tries as the lease runs out). The reply's settlements
    /// are those of every call.
    pub async fn acquire(
        client: &Client,
        key: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Reply<Lock>, Error> {
        let started = Instant::now();
        let deadline = started + wait;
        let mut settlements = Vec::new();
        let mut waits = Waits::default();
        loop {
            let reply = Self::attempt(client, key, ttl).await?;
            settlements.extend(reply.settlements);
            let held = match reply.inner {
                Ok(lock) => return Ok(Reply::new(lock, settlements)),
                Err(held) => held,
            };
            if Instant::now() >= deadline {
                return Err(Error::LockTimeout {
                    key: key.to_string(),
                    waited: started.elapsed(),
                });
            }
            match wait_for_release(client, key, &held, deadline).await {
                Ok(paid) => settlements.extend(paid),
                Err(error) if error.code() == Some(tonic::Code::Unimplemented) => {
                    if !waits.next_try(held.expires_at, deadline).await {
                        return Err(Error::LockTimeout {
                            key: key.to_string(),
                            waited: started.elapsed(),
                        });
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The lock, or who holds it.
    async fn attempt(
        client: &Client,
        key: &str,
        ttl: Duration,
    ) -> Result<Reply<Result<Lock, Held>>, Error> {
        let holder =
            json!({ "holder": format!("{}/{:032x}", client.namespace(), rand::random::<u128>()) });
        let reply = client
            .compare_and_swap(key, None, Some(&holder), Some(ttl))
            .await?;
        Ok(reply.map(|swap| {
            if swap.swapped {
                Ok(Lock {
                    client: client.clone(),
                    key: key.to_string(),
                    holder,
                    ttl,
                    fencing_token: swap.revision,
                    expires_at: swap.current.and_then(|entry| entry.expires_at),
                })
            } else {
                Err(Held {
                    revision: swap.revision,
                    value: swap.current.as_ref().map(|entry| entry.value.clone()),
                    expires_at: swap.current.and_then(|entry| entry.expires_at),
                })
            }
        }))
    }

    /// The key's revision when this holder took it: larger than every
    /// earlier holder's, smaller than every later one's.
    pub fn fencing_token(&self) -> u64 {
        self.fencing_token
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value the key holds while this holder has it.
    pub fn holder(&self) -> &Value {
        &self.holder
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// When the lease ends unless renewed (the server's clock).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Extends the lease to its TTL from now, if it is still this holder's;
    /// [`Error::LeaseLost`] if it is not (it expired, and another holder may
    /// have it). The fencing token stays the same.
    pub async fn renew(&mut self) -> Result<Reply<()>, Error> {
        let reply = self
            .client
            .compare_and_swap(
                &self.key,
                Some(&self.holder),
                Some(&self.holder),
                Some(self.ttl),
            )
            .await?;
        let swap = reply.inner;
        if !swap.swapped {
            return Err(self.lost());
        }
        self.expires_at = swap.current.and_then(|entry| entry.expires_at);
        Ok(Reply::new((), reply.settlements))
    }

    /// Deletes the key if this holder still has it; [`Error::LeaseLost`] if
    /// not (nothing is deleted then).
    pub async fn release(self) -> Result<Reply<()>, Error> {
        let reply = self
            .client
            .compare_and_swap(&self.key, Some(&self.holder), None, None)
            .await?;
        if !reply.inner.swapped {
            return Err(self.lost());
        }
        Ok(Reply::new((), reply.settlements))
    }

    fn lost(&self) -> Error {
        Error::LeaseLost {
            key: self.key.clone(),
        }
    }
}

/// The longest one watch between tries lasts (the server's default limit).
const WATCH_AT_MOST: Duration = Duration::from_secs(60);

/// The lock as another holder has it.
struct Held {
    /// The key's revision when the try found it taken.
    revision: u64,
    /// What the key held then: the holder (a renewal writes it again).
    value: Option<Value>,
    /// When that holder's lease ends unless renewed.
    expires_at: Option<SystemTime>,
}

/// Watches `key` from the revision `held` was seen at until the holder lets
/// go (a delete, an expiry, another value; not the holder renewing) or
/// `deadline` passes; the settlement of the watch, if it was paid.
async fn wait_for_release(
    client: &Client,
    key: &str,
    held: &Held,
    deadline: Instant,
) -> Result<Vec<crate::x402::Settlement>, Error> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let options = WatchOptions {
        // Within the server's limit (a minute by default); past it, the
        // next try watches again.
        timeout: Some(remaining.clamp(Duration::from_secs(1), WATCH_AT_MOST)),
        ..WatchOptions::key(key, held.revision)
    };
    let mut watch = client.watch(&options).await?;
    let changed = tokio::time::timeout_at(deadline.into(), async {
        while let Some(event) = watch.next().await? {
            let renewed = event.kind == WatchKind::Put
                && event.entry.as_ref().map(|entry| &entry.value) == held.value.as_ref();
            if event.kind != WatchKind::Progress && !renewed {
                return Ok::<_, Error>(());
            }
        }
        Ok(())
    })
    .await;
    if let Ok(result) = changed {
        result?;
    }
    Ok(watch.settlement().cloned().into_iter().collect())
}
