//! The split services as they are deployed: each Tessera binary in its own
//! process, configured by its environment, its output kept in a file, killed
//! when dropped.

use crate::chain::{Chain, NETWORK, TOKEN_NAME, TOKEN_VERSION};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The packages of the server binaries, as the Makefile's
/// `SERVICE_BINARIES` lists them: `make test` builds the same set (one
/// feature resolution), so this build is a no-op there.
pub const SERVICE_PACKAGES: &[&str] = &[
    "tessera-suite",
    "tessera-gateway",
    "tessera-memory",
    "tessera-payment",
    "tessera-facilitator",
    "tessera-pow",
    "tessera-tools",
    "tessera-discovery",
    "tessera-stats",
];

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Builds the service binaries once per test process (nothing to do when
/// they are fresh) and answers the directory holding them.
pub fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        // Cargo and nextest describe this test's package in the environment
        // (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ...); build scripts (ring's)
        // rebuild when those differ from the last build, so they would flip
        // between this build and `cargo test`'s.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if PER_PACKAGE_ENV
                .iter()
                .any(|prefix| name.starts_with(prefix))
            {
                command.env_remove(&*name);
            }
        }
        command
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .arg("build")
            .arg("--quiet");
        for package in SERVICE_PACKAGES {
            command.args(["-p", package]);
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the service binaries failed");
        target_dir().join("debug")
    })
}

/// What cargo and nextest set for one package's tests, not for a build.
const PER_PACKAGE_ENV: &[&str] = &[
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
    "NEXTEST",
    "__NEXTEST",
    "RUST_TEST_THREADS",
];

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The facilitator binary's environment on `chain`: its RPC and key, its
/// HTTP address on `http_port` and its gRPC address on a free port.
pub fn facilitator_vars(chain: &Chain, http_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("FACILITATOR_RPC_URL", chain.rpc_url.clone()),
        (
            "FACILITATOR_PRIVATE_KEY",
            format!("{}", chain.facilitator_key.to_bytes()),
        ),
        ("FACILITATOR_HTTP_ADDR", format!("127.0.0.1:{http_port}")),
        (
            "FACILITATOR_GRPC_ADDR",
            format!("127.0.0.1:{}", free_port()),
        ),
    ]
}

/// The payment binary's environment on `chain`: its gRPC address on
/// `grpc_port`, its ledger at `database_url`, the facilitator at
/// `facilitator_url`, and the chain's payTo, token and RPC.
pub fn payment_vars(
    chain: &Chain,
    grpc_port: u16,
    database_url: String,
    facilitator_url: String,
) -> Vec<(&'static str, String)> {
    vec![
        ("PAYMENT_GRPC_ADDR", format!("127.0.0.1:{grpc_port}")),
        ("DATABASE_URL", database_url),
        ("FACILITATOR_URL", facilitator_url),
        ("PAYMENT_PAY_TO", chain.pay_to.to_checksum(None)),
        ("PAYMENT_NETWORK", NETWORK.into()),
        ("PAYMENT_ASSET", chain.token.to_checksum(None)),
        ("PAYMENT_ASSET_NAME", TOKEN_NAME.into()),
        ("PAYMENT_ASSET_VERSION", TOKEN_VERSION.into()),
        ("PAYMENT_RPC_URL", chain.rpc_url.clone()),
    ]
}

/// One running service binary.
pub struct Process {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `binary` (e.g. `tessera-memory`) with exactly `env` (plus
    /// `PATH`), its stdout and stderr into one log file.
    pub fn start(binary: &str, env: &BTreeMap<String, String>) -> Process {
        let log = std::env::temp_dir().join(format!(
            "tessera-{binary}-{:016x}.log",
            rand::random::<u64>()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(built().join(binary))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        Process {
            name: binary.to_string(),
            child: Some(child),
            log,
        }
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its log lines that are JSON objects (`LOG_FORMAT=json`).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.output()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Waits until `url` answers 200, or panics with the process's output.
    pub async fn wait_http(&mut self, url: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let client = reqwest::Client::new();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{} exited ({status}):\n{}", self.name, self.output());
                }
            }
            if let Ok(response) = client.get(url).send().await {
                if response.status() == reqwest::StatusCode::OK {
                    return;
                }
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{} did not answer 200 at {url} within {within:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until something accepts connections on `port`.
    pub async fn wait_port(&mut self, port: u16, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{} exited ({status}):\n{}", self.name, self.output());
                }
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not listen on {port} within {within:?}:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, as a crash: no handler runs, nothing in flight finishes or
    /// is flushed. Returns once it is gone; its output stays readable.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM, then waits for it to exit (a graceful stop flushes its
    /// spans), killing it after `within`.
    pub async fn stop(&mut self, within: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(within, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
