//! Group commit of ledger writes: the requests made while one write is
//! running go to the ledger together in the next one (one statement, one
//! commit), so a burst costs a few commits, not one each. An idle ledger
//! gets each write at once.
//!
//! Two writes are grouped: queueing the served calls' payments
//! ([`QueueWrite`]), and ending the settlements that came back
//! ([`FinishWrite`]; a batch of a hundred settled on chain comes back at
//! once, and one statement each would take every pooled connection from
//! the calls being served).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use tessera_error::{Error, Result};
use tokio::sync::{mpsc, oneshot};

use crate::ledger::{Ending, Ledger, Queued};

/// The most requests one write carries.
const WRITE_AT_MOST: usize = 256;

/// One kind of grouped write.
pub(crate) trait GroupWrite: Send + Sync + 'static {
    type Request: Send + 'static;
    type Answer: Send + 'static;

    /// Writes `requests` in one statement; answers each, in their order.
    fn write(
        ledger: &Ledger,
        requests: &[Self::Request],
    ) -> impl Future<Output = Result<Vec<Self::Answer>>> + Send;
}

type Answer<W> = oneshot::Sender<Result<<W as GroupWrite>::Answer>>;
type Inbox<W> = mpsc::UnboundedSender<(<W as GroupWrite>::Request, Answer<W>)>;

/// Makes `W` writes, grouping concurrent requests.
pub(crate) struct GroupCommit<W: GroupWrite> {
    ledger: Ledger,
    /// The writer task's inbox, started on first use (inside the runtime).
    inbox: OnceLock<Inbox<W>>,
}

impl<W: GroupWrite> GroupCommit<W> {
    pub(crate) fn new(ledger: Ledger) -> Arc<Self> {
        Arc::new(GroupCommit {
            ledger,
            inbox: OnceLock::new(),
        })
    }

    /// Makes one request, answered once the write that carries it has
    /// committed.
    pub(crate) async fn write(&self, request: W::Request) -> Result<W::Answer> {
        let inbox = self.inbox.get_or_init(|| {
            let (inbox, requests) = mpsc::unbounded_channel();
            tokio::spawn(writer::<W>(self.ledger.clone(), requests));
            inbox
        });
        let (answer, answered) = oneshot::channel();
        if let Err(refused) = inbox.send((request, answer)) {
            // The writer's runtime is gone: write alone.
            let (request, _) = refused.0;
            let mut answers = W::write(&self.ledger, std::slice::from_ref(&request)).await?;
            return Ok(answers.remove(0));
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
async fn writer<W: GroupWrite>(
    ledger: Ledger,
    mut inbox: mpsc::UnboundedReceiver<(W::Request, Answer<W>)>,
) {
    while let Some(first) = inbox.recv().await {
        let mut group = vec![first];
        while group.len() < WRITE_AT_MOST {
            match inbox.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let (requests, answers): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        match W::write(&ledger, &requests).await {
            Ok(written) => {
                for (answer, outcome) in answers.into_iter().zip(written) {
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(error) => {
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Queues a verified payment whose call was served; `None` when it was not
/// verified (already queued, settled or cancelled).
pub(crate) struct QueueWrite;

impl GroupWrite for QueueWrite {
    type Request = String;
    type Answer = Option<Queued>;

    async fn write(ledger: &Ledger, ids: &[String]) -> Result<Vec<Option<Queued>>> {
        let mut queued = ledger.queue(ids).await?;
        Ok(ids.iter().map(|id| queued.remove(id)).collect())
    }
}

/// Ends a settlement that came back; whether the payment was still
/// settling (see [`Ledger::end_settlements`]).
pub(crate) struct FinishWrite;

impl GroupWrite for FinishWrite {
    type Request = Ending;
    type Answer = bool;

    async fn write(ledger: &Ledger, endings: &[Ending]) -> Result<Vec<bool>> {
        let ended = ledger.end_settlements(endings).await?;
        Ok(endings
            .iter()
            .map(|ending| ended.contains(&ending.id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A ledger whose database is never reached (the writes below do not
    /// use it).
    fn ledger() -> Ledger {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .expect("a lazy pool");
        Ledger::new(pool)
    }

    static WRITES: AtomicUsize = AtomicUsize::new(0);

    /// Takes a while, then fails every request it carries.
    struct Failing;

    impl GroupWrite for Failing {
        type Request = u32;
        type Answer = u32;

        async fn write(_: &Ledger, _: &[u32]) -> Result<Vec<u32>> {
            WRITES.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(Error::unavailable("LEDGER_UNAVAILABLE", "connection lost"))
        }
    }

    /// Answers each request with itself doubled.
    struct Doubling;

    impl GroupWrite for Doubling {
        type Request = u32;
        type Answer = u32;

        async fn write(_: &Ledger, requests: &[u32]) -> Result<Vec<u32>> {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(requests.iter().map(|request| request * 2).collect())
        }
    }

    async fn write_concurrently<W: GroupWrite<Request = u32>>(
        commit: &Arc<GroupCommit<W>>,
        requests: u32,
    ) -> Vec<Result<W::Answer>> {
        let tasks: Vec<_> = (0..requests)
            .map(|request| {
                let commit = commit.clone();
                tokio::spawn(async move { commit.write(request).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            let answer = tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("every request is answered");
            answers.push(answer.expect("the request task ran"));
        }
        answers
    }

    #[tokio::test]
    async fn a_failed_write_answers_every_request_it_carried_with_the_error() {
        let commit = GroupCommit::<Failing>::new(ledger());
        let answers = write_concurrently(&commit, 40).await;
        assert_eq!(answers.len(), 40);
        for answer in answers {
            assert_eq!(answer.unwrap_err().reason, "LEDGER_UNAVAILABLE");
        }
        let writes = WRITES.load(Ordering::SeqCst);
        assert!(
            (1..40).contains(&writes),
            "40 requests in {writes} writes: grouped"
        );
    }

    #[tokio::test]
    async fn each_request_gets_its_own_answer_from_a_grouped_write() {
        let commit = GroupCommit::<Doubling>::new(ledger());
        let answers = write_concurrently(&commit, 300).await;
        for (request, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.unwrap(), request as u32 * 2);
        }
    }
}
