//! What every Tessera gRPC server carries, checked over the wire: health per
//! service (and NOT_SERVING once draining), reflection listing every service,
//! and a structured error whose `ErrorInfo` survives the hop.

use tessera_memory::Limits;
use tessera_proto::memory::v1 as pb;
use tessera_tests::harness::{embedded_memory, MemoryServer};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

#[tokio::test]
async fn health_reflection_and_structured_errors() {
    let server = MemoryServer::start(embedded_memory(Limits::default()).await).await;
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut health = HealthClient::new(channel.clone());
    for service in ["", tessera_memory::grpc::SERVICE_NAME] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            ServingStatus::Serving as i32,
            "health of {service:?}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope.v1.Nope".into(),
        })
        .await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&tessera_memory::grpc::SERVICE_NAME.to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );

    let mut memory = server.client().await;
    let status = memory
        .set(pb::SetRequest {
            namespace: "ns".into(),
            key: "k".repeat(300),
            value_json: "1".into(),
            ttl_seconds: None,
            if_match: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let error = tessera_error::Error::from_status(&status);
    assert_eq!(
        (error.reason.as_str(), error.http_status()),
        ("KEY_TOO_LONG", 400)
    );

    server.stop().await;
    assert!(
        health
            .check(HealthCheckRequest {
                service: String::new()
            })
            .await
            .is_err(),
        "a stopped server no longer answers"
    );
}

/// A direct gRPC client gets the grant check too: `caller` on the data
/// requests, and the Grant / Revoke / ListGrants RPCs.
#[tokio::test]
async fn grants_over_grpc() {
    let server = MemoryServer::start(embedded_memory(Limits::default()).await).await;
    let mut memory = server.client().await;
    let (owner, grantee) = ("0xowner", "0xgrantee");
    memory
        .set(pb::SetRequest {
            namespace: owner.into(),
            key: "k".into(),
            value_json: "1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let get = |caller: &str| pb::GetRequest {
        namespace: owner.into(),
        key: "k".into(),
        caller: caller.into(),
    };

    let status = memory.get(get(grantee)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let error = tessera_error::Error::from_status(&status);
    assert_eq!(
        (error.reason.as_str(), error.http_status()),
        ("NO_GRANT", 403)
    );
    // Empty caller and caller == namespace are the namespace itself.
    memory.get(get("")).await.unwrap();
    memory.get(get(owner)).await.unwrap();

    let unspecified = memory
        .grant(pb::GrantRequest {
            namespace: owner.into(),
            grantee: grantee.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unspecified.code(), tonic::Code::InvalidArgument);
    let granted = memory
        .grant(pb::GrantRequest {
            namespace: owner.into(),
            grantee: grantee.into(),
            mode: pb::AccessMode::Read.into(),
            ttl_seconds: Some(60),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(granted.mode(), pb::AccessMode::Read);
    assert_eq!(granted.expires_at_ms, Some(granted.created_at_ms + 60_000));
    assert_eq!(
        memory
            .get(get(grantee))
            .await
            .unwrap()
            .into_inner()
            .value_json,
        "1"
    );
    let write = memory
        .increment(pb::IncrementRequest {
            namespace: owner.into(),
            key: "k".into(),
            caller: grantee.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(write.code(), tonic::Code::PermissionDenied);

    let listed = memory
        .list_grants(pb::ListGrantsRequest {
            namespace: owner.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.grants, [granted]);
    let revoke = pb::RevokeRequest {
        namespace: owner.into(),
        grantee: grantee.into(),
    };
    assert!(
        memory
            .revoke(revoke.clone())
            .await
            .unwrap()
            .into_inner()
            .revoked
    );
    assert!(!memory.revoke(revoke).await.unwrap().into_inner().revoked);
    assert_eq!(
        memory.get(get(grantee)).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
}
