//! GCRA cells in Redis: one Lua script (`gcra.lua`) per check, shared by
//! every process that uses the same Redis and limiter name.

use crate::{Decision, Quota};
use std::time::Duration;
use tessera_error::Error;

const KEY_PREFIX: &str = "tessera:ratelimit:";
const GCRA_LUA: &str = include_str!("gcra.lua");
/// How long a Redis answer (or a connection attempt, or a whole check) may
/// take. The library's 500 ms default fails checks spuriously under load.
const REDIS_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connection retries before a check fails: a down Redis should answer
/// "unavailable" quickly (the caller may fail open), not after ~6 s of
/// backoff. The next check tries to connect again.
const CONNECTION_RETRIES: usize = 2;

pub(crate) struct RedisCells {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
    key_prefix: String,
    emission_interval_us: u64,
    tolerance_us: u64,
}

/// A name is part of every key: restricting it keeps `name:key` unambiguous
/// (no `:` in names) so two limiters never share a cell.
fn check_name(name: &str) -> anyhow::Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 64 && name.chars().all(allowed),
        "rate-limit name {name:?} must be 1 to 64 characters of [A-Za-z0-9_.-]"
    );
    Ok(())
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> Error {
    tracing::warn!(%error, "rate-limit store: {what}");
    Error::unavailable(
        "RATE_LIMIT_STORE_UNAVAILABLE",
        format!("the rate-limit store is unavailable ({what})"),
    )
}

impl RedisCells {
    /// Connects now, so a wrong URL or an unreachable Redis is found at
    /// start-up. `quota` must be valid.
    pub(crate) async fn connect(url: &str, name: &str, quota: Quota) -> anyhow::Result<Self> {
        check_name(name)?;
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(REDIS_ANSWER_TIMEOUT))
            .set_connection_timeout(Some(REDIS_ANSWER_TIMEOUT))
            .set_number_of_retries(CONNECTION_RETRIES);
        let connection = redis::aio::ConnectionManager::new_with_config(client, config).await?;
        Ok(RedisCells {
            connection,
            script: redis::Script::new(GCRA_LUA),
            key_prefix: format!("{KEY_PREFIX}{name}:"),
            emission_interval_us: micros(quota.emission_interval()),
            tolerance_us: micros(quota.tolerance()),
        })
    }

    pub(crate) async fn check(&self, key: &str) -> Result<Decision, Error> {
        let mut invocation = self.script.key(format!("{}{key}", self.key_prefix));
        invocation
            .arg(self.emission_interval_us)
            .arg(self.tolerance_us);
        let mut connection = self.connection.clone();
        let step = invocation.invoke_async::<(i64, i64)>(&mut connection);
        let (allowed, value) = tokio::time::timeout(REDIS_ANSWER_TIMEOUT, step)
            .await
            .map_err(|_| unavailable("check", "timed out"))?
            .map_err(|error| unavailable("check", error))?;
        let value = u64::try_from(value).unwrap_or(0);
        Ok(if allowed == 1 {
            Decision::Allowed {
                remaining: u32::try_from(value).unwrap_or(u32::MAX),
            }
        } else {
            Decision::Limited {
                retry_after: Duration::from_micros(value),
            }
        })
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_run_into_keys_are_refused() {
        assert!(check_name("pow_challenge").is_ok());
        assert!(check_name("paid-calls.v2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a:b").is_err());
        assert!(check_name("{tag}").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
