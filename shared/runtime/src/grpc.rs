//! Serves a set of tonic services with what every Tessera server carries:
//! gRPC health (one entry per service, plus the overall ""), reflection over
//! all Tessera protos, grpc-web, a tracing span per call, and a graceful stop.

use crate::Shutdown;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic_health::ServingStatus;

pub struct GrpcServer {
    routes: Routes,
    service_names: Vec<&'static str>,
}

impl GrpcServer {
    /// `service_name` is the fully qualified proto name, e.g.
    /// `tessera.memory.v1.MemoryService` (use `NamedService::NAME`).
    pub fn new<S>(service_name: &'static str, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        GrpcServer {
            routes: Routes::new(service),
            service_names: vec![service_name],
        }
    }

    pub fn add<S>(mut self, service_name: &'static str, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes = self.routes.add_service(service);
        self.service_names.push(service_name);
        self
    }

    /// Serves on `listener` until `shutdown` fires, then drains and returns.
    pub async fn serve(self, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
        let addr: SocketAddr = listener.local_addr()?;
        let (reporter, health_service) = tonic_health::server::health_reporter();
        for name in &self.service_names {
            reporter.set_service_status(*name, ServingStatus::Serving).await;
        }
        reporter.set_service_status("", ServingStatus::Serving).await;

        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tessera_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;

        let routes = self.routes.add_service(health_service).add_service(reflection);
        tracing::info!(%addr, services = ?self.service_names, "gRPC listening");

        let drain = {
            let shutdown = shutdown.clone();
            let names = self.service_names.clone();
            async move {
                shutdown.wait().await;
                for name in names {
                    reporter.set_service_status(name, ServingStatus::NotServing).await;
                }
                reporter.set_service_status("", ServingStatus::NotServing).await;
            }
        };

        tonic::transport::Server::builder()
            .accept_http1(true)
            .trace_fn(|request| tracing::info_span!("grpc", path = %request.uri().path()))
            .layer(tonic_web::GrpcWebLayer::new())
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), drain)
            .await?;
        tracing::info!(%addr, "gRPC server stopped");
        Ok(())
    }
}
