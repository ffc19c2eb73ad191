//! Wing & Gong's search for a linearization, with Lowe's memoization of
//! (linearized operations, state) pairs already explored, as in Porcupine.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::events::{Event, EventList, Node};
use crate::history::{Indexed, Operation};
use crate::model::Model;
use crate::progress_limits::ProgressLimits;
use crate::regression::find_regression;
use crate::report::{CheckResult, Report, Violation};
use crate::visited::{Applied, Linearized, Visited};

/// How many search steps run between looks at the clock.
const STEPS_PER_CLOCK_CHECK: u64 = 1024;

/// Whether `history` is linearizable with respect to `model`, giving up with
/// [`CheckResult::Unknown`] once `budget` has passed.
///
/// # Panics
///
/// If an operation returns before it was called.
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    budget: Duration,
) -> CheckResult {
    let deadline = Instant::now().checked_add(budget);
    let ops: Vec<_> = history.iter().enumerate().collect();
    check_until(model, &ops, deadline)
}

/// [`check`] on `ops`, each paired with the history index reports name it by.
pub(crate) fn check_until<M: Model>(
    model: &M,
    ops: &[Indexed<'_, M::Input, M::Output>],
    deadline: Option<Instant>,
) -> CheckResult {
    match find_regression(model, ops) {
        Some(report) => CheckResult::NotLinearizable(report),
        None => Search::new(model, ops, deadline).run(),
    }
}

struct Frame<S> {
    op: u32,
    state_before: S,
    bound_before: u32,
    /// Set when `op` is indeterminate.
    applied_before: Option<Applied>,
}

/// Where the walk over pending operations is.
#[derive(Debug, Clone, Copy)]
enum Cursor {
    /// Trying operations with a known result, which must all be placed,
    /// from this event on.
    Determinate(Node),
    /// Then, when none of those fits, operations with an unknown outcome
    /// numbered from `from` up to `below`, in call order. They come second
    /// because usually none has to take effect just here. (Trying the
    /// latest called first, which sounds likelier, backtracks far more when
    /// many outcomes are unknown.)
    Indeterminate { from: u32, below: u32 },
}

/// Where the search got stuck after its longest prefix.
struct Stuck<S> {
    state: S,
    pending: Vec<u32>,
    blocking: Option<u32>,
}

/// The longest prefix the search has placed, kept for the report.
struct Furthest<S> {
    prefix: Vec<u32>,
    /// How much of `prefix` the stack still starts with, so that recording
    /// a longer prefix copies only what changed since.
    shared: usize,
    /// `None` until the search first gets stuck.
    stuck: Option<Stuck<S>>,
}

impl<S> Furthest<S> {
    fn is_shorter_than(&self, depth: usize) -> bool {
        self.stuck.is_none() || self.prefix.len() < depth
    }

    fn popped_to(&mut self, depth: usize) {
        self.shared = self.shared.min(depth);
    }

    /// Records the stack's operations, then `then` if any, as the longest
    /// prefix.
    fn record(&mut self, stack: &[Frame<S>], then: Option<u32>, stuck: Stuck<S>) {
        self.prefix.truncate(self.shared);
        self.prefix
            .extend(stack[self.shared..].iter().map(|frame| frame.op));
        self.shared = stack.len();
        self.prefix.extend(then);
        self.stuck = Some(stuck);
    }
}

struct Search<'a, M: Model> {
    model: &'a M,
    /// In the history checked, counting any left out.
    operations: usize,
    /// Sorted by call time: an operation's number is its position here.
    ops: Vec<Indexed<'a, M::Input, M::Output>>,
    /// Calls and returns of the determinate operations.
    determinate: EventList,
    /// The indeterminate operations not linearized.
    unknown_pending: BTreeSet<u32>,
    /// For each indeterminate operation, the one before it with the same
    /// input. Such twins are interchangeable, so they are only ever placed
    /// in call order: that saves trying each of them in every place.
    twin_before: Vec<Option<u32>>,
    limits: Option<ProgressLimits>,
    deadline: Option<Instant>,
    state: M::State,
    stack: Vec<Frame<M::State>>,
    /// One more than the highest-numbered linearized determinate operation.
    bound: u32,
    applied: Applied,
    determinate_left: usize,
    visited: HashSet<Visited<M::State>>,
    furthest: Furthest<M::State>,
    /// An operation that fit here but went past another's progress limit,
    /// and the state it led to: if nothing else fits, the search got one
    /// step further than the stack.
    pruned_here: Option<(u32, M::State)>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(
        model: &'a M,
        history: &[Indexed<'a, M::Input, M::Output>],
        deadline: Option<Instant>,
    ) -> Self {
        assert!(
            history.len() < u32::MAX as usize,
            "too many operations for one check"
        );
        let mut ops: Vec<_> = history
            .iter()
            .filter(|(_, op)| op.output.is_some() || !model.is_read_only(&op.input))
            .copied()
            .collect();
        ops.sort_by_key(|&(index, op)| (op.call, index));
        for &(index, op) in &ops {
            if let Some(ret) = op.effective_ret() {
                assert!(
                    ret >= op.call,
                    "operation {index} returns at {ret}, before its call at {}",
                    op.call
                );
            }
        }
        let spans: Vec<_> = ops
            .iter()
            .map(|(_, op)| op.output.is_some().then(|| (op.call, op.effective_ret())))
            .collect();
        let mut unknown_pending = BTreeSet::new();
        let mut twin_before = vec![None; ops.len()];
        let mut latest_with_input = HashMap::new();
        for (number, (_, op)) in (0u32..).zip(&ops) {
            if op.output.is_none() {
                unknown_pending.insert(number);
                twin_before[number as usize] = latest_with_input.insert(&op.input, number);
            }
        }
        let limits: Vec<u64> = ops
            .iter()
            .map(|(_, op)| {
                op.output
                    .as_ref()
                    .and_then(|output| model.progress_bounds(&op.input, output))
                    .map(|bounds| bounds.before)
                    .unwrap_or(u64::MAX)
            })
            .collect();
        let limits = limits
            .iter()
            .any(|&limit| limit != u64::MAX)
            .then(|| ProgressLimits::new(limits));
        Search {
            model,
            operations: history.len(),
            determinate_left: ops.iter().filter(|(_, op)| op.output.is_some()).count(),
            determinate: EventList::new(&spans),
            unknown_pending,
            twin_before,
            ops,
            limits,
            deadline,
            state: model.init(),
            stack: Vec::new(),
            bound: 0,
            applied: Applied::none(),
            visited: HashSet::new(),
            furthest: Furthest {
                prefix: Vec::new(),
                shared: 0,
                stuck: None,
            },
            pruned_here: None,
        }
    }

    /// Walks the pending calls in time order: one that can be placed is,
    /// and the walk starts over; reaching a pending return (or the end)
    /// means none before it fits, and the last placement is undone, the walk
    /// resuming after it.
    fn run(mut self) -> CheckResult {
        let mut cursor = Cursor::Determinate(self.determinate.first());
        let mut steps: u64 = 0;
        loop {
            if self.determinate_left == 0 {
                return CheckResult::Linearizable;
            }
            if steps.is_multiple_of(STEPS_PER_CLOCK_CHECK)
                && self
                    .deadline
                    .is_some_and(|deadline| Instant::now() >= deadline)
            {
                return CheckResult::Unknown;
            }
            steps += 1;
            cursor = match cursor {
                Cursor::Determinate(node) => match self.determinate.event(node) {
                    Some(Event::Call(op)) if self.try_linearize(op) => self.restart(),
                    Some(Event::Call(_)) => Cursor::Determinate(self.determinate.next(node)),
                    Some(Event::Return(op)) => Cursor::Indeterminate {
                        from: 0,
                        below: self.indeterminate_bound(self.ops[op as usize].1.effective_ret()),
                    },
                    None => Cursor::Indeterminate {
                        from: 0,
                        below: self.indeterminate_bound(None),
                    },
                },
                Cursor::Indeterminate { from, below } => {
                    match self.unknown_pending.range(from..below).next().copied() {
                        Some(op) if self.try_linearize(op) => self.restart(),
                        Some(op) => Cursor::Indeterminate {
                            from: op + 1,
                            below,
                        },
                        None => {
                            self.note_stuck();
                            let Some(op) = self.backtrack() else {
                                return CheckResult::NotLinearizable(self.report());
                            };
                            self.resume_after(op)
                        }
                    }
                }
            };
        }
    }

    /// One more than the last indeterminate operation worth trying here:
    /// called before `until` (the first pending return; `None`: +∞), and
    /// none at all if the state has no room to change before some pending
    /// operation's progress limit.
    fn indeterminate_bound(&self, until: Option<u64>) -> u32 {
        let no_room = match (&self.limits, self.model.progress(&self.state)) {
            (Some(limits), Some(progress)) => progress >= limits.min(),
            _ => false,
        };
        if no_room {
            return 0;
        }
        let called = self
            .ops
            .partition_point(|(_, op)| until.is_none_or(|until| op.call <= until));
        called as u32
    }

    fn restart(&self) -> Cursor {
        Cursor::Determinate(self.determinate.first())
    }

    /// Where to go on once placing `op` here has been undone.
    fn resume_after(&self, op: u32) -> Cursor {
        if self.is_determinate(op) {
            Cursor::Determinate(self.determinate.next(self.determinate.call_node(op)))
        } else {
            // It may have other states to try here; the cache skips those
            // tried already.
            Cursor::Indeterminate {
                from: op,
                below: self.indeterminate_bound(self.first_return_time()),
            }
        }
    }

    fn is_determinate(&self, op: u32) -> bool {
        self.ops[op as usize].1.output.is_some()
    }

    fn try_linearize(&mut self, op: u32) -> bool {
        let operation = self.ops[op as usize].1;
        match &operation.output {
            Some(output) => match self.model.step(&self.state, &operation.input, output) {
                Some(next) => self.push_if_new(op, next),
                None => false,
            },
            None if self.twin_before[op as usize]
                .is_some_and(|twin| self.unknown_pending.contains(&twin)) =>
            {
                false
            }
            None => self
                .model
                .step_unknown(&self.state, &operation.input)
                .into_iter()
                // Taking effect without changing anything is the same as
                // never taking effect, which needs no search.
                .any(|next| next != self.state && self.push_if_new(op, next)),
        }
    }

    /// Linearizes `op`, leading to `next`, unless that is a known dead end.
    fn push_if_new(&mut self, op: u32, next: M::State) -> bool {
        if let (Some(limits), Some(progress)) = (&self.limits, self.model.progress(&next)) {
            if progress > limits.min_excluding(op) {
                if self.pruned_here.is_none() {
                    self.pruned_here = Some((op, next));
                }
                return false;
            }
        }
        let determinate = self.is_determinate(op);
        let (bound, applied) = if determinate {
            (self.bound.max(op + 1), self.applied.clone())
        } else {
            (self.bound, self.applied.with(op))
        };
        let visited = Visited {
            linearized: Linearized {
                bound,
                holes: self.holes(bound, op),
                applied: applied.clone(),
            },
            state: next.clone(),
        };
        if !self.visited.insert(visited) {
            return false;
        }
        let applied_before = (!determinate).then(|| std::mem::replace(&mut self.applied, applied));
        self.stack.push(Frame {
            op,
            state_before: std::mem::replace(&mut self.state, next),
            bound_before: std::mem::replace(&mut self.bound, bound),
            applied_before,
        });
        if determinate {
            self.determinate.lift(op);
            self.determinate_left -= 1;
        } else {
            self.unknown_pending.remove(&op);
        }
        if let Some(limits) = &mut self.limits {
            limits.linearized(op);
        }
        self.pruned_here = None;
        true
    }

    /// Undoes the last linearization; returns its operation.
    fn backtrack(&mut self) -> Option<u32> {
        let frame = self.stack.pop()?;
        if let Some(applied) = frame.applied_before {
            self.unknown_pending.insert(frame.op);
            self.applied = applied;
        } else {
            self.determinate.unlift(frame.op);
            self.determinate_left += 1;
        }
        if let Some(limits) = &mut self.limits {
            limits.restored(frame.op);
        }
        self.state = frame.state_before;
        self.bound = frame.bound_before;
        self.furthest.popped_to(self.stack.len());
        self.pruned_here = None;
        Some(frame.op)
    }

    /// The determinate operations below `bound` not linearized once `op` is.
    /// Their calls sit in the list in operation order, so they are the calls
    /// still listed before the first one numbered `bound` or more.
    fn holes(&self, bound: u32, op: u32) -> Box<[u32]> {
        let mut holes = Vec::new();
        let mut node = self.determinate.first();
        while let Some(event) = self.determinate.event(node) {
            if let Event::Call(other) = event {
                if other >= bound {
                    break;
                }
                if other != op {
                    holes.push(other);
                }
            }
            node = self.determinate.next(node);
        }
        holes.into_boxed_slice()
    }

    /// The determinate operation whose return comes first among those
    /// pending.
    fn first_return(&self) -> Option<u32> {
        let mut node = self.determinate.first();
        loop {
            match self.determinate.event(node)? {
                Event::Call(_) => node = self.determinate.next(node),
                Event::Return(op) => return Some(op),
            }
        }
    }

    fn first_return_time(&self) -> Option<u64> {
        let op = self.first_return()?;
        self.ops[op as usize].1.effective_ret()
    }

    /// The operations that could go next but `skip`: the calls pending
    /// before the first pending return.
    fn candidates(&self, skip: Option<u32>) -> Vec<u32> {
        let until = self.first_return_time();
        let mut candidates = Vec::new();
        let mut node = self.determinate.first();
        while let Some(Event::Call(op)) = self.determinate.event(node) {
            candidates.push(op);
            node = self.determinate.next(node);
        }
        let called = self
            .ops
            .partition_point(|(_, op)| until.is_none_or(|until| op.call <= until));
        candidates.extend(self.unknown_pending.range(..called as u32));
        candidates.retain(|&op| Some(op) != skip);
        candidates.sort_unstable();
        candidates
    }

    /// Records where the search is stuck if it got further than ever before.
    fn note_stuck(&mut self) {
        let pruned = self.pruned_here.take();
        let depth = self.stack.len() + usize::from(pruned.is_some());
        if !self.furthest.is_shorter_than(depth) {
            return;
        }
        let (then, stuck) = match pruned {
            // One step further, where `stranded` can no longer take effect.
            Some((op, next)) => {
                let mut pending = self.candidates(Some(op));
                let stranded = self
                    .limits
                    .as_mut()
                    .expect("only limits prune")
                    .argmin_excluding(op);
                if !pending.contains(&stranded) {
                    pending.push(stranded);
                }
                let stuck = Stuck {
                    state: next,
                    pending,
                    blocking: Some(stranded),
                };
                (Some(op), stuck)
            }
            None => {
                let stuck = Stuck {
                    state: self.state.clone(),
                    pending: self.candidates(None),
                    blocking: self.first_return(),
                };
                (None, stuck)
            }
        };
        self.furthest.record(&self.stack, then, stuck);
    }

    fn report(&self) -> Report {
        let prefix = &self.furthest.prefix;
        let stuck = self
            .furthest
            .stuck
            .as_ref()
            .expect("the search records where it got stuck before giving up");
        let index = |op: u32| self.ops[op as usize].0;
        let (unplaced, unknown_pending): (Vec<u32>, Vec<u32>) = stuck
            .pending
            .iter()
            .partition(|&&op| self.is_determinate(op));
        let descriptions = Report::shown_prefix(prefix)
            .iter()
            .chain(&unplaced)
            .chain(Report::shown_unknown(&unknown_pending))
            .map(|&op| {
                let (index, operation) = self.ops[op as usize];
                (index, operation.describe())
            })
            .collect();
        Report {
            operations: self.operations,
            violation: Violation::NoLegalOrder {
                longest_prefix: prefix.iter().map(|&op| index(op)).collect(),
                state_after_prefix: format!("{:?}", stuck.state),
                unplaced: unplaced.into_iter().map(index).collect(),
                blocking: stuck.blocking.map(index),
                unknown_pending: unknown_pending.into_iter().map(index).collect(),
            },
            descriptions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register holding a number, with a write whose effect is not known
    /// even to the model: `WriteOneOf(a, b)` stores `a` or `b`.
    struct Register;

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    enum Input {
        Read,
        WriteOneOf(u8, u8),
    }

    impl Model for Register {
        type State = u8;
        type Input = Input;
        type Output = Option<u8>;

        fn init(&self) -> u8 {
            0
        }

        fn step(&self, state: &u8, input: &Input, output: &Option<u8>) -> Option<u8> {
            match (input, output) {
                (Input::Read, Some(seen)) => (seen == state).then_some(*state),
                _ => None,
            }
        }

        fn step_unknown(&self, _state: &u8, input: &Input) -> Vec<u8> {
            match input {
                Input::Read => Vec::new(),
                Input::WriteOneOf(a, b) => vec![*a, *b],
            }
        }
    }

    fn read(client: u64, seen: u8, call: u64, ret: u64) -> Operation<Input, Option<u8>> {
        Operation::completed(client, Input::Read, Some(seen), call, ret)
    }

    fn budget() -> Duration {
        Duration::from_secs(10)
    }

    #[test]
    fn an_indeterminate_operation_may_leave_any_state_it_offers_or_none() {
        let write = Operation::indeterminate(0, Input::WriteOneOf(1, 2), 0);
        for (seen, linearizable) in [(0, true), (1, true), (2, true), (3, false)] {
            let history = [write.clone(), read(1, seen, 5, 6)];
            assert_eq!(
                check(&Register, &history, budget()).is_linearizable(),
                linearizable,
                "read {seen}"
            );
        }
        // Once a read has seen the write, it cannot be undone.
        let history = [write, read(1, 2, 5, 6), read(2, 0, 7, 8)];
        assert!(!check(&Register, &history, budget()).is_linearizable());
    }

    #[test]
    fn a_report_names_the_prefix_and_the_operations_that_could_not_follow() {
        let history = [
            read(1, 0, 0, 1),
            Operation::indeterminate(2, Input::WriteOneOf(4, 5), 2),
            read(1, 4, 3, 4),
            read(3, 6, 5, 7),
        ];
        let CheckResult::NotLinearizable(report) = check(&Register, &history, budget()) else {
            panic!("reading a value never written must fail");
        };
        assert_eq!(
            report.violation,
            Violation::NoLegalOrder {
                longest_prefix: vec![0, 1, 2],
                state_after_prefix: "4".into(),
                unplaced: vec![3],
                blocking: Some(3),
                unknown_pending: vec![],
            }
        );
        let text = report.to_string();
        assert!(
            text.contains("#3 client 3, called 5, returned 7: Read -> Some(6)"),
            "{text}"
        );
        assert!(text.contains("may or may not have taken effect"), "{text}");
    }

    #[test]
    fn an_exhausted_budget_gives_unknown() {
        let history: Vec<_> = (0..100).map(|i| read(i, 0, i, i + 1)).collect();
        assert_eq!(
            check(&Register, &history, Duration::ZERO),
            CheckResult::Unknown
        );
        assert!(check(&Register, &history, budget()).is_linearizable());
    }

    #[test]
    fn an_empty_history_is_linearizable() {
        assert!(check(&Register, &[], budget()).is_linearizable());
    }

    #[test]
    #[should_panic(expected = "operation 1 returns at 3, before its call at 4")]
    fn an_operation_returning_before_its_call_is_rejected() {
        check(&Register, &[read(0, 0, 0, 1), read(0, 0, 4, 3)], budget());
    }
}
