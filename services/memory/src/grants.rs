//! Grants: an owner namespace lets another namespace (the grantee) read, or
//! read and write, its memory, until revoked or until an optional expiry.
//!
//! A grant is checked only when a call's caller is not the namespace it acts
//! on (see [`crate::Memory::as_caller`]); own-namespace calls never look at
//! grants. An expired grant is the same as none: it allows nothing, is not
//! listed, and revoking it reports `revoked: false`. Expiry is measured on
//! the store's clock (PostgreSQL's for the durable backend, the process's for
//! the embedded one), in unix milliseconds.

use crate::model::validate_namespace;
use tessera_error::{Error, ErrorKind};

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessMode {
    /// Get and list.
    Read,
    /// Get, list, set, delete, compare-and-swap and increment.
    ReadWrite,
}

impl AccessMode {
    /// The stored and API spelling: `read` or `readwrite`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::Read => "read",
            AccessMode::ReadWrite => "readwrite",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(AccessMode::Read),
            "readwrite" => Some(AccessMode::ReadWrite),
            _ => None,
        }
    }

    /// Whether a grant of this mode permits an operation that needs `need`.
    pub fn allows(self, need: AccessMode) -> bool {
        self == AccessMode::ReadWrite || need == AccessMode::Read
    }
}

/// A grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The owner: the namespace shared.
    pub namespace: String,
    /// The namespace that may act on it.
    pub grantee: String,
    pub mode: AccessMode,
    /// Unix milliseconds; `None` = until revoked.
    pub expires_at_ms: Option<i64>,
    /// When this grant (its current mode and expiry) was given.
    pub created_at_ms: i64,
}

impl Grant {
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_none_or(|at| at > now_ms)
    }
}

/// A stored mode that is not one of ours: the row was written by something
/// else, so fail rather than guess.
pub fn stored_mode(text: &str) -> Result<AccessMode, Error> {
    AccessMode::parse(text)
        .ok_or_else(|| Error::internal(format!("a stored grant has an unknown mode {text:?}")))
}

/// Owner and grantee must be valid namespaces, and different.
pub fn validate_grant(namespace: &str, grantee: &str) -> Result<(), Error> {
    validate_namespace(namespace)?;
    validate_namespace(grantee).map_err(|e| Error {
        reason: "INVALID_GRANTEE".into(),
        message: format!("grantee: {}", e.message),
        ..e
    })?;
    if namespace == grantee {
        return Err(Error::invalid(
            "SELF_GRANT",
            "a namespace cannot grant access to itself: it always has it",
        ));
    }
    Ok(())
}

/// The refusal of a cross-namespace call; `held` is the caller's active
/// grant, if any (a read grant for a write).
pub fn no_grant(
    caller: &str,
    namespace: &str,
    need: AccessMode,
    held: Option<AccessMode>,
) -> Error {
    let message = match held {
        Some(mode) => format!(
            "{caller} has only a {} grant on namespace {namespace}; this call needs a {} grant",
            mode.as_str(),
            need.as_str()
        ),
        None => format!(
            "{caller} has no grant on namespace {namespace}; this call needs a {} grant from it",
            need.as_str()
        ),
    };
    Error::new(ErrorKind::PermissionDenied, "NO_GRANT", message)
        .with_detail("caller", caller)
        .with_detail("owner", namespace)
        .with_detail("needs", need.as_str())
}

/// Only a namespace itself manages its grants.
pub fn not_owner(caller: &str, namespace: &str) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        "NOT_OWNER",
        format!("only namespace {namespace} manages its grants, not {caller}"),
    )
    .with_detail("caller", caller)
    .with_detail("owner", namespace)
}

pub fn grant_quota_exceeded(limit: u64) -> Error {
    Error::new(
        ErrorKind::QuotaExceeded,
        "GRANT_QUOTA_EXCEEDED",
        format!("namespace grant quota of {limit} active grants would be exceeded"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readwrite_allows_everything_and_read_only_reads() {
        use AccessMode::*;
        assert!(Read.allows(Read));
        assert!(!Read.allows(ReadWrite));
        assert!(ReadWrite.allows(Read));
        assert!(ReadWrite.allows(ReadWrite));
    }

    #[test]
    fn modes_round_trip_through_text() {
        for mode in [AccessMode::Read, AccessMode::ReadWrite] {
            assert_eq!(AccessMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(AccessMode::parse("write"), None);
        assert!(stored_mode("READ").is_err());
    }

    #[test]
    fn grants_need_two_valid_distinct_namespaces() {
        assert!(validate_grant("0xaaa", "0xbbb").is_ok());
        assert_eq!(
            validate_grant("0xaaa", "0xaaa").unwrap_err().reason,
            "SELF_GRANT"
        );
        let bad = validate_grant("0xaaa", "no spaces").unwrap_err();
        assert_eq!(
            (bad.kind, bad.reason.as_str()),
            (ErrorKind::InvalidArgument, "INVALID_GRANTEE")
        );
        assert!(bad.message.starts_with("grantee: "));
        assert_eq!(
            validate_grant("", "0xbbb").unwrap_err().reason,
            "INVALID_NAMESPACE"
        );
    }

    #[test]
    fn expiry_is_exclusive() {
        let grant = Grant {
            namespace: "a".into(),
            grantee: "b".into(),
            mode: AccessMode::Read,
            expires_at_ms: Some(1_000),
            created_at_ms: 0,
        };
        assert!(grant.is_active(999));
        assert!(!grant.is_active(1_000));
        assert!(Grant {
            expires_at_ms: None,
            ..grant
        }
        .is_active(i64::MAX));
    }

    #[test]
    fn refusals_say_what_is_missing() {
        let none = no_grant("0xb", "0xa", AccessMode::Read, None);
        assert_eq!(
            (none.kind, none.reason.as_str()),
            (ErrorKind::PermissionDenied, "NO_GRANT")
        );
        assert!(none.message.contains("no grant"), "{}", none.message);
        let read_only = no_grant("0xb", "0xa", AccessMode::ReadWrite, Some(AccessMode::Read));
        assert!(
            read_only.message.contains("read grant"),
            "{}",
            read_only.message
        );
        assert_eq!(read_only.details["needs"], "readwrite");
    }
}
