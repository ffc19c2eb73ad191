//! A redis-server of the test's own on a free port, that the test may
//! SIGKILL and restart: empty (it keeps nothing on disk), or, when started
//! with a data directory, from the last snapshot it was told to `SAVE`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Where `SAVE` writes and a restart reads `dump.rdb`, if anywhere.
    data_dir: Option<std::path::PathBuf>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    pub fn start() -> Self {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            data_dir: None,
        };
        server.spawn();
        server
    }

    /// A server that loads `dump.rdb` from its own directory at every start
    /// (and writes it only when told to `SAVE`), as Redis does as shipped.
    pub fn start_with_snapshots() -> Self {
        let dir =
            std::env::temp_dir().join(format!("tessera-redis-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            data_dir: Some(dir),
        };
        server.spawn();
        server
    }

    /// SIGKILL, then start again on the same port from the last snapshot.
    pub fn restart_from_snapshot(&mut self) {
        assert!(self.data_dir.is_some(), "started without snapshots");
        self.kill();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
        if let Some(dir) = &self.data_dir {
            command.arg("--dir").arg(dir);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: everything in memory is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port, empty.
    pub fn restart_empty(&mut self) {
        self.kill();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_file(dir.join("dump.rdb"));
        }
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Sends one argument-less command (`FLUSHALL`, `SAVE`, …) to the Redis at
/// `url`.
pub async fn command(url: &str, command: &str) -> redis::RedisResult<()> {
    let mut connection = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    redis::cmd(command)
        .query_async::<redis::Value>(&mut connection)
        .await
        .map(drop)
}

impl RedisServer {
    /// [`command`] on this server; panics if it fails.
    pub async fn command(&self, name: &str) {
        command(&self.url(), name)
            .await
            .unwrap_or_else(|error| panic!("{name} on the test's Redis: {error}"));
    }
}
