//! What the probes of one dependency have seen.

use crate::check::Outcome;
use std::collections::VecDeque;

/// How many recent probes availability is counted over.
pub const WINDOW: usize = 100;

/// The longest error a [`Snapshot`] reports, in characters.
pub const MAX_ERROR_CHARS: usize = 200;

/// `error` fit to publish: every URL in it replaced by `<url>` (a URL may
/// carry a provider key, in its path or query, or a password), cut at
/// [`MAX_ERROR_CHARS`].
pub fn public_error(error: &str) -> String {
    let mut out = String::with_capacity(error.len().min(MAX_ERROR_CHARS));
    let mut rest = error;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
            .map_or(0, |i| i + 1);
        let end = rest[at + 3..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, ')' | '(' | '"' | '\'' | '<' | '>' | ',')
            })
            .map_or(rest.len(), |i| at + 3 + i);
        out.push_str(&rest[..scheme_start]);
        out.push_str("<url>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    if out.chars().count() > MAX_ERROR_CHARS {
        out = out.chars().take(MAX_ERROR_CHARS - 1).collect();
        out.push('…');
    }
    out
}

/// A dependency's state as its last probe saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    Down,
    /// Configured, not probed yet.
    Unknown,
    /// Not used by this deployment.
    NotConfigured,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Unknown => "unknown",
            State::NotConfigured => "not_configured",
        }
    }
}

/// The probes of one dependency.
#[derive(Debug, Clone, Default)]
pub struct Record {
    recent: VecDeque<bool>,
    last: Option<Outcome>,
    up_since_ms: Option<i64>,
    probes: u64,
}

/// A [`Record`] as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub state: State,
    pub last_probe_ms: Option<i64>,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    /// Start of the current run of successful probes; `None` when down.
    pub up_since_ms: Option<i64>,
    /// Share of successful probes over the last [`WINDOW`].
    pub availability: Option<f64>,
    pub probes: u64,
}

impl Record {
    /// Adds one probe's outcome.
    pub fn note(&mut self, outcome: Outcome) {
        let ok = outcome.ok();
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(ok);
        self.probes += 1;
        self.up_since_ms = match (ok, self.up_since_ms) {
            (true, Some(since)) => Some(since),
            (true, None) => Some(outcome.at_ms),
            (false, _) => None,
        };
        self.last = Some(outcome);
    }

    /// The record as reported; `configured` false: never probed, by design.
    pub fn snapshot(&self, configured: bool) -> Snapshot {
        let state = match (&self.last, configured) {
            (_, false) => State::NotConfigured,
            (None, true) => State::Unknown,
            (Some(last), true) if last.ok() => State::Up,
            (Some(_), true) => State::Down,
        };
        let ok = self.recent.iter().filter(|ok| **ok).count();
        Snapshot {
            state,
            last_probe_ms: self.last.as_ref().map(|last| last.at_ms),
            latency_ms: self
                .last
                .as_ref()
                .map(|last| last.latency.as_secs_f64() * 1000.0),
            error: self
                .last
                .as_ref()
                .and_then(|last| last.error.as_deref())
                .map(public_error),
            up_since_ms: self.up_since_ms,
            availability: (!self.recent.is_empty()).then(|| ok as f64 / self.recent.len() as f64),
            probes: self.probes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outcome(at_ms: i64, ok: bool) -> Outcome {
        Outcome {
            at_ms,
            latency: Duration::from_millis(2),
            error: (!ok).then(|| "refused".to_string()),
        }
    }

    #[test]
    fn up_since_restarts_after_a_failure_and_availability_counts_the_window() {
        let mut record = Record::default();
        assert_eq!(record.snapshot(true).state, State::Unknown);
        assert_eq!(record.snapshot(false).state, State::NotConfigured);
        record.note(outcome(1_000, true));
        record.note(outcome(2_000, true));
        assert_eq!(record.snapshot(true).up_since_ms, Some(1_000));
        record.note(outcome(3_000, false));
        let down = record.snapshot(true);
        assert_eq!(down.state, State::Down);
        assert_eq!(down.up_since_ms, None);
        assert_eq!(down.error.as_deref(), Some("refused"));
        record.note(outcome(4_000, true));
        let up = record.snapshot(true);
        assert_eq!(up.state, State::Up);
        assert_eq!(up.up_since_ms, Some(4_000));
        assert_eq!(up.availability, Some(0.75));
        assert_eq!(up.probes, 4);
        assert_eq!(up.last_probe_ms, Some(4_000));
    }

    #[test]
    fn published_errors_name_no_url_and_are_bounded() {
        let leaked =
            "error sending request for url (https://base-mainnet.g.alchemy.com/v2/SECRETKEY): \
                      connection refused; also postgres://user:pw@db:5432/x failed";
        let public = public_error(leaked);
        assert!(
            !public.contains("SECRETKEY") && !public.contains("pw@"),
            "{public}"
        );
        assert_eq!(
            public,
            "error sending request for url (<url>): connection refused; also <url> failed"
        );
        assert_eq!(public_error("HTTP 502"), "HTTP 502");
        let long = public_error(&"x".repeat(1000));
        assert_eq!(long.chars().count(), MAX_ERROR_CHARS);
        let mut record = Record::default();
        record.note(Outcome {
            at_ms: 1,
            latency: Duration::from_millis(1),
            error: Some(leaked.to_string()),
        });
        assert_eq!(record.snapshot(true).error, Some(public));
    }

    #[test]
    fn availability_forgets_probes_older_than_the_window() {
        let mut record = Record::default();
        record.note(outcome(0, false));
        for at in 1..=WINDOW as i64 {
            record.note(outcome(at, true));
        }
        let snapshot = record.snapshot(true);
        assert_eq!(snapshot.availability, Some(1.0));
        assert_eq!(snapshot.probes, WINDOW as u64 + 1);
    }
}
