//! Both backends against the same expectations, on a real Redis.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_error::ErrorKind;
use tessera_ratelimit::{Decision, Limiter, Quota, MAX_KEY_BYTES};

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A name no other test (or earlier run) uses.
fn unique(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{}-{nanos}-{n}", std::process::id())
}

async fn redis_limiter(quota: Quota) -> Limiter {
    Limiter::redis(REDIS_URL, &unique("test"), quota)
        .await
        .expect("Redis at 127.0.0.1:6379")
}

/// One local and one Redis limiter with `quota`.
async fn both(quota: Quota) -> [Limiter; 2] {
    [Limiter::local(quota), redis_limiter(quota).await]
}

async fn redis_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn allowed(remaining: u32) -> Decision {
    Decision::Allowed { remaining }
}

fn retry_after(decision: Decision) -> Duration {
    match decision {
        Decision::Limited { retry_after } => retry_after,
        allowed => panic!("expected Limited, got {allowed:?}"),
    }
}

async fn three_a_minute_then_limited(limiter: &Limiter) {
    let key = unique("ip");
    assert_eq!(
        limiter.check(&key).await.unwrap(),
        allowed(2),
        "{limiter:?}"
    );
    assert_eq!(
        limiter.check(&key).await.unwrap(),
        allowed(1),
        "{limiter:?}"
    );
    assert_eq!(
        limiter.check(&key).await.unwrap(),
        allowed(0),
        "{limiter:?}"
    );
    let first_wait = retry_after(limiter.check(&key).await.unwrap());
    assert!(
        first_wait > Duration::from_secs(19) && first_wait <= Duration::from_secs(20),
        "{limiter:?}: {first_wait:?}"
    );
    // A refused request is not counted: the wait does not grow.
    let second_wait = retry_after(limiter.check(&key).await.unwrap());
    assert!(second_wait <= first_wait, "{limiter:?}: {second_wait:?}");
}

#[tokio::test]
async fn three_a_minute_allows_three_then_says_when_the_next_conforms() {
    for limiter in both(Quota::per_minute(3).unwrap()).await {
        three_a_minute_then_limited(&limiter).await;
    }
}

async fn one_request_is_regained_after_one_interval(limiter: &Limiter) {
    let key = unique("ip");
    for remaining in (0..10).rev() {
        assert_eq!(limiter.check(&key).await.unwrap(), allowed(remaining));
    }
    let mut wait = Duration::ZERO;
    for _ in 0..3 {
        wait = retry_after(limiter.check(&key).await.unwrap());
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{limiter:?}: {wait:?}"
        );
    }
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    // Exactly one regained, although three refused requests came meanwhile.
    assert_eq!(
        limiter.check(&key).await.unwrap(),
        allowed(0),
        "{limiter:?}"
    );
    retry_after(limiter.check(&key).await.unwrap());
}

#[tokio::test]
async fn a_request_is_regained_every_emission_interval() {
    let ten_a_second = Quota::new(10, Duration::from_secs(1), 10).unwrap();
    for limiter in both(ten_a_second).await {
        one_request_is_regained_after_one_interval(&limiter).await;
    }
}

async fn concurrent_checks_allow_exactly_the_burst(limiter: &Limiter) {
    let key = unique("wallet");
    let checks = (0..50).map(|_| {
        let limiter = limiter.clone();
        let key = key.clone();
        tokio::spawn(async move { limiter.check(&key).await.unwrap() })
    });
    let mut remainings = Vec::new();
    for check in checks.collect::<Vec<_>>() {
        if let Decision::Allowed { remaining } = check.await.unwrap() {
            remainings.push(remaining);
        }
    }
    remainings.sort_unstable();
    // Ten allowed, each seeing a different state of the cell.
    assert_eq!(remainings, (0..10).collect::<Vec<_>>(), "{limiter:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_checks_allow_exactly_the_burst() {
    for limiter in both(Quota::per_hour(10).unwrap()).await {
        concurrent_checks_allow_exactly_the_burst(&limiter).await;
    }
}

#[tokio::test]
async fn keys_have_their_own_cells() {
    for limiter in both(Quota::per_minute(1).unwrap()).await {
        let (a, b) = (unique("a"), unique("b"));
        assert_eq!(limiter.check(&a).await.unwrap(), allowed(0));
        retry_after(limiter.check(&a).await.unwrap());
        assert_eq!(limiter.check(&b).await.unwrap(), allowed(0), "{limiter:?}");
    }
}

#[tokio::test]
async fn redis_limiters_with_one_name_share_a_budget_and_other_names_do_not() {
    let quota = Quota::per_hour(5).unwrap();
    let name = unique("shared");
    let first = Limiter::redis(REDIS_URL, &name, quota).await.unwrap();
    let second = Limiter::redis(REDIS_URL, &name, quota).await.unwrap();
    let key = unique("ip");
    let mut allowed_count = 0;
    for limiter in [&first, &second].into_iter().cycle().take(10) {
        allowed_count += u32::from(limiter.check(&key).await.unwrap().is_allowed());
    }
    assert_eq!(allowed_count, quota.burst);
    let other = Limiter::redis(REDIS_URL, &unique("other"), quota)
        .await
        .unwrap();
    assert_eq!(other.check(&key).await.unwrap(), allowed(4));
}

#[tokio::test]
async fn the_redis_cell_holds_an_integer_tat_and_expires_when_full_again() {
    let name = unique("layout");
    let limiter = Limiter::redis(REDIS_URL, &name, Quota::per_minute(3).unwrap())
        .await
        .unwrap();
    let key = "0xAbC0000000000000000000000000000000000001";
    limiter.check(key).await.unwrap();
    limiter.check(key).await.unwrap();
    let mut redis = redis_connection().await;
    let cell = format!("tessera:ratelimit:{name}:{key}");
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut redis).await.unwrap();
    let now_us = seconds * 1_000_000 + micros;
    let tat: String = redis::cmd("GET")
        .arg(&cell)
        .query_async(&mut redis)
        .await
        .unwrap();
    let tat: u64 = tat.parse().expect("the TAT is stored as an integer");
    // Two requests: the TAT is two intervals (40 s) after the first.
    let ahead = tat - now_us;
    assert!(
        (39_000_000..=40_000_000).contains(&ahead),
        "TAT {ahead} µs ahead"
    );
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(&cell)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((39_000..=40_000).contains(&ttl_ms), "PTTL {ttl_ms}");
}

#[tokio::test]
async fn keys_longer_than_the_limit_are_refused_not_hashed() {
    for limiter in both(Quota::per_minute(3).unwrap()).await {
        let longest =
            format!("{}{}", unique("k"), "x".repeat(MAX_KEY_BYTES))[..MAX_KEY_BYTES].to_string();
        assert_eq!(limiter.check(&longest).await.unwrap(), allowed(2));
        let error = limiter
            .check(&format!("{longest}y"))
            .await
            .expect_err("a 129-byte key");
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
        assert_eq!(error.reason, "RATE_LIMIT_KEY_TOO_LONG");
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_found_at_construction() {
    let started = Instant::now();
    let result = Limiter::redis(
        "redis://127.0.0.1:1",
        "unreachable",
        Quota::per_minute(3).unwrap(),
    )
    .await;
    assert!(result.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_redis_error_during_a_check_is_unavailable() {
    let name = unique("broken");
    let limiter = Limiter::redis(REDIS_URL, &name, Quota::per_minute(3).unwrap())
        .await
        .unwrap();
    // Something else wrote a hash where the cell lives: the script fails.
    let mut redis = redis_connection().await;
    let cell = format!("tessera:ratelimit:{name}:k");
    let _: () = redis::cmd("HSET")
        .arg(&cell)
        .arg("field")
        .arg("value")
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: () = redis::cmd("PEXPIRE")
        .arg(&cell)
        .arg(60_000)
        .query_async(&mut redis)
        .await
        .unwrap();
    let error = limiter.check("k").await.expect_err("WRONGTYPE");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert_eq!(error.reason, "RATE_LIMIT_STORE_UNAVAILABLE");
    // Other keys still work.
    assert_eq!(limiter.check("other").await.unwrap(), allowed(2));
}

#[tokio::test]
async fn bad_names_and_quotas_are_refused_at_construction() {
    let quota = Quota::per_minute(3).unwrap();
    assert!(Limiter::redis(REDIS_URL, "a:b", quota).await.is_err());
    assert!(Limiter::redis(REDIS_URL, "", quota).await.is_err());
    let no_burst = Quota { burst: 0, ..quota };
    assert!(Limiter::redis(REDIS_URL, &unique("q"), no_burst)
        .await
        .is_err());
    assert!(std::panic::catch_unwind(|| Limiter::local(no_burst)).is_err());
}

#[tokio::test]
async fn debug_shows_the_kind_and_quota_only() {
    let limiter = Limiter::redis(REDIS_URL, &unique("debug"), Quota::per_minute(3).unwrap())
        .await
        .unwrap();
    let printed = format!("{limiter:?}");
    assert!(
        printed.contains("redis") && printed.contains("limit: 3"),
        "{printed}"
    );
    assert!(!printed.contains("127.0.0.1"), "{printed}");
    assert_eq!(limiter.quota(), Quota::per_minute(3).unwrap());
    assert!(format!("{:?}", Limiter::local(limiter.quota())).contains("local"));
}
