//! A PostgreSQL server of the test's own (initdb into a temporary directory,
//! a free port, trust auth), that the test may crash (`pg_ctl stop -m
//! immediate`: no checkpoint, WAL recovery at the next start) and start
//! again. The machine's shared server is never touched.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PostgresServer {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

/// The directory holding `initdb` and `pg_ctl` (Debian keeps them off PATH).
fn postgres_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return dir.into();
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort();
    candidates
        .pop()
        .filter(|bin| bin.join("initdb").exists())
        .expect(
            "PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or PG_BIN",
        )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Runs a server binary as `postgres` when we are root (it refuses root).
fn run(bin: &Path, args: &[&str]) {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let output = command
        .args(args)
        .output()
        .expect("run a PostgreSQL binary");
    assert!(
        output.status.success(),
        "{} {args:?}: {}",
        bin.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PostgresServer {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-pg-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .arg("postgres")
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown postgres {}", dir.display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PostgresServer {
            port,
            bin: postgres_bin(),
            dir,
        };
        let data = server.data_dir();
        run(
            &server.bin.join("initdb"),
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        server.pg_start();
        server
    }

    fn data_dir(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").to_string_lossy().into_owned();
        run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data_dir(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    /// Crashes the server (every connection cut, nothing flushed beyond the
    /// WAL) and starts it again, recovering from the WAL.
    pub fn crash_restart(&self) {
        self.crash();
        self.pg_start();
    }

    fn crash(&self) {
        run(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"],
        );
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.crash());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
