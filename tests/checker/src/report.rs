//! Verdicts, and what a failed check tells a human.

use std::collections::BTreeMap;
use std::fmt;

/// How many operations of the longest prefix [`Report`]'s `Display` shows.
const PREFIX_SHOWN: usize = 10;
/// How many of the pending indeterminate operations it describes.
const UNKNOWN_SHOWN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    Linearizable,
    NotLinearizable(Report),
    /// The time budget ran out before the search finished.
    Unknown,
}

impl CheckResult {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, CheckResult::Linearizable)
    }

    pub fn report(&self) -> Option<&Report> {
        match self {
            CheckResult::NotLinearizable(report) => Some(report),
            _ => None,
        }
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckResult::Linearizable => f.write_str("linearizable"),
            CheckResult::NotLinearizable(report) => report.fmt(f),
            CheckResult::Unknown => f.write_str("unknown: the time budget ran out"),
        }
    }
}

/// Why a history is not linearizable. Operations are named by their index
/// in the history given to the checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Operations in the history checked.
    pub operations: usize,
    pub violation: Violation,
    /// One line per operation named in `Display`, by history index.
    pub(crate) descriptions: BTreeMap<usize, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// `later` was called after `earlier` returned, yet its result needs a
    /// state older than the one `earlier` left (by [`crate::Model::progress`],
    /// e.g. a lower revision): no order can fix that.
    Regression { earlier: usize, later: usize },
    /// No order that respects real time is a legal run of the model; this
    /// is how far the search got.
    NoLegalOrder {
        /// The longest sequence of operations that could be linearized, in
        /// the order it linearized them.
        longest_prefix: Vec<usize>,
        /// The model's state after that prefix (`Debug`).
        state_after_prefix: String,
        /// The operations with a known result pending after that prefix,
        /// none of which could go next: each gives a wrong result in that
        /// state or leads only to states already found to be dead ends.
        unplaced: Vec<usize>,
        /// The operation that ended the search along that prefix: it
        /// returned before it could take effect, or its result needs a
        /// state older than the prefix leaves (see
        /// [`crate::ProgressBounds::before`]).
        blocking: Option<usize>,
        /// The operations with an unknown outcome pending after that
        /// prefix: taking effect next did not help either.
        unknown_pending: Vec<usize>,
    },
}

impl Report {
    /// A human-readable line for operation `index`, if the report kept one
    /// (those `Display` shows).
    pub fn describe(&self, index: usize) -> Option<&str> {
        self.descriptions.get(&index).map(String::as_str)
    }

    /// The operation that could not be placed.
    pub fn blocking(&self) -> Option<usize> {
        match &self.violation {
            Violation::Regression { later, .. } => Some(*later),
            Violation::NoLegalOrder { blocking, .. } => *blocking,
        }
    }

    pub(crate) fn shown_prefix<T>(prefix: &[T]) -> &[T] {
        &prefix[prefix.len().saturating_sub(PREFIX_SHOWN)..]
    }

    /// The most recently called of the pending indeterminate operations.
    pub(crate) fn shown_unknown<T>(pending: &[T]) -> &[T] {
        &pending[pending.len().saturating_sub(UNKNOWN_SHOWN)..]
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |index: usize| self.describe(index).unwrap_or("");
        let (longest_prefix, state_after_prefix, unplaced, blocking, unknown_pending) =
            match &self.violation {
                Violation::Regression { earlier, later } => {
                    writeln!(
                        f,
                        "not linearizable: #{later} was called after #{earlier} returned, \
                         but needs an older state"
                    )?;
                    writeln!(f, "  #{earlier} {}", line(*earlier))?;
                    return writeln!(f, "  #{later} {}", line(*later));
                }
                Violation::NoLegalOrder {
                    longest_prefix,
                    state_after_prefix,
                    unplaced,
                    blocking,
                    unknown_pending,
                } => (
                    longest_prefix,
                    state_after_prefix,
                    unplaced,
                    blocking,
                    unknown_pending,
                ),
            };
        writeln!(
            f,
            "not linearizable: the longest linearizable prefix found has {} of the {} operations",
            longest_prefix.len(),
            self.operations
        )?;
        let shown = Report::shown_prefix(longest_prefix);
        if shown.len() < longest_prefix.len() {
            writeln!(f, "longest linearizable prefix, last {}:", shown.len())?;
        } else {
            writeln!(f, "longest linearizable prefix:")?;
        }
        for &index in shown {
            writeln!(f, "  #{index} {}", line(index))?;
        }
        writeln!(f, "state after it: {state_after_prefix}")?;
        writeln!(f, "pending operations, none of which fits next:")?;
        for &index in unplaced {
            let mark = if Some(index) == *blocking {
                "  <- cannot take effect after this prefix"
            } else {
                ""
            };
            writeln!(f, "  #{index} {}{mark}", line(index))?;
        }
        if !unknown_pending.is_empty() {
            let shown = Report::shown_unknown(unknown_pending);
            write!(
                f,
                "and {} operations with an unknown outcome",
                unknown_pending.len()
            )?;
            if shown.len() < unknown_pending.len() {
                write!(f, ", the last {} called", shown.len())?;
            }
            writeln!(f, ":")?;
            for &index in shown {
                writeln!(f, "  #{index} {}", line(index))?;
            }
        }
        Ok(())
    }
}
