//! Leases on `settling` payments: while this process settles a payment, a
//! heartbeat renews the row's `updated_at` every third of the lease, so the
//! background pass (which takes `settling` rows older than the lease) never
//! takes a settlement that is still running here, yet takes one whose
//! process stopped within a lease, while its authorization is still valid.
//! A second settle of one authorization would be harmless anyway (the
//! facilitator answers it with the first one's outcome); the lease is what
//! makes the retry of a dead settler's payment come soon.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crate::ledger::Ledger;

/// The payments this process is settling, renewed by one heartbeat task.
pub(crate) struct Leases {
    ledger: Ledger,
    lease: Duration,
    /// Payment id → how many settles here hold it.
    held: Mutex<HashMap<String, usize>>,
    heartbeat: OnceLock<()>,
}

/// A payment held while it lives.
pub(crate) struct Held {
    leases: Arc<Leases>,
    id: String,
}

impl Leases {
    pub(crate) fn new(ledger: Ledger, lease: Duration) -> Arc<Self> {
        Arc::new(Leases {
            ledger,
            lease,
            held: Mutex::new(HashMap::new()),
            heartbeat: OnceLock::new(),
        })
    }

    /// How long a `settling` row stays its settler's without renewal.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// Holds `id` (claimed as `settling` just before) until the returned
    /// guard is dropped.
    pub(crate) fn hold(self: &Arc<Self>, id: &str) -> Held {
        // Started on first use, inside the runtime; it ends with `self`.
        self.heartbeat.get_or_init(|| {
            tokio::spawn(renew(Arc::downgrade(self), self.lease / 3));
        });
        *self
            .held
            .lock()
            .expect("not poisoned")
            .entry(id.to_string())
            .or_default() += 1;
        Held {
            leases: self.clone(),
            id: id.to_string(),
        }
    }

    fn held_ids(&self) -> Vec<String> {
        self.held
            .lock()
            .expect("not poisoned")
            .keys()
            .cloned()
            .collect()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut held) = self.leases.held.lock() {
            if let Some(count) = held.get_mut(&self.id) {
                *count -= 1;
                if *count == 0 {
                    held.remove(&self.id);
                }
            }
        }
    }
}

/// The heartbeat: renews every held payment each `every`.
async fn renew(leases: Weak<Leases>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(leases) = leases.upgrade() else {
            return;
        };
        let ids = leases.held_ids();
        if ids.is_empty() {
            continue;
        }
        if let Err(error) = leases.ledger.renew(&ids).await {
            // The next beat tries again; a lease outlives two missed beats.
            tracing::warn!(%error, held = ids.len(), "renewing settlement leases failed");
        }
    }
}
