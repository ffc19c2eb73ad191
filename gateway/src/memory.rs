//! A thin client over the memory gRPC service that speaks in JSON values
//! rather than JSON text, shared by every REST face. Every data call names a
//! [`Target`]: the namespace acted on and the caller acting; the memory
//! service decides whether the caller may (a grant, for another namespace).
//! Grant management names the owner as the caller too. Every call carries
//! the internal service token (`INTERNAL_TOKEN`) when one is set.

use crate::transport::{self, LocalService, Transport};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use std::time::Duration;
use tessera_error::{Error, ErrorKind};
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tessera_runtime::grpc_auth::ServiceToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tower::util::BoxCloneSyncService;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Who calls, on which namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The caller's own namespace (the gate's identity).
    pub caller: String,
    /// The namespace read or written: the caller's, or an owner's that
    /// granted it access.
    pub namespace: String,
}

impl Target {
    /// A namespace acting on itself.
    pub fn own(namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        Target {
            caller: namespace.clone(),
            namespace,
        }
    }
}

/// What a grant allows, spelled as the agent402 API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantMode {
    /// Get and list.
    Read,
    /// Everything.
    Readwrite,
}

impl From<GrantMode> for pb::AccessMode {
    fn from(mode: GrantMode) -> Self {
        match mode {
            GrantMode::Read => pb::AccessMode::Read,
            GrantMode::Readwrite => pb::AccessMode::Readwrite,
        }
    }
}

/// An active grant of the owner's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub owner: String,
    pub grantee: String,
    pub mode: GrantMode,
    pub expires_at_ms: Option<i64>,
}

impl TryFrom<pb::GrantEntry> for Grant {
    type Error = Error;

    fn try_from(grant: pb::GrantEntry) -> Result<Self, Error> {
        let mode = match pb::AccessMode::try_from(grant.mode) {
            Ok(pb::AccessMode::Read) => GrantMode::Read,
            Ok(pb::AccessMode::Readwrite) => GrantMode::Readwrite,
            _ => {
                return Err(Error::internal(format!(
                    "memory service returned a grant with mode {}",
                    grant.mode
                )))
            }
        };
        Ok(Grant {
            owner: grant.namespace,
            grantee: grant.grantee,
            mode,
            expires_at_ms: grant.expires_at_ms,
        })
    }
}

/// A live entry, its value parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub etag: String,
    pub revision: u64,
    pub size_bytes: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

impl TryFrom<pb::Entry> for Entry {
    type Error = Error;

    fn try_from(entry: pb::Entry) -> Result<Self, Error> {
        let value = serde_json::from_str(&entry.value_json).map_err(|e| {
            Error::internal(format!(
                "memory service returned a malformed value for {:?}: {e}",
                entry.key
            ))
        })?;
        Ok(Entry {
            key: entry.key,
            value,
            etag: entry.etag,
            revision: entry.revision,
            size_bytes: entry.size_bytes,
            created_at_ms: entry.created_at_ms,
            updated_at_ms: entry.updated_at_ms,
            expires_at_ms: entry.expires_at_ms,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub deleted: bool,
    pub revision: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CasOutcome {
    pub swapped: bool,
    pub current: Option<Entry>,
    pub revision: u64,
}

/// A listing request; the memory service applies its defaults and bounds.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub prefix: String,
    /// 0 = the service's default.
    pub limit: u32,
    pub cursor: String,
}

/// A write's options.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub ttl_seconds: Option<u64>,
    pub if_match: Option<String>,
}

/// What a watch waits for: one key, or every key under a prefix, after a
/// revision of the key or a cursor of an earlier event.
#[derive(Debug, Clone, Default)]
pub struct WatchParams {
    pub key: String,
    pub prefix: String,
    pub since_revision: u64,
    pub since_cursor: String,
    /// 0 = the memory service's limit.
    pub timeout_seconds: u32,
}

/// What happened to a watched key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Put,
    Delete,
    Expire,
    /// The change log lost the position asked for: read the current state,
    /// then watch from the event's cursor.
    Resync,
}

/// One change a watch reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub key: String,
    pub revision: u64,
    pub entry: Option<Entry>,
    pub cursor: String,
    pub compacted: bool,
}

/// The first change of a long poll, or where the watch stood at its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Watched {
    Change(Change),
    Quiet { cursor: String },
}

#[derive(Debug, Clone)]
pub struct MemoryClient {
    client: MemoryServiceClient<InterceptedService<Transport, ServiceToken>>,
}

impl MemoryClient {
    /// A client whose connection is made on first use, so the gateway starts
    /// (and reports not-ready) while the memory service is still down. Every
    /// call carries `token` (the internal service token), if one is set.
    pub fn connect_lazy(url: &str, token: ServiceToken) -> anyhow::Result<Self> {
        let transport = transport::lazy(url, CONNECT_TIMEOUT, CALL_TIMEOUT)?;
        Ok(Self::over(transport, token))
    }

    pub fn new(channel: Channel, token: ServiceToken) -> Self {
        Self::over(BoxCloneSyncService::new(channel), token)
    }

    /// A client calling `service` (the memory gRPC server of this process)
    /// directly: requests are encoded and decoded as over the network, but
    /// no HTTP/2 connection or loopback hop is paid.
    pub fn in_process(service: impl LocalService, token: ServiceToken) -> Self {
        Self::over(transport::in_process(service), token)
    }

    /// The memory service's own gRPC client (for the public gRPC API, which
    /// forwards its messages as they are).
    pub(crate) fn grpc(&self) -> MemoryServiceClient<InterceptedService<Transport, ServiceToken>> {
        self.client.clone()
    }

    fn over(transport: Transport, token: ServiceToken) -> Self {
        MemoryClient {
            client: MemoryServiceClient::with_interceptor(transport, token),
        }
    }

    /// The entry, or `None` when absent or expired.
    pub async fn get(&self, target: &Target, key: &str) -> Result<Option<Entry>, Error> {
        let request = pb::GetRequest {
            namespace: target.namespace.clone(),
            key: key.into(),
            caller: target.caller.clone(),
        };
        match self.client.clone().get(request).await {
            Ok(response) => Ok(Some(response.into_inner().try_into()?)),
            Err(status) => match from_status(status) {
                error if error.kind == ErrorKind::NotFound => Ok(None),
                error => Err(error),
            },
        }
    }

    pub async fn set(
        &self,
        target: &Target,
        key: &str,
        value: &Value,
        options: WriteOptions,
    ) -> Result<Entry, Error> {
        let request = pb::SetRequest {
            namespace: target.namespace.clone(),
            key: key.into(),
            value_json: value.to_string(),
            ttl_seconds: options.ttl_seconds,
            if_match: options.if_match,
            caller: target.caller.clone(),
        };
        let response = self
            .client
            .clone()
            .set(request)
            .await
            .map_err(from_status)?;
        response.into_inner().try_into()
    }

    pub async fn delete(
        &self,
        target: &Target,
        key: &str,
        if_match: Option<String>,
    ) -> Result<Deleted, Error> {
        let request = pb::DeleteRequest {
            namespace: target.namespace.clone(),
            key: key.into(),
            if_match,
            caller: target.caller.clone(),
        };
        let response = self
            .client
            .clone()
            .delete(request)
            .await
            .map_err(from_status)?
            .into_inner();
        Ok(Deleted {
            deleted: response.deleted,
            revision: response.revision,
        })
    }

    pub async fn list(&self, target: &Target, params: ListParams) -> Result<Page, Error> {
        let request = pb::ListRequest {
            namespace: target.namespace.clone(),
            prefix: params.prefix,
            limit: params.limit,
            cursor: params.cursor,
            caller: target.caller.clone(),
        };
        let response = self
            .client
            .clone()
            .list(request)
            .await
            .map_err(from_status)?
            .into_inner();
        Ok(Page {
            entries: response
                .entries
                .into_iter()
                .map(Entry::try_from)
                .collect::<Result<_, _>>()?,
            next_cursor: Some(response.next_cursor).filter(|cursor| !cursor.is_empty()),
        })
    }

    /// Waits for the first change `params` asks about (a long poll).
    pub async fn watch_first(
        &self,
        target: &Target,
        params: WatchParams,
    ) -> Result<Watched, Error> {
        let request = pb::WatchRequest {
            namespace: target.namespace.clone(),
            key: params.key,
            prefix: params.prefix,
            since_revision: params.since_revision,
            since_cursor: params.since_cursor,
            timeout_seconds: params.timeout_seconds,
            caller: target.caller.clone(),
        };
        let mut events = self
            .client
            .clone()
            .watch(request)
            .await
            .map_err(from_status)?
            .into_inner();
        let mut cursor = String::new();
        while let Some(event) = events.message().await.map_err(from_status)? {
            let kind = match pb::watch_event::Kind::try_from(event.kind) {
                Ok(pb::watch_event::Kind::Progress) => {
                    cursor = event.cursor;
                    continue;
                }
                Ok(pb::watch_event::Kind::Put) => ChangeKind::Put,
                Ok(pb::watch_event::Kind::Delete) => ChangeKind::Delete,
                Ok(pb::watch_event::Kind::Expire) => ChangeKind::Expire,
                Ok(pb::watch_event::Kind::Resync) => ChangeKind::Resync,
                _ => {
                    return Err(Error::internal(format!(
                        "memory service sent a watch event of kind {}",
                        event.kind
                    )))
                }
            };
            return Ok(Watched::Change(Change {
                kind,
                key: event.key,
                revision: event.revision,
                entry: event.entry.map(Entry::try_from).transpose()?,
                cursor: event.cursor,
                compacted: event.compacted,
            }));
        }
        Ok(Watched::Quiet { cursor })
    }

    /// Writes `value` (or deletes, when `None`) only if the current value
    /// equals `expected` (`None` = absent).
    pub async fn compare_and_swap(
        &self,
        target: &Target,
        key: &str,
        expected: Option<&Value>,
        value: Option<&Value>,
        ttl_seconds: Option<u64>,
    ) -> Result<CasOutcome, Error> {
        let request = pb::CompareAndSwapRequest {
            namespace: target.namespace.clone(),
            key: key.into(),
            expected_json: expected.map(Value::to_string),
            value_json: value.map(Value::to_string),
            ttl_seconds,
            caller: target.caller.clone(),
        };
        let response = self
            .client
            .clone()
            .compare_and_swap(request)
            .await
            .map_err(from_status)?
            .into_inner();
        Ok(CasOutcome {
            swapped: response.swapped,
            current: response.current.map(Entry::try_from).transpose()?,
            revision: response.revision,
        })
    }

    pub async fn increment(
        &self,
        target: &Target,
        key: &str,
        by: &Number,
        ttl_seconds: Option<u64>,
    ) -> Result<Entry, Error> {
        // `Number::to_string` is exact for any i64/u64, so integers add exactly.
        let request = pb::IncrementRequest {
            namespace: target.namespace.clone(),
            key: key.into(),
            by_json: by.to_string(),
            ttl_seconds,
            caller: target.caller.clone(),
        };
        let response = self
            .client
            .clone()
            .increment(request)
            .await
            .map_err(from_status)?;
        response.into_inner().try_into()
    }

    /// Whether the memory service answers. A one-key list of a reserved,
    /// empty namespace goes through the service's storage too, which a gRPC
    /// health probe would not, works against a server that registers no
    /// health service, and is not an error (a read of a missing key is
    /// NOT_FOUND, logged by the service on every probe).
    pub async fn ping(&self) -> Result<(), Error> {
        let params = ListParams {
            limit: 1,
            ..Default::default()
        };
        self.list(&Target::own("tessera.readiness"), params)
            .await
            .map(|_| ())
    }

    /// Lets `grantee` into `owner`'s namespace; replaces an earlier grant.
    /// `owner` is the acting namespace (the caller): the memory service
    /// refuses anyone else.
    pub async fn grant(
        &self,
        owner: &str,
        grantee: &str,
        mode: GrantMode,
        ttl_seconds: Option<u64>,
    ) -> Result<Grant, Error> {
        let request = pb::GrantRequest {
            namespace: owner.into(),
            grantee: grantee.into(),
            mode: pb::AccessMode::from(mode).into(),
            ttl_seconds,
            caller: owner.into(),
        };
        let response = self
            .client
            .clone()
            .grant(request)
            .await
            .map_err(from_status)?;
        response.into_inner().try_into()
    }

    /// `true` when an active grant was withdrawn.
    pub async fn revoke(&self, owner: &str, grantee: &str) -> Result<bool, Error> {
        let request = pb::RevokeRequest {
            namespace: owner.into(),
            grantee: grantee.into(),
            caller: owner.into(),
        };
        let response = self
            .client
            .clone()
            .revoke(request)
            .await
            .map_err(from_status)?;
        Ok(response.into_inner().revoked)
    }

    /// `owner`'s active grants, ordered by grantee.
    pub async fn list_grants(&self, owner: &str) -> Result<Vec<Grant>, Error> {
        let request = pb::ListGrantsRequest {
            namespace: owner.into(),
            caller: owner.into(),
        };
        let response = self
            .client
            .clone()
            .list_grants(request)
            .await
            .map_err(from_status)?;
        response
            .into_inner()
            .grants
            .into_iter()
            .map(Grant::try_from)
            .collect()
    }
}

/// The service's own error; failures to reach it say which service it was.
fn from_status(status: tonic::Status) -> Error {
    let mut error = crate::errors::from_internal_status("memory", &status);
    if matches!(
        error.kind,
        ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::BadGateway
    ) {
        error.message = format!("memory service: {}", error.message);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn proto_entry(value_json: &str) -> pb::Entry {
        pb::Entry {
            namespace: "ns".into(),
            key: "k".into(),
            value_json: value_json.into(),
            etag: "3".into(),
            revision: 3,
            size_bytes: value_json.len() as u64,
            created_at_ms: 1_000,
            updated_at_ms: 2_000,
            expires_at_ms: None,
        }
    }

    #[test]
    fn proto_entries_carry_parsed_values() {
        let entry =
            Entry::try_from(proto_entry(r#"{"a":[1,2],"big":18446744073709551615}"#)).unwrap();
        assert_eq!(
            entry.value,
            json!({ "a": [1, 2], "big": 18446744073709551615u64 })
        );
        assert_eq!(entry.etag, "3");
    }

    #[test]
    fn a_malformed_value_is_an_internal_error() {
        let error = Entry::try_from(proto_entry("{not json")).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Internal);
    }

    #[test]
    fn grants_map_from_proto_and_an_unknown_mode_is_internal() {
        let entry = pb::GrantEntry {
            namespace: "0xa".into(),
            grantee: "0xb".into(),
            mode: pb::AccessMode::Readwrite.into(),
            expires_at_ms: Some(5_000),
            created_at_ms: 1_000,
        };
        let grant = Grant::try_from(entry.clone()).unwrap();
        assert_eq!(
            (grant.owner.as_str(), grant.grantee.as_str(), grant.mode),
            ("0xa", "0xb", GrantMode::Readwrite)
        );
        assert_eq!(grant.expires_at_ms, Some(5_000));
        let unknown = pb::GrantEntry { mode: 0, ..entry };
        assert_eq!(
            Grant::try_from(unknown).unwrap_err().kind,
            ErrorKind::Internal
        );
    }

    #[test]
    fn a_refused_service_token_is_an_internal_error() {
        let refused = tessera_runtime::grpc_auth::refusal(false).to_status();
        let error = from_status(refused);
        assert_eq!(error.kind, ErrorKind::Internal);
        assert!(
            error.message.contains("INTERNAL_TOKEN"),
            "{}",
            error.message
        );
        let foreign = from_status(tonic::Status::unavailable("connection refused"));
        assert!(foreign.message.starts_with("memory service: "));
    }

    #[test]
    fn integer_increments_are_sent_exactly() {
        let by: Number = serde_json::from_str("9007199254740993").unwrap();
        assert_eq!(by.to_string(), "9007199254740993");
        let by: Number = serde_json::from_str("-2.5").unwrap();
        assert_eq!(by.to_string(), "-2.5");
    }
}
