//! A deliberately broken store, for proving that the linearizability checker
//! catches what it is there to catch.

use async_trait::async_trait;
use tessera_error::Result;
use tessera_memory::model::ListQuery;
use tessera_memory::ops::Number;
use tessera_memory::store::MemoryStore;
use tessera_memory::{AccessMode, CasOutcome, Deleted, Entry, Grant, ListPage, TtlChange};

/// A store whose compare-and-swap reads, compares, and then writes
/// unconditionally: another writer can slip in between. Everything else is
/// the wrapped store's.
pub struct SplitCas<S>(pub S);

#[async_trait]
impl<S: MemoryStore> MemoryStore for SplitCas<S> {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Entry>> {
        self.0.get(namespace, key).await
    }

    async fn key_state(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<tessera_memory::watch::KeyState> {
        self.0.key_state(namespace, key).await
    }

    fn changes(&self) -> std::sync::Arc<dyn tessera_memory::watch::ChangeLog> {
        self.0.changes()
    }

    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: String,
        ttl: TtlChange,
        if_match: Option<u64>,
    ) -> Result<Entry> {
        self.0.set(namespace, key, value, ttl, if_match).await
    }

    async fn delete(&self, namespace: &str, key: &str, if_match: Option<u64>) -> Result<Deleted> {
        self.0.delete(namespace, key, if_match).await
    }

    async fn list(&self, namespace: &str, query: ListQuery) -> Result<ListPage> {
        self.0.list(namespace, query).await
    }

    async fn cas(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<String>,
        value: Option<String>,
        ttl: TtlChange,
    ) -> Result<CasOutcome> {
        let live = self.0.get(namespace, key).await?.map(|entry| entry.value);
        if live != expected {
            // No match as read: let the real CAS answer (and report the
            // revision).
            return self.0.cas(namespace, key, expected, value, ttl).await;
        }
        match value {
            Some(value) => {
                let entry = self.0.set(namespace, key, value, ttl, None).await?;
                Ok(CasOutcome {
                    swapped: true,
                    revision: entry.revision,
                    current: Some(entry),
                })
            }
            None => {
                let deleted = self.0.delete(namespace, key, None).await?;
                Ok(CasOutcome {
                    swapped: true,
                    current: None,
                    revision: deleted.revision,
                })
            }
        }
    }

    async fn incr(&self, namespace: &str, key: &str, by: Number, ttl: TtlChange) -> Result<Entry> {
        self.0.incr(namespace, key, by, ttl).await
    }

    async fn grant(
        &self,
        namespace: &str,
        grantee: &str,
        mode: AccessMode,
        ttl_seconds: Option<u64>,
    ) -> Result<Grant> {
        self.0.grant(namespace, grantee, mode, ttl_seconds).await
    }

    async fn revoke(&self, namespace: &str, grantee: &str) -> Result<bool> {
        self.0.revoke(namespace, grantee).await
    }

    async fn list_grants(&self, namespace: &str) -> Result<Vec<Grant>> {
        self.0.list_grants(namespace).await
    }

    async fn grant_mode(&self, namespace: &str, grantee: &str) -> Result<Option<AccessMode>> {
        self.0.grant_mode(namespace, grantee).await
    }

    async fn ping(&self) -> Result<()> {
        self.0.ping().await
    }

    async fn reclaim(&self, grace: std::time::Duration) -> Result<u64> {
        self.0.reclaim(grace).await
    }
}
