//! What every Tessera gRPC server carries, checked over the wire: health per
//! service (and NOT_SERVING once draining), reflection listing every service,
//! a structured error whose `ErrorInfo` survives the hop, the internal
//! service token (`INTERNAL_TOKEN`) when required, and the grant checks.

use tessera_memory::Limits;
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tessera_runtime::grpc_auth::ServiceToken;
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
    let channel = server.channel().await;

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
            caller: owner.into(),
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
            caller: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.grants, [granted]);
    let revoke = pb::RevokeRequest {
        namespace: owner.into(),
        grantee: grantee.into(),
        caller: owner.into(),
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

/// Grant, Revoke and ListGrants check `caller`: a stranger (or a grantee)
/// can neither give itself access to another namespace, nor withdraw or see
/// its grants; nothing changes.
#[tokio::test]
async fn only_the_owner_manages_its_grants_over_grpc() {
    let server = MemoryServer::start(embedded_memory(Limits::default()).await).await;
    let mut memory = server.client().await;
    let (owner, friend, stranger) = ("0xowner", "0xfriend", "0xstranger");
    memory
        .set(pb::SetRequest {
            namespace: owner.into(),
            key: "k".into(),
            value_json: "1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let given = memory
        .grant(pb::GrantRequest {
            namespace: owner.into(),
            grantee: friend.into(),
            mode: pb::AccessMode::Read.into(),
            caller: owner.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let not_owner = |status: tonic::Status, what: &str| {
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{what}");
        let error = tessera_error::Error::from_status(&status);
        assert_eq!(
            (error.reason.as_str(), error.http_status()),
            ("NOT_OWNER", 403),
            "{what}"
        );
    };
    for caller in [stranger, friend] {
        let refused = memory
            .grant(pb::GrantRequest {
                namespace: owner.into(),
                grantee: caller.into(),
                mode: pb::AccessMode::Readwrite.into(),
                caller: caller.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        not_owner(refused, &format!("{caller} grants itself"));
        let refused = memory
            .revoke(pb::RevokeRequest {
                namespace: owner.into(),
                grantee: friend.into(),
                caller: caller.into(),
            })
            .await
            .unwrap_err();
        not_owner(refused, &format!("{caller} revokes"));
        let refused = memory
            .list_grants(pb::ListGrantsRequest {
                namespace: owner.into(),
                caller: caller.into(),
            })
            .await
            .unwrap_err();
        not_owner(refused, &format!("{caller} lists"));
    }

    // Nothing changed: the friend still reads, read only; the stranger
    // still has nothing.
    let listed = memory
        .list_grants(pb::ListGrantsRequest {
            namespace: owner.into(),
            caller: owner.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.grants, [given]);
    let get = |caller: &str| pb::GetRequest {
        namespace: owner.into(),
        key: "k".into(),
        caller: caller.into(),
    };
    memory.get(get(friend)).await.unwrap();
    assert_eq!(
        memory.get(get(stranger)).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let write = memory
        .set(pb::SetRequest {
            namespace: owner.into(),
            key: "k".into(),
            value_json: "2".into(),
            caller: friend.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(write.code(), tonic::Code::PermissionDenied);
}

fn assert_token_refused(status: tonic::Status, what: &str) {
    assert_eq!(
        status.code(),
        tonic::Code::Unauthenticated,
        "{what}: {status:?}"
    );
    let error = tessera_error::Error::from_status(&status);
    assert_eq!(
        (error.reason.as_str(), error.http_status()),
        ("INTERNAL_TOKEN_REQUIRED", 401),
        "{what}"
    );
}

/// With INTERNAL_TOKEN required, a call without it or with another one is
/// UNAUTHENTICATED (reason INTERNAL_TOKEN_REQUIRED) and does nothing; with
/// it the call runs; health answers without it (Kubernetes probes).
#[tokio::test]
async fn the_internal_token_is_required_on_every_call_but_health() {
    let token = ServiceToken::new("internal-s3cret-token").unwrap();
    let server =
        MemoryServer::start_with_token(embedded_memory(Limits::default()).await, token.clone())
            .await;
    let channel = server.channel().await;
    let set = || pb::SetRequest {
        namespace: "ns".into(),
        key: "k".into(),
        value_json: "1".into(),
        ..Default::default()
    };
    let get = || pb::GetRequest {
        namespace: "ns".into(),
        key: "k".into(),
        ..Default::default()
    };

    let mut bare = MemoryServiceClient::new(channel.clone());
    assert_token_refused(bare.set(set()).await.unwrap_err(), "set without a token");
    assert_token_refused(bare.get(get()).await.unwrap_err(), "get without a token");
    for wrong in [
        "internal-s3cret-tokeN",
        "internal-s3cret-token2",
        "internal",
    ] {
        let mut client = MemoryServiceClient::with_interceptor(
            channel.clone(),
            ServiceToken::new(wrong).unwrap(),
        );
        assert_token_refused(client.set(set()).await.unwrap_err(), wrong);
    }
    // Not a bearer token: the token alone, or another scheme.
    for raw in ["internal-s3cret-token", "Basic internal-s3cret-token"] {
        let mut request = tonic::Request::new(get());
        request
            .metadata_mut()
            .insert("authorization", raw.parse().unwrap());
        assert_token_refused(bare.get(request).await.unwrap_err(), raw);
    }

    let mut right = MemoryServiceClient::with_interceptor(channel.clone(), token);
    assert_eq!(
        right.get(get()).await.unwrap_err().code(),
        tonic::Code::NotFound,
        "the refused set wrote nothing"
    );
    right.set(set()).await.unwrap();
    assert_eq!(right.get(get()).await.unwrap().into_inner().value_json, "1");
    // The scheme is case-insensitive.
    let mut request = tonic::Request::new(get());
    request.metadata_mut().insert(
        "authorization",
        "bearer internal-s3cret-token".parse().unwrap(),
    );
    bare.get(request).await.unwrap();

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
            "health of {service:?} without a token"
        );
    }
    // Reflection describes the internal API: token required too.
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let refused = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap_err();
    assert_token_refused(refused, "reflection without a token");
}
