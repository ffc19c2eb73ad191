//! Per-namespace wake-up signals for the watches of one process.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// Beyond this many namespaces, signals nobody listens to are dropped.
const PRUNE_ABOVE: usize = 1024;

#[derive(Default)]
pub struct Wakeups {
    senders: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Wakeups {
    /// A receiver that changes at every [`Wakeups::wake`] of `namespace`.
    pub fn subscribe(&self, namespace: &str) -> watch::Receiver<u64> {
        let mut senders = self.senders.lock().unwrap();
        if senders.len() > PRUNE_ABOVE {
            senders.retain(|_, sender| sender.receiver_count() > 0);
        }
        senders
            .entry(namespace.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    pub fn wake(&self, namespace: &str) {
        if let Some(sender) = self.senders.lock().unwrap().get(namespace) {
            sender.send_modify(|tick| *tick = tick.wrapping_add(1));
        }
    }

    /// Wakes every namespace (the signal source may have missed some).
    pub fn wake_all(&self) {
        for sender in self.senders.lock().unwrap().values() {
            sender.send_modify(|tick| *tick = tick.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_the_namespace_it_names_only() {
        let wakeups = Wakeups::default();
        let mut a = wakeups.subscribe("a");
        let b = wakeups.subscribe("b");
        wakeups.wake("a");
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        a.mark_unchanged();
        wakeups.wake_all();
        assert!(a.has_changed().unwrap() && b.has_changed().unwrap());
        wakeups.wake("nobody-listens");
    }
}
