//! A quick test before the search. Progress never goes backwards, so an
//! operation called after another returned cannot need less progress than
//! that one made. Catching this up front matters: the search would only
//! find it after trying every order of everything before.

use crate::history::Indexed;
use crate::model::Model;
use crate::report::{Report, Violation};

/// The first operation, in call order, whose [`crate::ProgressBounds`]
/// `before` is below the `after` of one that had returned by its call.
/// `ops` pair each operation with its index in the history.
pub(crate) fn find_regression<M: Model>(
    model: &M,
    ops: &[Indexed<'_, M::Input, M::Output>],
) -> Option<Report> {
    let bounds: Vec<_> = ops
        .iter()
        .map(|(_, op)| {
            let output = op.output.as_ref()?;
            model.progress_bounds(&op.input, output)
        })
        .collect();
    // At equal times a call sorts before a return: they are concurrent.
    let mut timeline: Vec<(u64, bool, usize)> = Vec::new();
    for (position, ((_, op), bounds)) in ops.iter().zip(&bounds).enumerate() {
        if bounds.is_some() {
            timeline.push((op.call, false, position));
            if let Some(ret) = op.effective_ret() {
                timeline.push((ret, true, position));
            }
        }
    }
    timeline.sort_unstable();

    // The most progress any returned operation made, and which one.
    let mut furthest: Option<(u64, usize)> = None;
    for (_, is_return, position) in timeline {
        let bounds = bounds[position].expect("only operations with bounds");
        if is_return {
            if furthest.is_none_or(|(after, _)| bounds.after > after) {
                furthest = Some((bounds.after, position));
            }
        } else if let Some((after, earlier)) = furthest {
            if bounds.before < after {
                return Some(report(ops, earlier, position));
            }
        }
    }
    None
}

fn report<I: std::fmt::Debug, O: std::fmt::Debug>(
    ops: &[Indexed<'_, I, O>],
    earlier: usize,
    later: usize,
) -> Report {
    let (earlier, earlier_op) = ops[earlier];
    let (later, later_op) = ops[later];
    Report {
        operations: ops.len(),
        violation: Violation::Regression { earlier, later },
        descriptions: [
            (earlier, earlier_op.describe()),
            (later, later_op.describe()),
        ]
        .into(),
    }
}
