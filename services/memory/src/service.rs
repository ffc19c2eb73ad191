//! The memory service: validates and canonicalizes requests, checks that the
//! caller may act on the namespace, then applies them through the configured
//! [`MemoryStore`]. Both the gRPC server and in-process callers go through
//! here, so every face gets the same rules.
//!
//! Namespaces, callers and grantees that are EVM addresses (`0x` + 40 hex
//! digits) are lower-cased on the way in ([`canonical_namespace`]): an
//! address names one namespace whatever its spelling.

use crate::canonical::canonicalize_text;
use crate::grants::{no_grant, not_owner, validate_grant, AccessMode, Grant};
use crate::model::{
    canonical_namespace, list_limit, parse_etag, validate_key, validate_namespace, validate_prefix,
    validate_ttl, CasOutcome, Deleted, Entry, Limits, ListCursor, ListPage, ListQuery, TtlChange,
};
use crate::ops::Number;
use crate::store::MemoryStore;
use crate::watch::session::WatchEvent;
use crate::watch::{Target, WatchEvents, WatchSpec};
use std::sync::Arc;
use tessera_error::{Error, ErrorKind, Result};
use tokio::sync::mpsc;

/// How often a watch of another namespace checks its grant still holds.
const GRANT_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);
/// A watch cursor's length at most (ours are far shorter).
const MAX_CURSOR_CHARS: usize = 64;

#[derive(Clone)]
pub struct Memory {
    store: Arc<dyn MemoryStore>,
    limits: Limits,
    /// Who the calls are made by; `None` = each call's namespace itself.
    caller: Option<Arc<str>>,
    /// Watches open at once, at most `limits.max_watches`.
    watches: Arc<tokio::sync::Semaphore>,
}

impl Memory {
    /// Forgets keys deleted or expired more than `grace` ago (see
    /// [`MemoryStore::reclaim`]).
    pub async fn reclaim(&self, grace: std::time::Duration) -> Result<u64> {
        self.store.reclaim(grace).await
    }

    /// Runs [`Self::reclaim`] every `every` until `shutdown`.
    pub fn spawn_reclaimer(
        &self,
        every: std::time::Duration,
        grace: std::time::Duration,
        shutdown: tessera_runtime::Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        let memory = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                match memory.reclaim(grace).await {
                    Ok(0) => {}
                    Ok(reclaimed) => {
                        tracing::info!(reclaimed, "reclaimed deleted and expired keys")
                    }
                    Err(error) => {
                        tracing::warn!(%error, "reclaiming deleted keys failed; will retry")
                    }
                }
            }
        })
    }

    /// Calls made by each call's namespace itself, which needs no grant.
    pub fn new(store: Arc<dyn MemoryStore>, limits: Limits) -> Self {
        Memory {
            store,
            limits,
            caller: None,
            watches: Arc::new(tokio::sync::Semaphore::new(limits.max_watches)),
        }
    }

    /// The same service, calls made by `caller`: on its own namespace (or
    /// with `caller` empty) as usual; on another namespace only with an
    /// active grant from it, `read` for get and list, `readwrite` for every
    /// write. Without one a call fails with `PermissionDenied` (`NO_GRANT`)
    /// and nothing is read or written. Only a namespace itself manages its
    /// grants. An EVM address is lower-cased, like every namespace.
    pub fn as_caller(&self, caller: &str) -> Memory {
        Memory {
            caller: (!caller.is_empty()).then(|| Arc::from(&*canonical_namespace(caller))),
            ..self.clone()
        }
    }

    /// The caller set by [`Memory::as_caller`], if any.
    pub fn caller(&self) -> Option<&str> {
        self.caller.as_deref()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn store(&self) -> &Arc<dyn MemoryStore> {
        &self.store
    }

    // Errors at DEBUG: most are answers (NotFound, a failed precondition);
    // the gRPC server logs the server-side failures at ERROR.
    #[tracing::instrument(skip(self), fields(caller = self.caller()), err(level = "debug", Display))]
    pub async fn get(&self, namespace: &str, key: &str) -> Result<Entry> {
        let namespace = &canonical_namespace(namespace);
        check_address(namespace, key)?;
        self.authorize(namespace, AccessMode::Read).await?;
        self.store.get(namespace, key).await?.ok_or_else(|| {
            Error::not_found(format!("key '{key}' not found")).with_detail("key", key)
        })
    }

    #[tracing::instrument(skip(self, value_json), fields(caller = self.caller()), err(level = "debug", Display))]
    pub async fn set(
        &self,
        namespace: &str,
        key: &str,
        value_json: &str,
        ttl_seconds: Option<u64>,
        if_match: Option<&str>,
    ) -> Result<Entry> {
        let namespace = &canonical_namespace(namespace);
        check_address(namespace, key)?;
        validate_ttl(ttl_seconds)?;
        let value = self.storable_value(value_json, "value")?;
        let if_match = if_match.map(parse_etag).transpose()?;
        self.authorize(namespace, AccessMode::ReadWrite).await?;
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

    #[tracing::instrument(skip(self), fields(caller = self.caller()), err(level = "debug", Display))]
    pub async fn delete(
        &self,
        namespace: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Deleted> {
        let namespace = &canonical_namespace(namespace);
        check_address(namespace, key)?;
        let if_match = if_match.map(parse_etag).transpose()?;
        self.authorize(namespace, AccessMode::ReadWrite).await?;
        self.store.delete(namespace, key, if_match).await
    }

    #[tracing::instrument(skip(self), fields(caller = self.caller()), err(level = "debug", Display))]
    pub async fn list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: u32,
        cursor: &str,
    ) -> Result<ListPage> {
        let namespace = &canonical_namespace(namespace);
        validate_namespace(namespace)?;
        validate_prefix(prefix)?;
        let query = ListQuery {
            prefix: prefix.to_string(),
            limit: list_limit(limit)?,
            after: (!cursor.is_empty())
                .then(|| ListCursor::decode(cursor))
                .transpose()?,
        };
        self.authorize(namespace, AccessMode::Read).await?;
        self.store.list(namespace, query).await
    }

    /// `expected_json` absent or `null` = expect absent; `value_json` absent
    /// or `null` = delete on match.
    #[tracing::instrument(skip(self, expected_json, value_json), fields(caller = self.caller()), err(level = "debug", Display))]
    pub async fn cas(
        &self,
        namespace: &str,
        key: &str,
        expected_json: Option<&str>,
        value_json: Option<&str>,
        ttl_seconds: Option<u64>,
    ) -> Result<CasOutcome> {
        let namespace = &canonical_namespace(namespace);
        check_address(namespace, key)?;
        validate_ttl(ttl_seconds)?;
        let expected = self.optional_value(expected_json, "expected")?;
        let value = self.optional_value(value_json, "value")?;
        self.authorize(namespace, AccessMode::ReadWrite).await?;
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

    #[tracing::instrument(skip(self), fields(caller = self.caller()), err(level = "debug", Display))]
    pub async fn incr(
        &self,
        namespace: &str,
        key: &str,
        by_json: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<Entry> {
        let namespace = &canonical_namespace(namespace);
        check_address(namespace, key)?;
        validate_ttl(ttl_seconds)?;
        let by = if by_json.trim().is_empty() {
            Number::Int(1)
        } else {
            Number::parse(by_json, "by")?
        };
        self.authorize(namespace, AccessMode::ReadWrite).await?;
        self.store
            .incr(namespace, key, by, TtlChange::or_keep(ttl_seconds))
            .await
    }

    /// Lets `grantee` read (`Read`) or read and write (`ReadWrite`)
    /// `namespace`, until revoked or for `ttl_seconds`. Granting again
    /// replaces the mode and expiry.
    #[tracing::instrument(skip(self), fields(caller = self.caller()), err(level = "debug", Display))]
    pub async fn grant(
        &self,
        namespace: &str,
        grantee: &str,
        mode: AccessMode,
        ttl_seconds: Option<u64>,
    ) -> Result<Grant> {
        let namespace = &canonical_namespace(namespace);
        let grantee = &canonical_namespace(grantee);
        validate_grant(namespace, grantee)?;
        validate_ttl(ttl_seconds)?;
        self.check_owner(namespace)?;
        self.store
            .grant(namespace, grantee, mode, ttl_seconds)
            .await
    }

    /// Withdraws `namespace`'s grant to `grantee`; `false` when there was no
    /// active one.
    #[tracing::instrument(skip(self), fields(caller = self.caller()), err(level = "debug", Display))]
    pub async fn revoke(&self, namespace: &str, grantee: &str) -> Result<bool> {
        let namespace = &canonical_namespace(namespace);
        let grantee = &canonical_namespace(grantee);
        validate_grant(namespace, grantee)?;
        self.check_owner(namespace)?;
        self.store.revoke(namespace, grantee).await
    }

    /// `namespace`'s active grants, ordered by grantee; expired ones are not
    /// listed.
    #[tracing::instrument(skip(self), fields(caller = self.caller()), err(level = "debug", Display))]
    pub async fn list_grants(&self, namespace: &str) -> Result<Vec<Grant>> {
        let namespace = &canonical_namespace(namespace);
        validate_namespace(namespace)?;
        self.check_owner(namespace)?;
        self.store.list_grants(namespace).await
    }

    /// Watches `key` (or, with `key` empty, every key under `prefix`) for up
    /// to `timeout_seconds` (0 = the limit); see [`crate::watch`]. Another
    /// namespace needs a read grant, checked again every few seconds while
    /// the watch lasts: a revoked grant ends it with `NO_GRANT`.
    #[tracing::instrument(skip(self), fields(caller = self.caller()), err(level = "debug", Display))]
    pub async fn watch(
        &self,
        namespace: &str,
        key: &str,
        prefix: &str,
        since_revision: u64,
        since_cursor: &str,
        timeout_seconds: u32,
    ) -> Result<WatchEvents> {
        let namespace = canonical_namespace(namespace).into_owned();
        validate_namespace(&namespace)?;
        let target = match (key.is_empty(), prefix.is_empty()) {
            (false, false) => {
                return Err(Error::invalid(
                    "KEY_AND_PREFIX",
                    "watch a key or a prefix, not both",
                ))
            }
            (false, true) => {
                validate_key(key)?;
                Target::Key(key.to_string())
            }
            (true, _) => {
                validate_prefix(prefix)?;
                Target::Prefix(prefix.to_string())
            }
        };
        if !since_cursor.is_empty() {
            if since_cursor.len() > MAX_CURSOR_CHARS {
                return Err(crate::watch::invalid_cursor(since_cursor));
            }
            self.store.changes().check_cursor(since_cursor)?;
        }
        // Longer than the limit is the limit: the client renews.
        let max = self.limits.max_watch_seconds;
        let timeout = match u64::from(timeout_seconds) {
            0 => max,
            seconds => seconds.min(max),
        };
        self.authorize(&namespace, AccessMode::Read).await?;
        let permit = self.watches.clone().try_acquire_owned().map_err(|_| {
            Error::new(
                ErrorKind::RateLimited,
                "TOO_MANY_WATCHES",
                format!(
                    "this server has {} watches open, its limit: retry shortly",
                    self.limits.max_watches
                ),
            )
        })?;
        let spec = WatchSpec {
            namespace: namespace.clone(),
            target,
            since_revision,
            since_cursor: (!since_cursor.is_empty()).then(|| since_cursor.to_string()),
            timeout: std::time::Duration::from_secs(timeout),
        };
        let mut events = crate::watch::watch(self.store.clone(), spec, permit);
        // What can fail at the start fails the call, before any event.
        let first = match events.recv().await {
            Some(Ok(first)) => first,
            Some(Err(error)) => return Err(error),
            None => return Err(Error::internal("a watch ended before it started")),
        };
        if self.caller().is_some_and(|caller| caller != namespace) {
            events = self.while_granted(namespace, events);
        }
        Ok(WatchEvents::new(first, events))
    }

    /// Relays `events` while the caller's read grant on `namespace` holds.
    fn while_granted(
        &self,
        namespace: String,
        mut events: mpsc::Receiver<Result<WatchEvent>>,
    ) -> mpsc::Receiver<Result<WatchEvent>> {
        let (relay, relayed) = mpsc::channel(1);
        let memory = self.clone();
        tokio::spawn(async move {
            let mut check = tokio::time::interval(GRANT_RECHECK);
            check.tick().await;
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => {
                            if relay.send(event).await.is_err() {
                                return;
                            }
                        }
                        None => return,
                    },
                    _ = check.tick() => {
                        if let Err(error) = memory.authorize(&namespace, AccessMode::Read).await {
                            let _ = relay.send(Err(error)).await;
                            return;
                        }
                    }
                    _ = relay.closed() => return,
                }
            }
        });
        relayed
    }

    /// Whether the caller may act on `namespace` with `need`. Its own
    /// namespace never touches the grants; another needs an active grant.
    async fn authorize(&self, namespace: &str, need: AccessMode) -> Result<()> {
        let Some(caller) = self.caller().filter(|caller| *caller != namespace) else {
            return Ok(());
        };
        validate_namespace(caller).map_err(|e| Error {
            reason: "INVALID_CALLER".into(),
            message: format!("caller: {}", e.message),
            ..e
        })?;
        match self.store.grant_mode(namespace, caller).await? {
            Some(mode) if mode.allows(need) => Ok(()),
            held => Err(no_grant(caller, namespace, need, held)),
        }
    }

    fn check_owner(&self, namespace: &str) -> Result<()> {
        match self.caller() {
            Some(caller) if caller != namespace => Err(not_owner(caller, namespace)),
            _ => Ok(()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedStore;
    use crate::grants::Grant;
    use crate::model::{CasOutcome, Deleted, ListQuery};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tessera_error::ErrorKind;

    /// The embedded store, counting grant lookups.
    struct Counting {
        inner: EmbeddedStore,
        lookups: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl MemoryStore for Counting {
        async fn get(&self, ns: &str, key: &str) -> Result<Option<Entry>> {
            self.inner.get(ns, key).await
        }
        async fn key_state(&self, ns: &str, key: &str) -> Result<crate::watch::KeyState> {
            self.inner.key_state(ns, key).await
        }
        fn changes(&self) -> Arc<dyn crate::watch::ChangeLog> {
            self.inner.changes()
        }
        async fn set(
            &self,
            ns: &str,
            key: &str,
            value: String,
            ttl: TtlChange,
            if_match: Option<u64>,
        ) -> Result<Entry> {
            self.inner.set(ns, key, value, ttl, if_match).await
        }
        async fn delete(&self, ns: &str, key: &str, if_match: Option<u64>) -> Result<Deleted> {
            self.inner.delete(ns, key, if_match).await
        }
        async fn list(&self, ns: &str, query: ListQuery) -> Result<ListPage> {
            self.inner.list(ns, query).await
        }
        async fn cas(
            &self,
            ns: &str,
            key: &str,
            expected: Option<String>,
            value: Option<String>,
            ttl: TtlChange,
        ) -> Result<CasOutcome> {
            self.inner.cas(ns, key, expected, value, ttl).await
        }
        async fn incr(&self, ns: &str, key: &str, by: Number, ttl: TtlChange) -> Result<Entry> {
            self.inner.incr(ns, key, by, ttl).await
        }
        async fn grant(
            &self,
            ns: &str,
            grantee: &str,
            mode: AccessMode,
            ttl: Option<u64>,
        ) -> Result<Grant> {
            self.inner.grant(ns, grantee, mode, ttl).await
        }
        async fn revoke(&self, ns: &str, grantee: &str) -> Result<bool> {
            self.inner.revoke(ns, grantee).await
        }
        async fn list_grants(&self, ns: &str) -> Result<Vec<Grant>> {
            self.inner.list_grants(ns).await
        }
        async fn grant_mode(&self, ns: &str, grantee: &str) -> Result<Option<AccessMode>> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.inner.grant_mode(ns, grantee).await
        }
        async fn ping(&self) -> Result<()> {
            self.inner.ping().await
        }
        async fn reclaim(&self, grace: std::time::Duration) -> Result<u64> {
            self.inner.reclaim(grace).await
        }
    }

    async fn counting() -> (Memory, Arc<Counting>) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "tessera-service-{}-{nanos}-{}/memory.db",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let inner = EmbeddedStore::open(&path, Limits::default()).await.unwrap();
        let store = Arc::new(Counting {
            inner,
            lookups: AtomicUsize::new(0),
        });
        (Memory::new(store.clone(), Limits::default()), store)
    }

    async fn every_op(memory: &Memory, ns: &str) -> Vec<Result<()>> {
        vec![
            memory.set(ns, "k", "1", None, None).await.map(drop),
            memory.get(ns, "k").await.map(drop),
            memory.list(ns, "", 0, "").await.map(drop),
            memory
                .cas(ns, "k", Some("1"), Some("2"), None)
                .await
                .map(drop),
            memory.incr(ns, "k", "1", None).await.map(drop),
            memory.delete(ns, "k", None).await.map(drop),
        ]
    }

    #[tokio::test]
    async fn own_namespace_calls_never_look_up_a_grant() {
        let (memory, store) = counting().await;
        for result in every_op(&memory, "agent-a").await {
            result.unwrap();
        }
        for result in every_op(&memory.as_caller("agent-a"), "agent-a").await {
            result.unwrap();
        }
        for result in every_op(&memory.as_caller(""), "agent-a").await {
            result.unwrap();
        }
        // An address is its own namespace in any spelling.
        let wallet = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        for result in every_op(&memory.as_caller(&wallet.to_lowercase()), wallet).await {
            result.unwrap();
        }
        assert_eq!(store.lookups.load(Ordering::SeqCst), 0);
        memory
            .as_caller("agent-b")
            .get("agent-a", "k")
            .await
            .unwrap_err();
        assert_eq!(
            store.lookups.load(Ordering::SeqCst),
            1,
            "one lookup per foreign call"
        );
    }

    #[tokio::test]
    async fn only_the_owner_manages_grants_and_callers_are_validated() {
        let (memory, _) = counting().await;
        let stranger = memory.as_caller("agent-b");
        for error in [
            stranger
                .grant("agent-a", "agent-b", AccessMode::ReadWrite, None)
                .await
                .unwrap_err(),
            stranger.revoke("agent-a", "agent-c").await.unwrap_err(),
            stranger.list_grants("agent-a").await.unwrap_err(),
        ] {
            assert_eq!(
                (error.kind, error.reason.as_str()),
                (ErrorKind::PermissionDenied, "NOT_OWNER")
            );
        }
        let owner = memory.as_caller("agent-a");
        owner
            .grant("agent-a", "agent-b", AccessMode::Read, None)
            .await
            .unwrap();
        assert_eq!(owner.list_grants("agent-a").await.unwrap().len(), 1);
        let error = memory
            .as_caller("bad caller")
            .get("agent-a", "k")
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind, error.reason.as_str()),
            (ErrorKind::InvalidArgument, "INVALID_CALLER")
        );
    }
}
