//! The semantics of every write, as a pure function of the stored state and
//! the clock. The embedded backend applies it inside a SQLite transaction; the
//! durable backend runs the same rules in Lua inside Redis (see
//! `durable/lua/`), and one conformance suite holds both to them.

use crate::canonical::{float_text, integral_i64};
use crate::model::{precondition_failed, Entry, TtlChange};
use tessera_error::Error;

/// An increment amount, or a numeric value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    /// Parses JSON text that must be a number, as its canonical value: a
    /// whole number within 64 bits is an integer however it is spelled
    /// (`1.0`, `1e3`, like `1` and `1000`), so adding it to an integer
    /// counter stays exact; a fraction, or a whole float beyond 64 bits, is a
    /// float. (A stored value is canonical already: it parses as it reads.)
    pub fn parse(text: &str, what: &str) -> Result<Number, Error> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| not_a_number(what))?;
        let number = value.as_number().ok_or_else(|| not_a_number(what))?;
        if let Some(i) = number.as_i64() {
            Ok(Number::Int(i))
        } else if number.is_u64() {
            Err(overflow())
        } else {
            let f = number
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| not_a_number(what))?;
            Ok(integral_i64(f).map_or(Number::Float(f), Number::Int))
        }
    }

    pub fn checked_add(self, other: Number) -> Result<String, Error> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => {
                a.checked_add(b).map(|n| n.to_string()).ok_or_else(overflow)
            }
            (a, b) => {
                let sum = a.as_f64() + b.as_f64();
                if sum.is_finite() {
                    Ok(float_text(sum))
                } else {
                    Err(overflow())
                }
            }
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    pub fn is_int(self) -> bool {
        matches!(self, Number::Int(_))
    }

    /// The JSON text of the amount.
    pub fn text(self) -> String {
        match self {
            Number::Int(i) => i.to_string(),
            Number::Float(f) => float_text(f),
        }
    }
}

pub fn not_a_number(what: &str) -> Error {
    Error::invalid("NOT_A_NUMBER", format!("{what} is not a number"))
}

pub fn overflow() -> Error {
    Error::invalid("INCR_OVERFLOW", "increment would overflow a 64-bit integer")
}

/// A key's stored state. `value: None` is a tombstone that keeps the revision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stored {
    pub value: Option<String>,
    pub revision: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

impl Stored {
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.value.is_some() && self.expires_at_ms.is_none_or(|at| at > now_ms)
    }

    pub fn live_value(&self, now_ms: i64) -> Option<&str> {
        if self.is_live(now_ms) {
            self.value.as_deref()
        } else {
            None
        }
    }

    pub fn to_entry(&self, namespace: &str, key: &str, now_ms: i64) -> Option<Entry> {
        self.live_value(now_ms).map(|value| Entry {
            namespace: namespace.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            revision: self.revision,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
            expires_at_ms: self.expires_at_ms,
        })
    }

    /// Bytes this state counts against the namespace quota.
    pub fn charged_bytes(&self, key: &str, now_ms: i64) -> u64 {
        self.live_value(now_ms)
            .map_or(0, |v| (v.len() + key.len()) as u64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Set {
        value: String,
        ttl: TtlChange,
        if_match: Option<u64>,
    },
    Delete {
        if_match: Option<u64>,
    },
    Cas {
        expected: Option<String>,
        value: Option<String>,
        ttl: TtlChange,
    },
    Incr {
        by: Number,
        ttl: TtlChange,
    },
}

/// What applying an op did: the state after it, and whether it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: Stored,
    pub changed: bool,
    /// CAS matched (and wrote or deleted); delete removed a live key.
    pub matched: bool,
}

pub fn apply(op: &Op, current: &Stored, now_ms: i64) -> Result<Transition, Error> {
    let live = current.live_value(now_ms);
    let unchanged = |matched| Transition {
        state: current.clone(),
        changed: false,
        matched,
    };
    match op {
        Op::Set {
            value,
            ttl,
            if_match,
        } => {
            check_if_match(*if_match, current, live.is_some())?;
            Ok(write(current, now_ms, Some(value.clone()), *ttl, true))
        }
        Op::Delete { if_match } => {
            check_if_match(*if_match, current, live.is_some())?;
            if live.is_none() {
                return Ok(unchanged(false));
            }
            Ok(write(current, now_ms, None, TtlChange::Clear, true))
        }
        Op::Cas {
            expected,
            value,
            ttl,
        } => {
            if live != expected.as_deref() {
                return Ok(unchanged(false));
            }
            match value {
                Some(value) => Ok(write(current, now_ms, Some(value.clone()), *ttl, true)),
                None if live.is_none() => Ok(unchanged(true)),
                None => Ok(write(current, now_ms, None, TtlChange::Clear, true)),
            }
        }
        Op::Incr { by, ttl } => {
            let base = match live {
                None => Number::Int(0),
                Some(text) => Number::parse(text, "the stored value")?,
            };
            let sum = base.checked_add(*by)?;
            Ok(write(current, now_ms, Some(sum), *ttl, true))
        }
    }
}

/// `If-Match` against an absent key never matches (RFC 9110 §13.1.1).
fn check_if_match(if_match: Option<u64>, current: &Stored, live: bool) -> Result<(), Error> {
    match if_match {
        Some(expected) if !live || expected != current.revision => {
            Err(precondition_failed(if live { current.revision } else { 0 }))
        }
        _ => Ok(()),
    }
}

fn write(
    current: &Stored,
    now_ms: i64,
    value: Option<String>,
    ttl: TtlChange,
    matched: bool,
) -> Transition {
    let was_live = current.is_live(now_ms);
    let expires_at_ms = match (ttl, &value) {
        (_, None) | (TtlChange::Clear, _) => None,
        (TtlChange::Seconds(s), _) => Some(now_ms + (s as i64) * 1000),
        (TtlChange::Keep, _) if was_live => current.expires_at_ms,
        (TtlChange::Keep, _) => None,
    };
    Transition {
        state: Stored {
            created_at_ms: if was_live && value.is_some() {
                current.created_at_ms
            } else {
                now_ms
            },
            value,
            revision: current.revision + 1,
            updated_at_ms: now_ms,
            expires_at_ms,
        },
        changed: true,
        matched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(value: &str, revision: u64) -> Stored {
        Stored {
            value: Some(value.into()),
            revision,
            created_at_ms: 1,
            updated_at_ms: 1,
            expires_at_ms: None,
        }
    }

    #[test]
    fn integer_increments_are_exact_and_overflow_is_an_error() {
        assert_eq!(
            Number::Int(i64::MAX - 1)
                .checked_add(Number::Int(1))
                .unwrap(),
            i64::MAX.to_string()
        );
        assert_eq!(
            Number::Int(i64::MAX)
                .checked_add(Number::Int(1))
                .unwrap_err()
                .reason,
            "INCR_OVERFLOW"
        );
        assert_eq!(
            Number::Int(1).checked_add(Number::Float(0.5)).unwrap(),
            "1.5"
        );
        assert_eq!(
            Number::Float(1.5).checked_add(Number::Float(1.5)).unwrap(),
            "3"
        );
        assert_eq!(
            Number::parse("18446744073709551615", "v")
                .unwrap_err()
                .reason,
            "INCR_OVERFLOW"
        );
        assert_eq!(
            Number::parse("\"5\"", "v").unwrap_err().reason,
            "NOT_A_NUMBER"
        );
    }

    #[test]
    fn a_whole_float_amount_adds_as_an_integer() {
        for (text, expected) in [
            ("1.0", 1),
            ("-2.0", -2),
            ("1e3", 1000),
            ("-0.0", 0),
            ("1E2", 100),
            ("9007199254740992.0", 9_007_199_254_740_992),
            ("1e18", 1_000_000_000_000_000_000),
        ] {
            assert_eq!(
                Number::parse(text, "by").unwrap(),
                Number::Int(expected),
                "{text}"
            );
        }
        for text in ["0.5", "-1.25", "1e19", "-1e300"] {
            assert!(!Number::parse(text, "by").unwrap().is_int(), "{text}");
        }
        // Beyond 2^53 a double cannot hold every integer, but an integer
        // amount adds with 64-bit exactness.
        let counter = Number::parse("9007199254740993", "v").unwrap();
        assert_eq!(
            counter
                .checked_add(Number::parse("1.0", "by").unwrap())
                .unwrap(),
            "9007199254740994"
        );
        assert_eq!(
            Number::Int(i64::MAX)
                .checked_add(Number::parse("1.0", "by").unwrap())
                .unwrap_err()
                .reason,
            "INCR_OVERFLOW",
            "a whole float amount overflows like an integer"
        );
        let stored = live("9007199254740993", 1);
        let t = apply(
            &Op::Incr {
                by: Number::parse("1.0", "by").unwrap(),
                ttl: TtlChange::Keep,
            },
            &stored,
            5,
        )
        .unwrap();
        assert_eq!(t.state.value.as_deref(), Some("9007199254740994"));
        // A float counter stays a float.
        assert_eq!(
            Number::parse("1.5", "v")
                .unwrap()
                .checked_add(Number::parse("1.0", "by").unwrap())
                .unwrap(),
            "2.5"
        );
    }

    #[test]
    fn cas_null_expected_matches_only_absent_or_expired() {
        let acquire = Op::Cas {
            expected: None,
            value: Some("\"a\"".into()),
            ttl: TtlChange::Seconds(30),
        };
        let t = apply(&acquire, &Stored::default(), 1000).unwrap();
        assert!(t.changed && t.matched);
        assert_eq!(t.state.revision, 1);
        assert_eq!(t.state.expires_at_ms, Some(31_000));
        let held = apply(&acquire, &t.state, 2000).unwrap();
        assert!(!held.changed && !held.matched);
        let after_expiry = apply(&acquire, &t.state, 31_000).unwrap();
        assert!(after_expiry.matched);
        assert_eq!(
            after_expiry.state.revision, 2,
            "revision grows across expiry"
        );
    }

    #[test]
    fn cas_without_value_releases_on_match() {
        let held = live("\"a\"", 4);
        let release = Op::Cas {
            expected: Some("\"a\"".into()),
            value: None,
            ttl: TtlChange::Clear,
        };
        let t = apply(&release, &held, 5).unwrap();
        assert!(t.matched && t.changed);
        assert_eq!(t.state.value, None);
        assert_eq!(t.state.revision, 5);
        let wrong = Op::Cas {
            expected: Some("\"b\"".into()),
            value: None,
            ttl: TtlChange::Clear,
        };
        assert!(!apply(&wrong, &held, 5).unwrap().changed);
    }

    #[test]
    fn if_match_guards_set_and_delete() {
        let current = live("1", 3);
        let stale = Op::Set {
            value: "2".into(),
            ttl: TtlChange::Clear,
            if_match: Some(2),
        };
        assert_eq!(
            apply(&stale, &current, 5).unwrap_err().reason,
            "ETAG_MISMATCH"
        );
        let fresh = Op::Set {
            value: "2".into(),
            ttl: TtlChange::Clear,
            if_match: Some(3),
        };
        assert_eq!(apply(&fresh, &current, 5).unwrap().state.revision, 4);
        let on_absent = Op::Delete { if_match: Some(3) };
        assert!(apply(&on_absent, &Stored::default(), 5).is_err());
    }

    #[test]
    fn incr_keeps_ttl_unless_given_and_rejects_non_numbers() {
        let mut current = live("5", 1);
        current.expires_at_ms = Some(10_000);
        let keep = Op::Incr {
            by: Number::Int(2),
            ttl: TtlChange::Keep,
        };
        let t = apply(&keep, &current, 5).unwrap();
        assert_eq!(t.state.value.as_deref(), Some("7"));
        assert_eq!(t.state.expires_at_ms, Some(10_000));
        assert_eq!(t.state.created_at_ms, 1);
        let text = live("\"123\"", 1);
        assert_eq!(apply(&keep, &text, 5).unwrap_err().reason, "NOT_A_NUMBER");
    }
}
