//! The memory service's semantics for one key, as a [`Model`].
//!
//! A key starts absent at revision 0; every change of state raises the
//! revision by exactly one, and a delete keeps it. Values are opaque text
//! (the service's canonical JSON), except that incr reads an absent key as
//! 0 and stores the decimal text of the sum. TTLs are not modelled: keep
//! them out of checked workloads.

use crate::model::{Model, ProgressBounds};

/// The checker model of one key of the memory service.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryModel;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MemoryState {
    /// The live value; `None` when the key is absent.
    pub value: Option<String>,
    pub revision: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MemoryInput {
    Get {
        key: String,
    },
    Set {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// `expected: None` matches an absent key; `new: None` deletes.
    Cas {
        key: String,
        expected: Option<String>,
        new: Option<String>,
    },
    Incr {
        key: String,
        by: i64,
    },
}

impl MemoryInput {
    pub fn key(&self) -> &str {
        match self {
            MemoryInput::Get { key }
            | MemoryInput::Set { key, .. }
            | MemoryInput::Delete { key }
            | MemoryInput::Cas { key, .. }
            | MemoryInput::Incr { key, .. } => key,
        }
    }
}

/// The key an input touches, for [`crate::check_partitioned`].
pub fn key_of(input: &MemoryInput) -> String {
    input.key().to_owned()
}

/// A successful reply. Errors are not outputs: a definite error (400, 412)
/// means the operation did not happen and belongs nowhere in the history; an
/// uncertain one (503, timeout) makes the operation indeterminate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryOutput {
    /// The live value and its revision, or `None` when absent.
    Got(Option<(String, u64)>),
    Set {
        revision: u64,
    },
    /// `revision` is the key's revision after the call.
    Deleted {
        deleted: bool,
        revision: u64,
    },
    /// `revision` and `current` describe the key after the call.
    Cas {
        swapped: bool,
        revision: u64,
        current: Option<String>,
    },
    Incr {
        value: i64,
        revision: u64,
    },
}

impl MemoryModel {
    /// What the service does with `input` in `state`: the state after it and
    /// its reply, or `None` when it answers with an error and changes nothing
    /// (incr of a value that is not an integer, or an overflow).
    pub fn apply(state: &MemoryState, input: &MemoryInput) -> Option<(MemoryState, MemoryOutput)> {
        let unchanged = || state.clone();
        let written = |value: Option<String>| MemoryState {
            value,
            revision: state.revision + 1,
        };
        let outcome = match input {
            MemoryInput::Get { .. } => (
                unchanged(),
                MemoryOutput::Got(state.value.clone().map(|value| (value, state.revision))),
            ),
            MemoryInput::Set { value, .. } => (
                written(Some(value.clone())),
                MemoryOutput::Set {
                    revision: state.revision + 1,
                },
            ),
            MemoryInput::Delete { .. } if state.value.is_some() => (
                written(None),
                MemoryOutput::Deleted {
                    deleted: true,
                    revision: state.revision + 1,
                },
            ),
            MemoryInput::Delete { .. } => (
                unchanged(),
                MemoryOutput::Deleted {
                    deleted: false,
                    revision: state.revision,
                },
            ),
            MemoryInput::Cas { expected, new, .. } => {
                let swapped = state.value == *expected;
                // Deleting an absent key matches without writing anything.
                let next = if swapped && (new.is_some() || state.value.is_some()) {
                    written(new.clone())
                } else {
                    unchanged()
                };
                let output = MemoryOutput::Cas {
                    swapped,
                    revision: next.revision,
                    current: next.value.clone(),
                };
                (next, output)
            }
            MemoryInput::Incr { by, .. } => {
                let old = match &state.value {
                    None => 0,
                    Some(text) => text.parse::<i64>().ok()?,
                };
                let value = old.checked_add(*by)?;
                (
                    written(Some(value.to_string())),
                    MemoryOutput::Incr {
                        value,
                        revision: state.revision + 1,
                    },
                )
            }
        };
        Some(outcome)
    }
}

impl Model for MemoryModel {
    type State = MemoryState;
    type Input = MemoryInput;
    type Output = MemoryOutput;

    fn init(&self) -> MemoryState {
        MemoryState::default()
    }

    fn step(
        &self,
        state: &MemoryState,
        input: &MemoryInput,
        output: &MemoryOutput,
    ) -> Option<MemoryState> {
        let (next, expected) = MemoryModel::apply(state, input)?;
        (expected == *output).then_some(next)
    }

    fn step_unknown(&self, state: &MemoryState, input: &MemoryInput) -> Vec<MemoryState> {
        MemoryModel::apply(state, input)
            .map(|(next, _)| next)
            .into_iter()
            .collect()
    }

    fn is_read_only(&self, input: &MemoryInput) -> bool {
        matches!(input, MemoryInput::Get { .. })
    }

    fn progress(&self, state: &MemoryState) -> Option<u64> {
        Some(state.revision)
    }

    /// Every reply but a miss names the key's revision after the call: it
    /// was one less before if the call wrote, and the same if it did not.
    fn progress_bounds(
        &self,
        input: &MemoryInput,
        output: &MemoryOutput,
    ) -> Option<ProgressBounds> {
        let (after, wrote) = match (input, output) {
            (_, MemoryOutput::Got(None)) => return None,
            (_, MemoryOutput::Got(Some((_, revision)))) => (*revision, false),
            (_, MemoryOutput::Set { revision } | MemoryOutput::Incr { revision, .. }) => {
                (*revision, true)
            }
            (_, MemoryOutput::Deleted { deleted, revision }) => (*revision, *deleted),
            (
                MemoryInput::Cas { new: Some(_), .. },
                MemoryOutput::Cas {
                    swapped: true,
                    revision,
                    ..
                },
            ) => (*revision, true),
            // A matching delete writes only if the key was live, which the
            // reply does not say: allow both.
            (_, MemoryOutput::Cas { revision, .. }) => (*revision, false),
        };
        Some(ProgressBounds {
            before: if wrote {
                after.saturating_sub(1)
            } else {
                after
            },
            after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(value: Option<&str>, revision: u64) -> MemoryState {
        MemoryState {
            value: value.map(str::to_string),
            revision,
        }
    }

    fn cas(expected: Option<&str>, new: Option<&str>) -> MemoryInput {
        MemoryInput::Cas {
            key: "k".into(),
            expected: expected.map(str::to_string),
            new: new.map(str::to_string),
        }
    }

    fn cas_output(swapped: bool, revision: u64, current: Option<&str>) -> MemoryOutput {
        MemoryOutput::Cas {
            swapped,
            revision,
            current: current.map(str::to_string),
        }
    }

    #[test]
    fn cas_matches_writes_deletes_and_reports_the_state_after() {
        let live = state(Some("a"), 4);
        let absent = state(None, 6);
        let cases = [
            (
                &live,
                cas(Some("a"), Some("b")),
                state(Some("b"), 5),
                cas_output(true, 5, Some("b")),
            ),
            (
                &live,
                cas(Some("a"), None),
                state(None, 5),
                cas_output(true, 5, None),
            ),
            (
                &live,
                cas(Some("x"), Some("b")),
                live.clone(),
                cas_output(false, 4, Some("a")),
            ),
            (
                &live,
                cas(None, Some("b")),
                live.clone(),
                cas_output(false, 4, Some("a")),
            ),
            (
                &absent,
                cas(None, Some("b")),
                state(Some("b"), 7),
                cas_output(true, 7, Some("b")),
            ),
            (
                &absent,
                cas(None, None),
                absent.clone(),
                cas_output(true, 6, None),
            ),
            (
                &absent,
                cas(Some("a"), None),
                absent.clone(),
                cas_output(false, 6, None),
            ),
        ];
        for (before, input, after, output) in cases {
            assert_eq!(
                MemoryModel::apply(before, &input),
                Some((after, output)),
                "{input:?} in {before:?}"
            );
        }
    }

    #[test]
    fn delete_keeps_the_revision_and_only_counts_live_keys() {
        let delete = MemoryInput::Delete { key: "k".into() };
        assert_eq!(
            MemoryModel::apply(&state(Some("a"), 2), &delete),
            Some((
                state(None, 3),
                MemoryOutput::Deleted {
                    deleted: true,
                    revision: 3
                }
            ))
        );
        assert_eq!(
            MemoryModel::apply(&state(None, 3), &delete),
            Some((
                state(None, 3),
                MemoryOutput::Deleted {
                    deleted: false,
                    revision: 3
                }
            ))
        );
    }

    #[test]
    fn incr_counts_absent_as_zero_and_rejects_text_and_overflow() {
        let incr = |by| MemoryInput::Incr {
            key: "k".into(),
            by,
        };
        assert_eq!(
            MemoryModel::apply(&state(None, 3), &incr(5)),
            Some((
                state(Some("5"), 4),
                MemoryOutput::Incr {
                    value: 5,
                    revision: 4
                }
            ))
        );
        assert_eq!(
            MemoryModel::apply(&state(Some("-2"), 1), &incr(-1)).map(|(next, _)| next),
            Some(state(Some("-3"), 2))
        );
        assert_eq!(MemoryModel::apply(&state(Some("\"x\""), 1), &incr(1)), None);
        assert_eq!(
            MemoryModel::apply(&state(Some(&i64::MAX.to_string()), 1), &incr(1)),
            None
        );
        assert!(MemoryModel
            .step_unknown(&state(Some("x"), 1), &incr(1))
            .is_empty());
    }

    #[test]
    fn a_reply_of_the_wrong_kind_is_illegal() {
        let get = MemoryInput::Get { key: "k".into() };
        assert_eq!(
            MemoryModel.step(&state(None, 0), &get, &MemoryOutput::Set { revision: 1 }),
            None
        );
        assert_eq!(
            MemoryModel.step(&state(None, 0), &get, &MemoryOutput::Got(None)),
            Some(state(None, 0))
        );
    }

    #[test]
    fn progress_bounds_hold_for_every_legal_step() {
        let states = [
            state(None, 0),
            state(Some("1"), 3),
            state(None, 5),
            state(Some("7"), 9),
        ];
        let inputs = [
            MemoryInput::Get { key: "k".into() },
            MemoryInput::Set {
                key: "k".into(),
                value: "2".into(),
            },
            MemoryInput::Delete { key: "k".into() },
            cas(Some("1"), Some("2")),
            cas(Some("1"), None),
            cas(None, None),
            cas(None, Some("3")),
            MemoryInput::Incr {
                key: "k".into(),
                by: 2,
            },
        ];
        for before in &states {
            for input in &inputs {
                let (after, output) = MemoryModel::apply(before, input).unwrap();
                let bounds = MemoryModel.progress_bounds(input, &output);
                assert!(
                    bounds
                        .is_none_or(|bounds| before.revision <= bounds.before
                            && after.revision >= bounds.after),
                    "{input:?} in {before:?} -> {output:?}: {bounds:?}"
                );
            }
        }
    }
}
