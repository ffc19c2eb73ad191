//! The standalone binary refuses to start without a usable `POW_SECRET`
//! unless FREE_MODE (then it signs with a key of its own process).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pow(envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera-pow"));
    command
        .env_clear()
        .env("POW_GRPC_ADDR", "127.0.0.1:0")
        .env(
            "POW_EMBEDDED_PATH",
            std::env::temp_dir().join(format!("tessera-pow-startup-{}.db", std::process::id())),
        )
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn refused(envs: &[(&str, &str)], needle: &str) {
    let output = pow(envs).output().unwrap();
    assert!(!output.status.success(), "{envs:?} started");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(needle), "{envs:?}: {stderr}");
}

#[test]
fn no_secret_no_start_in_paid_mode() {
    refused(&[], "POW_SECRET is not set");
    refused(&[("POW_SECRET", "short")], "at least 32");
    refused(&[("FREE_MODE", "false")], "POW_SECRET is not set");
    refused(
        &[
            ("POW_SECRET", "0123456789abcdef0123456789abcdef"),
            ("POW_DIFFICULTY", "0"),
        ],
        "difficulty",
    );
}

#[test]
fn free_mode_starts_without_a_secret() {
    let mut child = pow(&[("FREE_MODE", "true")]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
