//! Group commit of the queue writes: the served calls' payments queued
//! while one write is running go to the ledger together in the next one
//! (one statement, one commit), so a burst of paid calls costs a few
//! commits, not one each. An idle ledger gets each write at once.

use std::sync::OnceLock;
use tessera_error::{Error, Result};
use tokio::sync::{mpsc, oneshot};

use crate::ledger::{Ledger, Queued};

/// The most payments one write queues.
const WRITE_AT_MOST: usize = 256;

type Answer = oneshot::Sender<Result<Option<Queued>>>;

/// Queues payments in the ledger, grouping concurrent requests.
pub(crate) struct QueueWriter {
    ledger: Ledger,
    /// The writer task's inbox, started on first use (inside the runtime).
    inbox: OnceLock<mpsc::UnboundedSender<(String, Answer)>>,
}

impl QueueWriter {
    pub(crate) fn new(ledger: Ledger) -> Self {
        QueueWriter {
            ledger,
            inbox: OnceLock::new(),
        }
    }

    /// Queues one payment, once the write that carries it has committed;
    /// `None` when it was not verified (already queued, settled or
    /// cancelled).
    pub(crate) async fn queue(&self, payment_id: String) -> Result<Option<Queued>> {
        let inbox = self.inbox.get_or_init(|| {
            let (inbox, requests) = mpsc::unbounded_channel();
            tokio::spawn(write(self.ledger.clone(), requests));
            inbox
        });
        let (answer, answered) = oneshot::channel();
        if inbox.send((payment_id.clone(), answer)).is_err() {
            // The writer's runtime is gone: write alone.
            return Ok(self
                .ledger
                .queue(std::slice::from_ref(&payment_id))
                .await?
                .remove(&payment_id));
        }
        answered.await.unwrap_or_else(|_| {
            // The writer stopped mid-write (the runtime is shutting down):
            // whether it committed is unknown, the row will say.
            Err(Error::unavailable(
                "LEDGER_UNAVAILABLE",
                "the payments ledger write was interrupted; retry",
            ))
        })
    }
}

/// The writer: one write at a time, each taking everything waiting.
async fn write(ledger: Ledger, mut requests: mpsc::UnboundedReceiver<(String, Answer)>) {
    while let Some(first) = requests.recv().await {
        let mut group = vec![first];
        while group.len() < WRITE_AT_MOST {
            match requests.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let ids: Vec<String> = group.iter().map(|(id, _)| id.clone()).collect();
        match ledger.queue(&ids).await {
            Ok(mut queued) => answer_each(group, |id| Ok(queued.remove(id))),
            Err(error) => answer_each(group, |_| Err(error.clone())),
        }
    }
}

fn answer_each(
    group: Vec<(String, Answer)>,
    mut outcome: impl FnMut(&str) -> Result<Option<Queued>>,
) {
    for (id, answer) in group {
        let _ = answer.send(outcome(&id));
    }
}
