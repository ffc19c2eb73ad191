//! The thin gRPC adapter over [`Memory`]: proto in, proto out, errors through
//! the shared table. A request's `caller` (data and grant requests alike)
//! goes to [`Memory::as_caller`].

use crate::grants::{AccessMode, Grant};
use crate::model::{Entry, ListPage};
use crate::watch::{EventKind, WatchEvent};
use crate::Memory;
use futures::stream::{BoxStream, StreamExt};
use tessera_error::Error;
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_server::{MemoryService, MemoryServiceServer};
use tonic::{Request, Response, Status};

pub const SERVICE_NAME: &str = "tessera.memory.v1.MemoryService";

pub fn server(memory: Memory) -> MemoryServiceServer<MemoryGrpc> {
    MemoryServiceServer::new(MemoryGrpc { memory }).max_decoding_message_size(4 * 1024 * 1024)
}

#[derive(Clone)]
pub struct MemoryGrpc {
    memory: Memory,
}

pub fn entry_to_proto(entry: Entry) -> pb::Entry {
    pb::Entry {
        etag: entry.etag(),
        size_bytes: entry.size_bytes(),
        namespace: entry.namespace,
        key: entry.key,
        value_json: entry.value,
        revision: entry.revision,
        created_at_ms: entry.created_at_ms,
        updated_at_ms: entry.updated_at_ms,
        expires_at_ms: entry.expires_at_ms,
    }
}

fn page_to_proto(page: ListPage) -> pb::ListResponse {
    pb::ListResponse {
        entries: page.entries.into_iter().map(entry_to_proto).collect(),
        next_cursor: page.next_cursor.unwrap_or_default(),
    }
}

pub fn mode_to_proto(mode: AccessMode) -> pb::AccessMode {
    match mode {
        AccessMode::Read => pb::AccessMode::Read,
        AccessMode::ReadWrite => pb::AccessMode::Readwrite,
    }
}

fn mode_from_proto(mode: i32) -> Result<AccessMode, Error> {
    match pb::AccessMode::try_from(mode) {
        Ok(pb::AccessMode::Read) => Ok(AccessMode::Read),
        Ok(pb::AccessMode::Readwrite) => Ok(AccessMode::ReadWrite),
        _ => Err(Error::invalid(
            "INVALID_MODE",
            "mode must be ACCESS_MODE_READ or ACCESS_MODE_READWRITE",
        )),
    }
}

pub fn grant_to_proto(grant: Grant) -> pb::GrantEntry {
    pb::GrantEntry {
        namespace: grant.namespace,
        grantee: grant.grantee,
        mode: mode_to_proto(grant.mode).into(),
        expires_at_ms: grant.expires_at_ms,
        created_at_ms: grant.created_at_ms,
    }
}

fn event_kind_to_proto(kind: EventKind) -> pb::watch_event::Kind {
    match kind {
        EventKind::Progress => pb::watch_event::Kind::Progress,
        EventKind::Put => pb::watch_event::Kind::Put,
        EventKind::Delete => pb::watch_event::Kind::Delete,
        EventKind::Expire => pb::watch_event::Kind::Expire,
        EventKind::Resync => pb::watch_event::Kind::Resync,
    }
}

pub fn event_to_proto(event: WatchEvent) -> pb::WatchEvent {
    pb::WatchEvent {
        kind: event_kind_to_proto(event.kind).into(),
        key: event.key,
        revision: event.revision,
        entry: event.entry.map(entry_to_proto),
        cursor: event.cursor,
        compacted: event.compacted,
    }
}

impl MemoryGrpc {
    /// The service as `caller` (empty = the request's namespace itself).
    fn by(&self, caller: &str) -> Memory {
        self.memory.as_caller(caller)
    }
}

#[tonic::async_trait]
impl MemoryService for MemoryGrpc {
    type WatchStream = BoxStream<'static, Result<pb::WatchEvent, Status>>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let r = request.into_inner();
        let events = self
            .by(&r.caller)
            .watch(
                &r.namespace,
                &r.key,
                &r.prefix,
                r.since_revision,
                &r.since_cursor,
                r.timeout_seconds,
            )
            .await?;
        // A watch that could not start failed above, as a call.
        let stream = futures::stream::unfold(events, |mut events| async move {
            let event = events.recv().await?;
            let item = event.map(event_to_proto).map_err(|error| error.to_status());
            Some((item, events))
        });
        Ok(Response::new(stream.boxed()))
    }

    async fn get(&self, request: Request<pb::GetRequest>) -> Result<Response<pb::Entry>, Status> {
        let r = request.into_inner();
        let entry = self.by(&r.caller).get(&r.namespace, &r.key).await?;
        Ok(Response::new(entry_to_proto(entry)))
    }

    async fn set(&self, request: Request<pb::SetRequest>) -> Result<Response<pb::Entry>, Status> {
        let r = request.into_inner();
        let entry = self
            .by(&r.caller)
            .set(
                &r.namespace,
                &r.key,
                &r.value_json,
                r.ttl_seconds,
                r.if_match.as_deref(),
            )
            .await?;
        Ok(Response::new(entry_to_proto(entry)))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let r = request.into_inner();
        let deleted = self
            .by(&r.caller)
            .delete(&r.namespace, &r.key, r.if_match.as_deref())
            .await?;
        Ok(Response::new(pb::DeleteResponse {
            deleted: deleted.deleted,
            revision: deleted.revision,
        }))
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let r = request.into_inner();
        let page = self
            .by(&r.caller)
            .list(&r.namespace, &r.prefix, r.limit, &r.cursor)
            .await?;
        Ok(Response::new(page_to_proto(page)))
    }

    async fn compare_and_swap(
        &self,
        request: Request<pb::CompareAndSwapRequest>,
    ) -> Result<Response<pb::CompareAndSwapResponse>, Status> {
        let r = request.into_inner();
        let outcome = self
            .by(&r.caller)
            .cas(
                &r.namespace,
                &r.key,
                r.expected_json.as_deref(),
                r.value_json.as_deref(),
                r.ttl_seconds,
            )
            .await?;
        Ok(Response::new(pb::CompareAndSwapResponse {
            swapped: outcome.swapped,
            current: outcome.current.map(entry_to_proto),
            revision: outcome.revision,
        }))
    }

    async fn increment(
        &self,
        request: Request<pb::IncrementRequest>,
    ) -> Result<Response<pb::Entry>, Status> {
        let r = request.into_inner();
        let entry = self
            .by(&r.caller)
            .incr(&r.namespace, &r.key, &r.by_json, r.ttl_seconds)
            .await?;
        Ok(Response::new(entry_to_proto(entry)))
    }

    async fn grant(
        &self,
        request: Request<pb::GrantRequest>,
    ) -> Result<Response<pb::GrantEntry>, Status> {
        let r = request.into_inner();
        let mode = mode_from_proto(r.mode)?;
        let grant = self
            .by(&r.caller)
            .grant(&r.namespace, &r.grantee, mode, r.ttl_seconds)
            .await?;
        Ok(Response::new(grant_to_proto(grant)))
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let r = request.into_inner();
        let revoked = self.by(&r.caller).revoke(&r.namespace, &r.grantee).await?;
        Ok(Response::new(pb::RevokeResponse { revoked }))
    }

    async fn list_grants(
        &self,
        request: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let r = request.into_inner();
        let grants = self.by(&r.caller).list_grants(&r.namespace).await?;
        Ok(Response::new(pb::ListGrantsResponse {
            grants: grants.into_iter().map(grant_to_proto).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_map_both_ways_and_unspecified_is_invalid() {
        for mode in [AccessMode::Read, AccessMode::ReadWrite] {
            assert_eq!(mode_from_proto(mode_to_proto(mode).into()).unwrap(), mode);
        }
        for raw in [pb::AccessMode::Unspecified as i32, 7] {
            assert_eq!(mode_from_proto(raw).unwrap_err().reason, "INVALID_MODE");
        }
    }
}
