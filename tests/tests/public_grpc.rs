//! The public gRPC memory API on the gateway's port: free mode (identity
//! from `x-agent-id` metadata) and paid with x402 in metadata on a real
//! chain, with health and reflection beside it.

use alloy::signers::local::PrivateKeySigner;
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tessera_tests::gateway_http::GatewayHarness;
use tessera_tests::harness::{embedded_memory, unique_namespace};
use tessera_tests::paid::{self, PaidStack};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .expect("the gateway speaks HTTP/2")
}

fn as_agent<T>(message: T, agent: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-agent-id", MetadataValue::try_from(agent).unwrap());
    request
}

fn reason(status: &tonic::Status) -> String {
    tessera_error::Error::from_status(status).reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_mode_serves_memory_over_grpc_as_the_agent_id_says() {
    let gateway = GatewayHarness::start_in_process(embedded_memory(Default::default()).await).await;
    let mut client = MemoryServiceClient::new(channel(gateway.url()).await);
    let agent = unique_namespace("grpc-agent");

    let unidentified = client
        .get(pb::GetRequest {
            key: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unidentified.code(), Code::Unauthenticated);
    assert_eq!(reason(&unidentified), "AGENT_ID_REQUIRED");

    let set = pb::SetRequest {
        key: "lock".into(),
        value_json: r#"{"owner":"a"}"#.into(),
        ..Default::default()
    };
    let entry = client
        .set(as_agent(set, &agent))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(entry.namespace, agent, "an empty namespace is the caller's");
    assert_eq!(entry.revision, 1);

    // The same key, read back over REST: one store behind both.
    let reply = gateway.get("/api/agent/memory/get?key=lock", &agent).await;
    assert_eq!(
        reply.body["value"]["owner"], "a",
        "{} {}",
        reply.status, reply.body
    );

    let swapped = client
        .compare_and_swap(as_agent(
            pb::CompareAndSwapRequest {
                key: "lock".into(),
                expected_json: Some(r#"{"owner":"a"}"#.into()),
                value_json: None,
                ..Default::default()
            },
            &agent,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(swapped.swapped);
    assert_eq!(
        swapped.revision, 2,
        "the delete is the fencing token's next revision"
    );

    let missing = client
        .get(as_agent(
            pb::GetRequest {
                key: "lock".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Another namespace needs a grant; naming another caller is refused.
    let other = client
        .get(as_agent(
            pb::GetRequest {
                namespace: unique_namespace("someone-else"),
                key: "lock".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    assert_eq!(reason(&other), "NO_GRANT");
    let impersonated = client
        .get(as_agent(
            pb::GetRequest {
                key: "lock".into(),
                caller: "someone-else".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .unwrap_err();
    assert_eq!(impersonated.code(), Code::PermissionDenied);
    assert_eq!(reason(&impersonated), "CALLER_MISMATCH");

    // Counted by their gRPC outcome, not as the HTTP 200 they travel in.
    let metrics = reqwest::get(format!("{}/metrics", gateway.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"route="/tessera.memory.v1.MemoryService/Get",service="gateway",status="Unauthenticated""#,
        r#"route="/tessera.memory.v1.MemoryService/Get",service="gateway",status="NotFound""#,
        r#"route="/tessera.memory.v1.MemoryService/Set",service="gateway",status="200""#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_describe_the_public_service() {
    let gateway = GatewayHarness::start_in_process(embedded_memory(Default::default()).await).await;
    let channel = channel(gateway.url()).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let served = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tessera.memory.v1.MemoryService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        served.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut reflection = ServerReflectionClient::new(channel);
    let ask = |message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    let requests = [
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol(
            "tessera.memory.v1.MemoryService".into(),
        )),
        // The internal services are not described on the public port.
        ask(MessageRequest::FileContainingSymbol(
            "tessera.payment.v1.PaymentService".into(),
        )),
    ];
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(listed)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "tessera.memory.v1.MemoryService",
        ]
    );
    let memory = answers.message().await.unwrap().unwrap();
    assert!(
        matches!(
            memory.message_response,
            Some(MessageResponse::FileDescriptorResponse(_))
        ),
        "{memory:?}"
    );
    let payment = answers.message().await.unwrap_err();
    assert_eq!(
        payment.code(),
        Code::NotFound,
        "the payment service is described: {payment:?}"
    );
}

/// The quote an unpaid call's status carries, decoded.
fn quote_of(status: &tonic::Status) -> serde_json::Value {
    let header = status
        .metadata()
        .get("payment-required")
        .expect("payment-required metadata")
        .to_str()
        .unwrap();
    tessera_x402::decode_header(header).unwrap()
}

fn paid<T>(message: T, payment: &serde_json::Value) -> Request<T> {
    let mut request = Request::new(message);
    let header = tessera_x402::encode_header(payment);
    request.metadata_mut().insert(
        "payment-signature",
        MetadataValue::try_from(header).unwrap(),
    );
    request
}

fn requirements_of(quote: &serde_json::Value) -> tessera_x402::Requirements {
    serde_json::from_value(quote["accepts"][0].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_call_gets_a_quote_and_a_paid_one_is_served_and_settled() {
    let stack = PaidStack::start().await;
    let buyer: PrivateKeySigner = stack.chain.new_buyer(1_000_000).await;
    let mut client = MemoryServiceClient::new(channel(&stack.gateway_url).await);
    let set = pb::SetRequest {
        key: "counter".into(),
        value_json: "41".into(),
        ..Default::default()
    };

    let unpaid = client.set(set.clone()).await.unwrap_err();
    assert_eq!(unpaid.code(), Code::Unauthenticated);
    assert_eq!(reason(&unpaid), "PAYMENT_REQUIRED");
    let quote = quote_of(&unpaid);
    assert_eq!(quote["x402Version"], 2);
    let requirements = requirements_of(&quote);
    assert_eq!(requirements.amount, "2000", "priced as REST's set");
    assert!(
        quote["resource"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/tessera.memory.v1.MemoryService/Set"),
        "{quote}"
    );

    let before = stack.balance(buyer.address()).await;
    let payment = stack.chain.pay(&buyer, &requirements);
    let served = client.set(paid(set.clone(), &payment)).await.unwrap();
    let settlement = served
        .metadata()
        .get("payment-response")
        .expect("payment-response in the trailers");
    let settlement: serde_json::Value =
        tessera_x402::decode_header(settlement.to_str().unwrap()).unwrap();
    assert_eq!(settlement["success"], true, "{settlement}");
    let entry = served.into_inner();
    assert_eq!(
        entry.namespace,
        paid::namespace(&buyer),
        "the payer's wallet"
    );
    assert_eq!(entry.value_json, "41");
    assert_eq!(
        before - stack.balance(buyer.address()).await,
        alloy::primitives::U256::from(2000)
    );

    // One call per authorization.
    let replayed = client.set(paid(set, &payment)).await.unwrap_err();
    assert_eq!(replayed.code(), Code::Aborted, "{replayed:?}");
    assert_eq!(reason(&replayed), "PAYMENT_ALREADY_USED");

    // A call that fails is not charged: a CAS on a missing key with the
    // wrong expectation is served (swapped false), but a read of a missing
    // key fails NOT_FOUND and is cancelled.
    // The payer's address in any case is the payer: as caller and as namespace.
    let checksummed = buyer.address().to_checksum(None);
    assert_ne!(checksummed, paid::namespace(&buyer));
    let get = pb::GetRequest {
        key: "no-such-key".into(),
        namespace: checksummed.clone(),
        caller: checksummed,
    };
    let quote = quote_of(&client.get(get.clone()).await.unwrap_err());
    let requirements = requirements_of(&quote);
    let before = stack.balance(buyer.address()).await;
    let missing = client
        .get(paid(get, &stack.chain.pay(&buyer, &requirements)))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(stack.balance(buyer.address()).await, before, "not charged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_streams_changes_over_the_public_port() {
    let gateway = GatewayHarness::start_in_process(embedded_memory(Default::default()).await).await;
    let mut client = MemoryServiceClient::new(channel(gateway.url()).await);
    let agent = unique_namespace("grpc-watch");
    let watch = pb::WatchRequest {
        key: "lock".into(),
        timeout_seconds: 5,
        ..Default::default()
    };
    let mut events = client
        .watch(as_agent(watch, &agent))
        .await
        .unwrap()
        .into_inner();
    let progress = events.message().await.unwrap().unwrap();
    assert_eq!(progress.kind(), pb::watch_event::Kind::Progress);

    let mut writer = client.clone();
    let set = pb::SetRequest {
        key: "lock".into(),
        value_json: "1".into(),
        ttl_seconds: Some(1),
        ..Default::default()
    };
    writer.set(as_agent(set, &agent)).await.unwrap();
    let put = events.message().await.unwrap().unwrap();
    assert_eq!((put.kind(), put.revision), (pb::watch_event::Kind::Put, 1));
    assert_eq!(put.entry.unwrap().value_json, "1");
    let expired = events.message().await.unwrap().unwrap();
    assert_eq!(
        (expired.kind(), expired.revision),
        (pb::watch_event::Kind::Expire, 1)
    );
    // The stream ends cleanly at its timeout.
    let last = events.message().await.unwrap().unwrap();
    assert_eq!(
        last.kind(),
        pb::watch_event::Kind::Progress,
        "where it ended"
    );
    assert!(events.message().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_watch_settles_and_says_so_when_it_ends() {
    let stack = PaidStack::start().await;
    let buyer: PrivateKeySigner = stack.chain.new_buyer(1_000_000).await;
    let mut client = MemoryServiceClient::new(channel(&stack.gateway_url).await);
    let watch = pb::WatchRequest {
        key: "k".into(),
        timeout_seconds: 1,
        ..Default::default()
    };
    let unpaid = client.watch(watch.clone()).await.unwrap_err();
    assert_eq!(reason(&unpaid), "PAYMENT_REQUIRED");
    let requirements = requirements_of(&quote_of(&unpaid));
    assert_eq!(requirements.amount, "1000");
    let before = stack.balance(buyer.address()).await;
    let mut events = client
        .watch(paid(watch, &stack.chain.pay(&buyer, &requirements)))
        .await
        .unwrap()
        .into_inner();
    let progress = events.message().await.unwrap().unwrap();
    assert_eq!(progress.kind(), pb::watch_event::Kind::Progress);
    let last = events.message().await.unwrap().unwrap();
    assert_eq!(
        last.kind(),
        pb::watch_event::Kind::Progress,
        "where it ended"
    );
    assert!(events.message().await.unwrap().is_none());
    let trailers = events.trailers().await.unwrap().expect("trailers");
    let settlement: serde_json::Value =
        tessera_x402::decode_header(trailers.get("payment-response").unwrap().to_str().unwrap())
            .unwrap();
    assert_eq!(settlement["success"], true);
    assert_eq!(
        before - stack.balance(buyer.address()).await,
        alloy::primitives::U256::from(1000)
    );
}

/// A watch that cannot start (here: a cursor this server never gave) fails
/// as a call, before any event, and is not charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_cannot_start_is_not_charged() {
    let stack = PaidStack::start().await;
    let buyer: PrivateKeySigner = stack.chain.new_buyer(1_000_000).await;
    let mut client = MemoryServiceClient::new(channel(&stack.gateway_url).await);
    let watch = pb::WatchRequest {
        prefix: "jobs/".into(),
        since_cursor: "not-a-cursor".into(),
        timeout_seconds: 1,
        ..Default::default()
    };
    let quote = quote_of(&client.watch(watch.clone()).await.unwrap_err());
    let before = stack.balance(buyer.address()).await;
    let refused = client
        .watch(paid(
            watch,
            &stack.chain.pay(&buyer, &requirements_of(&quote)),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(reason(&refused), "INVALID_CURSOR");
    assert_eq!(stack.balance(buyer.address()).await, before, "not charged");
}
