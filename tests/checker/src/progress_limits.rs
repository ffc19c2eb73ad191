//! The smallest [`crate::ProgressBounds::before`] among the operations not
//! yet linearized, kept up to date as operations are lifted and restored.

/// A min segment tree over operations; a linearized operation's leaf holds
/// `u64::MAX` (no limit).
#[derive(Debug)]
pub(crate) struct ProgressLimits {
    limits: Vec<u64>,
    leaves: usize,
    tree: Vec<u64>,
}

impl ProgressLimits {
    pub(crate) fn new(limits: Vec<u64>) -> Self {
        let leaves = limits.len().next_power_of_two();
        let mut tree = vec![u64::MAX; 2 * leaves];
        tree[leaves..leaves + limits.len()].copy_from_slice(&limits);
        for node in (1..leaves).rev() {
            tree[node] = tree[2 * node].min(tree[2 * node + 1]);
        }
        ProgressLimits {
            limits,
            leaves,
            tree,
        }
    }

    /// The smallest limit among unlinearized operations.
    pub(crate) fn min(&self) -> u64 {
        self.tree[1]
    }

    /// The smallest limit among unlinearized operations other than `op`.
    pub(crate) fn min_excluding(&self, op: u32) -> u64 {
        let mut node = self.leaves + op as usize;
        let mut min = u64::MAX;
        while node > 1 {
            min = min.min(self.tree[node ^ 1]);
            node /= 2;
        }
        min
    }

    /// The unlinearized operation other than `op` with the smallest limit.
    pub(crate) fn argmin_excluding(&mut self, op: u32) -> u32 {
        self.set(op, u64::MAX);
        let mut node = 1;
        while node < self.leaves {
            node = if self.tree[2 * node] <= self.tree[2 * node + 1] {
                2 * node
            } else {
                2 * node + 1
            };
        }
        self.restored(op);
        (node - self.leaves) as u32
    }

    pub(crate) fn linearized(&mut self, op: u32) {
        self.set(op, u64::MAX);
    }

    pub(crate) fn restored(&mut self, op: u32) {
        self.set(op, self.limits[op as usize]);
    }

    fn set(&mut self, op: u32, limit: u64) {
        let mut node = self.leaves + op as usize;
        self.tree[node] = limit;
        while node > 1 {
            node /= 2;
            self.tree[node] = self.tree[2 * node].min(self.tree[2 * node + 1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_the_minimum_of_the_operations_left() {
        let mut limits = ProgressLimits::new(vec![7, 3, u64::MAX, 5, 9]);
        assert_eq!(limits.min(), 3);
        assert_eq!(limits.min_excluding(0), 3);
        assert_eq!(limits.min_excluding(1), 5);
        limits.linearized(1);
        assert_eq!(limits.min_excluding(0), 5);
        limits.linearized(3);
        assert_eq!(limits.min_excluding(4), 7);
        assert_eq!(limits.min_excluding(0), 9);
        limits.restored(1);
        assert_eq!(limits.min_excluding(0), 3);
        assert_eq!(limits.argmin_excluding(0), 1);
        assert_eq!(limits.argmin_excluding(1), 0);
    }
}
