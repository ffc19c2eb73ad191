//! When a paid call's payment is settled: `PAYMENT_SETTLE_MODE`.

use tessera_runtime::config::{env_bool, env_string};

/// When a paid call's payment is settled (`PAYMENT_SETTLE_MODE`). Whatever
/// the mode, a payer the payment service calls a debtor (a settlement of a
/// call served to it failed) is settled before its call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SettleMode {
    /// After the call succeeded, answering once the transfer is mined: the
    /// answer carries the settled `PAYMENT-RESPONSE` (or a pending one when
    /// the settlement did not finish in time).
    Sync,
    /// After the call succeeded, answering at once: the payment is queued in
    /// the ledger and settled in the background; the answer's
    /// `PAYMENT-RESPONSE` says `settlement_pending` and names the payment
    /// (`GET /api/payments/{id}`). A served call is lent until its transfer
    /// lands: bounded per payer by the exposure bound, a failure a debt.
    /// The default: the exposure bound is always on.
    #[default]
    Async,
    /// Before the call runs: an unsettled payment runs nothing.
    Before,
}

impl SettleMode {
    /// `sync`, `async` or `before` (any case).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sync" => Ok(SettleMode::Sync),
            "async" => Ok(SettleMode::Async),
            "before" => Ok(SettleMode::Before),
            _ => anyhow::bail!(
                "PAYMENT_SETTLE_MODE={text:?}: expected \"sync\", \"async\" or \"before\""
            ),
        }
    }

    /// The mode `PAYMENT_SETTLE_MODE` (`mode`) and the older
    /// `PAYMENT_SETTLE_BEFORE_EXECUTION` (`before`) choose together, each
    /// `None` when unset: either alone decides; both must agree.
    pub fn resolve(mode: Option<&str>, before: Option<bool>) -> anyhow::Result<Self> {
        let chosen = mode.map(SettleMode::parse).transpose()?;
        match (chosen, before) {
            (None, None | Some(false)) => Ok(SettleMode::default()),
            (None, Some(true)) => Ok(SettleMode::Before),
            (Some(mode), None) => Ok(mode),
            (Some(mode), Some(before)) if (mode == SettleMode::Before) == before => Ok(mode),
            (Some(mode), Some(before)) => anyhow::bail!(
                "PAYMENT_SETTLE_MODE={} and PAYMENT_SETTLE_BEFORE_EXECUTION={before} disagree: \
                 set PAYMENT_SETTLE_MODE alone",
                mode.as_str()
            ),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SettleMode::Sync => "sync",
            SettleMode::Async => "async",
            SettleMode::Before => "before",
        }
    }
}

/// From `PAYMENT_SETTLE_MODE` and `PAYMENT_SETTLE_BEFORE_EXECUTION`.
pub(crate) fn from_env() -> anyhow::Result<SettleMode> {
    let mode = Some(env_string("PAYMENT_SETTLE_MODE", "")).filter(|mode| !mode.is_empty());
    let before = match env_string("PAYMENT_SETTLE_BEFORE_EXECUTION", "").as_str() {
        "" => None,
        _ => Some(env_bool("PAYMENT_SETTLE_BEFORE_EXECUTION", false)?),
    };
    SettleMode::resolve(mode.as_deref(), before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_modes_parse_and_the_older_variable_agrees_or_is_refused() {
        assert_eq!(SettleMode::default(), SettleMode::Async);
        for (text, mode) in [
            ("sync", SettleMode::Sync),
            ("async", SettleMode::Async),
            (" Before ", SettleMode::Before),
            ("ASYNC", SettleMode::Async),
        ] {
            assert_eq!(SettleMode::parse(text).unwrap(), mode, "{text}");
            assert_eq!(SettleMode::parse(mode.as_str()).unwrap(), mode);
        }
        for bad in ["", "later", "true", "asynchronous"] {
            let refused = SettleMode::parse(bad).unwrap_err().to_string();
            assert!(refused.contains("PAYMENT_SETTLE_MODE"), "{refused}");
        }
        let resolve = SettleMode::resolve;
        assert_eq!(resolve(None, None).unwrap(), SettleMode::Async);
        assert_eq!(resolve(None, Some(false)).unwrap(), SettleMode::Async);
        assert_eq!(resolve(None, Some(true)).unwrap(), SettleMode::Before);
        assert_eq!(resolve(Some("async"), None).unwrap(), SettleMode::Async);
        assert_eq!(
            resolve(Some("async"), Some(false)).unwrap(),
            SettleMode::Async
        );
        assert_eq!(
            resolve(Some("sync"), Some(false)).unwrap(),
            SettleMode::Sync
        );
        assert_eq!(
            resolve(Some("before"), Some(true)).unwrap(),
            SettleMode::Before
        );
        assert!(resolve(Some("nope"), None).is_err());
        for (mode, before) in [("async", true), ("sync", true), ("before", false)] {
            let refused = resolve(Some(mode), Some(before)).unwrap_err().to_string();
            assert!(refused.contains("disagree"), "{mode} {before}: {refused}");
        }
    }
}
