//! Typed calls of `tessera.memory.v1.MemoryService`.

use crate::error::Error;
use crate::identity::Identity;
use crate::model::{
    json_text, ttl_seconds, Access, Entry, Grant, ListOptions, Page, SetOptions, Swap,
};
use crate::reply::Reply;
use crate::watch::{Watch, WatchOptions};
use crate::x402::{status, Settlement, X402Service};
use serde_json::{Number, Value};
use std::time::Duration;
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tonic::body::Body;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tower::util::BoxCloneSyncService;
use tower::ServiceExt;

/// The channel below the typed calls: a plain one, or one that pays.
type Transport = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Status>;

const AGENT_ID: &str = "x-agent-id";

/// A memory client acting as one [`Identity`]. Cheap to clone (clones share
/// the connection); every method takes `&self`.
#[derive(Clone)]
pub struct Client {
    grpc: MemoryServiceClient<Transport>,
    /// `x-agent-id` metadata, in free mode.
    agent_id: Option<AsciiMetadataValue>,
    own_namespace: String,
    /// The namespace calls act on; empty = the caller's own.
    target: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("namespace", &self.own_namespace)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `url` (the gateway's port, e.g. `http://127.0.0.1:8080`).
    pub async fn connect(url: &str, identity: Identity) -> Result<Client, Error> {
        let endpoint = Channel::from_shared(url.to_string()).map_err(|e| Error::InvalidUrl {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let channel = endpoint.connect().await.map_err(|source| Error::Connect {
            url: url.to_string(),
            source,
        })?;
        Client::new(channel, identity)
    }

    /// Calls over `channel` (built with `tonic::transport::Endpoint` for
    /// timeouts, TLS or a lazy connection). A payer's calls go through an
    /// [`X402Layer`](crate::X402Layer).
    pub fn new(channel: Channel, identity: Identity) -> Result<Client, Error> {
        let own_namespace = identity.namespace();
        let (transport, agent_id) = match identity {
            Identity::Agent(id) => {
                let value = AsciiMetadataValue::try_from(id.as_str())
                    .map_err(|_| Error::InvalidAgentId(id.clone()))?;
                (
                    BoxCloneSyncService::new(channel.map_err(status)),
                    Some(value),
                )
            }
            Identity::Payer(payer) => (
                BoxCloneSyncService::new(X402Service::new(channel, payer)),
                None,
            ),
        };
        Ok(Client {
            grpc: MemoryServiceClient::new(transport),
            agent_id,
            own_namespace,
            target: String::new(),
        })
    }

    /// The caller's own namespace (the agent id, or the payer's lower-case
    /// address).
    pub fn namespace(&self) -> &str {
        &self.own_namespace
    }

    /// The namespace this client's calls act on.
    pub fn target(&self) -> &str {
        if self.target.is_empty() {
            &self.own_namespace
        } else {
            &self.target
        }
    }

    /// This client acting on `namespace`, which must have granted the
    /// caller access (else calls fail PERMISSION_DENIED, reason NO_GRANT).
    pub fn with_namespace(&self, namespace: impl Into<String>) -> Client {
        Client {
            target: namespace.into(),
            ..self.clone()
        }
    }

    /// The entry at `key`; `None` when absent or expired.
    pub async fn get(&self, key: &str) -> Result<Reply<Option<Entry>>, Error> {
        let message = pb::GetRequest {
            namespace: self.target.clone(),
            key: key.into(),
            caller: String::new(),
        };
        match self.grpc().get(self.request(message)).await {
            Err(status) if status.code() == Code::NotFound => Ok(Reply::new(None, Vec::new())),
            answer => typed(answer, |entry| Entry::try_from(entry).map(Some)),
        }
    }

    pub async fn set(&self, key: &str, value: &Value) -> Result<Reply<Entry>, Error> {
        self.set_with(key, value, &SetOptions::default()).await
    }

    pub async fn set_with(
        &self,
        key: &str,
        value: &Value,
        options: &SetOptions,
    ) -> Result<Reply<Entry>, Error> {
        let message = pb::SetRequest {
            namespace: self.target.clone(),
            key: key.into(),
            value_json: json_text(value),
            ttl_seconds: options.ttl.map(ttl_seconds),
            if_match: options.if_match.clone(),
            caller: String::new(),
        };
        typed(
            self.grpc().set(self.request(message)).await,
            Entry::try_from,
        )
    }

    /// Removes `key`; the reply says whether it was there.
    pub async fn delete(&self, key: &str) -> Result<Reply<bool>, Error> {
        self.delete_guarded(key, None).await
    }

    /// Removes `key` only if its etag is `etag` (else FAILED_PRECONDITION).
    pub async fn delete_if_match(&self, key: &str, etag: &str) -> Result<Reply<bool>, Error> {
        self.delete_guarded(key, Some(etag.to_string())).await
    }

    async fn delete_guarded(
        &self,
        key: &str,
        if_match: Option<String>,
    ) -> Result<Reply<bool>, Error> {
        let message = pb::DeleteRequest {
            namespace: self.target.clone(),
            key: key.into(),
            if_match,
            caller: String::new(),
        };
        typed(self.grpc().delete(self.request(message)).await, |deleted| {
            Ok(deleted.deleted)
        })
    }

    pub async fn list(&self, options: &ListOptions) -> Result<Reply<Page>, Error> {
        let message = pb::ListRequest {
            namespace: self.target.clone(),
            prefix: options.prefix.clone(),
            limit: options.limit.unwrap_or(0),
            cursor: options.cursor.clone().unwrap_or_default(),
            caller: String::new(),
        };
        typed(
            self.grpc().list(self.request(message)).await,
            Page::try_from,
        )
    }

    /// Writes `value` (or deletes, when `None`) only if the current value
    /// equals `expected` (`None` = the key is absent or expired). A swap
    /// that did not happen is an answer, not an error.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&Value>,
        value: Option<&Value>,
        ttl: Option<Duration>,
    ) -> Result<Reply<Swap>, Error> {
        let message = pb::CompareAndSwapRequest {
            namespace: self.target.clone(),
            key: key.into(),
            expected_json: expected.map(json_text),
            value_json: value.map(json_text),
            ttl_seconds: ttl.map(ttl_seconds),
            caller: String::new(),
        };
        typed(
            self.grpc().compare_and_swap(self.request(message)).await,
            Swap::try_from,
        )
    }

    /// Adds `by` to the number at `key` (created at 0), keeping its expiry.
    pub async fn increment(&self, key: &str, by: impl Into<Number>) -> Result<Reply<Entry>, Error> {
        self.increment_guarded(key, by.into(), None).await
    }

    /// [`Client::increment`], then expiring `ttl` from now.
    pub async fn increment_with_ttl(
        &self,
        key: &str,
        by: impl Into<Number>,
        ttl: Duration,
    ) -> Result<Reply<Entry>, Error> {
        self.increment_guarded(key, by.into(), Some(ttl)).await
    }

    async fn increment_guarded(
        &self,
        key: &str,
        by: Number,
        ttl: Option<Duration>,
    ) -> Result<Reply<Entry>, Error> {
        let message = pb::IncrementRequest {
            namespace: self.target.clone(),
            key: key.into(),
            by_json: by.to_string(),
            ttl_seconds: ttl.map(ttl_seconds),
            caller: String::new(),
        };
        typed(
            self.grpc().increment(self.request(message)).await,
            Entry::try_from,
        )
    }

    /// Lets `grantee` act on the caller's namespace, for `ttl` or until
    /// revoked. Granting again replaces the access and expiry.
    pub async fn grant(
        &self,
        grantee: &str,
        access: Access,
        ttl: Option<Duration>,
    ) -> Result<Reply<Grant>, Error> {
        let message = pb::GrantRequest {
            namespace: self.target.clone(),
            grantee: grantee.into(),
            mode: pb::AccessMode::from(access).into(),
            ttl_seconds: ttl.map(ttl_seconds),
            caller: String::new(),
        };
        typed(
            self.grpc().grant(self.request(message)).await,
            Grant::try_from,
        )
    }

    /// Withdraws `grantee`'s grant; the reply says whether there was one.
    pub async fn revoke(&self, grantee: &str) -> Result<Reply<bool>, Error> {
        let message = pb::RevokeRequest {
            namespace: self.target.clone(),
            grantee: grantee.into(),
            caller: String::new(),
        };
        typed(self.grpc().revoke(self.request(message)).await, |revoked| {
            Ok(revoked.revoked)
        })
    }

    /// The active grants, by grantee.
    pub async fn list_grants(&self) -> Result<Reply<Vec<Grant>>, Error> {
        let message = pb::ListGrantsRequest {
            namespace: self.target.clone(),
            caller: String::new(),
        };
        typed(
            self.grpc().list_grants(self.request(message)).await,
            |listed| listed.grants.into_iter().map(Grant::try_from).collect(),
        )
    }

    /// Watches a key or prefix (see [`crate::Watch`]). A paid watch is
    /// charged once, when it starts ([`Watch::settlement`]).
    pub async fn watch(&self, options: &WatchOptions) -> Result<Watch, Error> {
        let message = pb::WatchRequest {
            namespace: self.target.clone(),
            key: options.key.clone(),
            prefix: options.prefix.clone(),
            since_revision: options.since_revision,
            since_cursor: options.since_cursor.clone(),
            timeout_seconds: options.timeout.map_or(0, |timeout| {
                ttl_seconds(timeout).min(u64::from(u32::MAX)) as u32
            }),
            caller: String::new(),
        };
        let events = self.grpc().watch(self.request(message)).await?;
        Ok(Watch::new(events))
    }

    fn grpc(&self) -> MemoryServiceClient<Transport> {
        self.grpc.clone()
    }

    fn request<M>(&self, message: M) -> Request<M> {
        let mut request = Request::new(message);
        if let Some(agent_id) = &self.agent_id {
            request.metadata_mut().insert(AGENT_ID, agent_id.clone());
        }
        request
    }
}

/// A served call's message, converted, with its settlement; or its error.
fn typed<M, T>(
    answer: Result<Response<M>, Status>,
    convert: impl FnOnce(M) -> Result<T, Error>,
) -> Result<Reply<T>, Error> {
    let response = answer?;
    let settlements = match Settlement::from_metadata(response.metadata()) {
        None => Vec::new(),
        Some(Ok(settlement)) => vec![settlement],
        // The call was served and paid: failing it now would make the
        // caller pay again for what it has.
        Some(Err(unreadable)) => {
            tracing::warn!(error = %unreadable, "a paid call's settlement is unreadable");
            Vec::new()
        }
    };
    Ok(Reply::new(convert(response.into_inner())?, settlements))
}
