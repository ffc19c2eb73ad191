//! The thin gRPC adapter over [`Memory`]: proto in, proto out, errors through
//! the shared table.

use crate::model::{Entry, ListPage};
use crate::Memory;
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

#[tonic::async_trait]
impl MemoryService for MemoryGrpc {
    async fn get(&self, request: Request<pb::GetRequest>) -> Result<Response<pb::Entry>, Status> {
        let r = request.into_inner();
        let entry = self.memory.get(&r.namespace, &r.key).await?;
        Ok(Response::new(entry_to_proto(entry)))
    }

    async fn set(&self, request: Request<pb::SetRequest>) -> Result<Response<pb::Entry>, Status> {
        let r = request.into_inner();
        let entry = self
            .memory
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
            .memory
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
            .memory
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
            .memory
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
            .memory
            .incr(&r.namespace, &r.key, &r.by_json, r.ttl_seconds)
            .await?;
        Ok(Response::new(entry_to_proto(entry)))
    }
}
