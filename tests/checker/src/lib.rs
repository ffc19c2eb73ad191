//! A linearizability checker: Wing & Gong's search with Lowe's memoization,
//! as in Porcupine, over a history of operations recorded by concurrent
//! clients, with P-compositionality (each key checked on its own) and a
//! model of the memory service's per-key semantics.
//!
//! An operation whose outcome is unknown (a 503, a timeout) is recorded with
//! [`Operation::indeterminate`]: it may take effect at any moment after its
//! call, or never. A definite error (400, 412) means it did not happen:
//! leave it out of the history.
//!
//! A [`Model`] gives the sequential specification; optional hints speed the
//! check up a great deal. With [`Model::progress`] (a revision) and
//! [`Model::progress_bounds`] (the revision a reply names), an operation
//! that needs an older revision than one that returned before it was called
//! is reported at once, and the search abandons any branch that has gone
//! past a pending operation's revision. [`Model::is_read_only`] lets reads
//! with an unknown outcome be dropped. The memory model implements all of
//! them.
//!
//! ```
//! use std::time::Duration;
//! use tessera_checker::memory_model::{key_of, MemoryInput, MemoryModel, MemoryOutput};
//! use tessera_checker::{check_partitioned, Operation};
//!
//! let history = vec![
//!     Operation::completed(
//!         1,
//!         MemoryInput::Set { key: "a".into(), value: "1".into() },
//!         MemoryOutput::Set { revision: 1 },
//!         0,
//!         10,
//!     ),
//!     // Overlaps the set, so it may see the key before or after it.
//!     Operation::completed(2, MemoryInput::Get { key: "a".into() }, MemoryOutput::Got(None), 5, 8),
//!     // Timed out: it may or may not have happened.
//!     Operation::indeterminate(3, MemoryInput::Incr { key: "b".into(), by: 1 }, 2),
//! ];
//! let result = check_partitioned(&MemoryModel, &history, key_of, Duration::from_secs(10));
//! assert!(result.is_linearizable(), "{result}");
//! ```

mod events;
mod history;
pub mod memory_model;
mod model;
mod partition;
mod progress_limits;
mod regression;
mod report;
mod search;
mod visited;

pub use history::Operation;
pub use model::{Model, ProgressBounds};
pub use partition::{check_partitioned, KeyResult, PartitionedResult};
pub use report::{CheckResult, Report, Violation};
pub use search::check;
