//! The memory API's values as Rust types: JSON values as
//! `serde_json::Value`, times as `SystemTime`, TTLs as `Duration`.

use crate::error::Error;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_proto::memory::v1 as pb;

/// A live key.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub namespace: String,
    pub key: String,
    pub value: Value,
    /// For [`SetOptions::if_match`] and [`Client::delete_if_match`](crate::Client::delete_if_match).
    pub etag: String,
    /// Grows on every write of the key, across delete and expiry.
    pub revision: u64,
    pub size_bytes: u64,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    /// `None` when the entry never expires.
    pub expires_at: Option<SystemTime>,
}

/// One page of [`Client::list`](crate::Client::list).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Newest first.
    pub entries: Vec<Entry>,
    /// Pass to [`ListOptions::cursor`] for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// The outcome of [`Client::compare_and_swap`](crate::Client::compare_and_swap).
#[derive(Debug, Clone, PartialEq)]
pub struct Swap {
    pub swapped: bool,
    /// The entry after the call; `None` when the key is absent.
    pub current: Option<Entry>,
    /// The key's revision after the call: a lock holder's fencing token.
    pub revision: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Get and List.
    Read,
    /// Every data call.
    ReadWrite,
}

/// Another namespace's access to one's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub namespace: String,
    pub grantee: String,
    pub access: Access,
    pub created_at: SystemTime,
    /// `None` until revoked.
    pub expires_at: Option<SystemTime>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Whole seconds (rounded up), 1 s to 365 days; `None` = no expiry.
    pub ttl: Option<Duration>,
    /// Write only if the current etag is this one.
    pub if_match: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub prefix: String,
    /// 1..=1000; `None` = the server's default (100).
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A TTL as the API counts it: whole seconds, a fraction rounding up.
pub(crate) fn ttl_seconds(ttl: Duration) -> u64 {
    ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)
}

pub(crate) fn json_text(value: &Value) -> String {
    value.to_string()
}

fn time(unix_ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(unix_ms.unsigned_abs());
    if unix_ms >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

fn json_value(text: &str, what: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::MalformedReply(format!("{what} is not JSON: {e}")))
}

impl TryFrom<pb::Entry> for Entry {
    type Error = Error;

    fn try_from(entry: pb::Entry) -> Result<Self, Error> {
        Ok(Entry {
            value: json_value(&entry.value_json, "value_json")?,
            namespace: entry.namespace,
            key: entry.key,
            etag: entry.etag,
            revision: entry.revision,
            size_bytes: entry.size_bytes,
            created_at: time(entry.created_at_ms),
            updated_at: time(entry.updated_at_ms),
            expires_at: entry.expires_at_ms.map(time),
        })
    }
}

impl TryFrom<pb::ListResponse> for Page {
    type Error = Error;

    fn try_from(page: pb::ListResponse) -> Result<Self, Error> {
        Ok(Page {
            entries: page
                .entries
                .into_iter()
                .map(Entry::try_from)
                .collect::<Result<_, _>>()?,
            next_cursor: Some(page.next_cursor).filter(|cursor| !cursor.is_empty()),
        })
    }
}

impl TryFrom<pb::CompareAndSwapResponse> for Swap {
    type Error = Error;

    fn try_from(swap: pb::CompareAndSwapResponse) -> Result<Self, Error> {
        Ok(Swap {
            swapped: swap.swapped,
            current: swap.current.map(Entry::try_from).transpose()?,
            revision: swap.revision,
        })
    }
}

impl From<Access> for pb::AccessMode {
    fn from(access: Access) -> Self {
        match access {
            Access::Read => pb::AccessMode::Read,
            Access::ReadWrite => pb::AccessMode::Readwrite,
        }
    }
}

impl TryFrom<pb::GrantEntry> for Grant {
    type Error = Error;

    fn try_from(grant: pb::GrantEntry) -> Result<Self, Error> {
        let access = match pb::AccessMode::try_from(grant.mode) {
            Ok(pb::AccessMode::Read) => Access::Read,
            Ok(pb::AccessMode::Readwrite) => Access::ReadWrite,
            _ => {
                return Err(Error::MalformedReply(format!(
                    "grant mode {} is not READ or READWRITE",
                    grant.mode
                )))
            }
        };
        Ok(Grant {
            namespace: grant.namespace,
            grantee: grant.grantee,
            access,
            created_at: time(grant.created_at_ms),
            expires_at: grant.expires_at_ms.map(time),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(Duration::from_secs(30)), 30);
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1500)), 2);
    }

    #[test]
    fn entries_read_their_json_and_times() {
        let entry = Entry::try_from(pb::Entry {
            namespace: "a".into(),
            key: "k".into(),
            value_json: r#"{"n":1}"#.into(),
            revision: 3,
            created_at_ms: 1_000,
            updated_at_ms: 2_500,
            expires_at_ms: None,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(entry.value, serde_json::json!({"n": 1}));
        assert_eq!(entry.updated_at, UNIX_EPOCH + Duration::from_millis(2_500));
        assert_eq!(entry.expires_at, None);
        let broken = Entry::try_from(pb::Entry {
            value_json: "{".into(),
            ..Default::default()
        });
        assert!(matches!(broken, Err(Error::MalformedReply(_))));
    }
}
