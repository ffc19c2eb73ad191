//! Issue and redeem on both claim stores: the embedded SQLite file and the
//! shared Redis (127.0.0.1:6379, or `REDIS_URL`), two "replicas" included.

use crate::token::{solve, solves, Signer};
use crate::{Pow, PowConfig, Store};
use tessera_error::ErrorKind;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const BITS: u32 = 8;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn embedded() -> (Pow, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let store = Store::Embedded {
        path: dir.path.join("pow.db"),
    };
    (
        Pow::open(&PowConfig::for_tests(SECRET, BITS, store))
            .await
            .unwrap(),
        dir,
    )
}

async fn on_redis() -> Pow {
    let store = Store::Redis { url: redis_url() };
    Pow::open(&PowConfig::for_tests(SECRET, BITS, store))
        .await
        .unwrap()
}

/// A temporary directory removed on drop (no extra crate for it).
mod tempdir {
    pub struct Dir {
        pub path: std::path::PathBuf,
    }
    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!(
                "tessera-pow-{}",
                hex::encode(rand::random::<[u8; 8]>())
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir { path }
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

async fn solved(pow: &Pow, slug: &str) -> String {
    let challenge = pow.issue(slug).unwrap();
    assert_eq!(challenge.difficulty, BITS);
    let nonce = solve(&challenge.challenge, challenge.difficulty);
    format!("{}:{nonce}", challenge.token)
}

async fn single_use_and_release(pow: Pow) {
    let solution = solved(&pow, "hash").await;
    let claim = pow.redeem("hash", &solution).await.unwrap();
    let again = pow.redeem("hash", &solution).await.unwrap_err();
    assert_eq!(
        (again.kind, again.reason.as_str()),
        (ErrorKind::Conflict, "POW_ALREADY_USED")
    );
    // The call failed: the claim is given back and the solution works again.
    assert!(pow.release(&claim).await.unwrap());
    assert!(!pow.release(&claim).await.unwrap(), "released once only");
    let second = pow.redeem("hash", &solution).await.unwrap();
    // A stale release (the first claim's) cannot free the second claim.
    assert!(!pow.release(&claim).await.unwrap());
    assert_eq!(
        pow.redeem("hash", &solution).await.unwrap_err().reason,
        "POW_ALREADY_USED"
    );
    assert!(pow.release(&second).await.unwrap());
}

/// Every other spelling of a spent challenge is spent too: another nonce
/// that also solves it, the header padded with spaces.
async fn a_challenge_is_spent_whatever_the_nonce(pow: Pow) {
    let challenge = pow.issue("hash").unwrap();
    let mut nonces = (0u64..)
        .map(|n| n.to_string())
        .filter(|n| solves(&challenge.challenge, n, BITS));
    let (first, second) = (nonces.next().unwrap(), nonces.next().unwrap());
    pow.redeem("hash", &format!("{}:{first}", challenge.token))
        .await
        .unwrap();
    for other in [
        format!("{}:{second}", challenge.token),
        format!("  {}:{first} ", challenge.token),
    ] {
        let refused = pow.redeem("hash", &other).await.unwrap_err();
        assert_eq!(refused.reason, "POW_ALREADY_USED", "{other}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_a_challenge_is_spent_whatever_the_nonce() {
    let (pow, _dir) = embedded().await;
    a_challenge_is_spent_whatever_the_nonce(pow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_a_challenge_is_spent_whatever_the_nonce() {
    a_challenge_is_spent_whatever_the_nonce(on_redis().await).await;
}

async fn refusals(pow: Pow) {
    let solution = solved(&pow, "hash").await;
    let reason = |result: Result<String, tessera_error::Error>| result.unwrap_err().reason;
    // Another tool's route.
    assert_eq!(
        reason(pow.redeem("sha256", &solution).await),
        "POW_WRONG_TOOL"
    );
    // Too little work: a nonce that misses the difficulty.
    let challenge = pow.issue("hash").unwrap();
    let lazy = (0u64..)
        .map(|n| n.to_string())
        .find(|n| !solves(&challenge.challenge, n, BITS))
        .unwrap();
    let weak = format!("{}:{lazy}", challenge.token);
    assert_eq!(
        reason(pow.redeem("hash", &weak).await),
        "POW_INSUFFICIENT_WORK"
    );
    // Expired: a token (properly signed) whose time has passed.
    let (claims, token) = Signer::new(SECRET.as_bytes()).mint("hash", BITS, 1_000_000);
    let stale = format!("{token}:{}", solve(&claims.challenge, BITS));
    assert_eq!(reason(pow.redeem("hash", &stale).await), "POW_EXPIRED");
    // Forged: signed under another secret.
    let (claims, token) =
        Signer::new(b"not the secret, not the secret!!").mint("hash", 1, i64::MAX / 2000);
    let forged = format!("{token}:{}", solve(&claims.challenge, 1));
    assert_eq!(reason(pow.redeem("hash", &forged).await), "POW_FORGED");
    assert_eq!(reason(pow.redeem("hash", "junk").await), "POW_MALFORMED");
    // None of the refusals spent the good solution.
    pow.redeem("hash", &solution).await.unwrap();

    // Challenges only for cpu-tier tools.
    let unknown = pow.issue("no-such-tool").unwrap_err();
    assert_eq!(unknown.kind, ErrorKind::NotFound);
    let memory = pow.issue("memory.cas").unwrap_err();
    assert_eq!(memory.kind, ErrorKind::NotFound);
    assert!(memory.message.contains("wallet"), "{}", memory.message);
}

async fn concurrent_redeems_serve_one(replicas: Vec<Pow>) {
    let solution = solved(&replicas[0], "hash").await;
    let attempts = (0..32).map(|i| {
        let pow = replicas[i % replicas.len()].clone();
        let solution = solution.clone();
        tokio::spawn(async move { pow.redeem("hash", &solution).await })
    });
    let results = futures_join(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for result in results.iter().filter(|r| r.is_err()) {
        assert_eq!(result.as_ref().unwrap_err().reason, "POW_ALREADY_USED");
    }
}

async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_single_use_and_release() {
    let (pow, _dir) = embedded().await;
    single_use_and_release(pow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_single_use_and_release() {
    single_use_and_release(on_redis().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_refusals() {
    let (pow, _dir) = embedded().await;
    refusals(pow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_refusals() {
    refusals(on_redis().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_concurrent_redeems_serve_exactly_one() {
    let (pow, _dir) = embedded().await;
    concurrent_redeems_serve_one(vec![pow]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_sharing_redis_serve_exactly_one() {
    concurrent_redeems_serve_one(vec![on_redis().await, on_redis().await]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_challenge_from_one_replica_is_redeemed_at_another() {
    let (issuer, redeemer) = (on_redis().await, on_redis().await);
    let solution = solved(&issuer, "uuid").await;
    redeemer.redeem("uuid", &solution).await.unwrap();
    assert_eq!(
        issuer.redeem("uuid", &solution).await.unwrap_err().reason,
        "POW_ALREADY_USED"
    );
}

#[tokio::test]
async fn describe_lists_every_cpu_tool_and_no_memory_route() {
    let (pow, _dir) = embedded().await;
    let described = pow.describe();
    let tools = tessera_catalog::routes()
        .iter()
        .filter(|r| r.tool.is_some())
        .count();
    assert_eq!(described.tools.len(), tools);
    assert!(described
        .tools
        .iter()
        .all(|t| !t.slug.starts_with("memory")));
    assert_eq!(described.default_difficulty, BITS);
}
