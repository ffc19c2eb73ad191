//! The settler: settles queued payments (deferred settlements, see
//! [`Payments::queue`]) in the background.
//!
//! - **When.** At once when this process queues a payment (an in-process
//!   notification), and every `scan_every` besides, so rows another replica
//!   queued, or a stopped process left queued, are found: the ledger is the
//!   queue, nothing lives only in memory. The first look is at start.
//! - **How many.** At most `concurrency` settlements at once; each claim
//!   takes at most as many rows as there is room for (and at most 256: the
//!   facilitator batches what reaches it together, so a claim of 32 made
//!   batches of about 32), with `FOR UPDATE SKIP LOCKED`, so replicas never
//!   settle one row twice.
//! - **Behind callers.** Its settles are background ones at the
//!   facilitator: a call settled before it runs goes ahead of them
//!   ([`tessera_x402::facilitator::Urgency`]).
//! - **How.** Through the same path as any settlement of a served call:
//!   settled, pending (retried by the background pass), or failed, a
//!   failure being a debt that makes the payer a debtor.
//! - **Back-pressure.** It tells the payments its queue ([`crate::backlog`]):
//!   a call is answered before the chain only while its turn would come with
//!   its authorization still valid for a settle timeout.
//! - **A failed claim** (the ledger unreachable for a moment) is made
//!   again a second later, not left to the next notification or scan.
//! - **Stopping.** On shutdown nothing more is claimed; settlements in
//!   flight may finish (each is bounded by the settle timeout). One still
//!   running after that stays `settling`, and once its lease ran out
//!   (nothing renews it) the background pass settles it again (the nonce
//!   makes a second charge impossible). Queued
//!   rows stay queued for the next start or another replica.

use crate::Payments;
use std::time::{Duration, Instant};
use tessera_runtime::Shutdown;
use tokio::task::{JoinHandle, JoinSet};

/// The most rows one claim takes.
const CLAIM_AT_MOST: usize = 256;
/// How long after a failed claim the settler claims again: the rows it
/// missed may get no other notification (the calls stopped), and the next
/// scan may be far.
const CLAIM_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// A running settler.
pub struct Settler {
    task: JoinHandle<()>,
}

impl Settler {
    /// Settles `payments`' queued payments, at most `concurrency` at once,
    /// looking for queued rows at least every `scan_every`, until
    /// `shutdown`.
    pub fn spawn(
        payments: Payments,
        concurrency: usize,
        scan_every: Duration,
        shutdown: Shutdown,
    ) -> Settler {
        let task = tokio::spawn(run(payments, concurrency.max(1), scan_every, shutdown));
        Settler { task }
    }

    /// Returns once the settler has stopped (after its shutdown, when the
    /// settlements it had in flight have finished or were given up).
    pub async fn stopped(self) {
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the settler stopped abnormally");
        }
    }
}

async fn run(payments: Payments, concurrency: usize, scan_every: Duration, shutdown: Shutdown) {
    payments.backlog().settler_running(concurrency);
    let signal = payments.queued_signal();
    let mut in_flight = JoinSet::new();
    // (An interval of zero would panic.)
    let mut scan = tokio::time::interval(scan_every.max(Duration::from_millis(10)));
    scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Whether queued rows may be waiting; the interval's first tick (at
    // once) sets it.
    let mut look = false;
    // After a failed claim: when to claim again.
    let mut claim_again: Option<tokio::time::Instant> = None;
    loop {
        if shutdown.is_triggered() {
            break;
        }
        let room = concurrency.saturating_sub(in_flight.len());
        if look && room > 0 && claim_again.is_none() {
            let asked = room.min(CLAIM_AT_MOST);
            match payments.claim_queued(asked).await {
                Ok(claimed) => {
                    // A full claim may have left more behind.
                    look = claimed.len() == asked;
                    payments.backlog().claimed(claimed.len(), Instant::now());
                    crate::metrics::claimed(claimed.len());
                    for claimed in claimed {
                        crate::metrics::queue_wait(claimed.waited_seconds);
                        let payments = payments.clone();
                        in_flight.spawn(async move {
                            let ended = settle(&payments, &claimed.id, claimed.settleable).await;
                            payments.backlog().finished(Instant::now(), ended);
                        });
                    }
                    if look && in_flight.len() < concurrency {
                        continue;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "claiming queued settlements failed; claiming again shortly");
                    claim_again = Some(tokio::time::Instant::now() + CLAIM_AGAIN_AFTER);
                }
            }
        }
        tokio::select! {
            _ = shutdown.wait() => break,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {
                // A batch's settlements end together: free all of their
                // places before claiming, so one claim refills them (one at
                // a time, a claim's round trip each, would cap the settler).
                while in_flight.try_join_next().is_some() {}
            }
            _ = tokio::time::sleep_until(claim_again.unwrap_or_else(tokio::time::Instant::now)),
                if claim_again.is_some() => claim_again = None,
            _ = signal.notified() => look = true,
            _ = scan.tick() => {
                look = true;
                count_queue(&payments).await;
            }
        }
    }
    payments.backlog().settler_running(0);
    finish(payments.settle_timeout(), in_flight).await;
}

/// Publishes how many settlements wait and how long a new one would (once
/// per scan: a count is not free).
async fn count_queue(payments: &Payments) {
    match payments.ledger().queued(payments.scope()).await {
        Ok(depth) => {
            payments.backlog().counted(depth.max(0) as u64);
            crate::metrics::queue_depth(depth);
            if let Some(wait) = payments.backlog().expected_wait(Instant::now()) {
                crate::metrics::queue_expected_wait(wait);
            }
        }
        Err(error) => tracing::debug!(%error, "counting queued settlements failed"),
    }
}

/// Settles one claimed payment; whether it ended (settled or failed), not
/// left pending or unrecorded for the background pass.
async fn settle(
    payments: &Payments,
    payment_id: &str,
    settleable: crate::ledger::Settleable,
) -> bool {
    match payments.settle_queued(payment_id, settleable).await {
        Ok(settled) => {
            tracing::debug!(
                payment_id,
                success = settled.response.success,
                pending = settled.pending,
                "settled a queued payment"
            );
            !settled.pending
        }
        // Claimed but not recorded: it stays `settling`, and the background
        // pass settles it again (the chain, not the ledger, says whether
        // it was paid).
        Err(error) => {
            tracing::warn!(payment_id, %error, "a queued settlement could not be recorded");
            false
        }
    }
}

/// Lets the settlements in flight finish, giving up on those still running
/// a little past the settle timeout.
async fn finish(settle_timeout: Duration, mut in_flight: JoinSet<()>) {
    if in_flight.is_empty() {
        return;
    }
    tracing::info!(
        in_flight = in_flight.len(),
        "stopping: letting settlements in flight finish"
    );
    let grace = settle_timeout + Duration::from_secs(5);
    let drained = tokio::time::timeout(grace, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = in_flight.len(),
            "settlements still running at shutdown are left settling, for the background pass"
        );
        in_flight.abort_all();
    }
}
