//! gRPC reflection in both versions on every Tessera server: v1 (grpcurl,
//! newer clients) and v1alpha, which Python's grpcio-reflection, older
//! grpcurl and several GUI clients speak only. Python's own client (pinned
//! in tests/reflection/requirements.txt, `make py-deps`) lists the services
//! and resolves a service's methods; with `INTERNAL_TOKEN` it needs the
//! token, as v1 does.

use std::path::PathBuf;
use tessera_memory::Limits;
use tessera_runtime::grpc_auth::ServiceToken;
use tessera_tests::harness::{embedded_memory, MemoryServer};
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest;

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reflection/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make py-deps` (make test does)",
        python.display()
    );
    python
}

/// Python's grpcio-reflection describing `service` at `url`: its JSON line.
async fn describe(url: &str, service: &str, token: Option<&str>) -> (bool, serde_json::Value) {
    let target = url.trim_start_matches("http://");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reflection/describe.py");
    let mut command = tokio::process::Command::new(python());
    command.arg(script).args([target, service]);
    if let Some(token) = token {
        command.arg(token);
    }
    let output = command.output().await.expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "describe.py printed no JSON: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pythons_reflection_client_describes_the_memory_service() {
    let server = MemoryServer::start(embedded_memory(Limits::default()).await).await;
    let (ok, described) = describe(&server.url(), "tessera.memory.v1.MemoryService", None).await;
    assert!(ok, "{described}");
    let services: Vec<&str> = described["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    for expected in [
        "tessera.memory.v1.MemoryService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(services.contains(&expected), "{expected} in {services:?}");
    }
    // Only what this server serves: the payment service is elsewhere.
    assert!(
        !services.contains(&"tessera.payment.v1.PaymentService"),
        "{services:?}"
    );
    let methods = described["methods"].as_array().unwrap();
    for method in ["Get", "Set", "CompareAndSwap", "Increment", "Grant"] {
        assert!(
            methods.iter().any(|m| m == method),
            "{method} in {methods:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1alpha_reflection_needs_the_token_as_v1_does() {
    let token = "reflection-test-token";
    let server = MemoryServer::start_with_token(
        embedded_memory(Limits::default()).await,
        ServiceToken::new(token).unwrap(),
    )
    .await;
    let (ok, refused) = describe(&server.url(), "tessera.memory.v1.MemoryService", None).await;
    assert!(!ok, "{refused}");
    assert_eq!(refused["code"], "UNAUTHENTICATED", "{refused}");
    let (ok, described) = describe(
        &server.url(),
        "tessera.memory.v1.MemoryService",
        Some(token),
    )
    .await;
    assert!(ok, "{described}");
    assert!(described["methods"].as_array().unwrap().len() >= 5);
}

#[tokio::test]
async fn v1alpha_answers_file_requests_for_a_symbol() {
    let server = MemoryServer::start(embedded_memory(Limits::default()).await).await;
    let channel = server.channel().await;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "tessera.memory.v1.MemoryService".into(),
        )),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
        panic!("expected file descriptors: {response:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}
