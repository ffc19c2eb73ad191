//! Opening an embedded SQLite file the one way every Tessera store does:
//! its directory created, the file created if missing, write-ahead logging
//! (readers never wait for the writer), a 5 s busy timeout, and the
//! durability the store asks for.

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::Path;
use std::time::Duration;

/// How long a connection waits for another's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// When a commit is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before the commit returns: survives a power cut (two fsyncs in WAL).
    Full,
    /// Survives the process dying; a power cut may lose the last commits.
    Normal,
}

/// The pool of at most `connections` over the SQLite file at `path`.
pub async fn open(
    path: &Path,
    connections: u32,
    durability: Durability,
) -> anyhow::Result<SqlitePool> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(BUSY_TIMEOUT);
    SqlitePoolOptions::new()
        .max_connections(connections)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_in_a_new_directory_opens_in_wal_with_the_durability_asked() {
        let dir = std::env::temp_dir().join(format!(
            "tessera-sqlite-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let path = dir.join("nested").join("store.db");
        for (durability, expected) in [(Durability::Full, 2), (Durability::Normal, 1)] {
            let pool = open(&path, 2, durability).await.unwrap();
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(synchronous, expected, "{durability:?}");
            pool.close().await;
        }
        assert!(path.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_path_that_cannot_be_a_directory_says_which() {
        let file = std::env::temp_dir().join(format!("tessera-sqlite-file-{}", std::process::id()));
        std::fs::write(&file, b"not a directory").unwrap();
        let error = open(&file.join("store.db"), 1, Durability::Full)
            .await
            .unwrap_err();
        assert!(
            format!("{error:#}").contains(&file.display().to_string()),
            "{error:#}"
        );
        std::fs::remove_file(file).unwrap();
    }
}
