//! A call event checked: what `RecordCalls` accepts.
//!
//! A batch is all or nothing: one malformed event refuses the whole batch
//! with `INVALID_ARGUMENT` (reason `INVALID_CALL_EVENT`) naming the field,
//! e.g. `events[3].amount`, in the message and the `field` detail. Events
//! come from the gateway, which builds them from typed values: a malformed
//! one is a bug to surface, not traffic to count around, and the gateway
//! counts a refused batch as dropped.
//!
//! - `route`: 1 to [`MAX_TEXT`] bytes.
//! - `rail`: `usdc`, `pow`, `free` or `replay`.
//! - `network`: for `usdc`, a CAIP-2 id of 1 to [`MAX_TEXT`] bytes; for the
//!   other rails it is ignored (kept empty).
//! - `http_status`: 100 to 599.
//! - `amount`: empty, or decimal digits worth at most [`MAX_AMOUNT`].
//! - `at_ms`: after 1970 and before 10000.

use chrono::DateTime;
use tessera_error::Error;
use tessera_proto::stats::v1 as pb;

/// The most events one `RecordCalls` may carry.
pub const MAX_BATCH: usize = 1000;

/// The longest route or network, in bytes.
pub const MAX_TEXT: usize = 200;

/// The largest amount one call may carry: 10^15 atomic units (a billion
/// USDC), so a batch's sum stays far inside the store's i64 revenue
/// (9.2 × 10^18 atomic units, 9.2 trillion USDC, in all).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

/// The error reason of every refused batch.
pub const INVALID_CALL_EVENT: &str = "INVALID_CALL_EVENT";

/// How a call was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rail {
    Usdc,
    Pow,
    Free,
    /// An Idempotency-Key replay, served from the store.
    Replay,
}

impl Rail {
    pub fn parse(text: &str) -> Option<Rail> {
        match text {
            "usdc" => Some(Rail::Usdc),
            "pow" => Some(Rail::Pow),
            "free" => Some(Rail::Free),
            "replay" => Some(Rail::Replay),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rail::Usdc => "usdc",
            Rail::Pow => "pow",
            Rail::Free => "free",
            Rail::Replay => "replay",
        }
    }
}

/// A valid call event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub route: String,
    pub rail: Rail,
    /// CAIP-2 for `usdc`; empty otherwise.
    pub network: String,
    pub http_status: u16,
    /// Atomic units charged, 0 to [`MAX_AMOUNT`].
    pub amount: i64,
    pub at_ms: i64,
    /// Saturated at `i64::MAX`.
    pub duration_us: i64,
    /// UTC day of `at_ms`, `YYYY-MM-DD`.
    pub day: String,
}

impl Call {
    /// Answered with a status of 400 or above.
    pub fn failed(&self) -> bool {
        self.http_status >= 400
    }

    /// Charged (amount > 0) and failed.
    pub fn charged_but_failed(&self) -> bool {
        self.amount > 0 && self.failed()
    }

    /// Checks `event`, the `index`th of its batch.
    pub fn check(index: usize, event: pb::CallEvent) -> Result<Call, Error> {
        let field = |name: &str| format!("events[{index}].{name}");
        let refuse = |name: &str, why: String| {
            let field = field(name);
            Error::invalid(INVALID_CALL_EVENT, format!("{field} {why}")).with_detail("field", field)
        };
        if event.route.is_empty() || event.route.len() > MAX_TEXT {
            return Err(refuse(
                "route",
                format!("must be 1 to {MAX_TEXT} bytes long"),
            ));
        }
        let rail = Rail::parse(&event.rail).ok_or_else(|| {
            refuse(
                "rail",
                format!(
                    "is {:?}; expected \"usdc\", \"pow\", \"free\" or \"replay\"",
                    event.rail
                ),
            )
        })?;
        let network = match rail {
            Rail::Usdc if event.network.is_empty() || event.network.len() > MAX_TEXT => {
                return Err(refuse(
                    "network",
                    format!("must name the CAIP-2 network of a usdc call (1 to {MAX_TEXT} bytes)"),
                ))
            }
            Rail::Usdc => event.network,
            _ => String::new(),
        };
        if !(100..=599).contains(&event.http_status) {
            return Err(refuse(
                "http_status",
                format!("is {}; expected 100 to 599", event.http_status),
            ));
        }
        let amount = parse_amount(&event.amount).ok_or_else(|| {
            refuse(
                "amount",
                format!(
                    "is {:?}; expected empty or a decimal number of atomic units up to {MAX_AMOUNT}",
                    event.amount
                ),
            )
        })?;
        let day = DateTime::from_timestamp_millis(event.at_ms)
            .filter(|_| event.at_ms > 0)
            .map(|at| at.format("%Y-%m-%d").to_string())
            .filter(|day| day.len() == 10)
            .ok_or_else(|| {
                refuse(
                    "at_ms",
                    format!("is {}; expected unix milliseconds", event.at_ms),
                )
            })?;
        Ok(Call {
            route: event.route,
            rail,
            network,
            http_status: event.http_status as u16,
            amount,
            at_ms: event.at_ms,
            duration_us: i64::try_from(event.duration_us).unwrap_or(i64::MAX),
            day,
        })
    }
}

/// Checks a batch: at most [`MAX_BATCH`] events, each valid.
pub fn check_batch(events: Vec<pb::CallEvent>) -> Result<Vec<Call>, Error> {
    if events.len() > MAX_BATCH {
        return Err(Error::invalid(
            INVALID_CALL_EVENT,
            format!(
                "events has {} calls; at most {MAX_BATCH} are accepted at once",
                events.len()
            ),
        )
        .with_detail("field", "events"));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| Call::check(index, event))
        .collect()
}

/// "" → 0; decimal digits up to [`MAX_AMOUNT`]; anything else → None.
fn parse_amount(text: &str) -> Option<i64> {
    if text.is_empty() {
        return Some(0);
    }
    if text.len() > 19 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>()
        .ok()
        .filter(|amount| *amount <= MAX_AMOUNT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_error::ErrorKind;

    fn event() -> pb::CallEvent {
        pb::CallEvent {
            route: "tools.sha256".into(),
            rail: "usdc".into(),
            network: "eip155:8453".into(),
            http_status: 200,
            amount: "1000".into(),
            at_ms: 1_760_086_430_123,
            duration_us: 1500,
        }
    }

    fn refused_field(event: pb::CallEvent) -> String {
        let error = check_batch(vec![self::event(), event]).expect_err("refused");
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
        assert_eq!(error.reason, INVALID_CALL_EVENT);
        let field = error.details.get("field").cloned().expect("a field detail");
        assert!(error.message.starts_with(&field), "{}", error.message);
        field
    }

    #[test]
    fn a_valid_event_gets_its_day_and_amount() {
        let call = Call::check(0, event()).unwrap();
        assert_eq!(call.day, "2025-10-10");
        assert_eq!(call.amount, 1000);
        assert_eq!(call.rail, Rail::Usdc);
        assert!(!call.charged_but_failed());
        let free = Call::check(
            0,
            pb::CallEvent {
                rail: "free".into(),
                amount: String::new(),
                http_status: 500,
                ..event()
            },
        )
        .unwrap();
        assert_eq!(free.network, "", "only usdc calls keep a network");
        assert_eq!(free.amount, 0);
        assert!(free.failed() && !free.charged_but_failed());
    }

    #[test]
    fn garbage_is_refused_naming_its_field() {
        let cases = [
            (
                pb::CallEvent {
                    amount: "1.5".into(),
                    ..event()
                },
                "events[1].amount",
            ),
            (
                pb::CallEvent {
                    amount: "-3".into(),
                    ..event()
                },
                "events[1].amount",
            ),
            (
                pb::CallEvent {
                    amount: "99999999999999999999".into(),
                    ..event()
                },
                "events[1].amount",
            ),
            (
                pb::CallEvent {
                    rail: "card".into(),
                    ..event()
                },
                "events[1].rail",
            ),
            (
                pb::CallEvent {
                    network: String::new(),
                    ..event()
                },
                "events[1].network",
            ),
            (
                pb::CallEvent {
                    route: String::new(),
                    ..event()
                },
                "events[1].route",
            ),
            (
                pb::CallEvent {
                    http_status: 42,
                    ..event()
                },
                "events[1].http_status",
            ),
            (
                pb::CallEvent {
                    at_ms: 0,
                    ..event()
                },
                "events[1].at_ms",
            ),
            (
                pb::CallEvent {
                    at_ms: i64::MAX,
                    ..event()
                },
                "events[1].at_ms",
            ),
        ];
        for (event, field) in cases {
            assert_eq!(refused_field(event), field);
        }
    }

    #[test]
    fn batches_are_bounded() {
        assert!(check_batch(vec![event(); MAX_BATCH]).is_ok());
        let error = check_batch(vec![event(); MAX_BATCH + 1]).unwrap_err();
        assert_eq!(
            error.details.get("field").map(String::as_str),
            Some("events")
        );
    }
}
