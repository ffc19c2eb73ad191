//! Asking a round-based task (the loader, the persister) for one answer.

use tessera_error::{Error, Result};
use tokio::sync::{mpsc, oneshot};

/// Queues the job `make` builds around an answer channel, and waits for the
/// answer.
pub async fn ask<J, T>(
    queue: &mpsc::UnboundedSender<J>,
    make: impl FnOnce(oneshot::Sender<Result<T>>) -> J,
) -> Result<T> {
    let (answer, answered) = oneshot::channel();
    queue
        .send(make(answer))
        .map_err(|_| Error::unavailable("MEMORY_STOPPING", "the memory store is stopping"))?;
    answered
        .await
        .map_err(|_| Error::internal("a memory task dropped a call"))?
}
