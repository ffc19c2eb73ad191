//! Environment-first configuration: every setting has a documented default,
//! and a malformed value is a start-up error naming the variable.

use anyhow::{anyhow, Context};
use std::str::FromStr;

/// Reads `name`, or `default` when unset or empty.
pub fn env_or<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .map_err(|e| anyhow!("{name}={raw:?} is not valid: {e}")),
        _ => Ok(default),
    }
}

pub fn env_string(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw.trim().to_string(),
        _ => default.to_string(),
    }
}

/// A configured secret (an API key, a token). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(std::sync::Arc<str>);

impl Secret {
    pub fn new(value: &str) -> Self {
        Secret(value.into())
    }

    /// The secret itself, to send it; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Reads the secret `name`, trimmed; `None` when unset or empty.
pub fn env_secret(name: &str) -> Option<Secret> {
    Some(env_string(name, ""))
        .filter(|value| !value.is_empty())
        .map(|value| Secret::new(&value))
}

/// `true/false`, `1/0`, `yes/no`, `on/off`.
pub fn env_bool(name: &str, default: bool) -> anyhow::Result<bool> {
    let raw = env_string(name, if default { "true" } else { "false" });
    parse_bool(&raw).with_context(|| format!("{name}={raw:?} is not a boolean"))
}

fn parse_bool(raw: &str) -> anyhow::Result<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(anyhow!("expected true or false")),
    }
}

/// A URL or DSN with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_parse_in_the_usual_spellings() {
        for yes in ["1", "true", "YES", "on"] {
            assert!(parse_bool(yes).unwrap());
        }
        for no in ["0", "false", "No", "off"] {
            assert!(!parse_bool(no).unwrap());
        }
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let secret = Secret::new("hunter2-value");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(Secret(***))");
        assert_eq!(secret.expose(), "hunter2-value");
    }

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
