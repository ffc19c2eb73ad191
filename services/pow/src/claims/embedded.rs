//! Claims in this process, the embedded default (one process): a map is the
//! authority, so a claim costs a lock and no I/O, and every change is also
//! written to SQLite behind it (one transaction per batch of changes). A
//! restart loads the claims not yet expired (without their ids: the process
//! that could give them back is gone). The writer commits every 50 ms at
//! most, so a busy process writes about 20 large transactions a second
//! rather than one per call, of one short row per spent challenge.
//!
//! A process killed before its last changes reached SQLite (at most about
//! 50 ms of them) forgets those claims: such a solution could pay for one
//! more call before it expires, as with a Redis that loses its data. Written
//! before answering, a claim cost an fsync or a SQLite round trip per call:
//! 2,400 and 5,300 PoW tool calls/s in `make bench`, against 18,000–21,000
//! so (0.77–0.85 of the same call free).

use super::unavailable;

use sqlx::SqlitePool;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tessera_error::Error;
use tokio::sync::{mpsc, oneshot};

/// Expired claims are dropped (from the map and the table) at most this
/// often (milliseconds).
const PURGE_EVERY_MS: i64 = 60_000;
/// Changes written in one transaction at most.
const MAX_BATCH: usize = 4096;
/// The writer's pause after each transaction (at 10 ms the PoW tool call
/// measured 0.71–0.76 of the free one, at 50 ms 0.80–0.81).
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Clone)]
pub struct EmbeddedClaims {
    held: Arc<Mutex<Held>>,
    changes: mpsc::UnboundedSender<Change>,
}

struct Held {
    /// Challenge → (claim id, expiry in unix milliseconds).
    claims: HashMap<String, (String, i64)>,
    next_purge_ms: i64,
}

enum Change {
    Claim {
        challenge: String,
        expires_at_ms: i64,
    },
    Release {
        challenge: String,
    },
    /// Answered once every change sent before it is written.
    Flush(oneshot::Sender<()>),
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

impl EmbeddedClaims {
    /// Opens (or creates) the SQLite file at `path` and loads the claims
    /// that have not expired.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        // Written behind the map anyway: a commit need not wait for the disk.
        let pool = tessera_sqlite::open(path, 1, tessera_sqlite::Durability::Normal).await?;
        // One row per spent challenge and its expiry, in the key's own
        // B-tree (no rowid): the claim ids live only in the map, since only
        // the process that made a claim can give it back.
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS pow_spent (
                 challenge TEXT PRIMARY KEY,
                 expires_at_ms INTEGER NOT NULL
             ) WITHOUT ROWID",
        )
        .execute(&pool)
        .await?;
        let now = unix_ms();
        migrate_from_claims_table(&pool, now).await?;
        sqlx::query("DELETE FROM pow_spent WHERE expires_at_ms <= ?")
            .bind(now)
            .execute(&pool)
            .await?;
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT challenge, expires_at_ms FROM pow_spent")
                .fetch_all(&pool)
                .await?;
        // Spent before this process: nobody here holds them, none can be
        // given back.
        let claims = rows
            .into_iter()
            .map(|(challenge, expires_at_ms)| (challenge, (String::new(), expires_at_ms)))
            .collect();
        let (changes, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_behind(pool, queue));
        Ok(EmbeddedClaims {
            held: Arc::new(Mutex::new(Held {
                claims,
                next_purge_ms: now + PURGE_EVERY_MS,
            })),
            changes,
        })
    }

    pub fn claim(
        &self,
        challenge: &str,
        claim: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, Error> {
        let mut held = self.held.lock().expect("the claims lock is never poisoned");
        if now_ms >= held.next_purge_ms {
            held.claims.retain(|_, (_, expires)| *expires > now_ms);
            held.next_purge_ms = now_ms + PURGE_EVERY_MS;
        }
        if let Some((_, expires)) = held.claims.get(challenge) {
            if *expires > now_ms {
                return Ok(false);
            }
        }
        let change = Change::Claim {
            challenge: challenge.to_string(),
            expires_at_ms,
        };
        self.changes
            .send(change)
            .map_err(|_| unavailable("claim", "the claim writer stopped"))?;
        held.claims
            .insert(challenge.to_string(), (claim.to_string(), expires_at_ms));
        Ok(true)
    }

    pub fn release(&self, challenge: &str, claim: &str) -> Result<bool, Error> {
        // A claim restored from SQLite has no id (""): nobody gives it back.
        if claim.is_empty() {
            return Ok(false);
        }
        let mut held = self.held.lock().expect("the claims lock is never poisoned");
        if held.claims.get(challenge).map(|(id, _)| id.as_str()) != Some(claim) {
            return Ok(false);
        }
        held.claims.remove(challenge);
        let change = Change::Release {
            challenge: challenge.to_string(),
        };
        self.changes
            .send(change)
            .map_err(|_| unavailable("release", "the claim writer stopped"))?;
        Ok(true)
    }

    /// Waits until every change made so far is in SQLite.
    pub async fn flushed(&self) -> Result<(), Error> {
        let (done, written) = oneshot::channel();
        self.changes
            .send(Change::Flush(done))
            .map_err(|_| unavailable("flush", "the claim writer stopped"))?;
        written
            .await
            .map_err(|_| unavailable("flush", "the claim writer stopped"))
    }
}

/// Moves the unexpired claims of the table an earlier version kept
/// (`pow_claims`, with claim ids) into `pow_spent`, and drops it.
async fn migrate_from_claims_table(pool: &SqlitePool, now: i64) -> anyhow::Result<()> {
    let old: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'pow_claims'",
    )
    .fetch_optional(pool)
    .await?;
    if old.is_none() {
        return Ok(());
    }
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "INSERT OR IGNORE INTO pow_spent (challenge, expires_at_ms)
         SELECT challenge, expires_at_ms FROM pow_claims WHERE expires_at_ms > ?",
    )
    .bind(now)
    .execute(&mut *transaction)
    .await?;
    sqlx::query("DROP TABLE pow_claims")
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// Writes the changes as they come, each batch in one transaction, in order.
async fn write_behind(pool: SqlitePool, mut queue: mpsc::UnboundedReceiver<Change>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut next_purge_ms = unix_ms() + PURGE_EVERY_MS;
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut flushed = Vec::new();
        if let Err(error) = write(&pool, batch.drain(..), &mut flushed).await {
            // What was not written stays in the map: the process still
            // refuses those replays; only a restart would forget them.
            tracing::warn!(%error, "pow claims: a batch was not written to SQLite");
        }
        for done in flushed {
            let _ = done.send(());
        }
        tokio::time::sleep(WRITE_EVERY).await;
        let now = unix_ms();
        if now >= next_purge_ms {
            next_purge_ms = now + PURGE_EVERY_MS;
            let purged = sqlx::query("DELETE FROM pow_spent WHERE expires_at_ms <= ?")
                .bind(now)
                .execute(&pool)
                .await;
            if let Err(error) = purged {
                tracing::warn!(%error, "pow claims: expired rows were not purged");
            }
        }
    }
}

/// Claims written by one statement at most (2 parameters each).
const CLAIMS_PER_STATEMENT: usize = 256;

async fn write(
    pool: &SqlitePool,
    changes: impl Iterator<Item = Change>,
    flushed: &mut Vec<oneshot::Sender<()>>,
) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    // Consecutive claims go in one statement; a release writes them first,
    // so every change lands in the order it was made.
    let mut claims: Vec<(String, i64)> = Vec::new();
    for change in changes {
        match change {
            Change::Claim {
                challenge,
                expires_at_ms,
            } => {
                claims.push((challenge, expires_at_ms));
                if claims.len() == CLAIMS_PER_STATEMENT {
                    insert_claims(&mut transaction, &mut claims).await?;
                }
            }
            Change::Release { challenge } => {
                insert_claims(&mut transaction, &mut claims).await?;
                sqlx::query("DELETE FROM pow_spent WHERE challenge = ?")
                    .bind(challenge)
                    .execute(&mut *transaction)
                    .await?;
            }
            Change::Flush(done) => flushed.push(done),
        }
    }
    insert_claims(&mut transaction, &mut claims).await?;
    transaction.commit().await
}

async fn insert_claims(
    transaction: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    claims: &mut Vec<(String, i64)>,
) -> Result<(), sqlx::Error> {
    if claims.is_empty() {
        return Ok(());
    }
    let mut insert = sqlx::QueryBuilder::new("INSERT INTO pow_spent (challenge, expires_at_ms) ");
    insert.push_values(claims.drain(..), |mut row, (challenge, expires_at_ms)| {
        row.push_bind(challenge).push_bind(expires_at_ms);
    });
    insert.push(" ON CONFLICT (challenge) DO UPDATE SET expires_at_ms = excluded.expires_at_ms");
    insert.build().execute(&mut **transaction).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file() -> std::path::PathBuf {
        let name = format!(
            "tessera-pow-claims-{}.db",
            hex::encode(rand::random::<[u8; 8]>())
        );
        std::env::temp_dir().join("tessera-pow-tests").join(name)
    }

    #[tokio::test]
    async fn claims_survive_a_restart_and_releases_too() {
        let path = temp_file();
        let now = unix_ms();
        let later = now + 60_000;
        let store = EmbeddedClaims::open(&path).await.unwrap();
        assert!(store.claim("kept", "a", later, now).unwrap());
        assert!(store.claim("released", "b", later, now).unwrap());
        assert!(store.claim("expired", "c", now + 50, now).unwrap());
        assert!(store.release("released", "b").unwrap());
        store.flushed().await.unwrap();
        drop(store);
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;

        let reopened = EmbeddedClaims::open(&path).await.unwrap();
        let now = unix_ms();
        assert!(
            !reopened.claim("kept", "x", later, now).unwrap(),
            "still spent"
        );
        assert!(
            reopened.claim("released", "y", later, now).unwrap(),
            "given back"
        );
        assert!(
            reopened.claim("expired", "z", later, now).unwrap(),
            "expired"
        );
        // The process that held it is gone: nobody gives it back.
        assert!(!reopened.release("kept", "x").unwrap());
        assert!(!reopened.release("kept", "a").unwrap());
        assert!(!reopened.release("kept", "").unwrap());
    }

    #[tokio::test]
    async fn claims_kept_by_the_earlier_table_stay_spent() {
        let path = temp_file();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let now = unix_ms();
        {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .connect_with(options)
                .await
                .unwrap();
            sqlx::query(
                "CREATE TABLE pow_claims (challenge TEXT PRIMARY KEY, claim TEXT NOT NULL, expires_at_ms INTEGER NOT NULL)",
            )
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query("INSERT INTO pow_claims VALUES ('old', 'id', ?), ('gone', 'id', ?)")
                .bind(now + 60_000)
                .bind(now - 1)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        let store = EmbeddedClaims::open(&path).await.unwrap();
        assert!(
            !store.claim("old", "x", now + 60_000, now).unwrap(),
            "still spent"
        );
        assert!(
            store.claim("gone", "x", now + 60_000, now).unwrap(),
            "expired"
        );
    }

    #[tokio::test]
    async fn an_expired_claim_may_be_taken_again_and_a_stale_release_cannot_free_it() {
        let store = EmbeddedClaims::open(&temp_file()).await.unwrap();
        let now = unix_ms();
        assert!(store.claim("c", "old", now + 10, now).unwrap());
        assert!(!store.claim("c", "new", now + 60_000, now + 5).unwrap());
        assert!(store.claim("c", "new", now + 60_000, now + 10).unwrap());
        assert!(!store.release("c", "old").unwrap());
        assert!(!store.claim("c", "third", now + 60_000, now + 20).unwrap());
    }
}
