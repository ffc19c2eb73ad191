//! The memory service: validates and canonicalizes requests, then applies
//! them through the configured [`MemoryStore`]. Both the gRPC server and
//! in-process callers go through here, so every face gets the same rules.

use crate::canonical::canonicalize_text;
use crate::model::{
    list_limit, parse_etag, validate_key, validate_namespace, validate_prefix, validate_ttl,
    CasOutcome, Deleted, Entry, Limits, ListCursor, ListPage, ListQuery, TtlChange,
};
use crate::ops::Number;
use crate::store::MemoryStore;
use std::sync::Arc;
use tessera_error::{Error, Result};

#[derive(Clone)]
pub struct Memory {
    store: Arc<dyn MemoryStore>,
    limits: Limits,
}

impl Memory {
    pub fn new(store: Arc<dyn MemoryStore>, limits: Limits) -> Self {
        Memory { store, limits }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn store(&self) -> &Arc<dyn MemoryStore> {
        &self.store
    }

    #[tracing::instrument(skip(self), err(Display))]
    pub async fn get(&self, namespace: &str, key: &str) -> Result<Entry> {
        check_address(namespace, key)?;
        self.store.get(namespace, key).await?.ok_or_else(|| {
            Error::not_found(format!("key '{key}' not found")).with_detail("key", key)
        })
    }

    #[tracing::instrument(skip(self, value_json), err(Display))]
    pub async fn set(
        &self,
        namespace: &str,
        key: &str,
        value_json: &str,
        ttl_seconds: Option<u64>,
        if_match: Option<&str>,
    ) -> Result<Entry> {
        check_address(namespace, key)?;
        validate_ttl(ttl_seconds)?;
        let value = self.storable_value(value_json, "value")?;
        let if_match = if_match.map(parse_etag).transpose()?;
        self.store
            .set(
                namespace,
                key,
                value,
                TtlChange::or_clear(ttl_seconds),
                if_match,
            )
            .await
    }

    #[tracing::instrument(skip(self), err(Display))]
    pub async fn delete(
        &self,
        namespace: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Deleted> {
        check_address(namespace, key)?;
        let if_match = if_match.map(parse_etag).transpose()?;
        self.store.delete(namespace, key, if_match).await
    }

    #[tracing::instrument(skip(self), err(Display))]
    pub async fn list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: u32,
        cursor: &str,
    ) -> Result<ListPage> {
        validate_namespace(namespace)?;
        validate_prefix(prefix)?;
        let query = ListQuery {
            prefix: prefix.to_string(),
            limit: list_limit(limit)?,
            after: (!cursor.is_empty())
                .then(|| ListCursor::decode(cursor))
                .transpose()?,
        };
        self.store.list(namespace, query).await
    }

    /// `expected_json` absent or `null` = expect absent; `value_json` absent
    /// or `null` = delete on match.
    #[tracing::instrument(skip(self, expected_json, value_json), err(Display))]
    pub async fn cas(
        &self,
        namespace: &str,
        key: &str,
        expected_json: Option<&str>,
        value_json: Option<&str>,
        ttl_seconds: Option<u64>,
    ) -> Result<CasOutcome> {
        check_address(namespace, key)?;
        validate_ttl(ttl_seconds)?;
        let expected = self.optional_value(expected_json, "expected")?;
        let value = self.optional_value(value_json, "value")?;
        self.store
            .cas(
                namespace,
                key,
                expected,
                value,
                TtlChange::or_clear(ttl_seconds),
            )
            .await
    }

    #[tracing::instrument(skip(self), err(Display))]
    pub async fn incr(
        &self,
        namespace: &str,
        key: &str,
        by_json: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<Entry> {
        check_address(namespace, key)?;
        validate_ttl(ttl_seconds)?;
        let by = if by_json.trim().is_empty() {
            Number::Int(1)
        } else {
            Number::parse(by_json, "by")?
        };
        self.store
            .incr(namespace, key, by, TtlChange::or_keep(ttl_seconds))
            .await
    }

    fn storable_value(&self, json: &str, field: &str) -> Result<String> {
        let canonical = canonicalize_text(json)
            .map_err(|e| Error::invalid("INVALID_JSON", format!("{field}: {}", e.message)))?;
        if canonical == "null" {
            return Err(Error::invalid(
                "VALUE_NULL",
                format!("{field} must not be null (delete the key instead)"),
            ));
        }
        if canonical.len() > self.limits.max_value_bytes {
            return Err(Error::invalid(
                "VALUE_TOO_LARGE",
                format!(
                    "{field} is {} bytes serialized; the limit is {}",
                    canonical.len(),
                    self.limits.max_value_bytes
                ),
            ));
        }
        Ok(canonical)
    }

    fn optional_value(&self, json: Option<&str>, field: &str) -> Result<Option<String>> {
        match json.map(str::trim) {
            None | Some("null") => Ok(None),
            Some(text) => self.storable_value(text, field).map(Some),
        }
    }
}

fn check_address(namespace: &str, key: &str) -> Result<()> {
    validate_namespace(namespace)?;
    validate_key(key)
}
