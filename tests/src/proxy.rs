//! A TCP proxy the test can pause: bytes stop flowing both ways until it
//! resumes, which holds a server's queries in flight for as long as the
//! test needs. It can also stop by itself at a given request (the first
//! client bytes containing a pattern, e.g. `COMMIT` or a script's SHA), slow
//! every chunk down, or sever every connection (a client that vanished).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct PausableProxy {
    pub addr: SocketAddr,
    gate: Arc<Gate>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Gate {
    paused: watch::Sender<bool>,
    /// Set when a held pattern stopped the proxy; cleared on resume.
    holding: watch::Sender<bool>,
    hold_on: Mutex<Option<Vec<u8>>>,
    delay: Mutex<Duration>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
}

impl PausableProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gate = Arc::new(Gate::default());
        let accepting = gate.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let mut pumps = accepting.pumps.lock().unwrap();
                pumps.retain(|pump| !pump.is_finished());
                pumps.push(tokio::spawn(pump(
                    client_read,
                    server_write,
                    accepting.clone(),
                    true,
                )));
                pumps.push(tokio::spawn(pump(
                    server_read,
                    client_write,
                    accepting.clone(),
                    false,
                )));
            }
        });
        PausableProxy { addr, gate, task }
    }

    pub fn pause(&self) {
        self.gate.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.gate.holding.send_replace(false);
        self.gate.paused.send_replace(false);
    }

    /// Pauses when the client next sends bytes containing `pattern`, before
    /// they reach the server.
    pub fn hold_on(&self, pattern: &[u8]) {
        *self.gate.hold_on.lock().unwrap() = Some(pattern.to_vec());
    }

    /// Stops waiting for the pattern [`Self::hold_on`] set.
    pub fn cancel_hold(&self) {
        *self.gate.hold_on.lock().unwrap() = None;
    }

    /// Waits up to `timeout` for [`Self::hold_on`] to have stopped the proxy.
    pub async fn held_within(&self, timeout: Duration) -> bool {
        let mut holding = self.gate.holding.subscribe();
        let held = tokio::time::timeout(timeout, holding.wait_for(|h| *h))
            .await
            .is_ok();
        held
    }

    /// Delays every chunk in both directions (a slow network or server).
    pub fn slow(&self, delay: Duration) {
        *self.gate.delay.lock().unwrap() = delay;
    }

    /// Closes every connection and accepts no more: the client is dead.
    pub fn close(&self) {
        self.task.abort();
        self.sever();
    }

    /// Closes every open connection, as if the client process died.
    pub fn sever(&self) {
        for pump in self.gate.pumps.lock().unwrap().drain(..) {
            pump.abort();
        }
        self.slow(Duration::ZERO);
        self.resume();
    }
}

impl Drop for PausableProxy {
    fn drop(&mut self) {
        self.task.abort();
        for pump in self.gate.pumps.lock().unwrap().drain(..) {
            pump.abort();
        }
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    gate: Arc<Gate>,
    from_client: bool,
) {
    let mut paused = gate.paused.subscribe();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if from_client {
            let mut hold_on = gate.hold_on.lock().unwrap();
            let hit = hold_on
                .as_deref()
                .is_some_and(|pattern| contains(&buffer[..n], pattern));
            if hit {
                *hold_on = None;
                gate.paused.send_replace(true);
                gate.holding.send_replace(true);
            }
        }
        let delay = *gate.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if paused.wait_for(|p| !*p).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
