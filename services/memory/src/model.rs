//! The memory domain's values: validated keys and namespaces, entries, limits.

use tessera_error::{Error, ErrorKind};

/// Longest TTL accepted: one year.
pub const MAX_TTL_SECONDS: u64 = 31_536_000;
pub const MAX_KEY_CHARS: usize = 256;
pub const MAX_NAMESPACE_CHARS: usize = 128;
pub const MAX_LIST_LIMIT: u32 = 1000;
pub const DEFAULT_LIST_LIMIT: u32 = 100;

/// This process's clock in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Per-namespace limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest serialized (canonical) value.
    pub max_value_bytes: usize,
    /// Most live keys in one namespace.
    pub max_keys: u64,
    /// Most bytes (keys + values) in one namespace.
    pub max_bytes: u64,
    /// Most active grants one namespace gives.
    pub max_grants: u64,
    /// Longest a watch lasts before the client renews it.
    pub max_watch_seconds: u64,
    /// Watches one server keeps open at once.
    pub max_watches: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_bytes: 64 * 1024,
            max_keys: 10_000,
            max_bytes: 32 * 1024 * 1024,
            max_grants: 1000,
            max_watch_seconds: 60,
            max_watches: 10_000,
        }
    }
}

/// A live entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub namespace: String,
    pub key: String,
    /// Canonical JSON text.
    pub value: String,
    pub revision: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

impl Entry {
    pub fn size_bytes(&self) -> u64 {
        self.value.len() as u64
    }

    /// The etag is the revision: it changes on every write and never repeats
    /// for a key, so `If-Match` cannot be fooled by an A-B-A sequence.
    pub fn etag(&self) -> String {
        etag_of(self.revision)
    }
}

pub fn etag_of(revision: u64) -> String {
    revision.to_string()
}

/// Parses an `If-Match` value (bare or quoted, weak prefix allowed) into the
/// revision it names.
pub fn parse_etag(raw: &str) -> Result<u64, Error> {
    let trimmed = raw.trim().trim_start_matches("W/").trim_matches('"');
    trimmed.parse::<u64>().map_err(|_| {
        Error::invalid(
            "INVALID_ETAG",
            format!("etag {raw:?} is not one this server issued"),
        )
    })
}

/// What a write does to the expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlChange {
    /// Keep the current expiry (incr without a ttl).
    Keep,
    /// No expiry.
    Clear,
    /// Expire this many seconds from now.
    Seconds(u64),
}

impl TtlChange {
    /// A request's optional ttl, where absent means "no expiry".
    pub fn or_clear(ttl: Option<u64>) -> Self {
        ttl.map_or(TtlChange::Clear, TtlChange::Seconds)
    }

    /// A request's optional ttl, where absent means "keep the current one".
    pub fn or_keep(ttl: Option<u64>) -> Self {
        ttl.map_or(TtlChange::Keep, TtlChange::Seconds)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub deleted: bool,
    /// The key's revision after the call (0 if it never existed).
    pub revision: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasOutcome {
    pub swapped: bool,
    /// The live entry after the call, if any.
    pub current: Option<Entry>,
    /// The key's revision after the call: a lock holder's fencing token.
    pub revision: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<Entry>,
    pub next_cursor: Option<String>,
}

impl ListPage {
    /// Builds a page from up to `limit + 1` rows: the extra row only says
    /// that there is more.
    pub fn from_overfetched(mut entries: Vec<Entry>, limit: u32) -> Self {
        let next_cursor = if entries.len() > limit as usize {
            entries.truncate(limit as usize);
            entries.last().map(|last| {
                ListCursor {
                    updated_at_ms: last.updated_at_ms,
                    key: last.key.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        ListPage {
            entries,
            next_cursor,
        }
    }
}

/// Position in a newest-first listing: strictly after (older than) this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub updated_at_ms: i64,
    pub key: String,
}

impl ListCursor {
    pub fn encode(&self) -> String {
        use base64::Engine;
        let raw = format!("{}\n{}", self.updated_at_ms, self.key);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(cursor: &str) -> Result<Self, Error> {
        use base64::Engine;
        let bad = || Error::invalid("INVALID_CURSOR", "cursor is not one this server issued");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (at, key) = raw.split_once('\n').ok_or_else(bad)?;
        Ok(ListCursor {
            updated_at_ms: at.parse().map_err(|_| bad())?,
            key: key.to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    pub limit: u32,
    pub after: Option<ListCursor>,
}

/// Whether `text` is an EVM address: `0x` + 40 hex digits, any case.
pub fn is_evm_address(text: &str) -> bool {
    text.len() == 42
        && (text.starts_with("0x") || text.starts_with("0X"))
        && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The one spelling of a namespace (or caller, or grantee): an EVM address
/// in lower case, so a checksummed `0xAbC…` and the lower-case payer
/// `0xabc…` are the same namespace; anything else as it is.
pub fn canonical_namespace(namespace: &str) -> std::borrow::Cow<'_, str> {
    if is_evm_address(namespace) && namespace.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(namespace.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(namespace)
    }
}

pub fn validate_namespace(namespace: &str) -> Result<(), Error> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "._~:@-".contains(c);
    if namespace.is_empty()
        || namespace.chars().count() > MAX_NAMESPACE_CHARS
        || !namespace.chars().all(ok_char)
    {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "INVALID_NAMESPACE",
            format!(
                "namespace must be 1-{MAX_NAMESPACE_CHARS} characters of A-Z a-z 0-9 . _ ~ : @ -"
            ),
        ));
    }
    Ok(())
}

pub fn validate_key(key: &str) -> Result<(), Error> {
    validate_key_max(key, MAX_KEY_CHARS)
}

/// As [`validate_key`], with a tighter limit some API faces document.
pub fn validate_key_max(key: &str, max_chars: usize) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::invalid("KEY_EMPTY", "key must not be empty"));
    }
    let chars = key.chars().count();
    if chars > max_chars {
        return Err(Error::invalid(
            "KEY_TOO_LONG",
            format!("key is {chars} characters; the limit is {max_chars}"),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::invalid(
            "KEY_INVALID",
            "key must not contain control characters",
        ));
    }
    Ok(())
}

pub fn validate_ttl(ttl: Option<u64>) -> Result<(), Error> {
    match ttl {
        Some(seconds) if !(1..=MAX_TTL_SECONDS).contains(&seconds) => Err(Error::invalid(
            "INVALID_TTL",
            format!("ttlSeconds must be between 1 and {MAX_TTL_SECONDS}"),
        )),
        _ => Ok(()),
    }
}

pub fn validate_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.chars().count() > MAX_KEY_CHARS || prefix.chars().any(char::is_control) {
        return Err(Error::invalid(
            "INVALID_PREFIX",
            format!("prefix must be at most {MAX_KEY_CHARS} characters with no control characters"),
        ));
    }
    Ok(())
}

pub fn list_limit(requested: u32) -> Result<u32, Error> {
    match requested {
        0 => Ok(DEFAULT_LIST_LIMIT),
        n if n <= MAX_LIST_LIMIT => Ok(n),
        n => Err(Error::invalid(
            "INVALID_LIMIT",
            format!("limit {n} is above the maximum of {MAX_LIST_LIMIT}"),
        )),
    }
}

pub fn quota_exceeded(what: &str, limit: u64) -> Error {
    Error::new(
        ErrorKind::QuotaExceeded,
        "QUOTA_EXCEEDED",
        format!("namespace {what} quota of {limit} would be exceeded"),
    )
}

pub fn precondition_failed(current: u64) -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        "ETAG_MISMATCH",
        "If-Match etag does not match the current entry",
    )
    .with_detail("currentEtag", etag_of(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_for_length_and_control_characters() {
        assert!(validate_key("locks/import").is_ok());
        assert!(validate_key(&"k".repeat(256)).is_ok());
        assert_eq!(
            validate_key(&"k".repeat(257)).unwrap_err().reason,
            "KEY_TOO_LONG"
        );
        assert_eq!(validate_key("").unwrap_err().reason, "KEY_EMPTY");
        assert_eq!(validate_key("a\nb").unwrap_err().reason, "KEY_INVALID");
        // 256 characters, not bytes.
        assert!(validate_key(&"é".repeat(256)).is_ok());
    }

    #[test]
    fn ttl_bounds() {
        assert!(validate_ttl(None).is_ok());
        assert!(validate_ttl(Some(1)).is_ok());
        assert!(validate_ttl(Some(MAX_TTL_SECONDS)).is_ok());
        assert!(validate_ttl(Some(0)).is_err());
        assert!(validate_ttl(Some(MAX_TTL_SECONDS + 1)).is_err());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let cursor = ListCursor {
            updated_at_ms: 1_700_000_000_123,
            key: "a\u{e9}/b".into(),
        };
        assert_eq!(ListCursor::decode(&cursor.encode()).unwrap(), cursor);
        assert!(ListCursor::decode("not a cursor!").is_err());
    }

    #[test]
    fn etags_parse_bare_quoted_and_weak() {
        assert_eq!(parse_etag("7").unwrap(), 7);
        assert_eq!(parse_etag("\"7\"").unwrap(), 7);
        assert_eq!(parse_etag("W/\"7\"").unwrap(), 7);
        assert!(parse_etag("abc").is_err());
    }

    #[test]
    fn evm_addresses_are_lower_cased_and_nothing_else_is() {
        let checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        let lower = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
        assert_eq!(canonical_namespace(checksummed), lower);
        assert_eq!(canonical_namespace(&checksummed.to_uppercase()), lower);
        assert!(matches!(
            canonical_namespace(lower),
            std::borrow::Cow::Borrowed(_)
        ));
        for other in [
            "Agent-1",
            "0xABC",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedD",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeG",
            "1x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        ] {
            assert_eq!(canonical_namespace(other), other);
        }
    }

    #[test]
    fn namespaces_allow_wallets_and_agent_ids() {
        assert!(validate_namespace("0xabcdef0123456789abcdef0123456789abcdef01").is_ok());
        assert!(validate_namespace("550e8400-e29b-41d4-a716-446655440000").is_ok());
        assert!(validate_namespace("").is_err());
        assert!(validate_namespace("a{b}").is_err());
    }
}
