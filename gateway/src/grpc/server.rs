//! What the gateway's port serves over gRPC besides HTTP: the paid memory
//! methods (a face of catalog routes, gated like REST), and the free gRPC
//! health and reflection services, which describe only what is served here.

use crate::routes::FaceRoutes;
use crate::AppState;
use axum::routing::{post_service, MethodRouter};
use tessera_proto::memory::v1::memory_service_server::MemoryServiceServer;
use tonic::server::NamedService;
use tonic_health::ServingStatus;

/// The service fleets call on the gateway's port.
pub const MEMORY_SERVICE: &str = <MemoryServiceServer<()> as NamedService>::NAME;

/// Every method of the public memory service, as catalog route ids.
pub(crate) fn routes() -> FaceRoutes {
    let face = FaceRoutes::new(tessera_catalog::Face::Grpc);
    tessera_catalog::routes()
        .iter()
        .filter(|route| route.face == tessera_catalog::Face::Grpc)
        .fold(face, |face, route| {
            face.handle(&[route.id], super::memory::serve)
        })
}

/// gRPC health (the memory service and "" serving) and reflection v1 and
/// v1alpha over the memory proto, each free like the other discovery routes.
pub(crate) async fn discovery() -> anyhow::Result<Vec<(&'static str, MethodRouter<AppState>)>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(MEMORY_SERVICE, ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let served = [
        MEMORY_SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    // The public proto only: the internal services are not described here.
    let reflection = |served| {
        tessera_runtime::grpc::reflection(tessera_proto::PUBLIC_FILE_DESCRIPTOR_SET, served)
    };
    Ok(vec![
        ("/grpc.health.v1.Health/{method}", post_service(health)),
        (
            "/grpc.reflection.v1.ServerReflection/{method}",
            post_service(reflection(&served).build_v1()?),
        ),
        (
            "/grpc.reflection.v1alpha.ServerReflection/{method}",
            post_service(reflection(&served).build_v1alpha()?),
        ),
    ])
}
