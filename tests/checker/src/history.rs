//! Recorded operations: what a client asked, what it got back, and when.

use std::fmt::Debug;

/// One client operation as recorded by a test.
///
/// Times come from one monotonic clock shared by every client. An operation
/// with `output: None` is *indeterminate*: it ended in an error such as a 503,
/// a timeout or a killed client, so it may have taken effect at any moment
/// after `call`, or never, and its result is unknown. Its `ret` is ignored: it
/// is treated as returning at +∞.
///
/// An operation with an output but `ret: None` (a result whose arrival time
/// was not recorded) also counts as returning at +∞, but it must still take
/// effect, with that output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    pub client_id: u64,
    pub input: I,
    pub output: Option<O>,
    pub call: u64,
    pub ret: Option<u64>,
}

/// An operation paired with its index in the history, which reports use.
pub(crate) type Indexed<'a, I, O> = (usize, &'a Operation<I, O>);

impl<I, O> Operation<I, O> {
    /// An operation that returned `output` at `ret`.
    pub fn completed(client_id: u64, input: I, output: O, call: u64, ret: u64) -> Self {
        Operation {
            client_id,
            input,
            output: Some(output),
            call,
            ret: Some(ret),
        }
    }

    /// An operation whose outcome is unknown.
    pub fn indeterminate(client_id: u64, input: I, call: u64) -> Self {
        Operation {
            client_id,
            input,
            output: None,
            call,
            ret: None,
        }
    }

    pub fn is_indeterminate(&self) -> bool {
        self.output.is_none()
    }

    /// When the operation returned, as the checker sees it: `None` is +∞.
    pub(crate) fn effective_ret(&self) -> Option<u64> {
        self.output.as_ref().and(self.ret)
    }
}

impl<I: Debug, O: Debug> Operation<I, O> {
    /// One line for a human: who, when, what was asked and what came back.
    pub fn describe(&self) -> String {
        let ret = match self.effective_ret() {
            Some(ret) => format!("returned {ret}"),
            None => "no reply".to_string(),
        };
        let output = match &self.output {
            Some(output) => format!("{output:?}"),
            None => "unknown (may or may not have taken effect)".to_string(),
        };
        format!(
            "client {}, called {}, {ret}: {:?} -> {output}",
            self.client_id, self.call, self.input
        )
    }
}
