//! What the search's memo holds: the (linearized operations, state) pairs
//! already explored, as in Lowe's memoization of Wing & Gong's search.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Visited<S> {
    pub(crate) linearized: Linearized,
    pub(crate) state: S,
}

/// The set of linearized operations, encoded exactly and compactly.
///
/// A bitset per cache entry would make the cache grow with the square of the
/// history's length. Determinate operations are linearized almost in call
/// order: every one numbered below `bound` that is not linearized was pending
/// when the one numbered `bound - 1` was placed, so `holes` stays about as
/// small as the number of concurrent operations. Indeterminate ones can stay
/// pending forever, so they are listed by the ones that took effect instead.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Linearized {
    /// Every determinate operation numbered below `bound` but `holes`.
    pub(crate) bound: u32,
    pub(crate) holes: Box<[u32]>,
    pub(crate) applied: Applied,
}

/// The indeterminate operations that took effect, in order of number: one
/// allocation shared by the many cache entries made while it is unchanged,
/// hashed once.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    ops: Rc<[u32]>,
    hash: u64,
}

impl Applied {
    pub(crate) fn none() -> Self {
        Applied::new(Vec::new())
    }

    fn new(ops: Vec<u32>) -> Self {
        let mut hasher = DefaultHasher::new();
        ops.hash(&mut hasher);
        Applied {
            ops: ops.into(),
            hash: hasher.finish(),
        }
    }

    pub(crate) fn with(&self, op: u32) -> Self {
        let mut ops = self.ops.to_vec();
        let at = ops.partition_point(|&other| other < op);
        ops.insert(at, op);
        Applied::new(ops)
    }
}

impl PartialEq for Applied {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && (Rc::ptr_eq(&self.ops, &other.ops) || self.ops == other.ops)
    }
}

impl Eq for Applied {}

impl Hash for Applied {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_sets_are_equal_whatever_the_order_they_were_built_in() {
        let one_then_three = Applied::none().with(1).with(3);
        let three_then_one = Applied::none().with(3).with(1);
        assert_eq!(one_then_three, three_then_one);
        assert_ne!(one_then_three, Applied::none().with(1));
        assert_ne!(Applied::none(), Applied::none().with(0));
        let [first, second] = [&one_then_three, &three_then_one].map(|applied| {
            let mut hasher = DefaultHasher::new();
            applied.hash(&mut hasher);
            hasher.finish()
        });
        assert_eq!(first, second);
    }
}
