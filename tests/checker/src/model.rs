//! What a sequential object is allowed to do: the specification a history
//! is checked against.

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification.
///
/// Every method must be a pure function of its arguments: the search calls
/// them again when it backtracks and expects the same answers.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    /// Indeterminate operations with equal inputs are interchangeable.
    type Input: Eq + Hash + Debug;
    type Output: Debug;

    fn init(&self) -> Self::State;

    /// The state after applying `input` in `state`, if `output` is a legal
    /// result of doing so; `None` if it is not.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;

    /// Every state `input` could leave behind if it took effect in `state`
    /// with a result nobody saw (an indeterminate operation).
    ///
    /// "It never took effect" need not be listed: the checker always allows
    /// that. Listing `state` itself is harmless.
    fn step_unknown(&self, state: &Self::State, input: &Self::Input) -> Vec<Self::State>;

    /// Optional hint: `input` never changes the state (a read). An
    /// indeterminate call of it constrains nothing, so the checker leaves it
    /// out instead of carrying it through the whole search.
    fn is_read_only(&self, _input: &Self::Input) -> bool {
        false
    }

    /// Optional hint: a measure of the state that no step lowers and every
    /// change of state raises, such as a revision counter. With
    /// [`Model::progress_bounds`] it lets the checker reject many histories
    /// without a search, and cut the search short. `None` (the default)
    /// turns the hint off.
    fn progress(&self, _state: &Self::State) -> Option<u64> {
        None
    }

    /// With [`Model::progress`]: what `output` says about the progress around
    /// the operation, e.g. the revision it reported. `None`: nothing.
    fn progress_bounds(
        &self,
        _input: &Self::Input,
        _output: &Self::Output,
    ) -> Option<ProgressBounds> {
        None
    }
}

/// Where an operation's output places it along [`Model::progress`].
///
/// The checker uses it three ways: an operation called after another
/// returned cannot need less progress than the other made; a branch of the
/// search whose state has gone past a pending operation's `before` is
/// abandoned at once, since that operation can never be placed; and where
/// the state is at the smallest `before` pending, no indeterminate
/// operation is tried, since any change would go past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressBounds {
    /// The most progress a state can have for the operation to take effect
    /// in it.
    pub before: u64,
    /// The least progress of the state once it has taken effect.
    pub after: u64,
}
