//! A clonable shutdown signal: SIGINT/SIGTERM (or a test) triggers it, and
//! every server awaits it to drain in-flight requests before exiting.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    sender: std::sync::Arc<watch::Sender<bool>>,
    receiver: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (sender, receiver) = watch::channel(false);
        Shutdown {
            sender: std::sync::Arc::new(sender),
            receiver,
        }
    }

    /// A signal that fires on SIGINT or SIGTERM.
    pub fn on_signals() -> Self {
        let shutdown = Self::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received; draining");
            trigger.trigger();
        });
        shutdown
    }

    pub fn trigger(&self) {
        let _ = self.sender.send(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once the signal fired.
    pub async fn wait(&self) {
        let mut receiver = self.receiver.clone();
        let _ = receiver.wait_for(|fired| *fired).await;
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
