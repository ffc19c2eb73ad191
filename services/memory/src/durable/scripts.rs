//! The Lua scripts, each prefixed with the shared prelude, and their replies.

use crate::ops::Stored;
use redis::Script;
use tessera_error::Error;

const PRELUDE: &str = include_str!("lua/prelude.lua");

/// A script and its name, the `operation` it is timed as
/// (`tessera_dependency_call_duration_seconds{dependency="redis"}`).
pub struct Lua {
    pub name: &'static str,
    pub script: Script,
}

impl std::ops::Deref for Lua {
    type Target = Script;

    fn deref(&self) -> &Script {
        &self.script
    }
}

pub struct Scripts {
    pub set: Lua,
    pub delete: Lua,
    pub cas: Lua,
    pub incr: Lua,
    pub ensure: Lua,
    pub activate: Lua,
    pub install_usage: Lua,
    pub forget: Lua,
    pub mark_durable: Lua,
    pub invalidate: Lua,
    pub watch_head: Lua,
    pub watch_read: Lua,
    pub watch_find: Lua,
}

/// `lua/<name>.lua` after the prelude, named `<name>`.
macro_rules! with_prelude {
    ($name:literal) => {
        Lua {
            name: $name,
            script: Script::new(&format!(
                "{PRELUDE}\n{}",
                include_str!(concat!("lua/", $name, ".lua"))
            )),
        }
    };
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            set: with_prelude!("set"),
            delete: with_prelude!("delete"),
            cas: with_prelude!("cas"),
            incr: with_prelude!("incr"),
            ensure: with_prelude!("ensure"),
            activate: with_prelude!("activate"),
            install_usage: with_prelude!("install_usage"),
            forget: with_prelude!("forget"),
            mark_durable: Lua {
                name: "mark_durable",
                script: Script::new(include_str!("lua/mark_durable.lua")),
            },
            invalidate: with_prelude!("invalidate"),
            watch_head: with_prelude!("watch_head"),
            watch_read: with_prelude!("watch_read"),
            watch_find: with_prelude!("watch_find"),
        }
    }

    /// The CAS script's source, for the bench's raw EVALSHA baseline.
    pub fn cas_source(&self) -> String {
        format!("{PRELUDE}\n{}", include_str!("lua/cas.lua"))
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

/// A key's state in Redis: the stored state plus its load generation and the
/// highest revision known durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisState {
    pub stored: Stored,
    pub gen: i64,
    pub durable_rev: u64,
    /// Redis's clock when the script ran.
    pub now_ms: i64,
}

impl RedisState {
    pub fn is_durable(&self) -> bool {
        self.stored.revision <= self.durable_rev
    }
}

/// The stored state, generation and durable revision from an entry's fields
/// (`link::ENTRY_FIELDS`), if the state may be used: installed by
/// `incarnation` and not pending (as `usable_state` in the prelude).
pub fn usable_state(fields: &[Option<String>], incarnation: &str) -> Option<(Stored, i64, u64)> {
    let int = |i: usize| fields.get(i)?.as_deref()?.parse::<i64>().ok();
    let text = |i: usize| fields.get(i).cloned().flatten();
    if text(7).as_deref() != Some(incarnation) || text(8).as_deref() == Some("1") {
        return None;
    }
    let expires = int(6).unwrap_or(0);
    let stored = Stored {
        value: text(0),
        revision: int(1)? as u64,
        created_at_ms: int(4)?,
        updated_at_ms: int(5)?,
        expires_at_ms: (expires != 0).then_some(expires),
    };
    Some((stored, int(2)?, int(3)? as u64))
}

/// A script's verdict.
#[derive(Debug)]
pub enum Reply {
    /// OK (wrote), NOOP (nothing to do), MATCH (CAS matched, nothing to delete).
    State {
        status: String,
        state: RedisState,
    },
    /// The entry is not in Redis: load it from PostgreSQL and retry.
    Load,
    /// The namespace's usage totals are not in Redis: count and retry.
    Usage,
    /// If-Match failed; the current revision (0 when absent).
    Etag(u64),
    Quota {
        what: String,
        limit: u64,
    },
    /// Increment of a stored float: done by compare-and-swap instead.
    Float,
    NotANumber,
    Overflow,
    Done,
    /// What a loader's `ensure` found or did.
    Ensured(Ensured),
    /// Whether Redis let go of a dead key (`forget`).
    Forgotten(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Active,
    Activated,
    Installed,
}

impl Reply {
    pub fn parse(fields: Vec<String>) -> Result<Reply, Error> {
        let bad = || Error::internal(format!("unexpected script reply {fields:?}"));
        let status = fields.first().ok_or_else(bad)?.as_str();
        let int = |i: usize| -> Result<i64, Error> {
            fields
                .get(i)
                .and_then(|f| f.parse::<i64>().ok())
                .ok_or_else(bad)
        };
        Ok(match status {
            "OK" | "NOOP" | "MATCH" => {
                let value = fields.get(1).ok_or_else(bad)?;
                let expires = int(7)?;
                Reply::State {
                    status: status.to_string(),
                    state: RedisState {
                        stored: Stored {
                            value: (!value.is_empty()).then(|| value.clone()),
                            revision: int(2)? as u64,
                            created_at_ms: int(5)?,
                            updated_at_ms: int(6)?,
                            expires_at_ms: (expires != 0).then_some(expires),
                        },
                        gen: int(3)?,
                        durable_rev: int(4)? as u64,
                        now_ms: int(8)?,
                    },
                }
            }
            "LOAD" => Reply::Load,
            "USAGE" => Reply::Usage,
            "ETAG" => Reply::Etag(int(1)? as u64),
            "QUOTA" => Reply::Quota {
                what: fields.get(1).cloned().unwrap_or_default(),
                limit: int(2)? as u64,
            },
            "FLOAT" => Reply::Float,
            "NAN" => Reply::NotANumber,
            "OVERFLOW" => Reply::Overflow,
            "DONE" => Reply::Done,
            "ACTIVE" => Reply::Ensured(Ensured::Active),
            "ACTIVATED" => Reply::Ensured(Ensured::Activated),
            "INSTALLED" => Reply::Ensured(Ensured::Installed),
            "FORGOTTEN" => Reply::Forgotten(true),
            "KEEP" => Reply::Forgotten(false),
            _ => return Err(bad()),
        })
    }
}
