//! An answer and what it cost.

use crate::x402::Settlement;

/// What a call (or an operation of several calls, such as a waiting
/// [`Lock::acquire`](crate::Lock::acquire)) returned, with the settlement of
/// every payment it made, in order: empty in free mode, one per paid call.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<T> {
    pub inner: T,
    pub settlements: Vec<Settlement>,
}

impl<T> Reply<T> {
    pub(crate) fn new(inner: T, settlements: Vec<Settlement>) -> Self {
        Reply { inner, settlements }
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        Reply {
            inner: f(self.inner),
            settlements: self.settlements,
        }
    }
}
