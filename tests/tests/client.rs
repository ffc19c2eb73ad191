//! `tessera-client` against real gateways: typed calls and grants in free
//! mode, the fencing lock under contention and expiry, and x402 paid by the
//! client's layer on a real chain (exactly once per call, never above the
//! cap, never a second time).

use alloy::primitives::U256;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tessera_client::x402::PaymentError;
use tessera_client::{
    Access, Client, Error, ErrorKind, Identity, ListOptions, Lock, Network, Payer, SetOptions,
    X402Service,
};
use tessera_proto::memory::v1 as pb;
use tessera_proto::memory::v1::memory_service_client::MemoryServiceClient;
use tessera_tests::gateway_http::GatewayHarness;
use tessera_tests::harness::{embedded_memory, unique_namespace};
use tessera_tests::paid::PaidStack;
use tonic::body::Body;
use tonic::codegen::{http, Service};
use tonic::transport::Channel;
use tonic::Code;

async fn free_gateway() -> GatewayHarness {
    GatewayHarness::start_in_process(embedded_memory(Default::default()).await).await
}

async fn agent(url: &str, id: &str) -> Client {
    Client::connect(url, Identity::agent(id))
        .await
        .expect("the gateway answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_mode_typed_calls_round_trip() {
    let gateway = free_gateway().await;
    let me = unique_namespace("client");
    let client = agent(gateway.url(), &me).await;
    assert_eq!(client.namespace(), me);

    assert_eq!(
        client.get("plan").await.unwrap().inner,
        None,
        "absent is None"
    );
    let value = json!({"step": 1, "big": 9007199254740993u64, "tags": ["a"]});
    let set = client.set("plan", &value).await.unwrap();
    assert!(set.settlements.is_empty(), "free mode pays nothing");
    let written = set.inner;
    assert_eq!(
        (written.namespace.as_str(), written.revision),
        (me.as_str(), 1)
    );
    let read = client.get("plan").await.unwrap().inner.expect("present");
    assert_eq!(read.value, value, "integers stay exact");
    assert_eq!(read.etag, written.etag);

    // If-Match: the current etag writes, a superseded one is refused with
    // its code and class.
    let guarded = SetOptions {
        if_match: Some(read.etag.clone()),
        ttl: Some(Duration::from_secs(60)),
    };
    let rewritten = client
        .set_with("plan", &json!({"step": 2}), &guarded)
        .await
        .unwrap()
        .inner;
    assert_eq!(rewritten.revision, 2);
    assert!(rewritten.expires_at.is_some());
    let refused = client
        .set_with("plan", &json!(3), &guarded)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(Code::FailedPrecondition), "{refused}");
    assert!(matches!(
        &refused,
        Error::Server {
            kind: ErrorKind::PreconditionFailed,
            ..
        }
    ));
    assert_eq!(
        client.get("plan").await.unwrap().inner.unwrap().value,
        json!({"step": 2})
    );

    assert_eq!(
        client.increment("count", 2).await.unwrap().inner.value,
        json!(2)
    );
    assert_eq!(
        client.increment("count", -5).await.unwrap().inner.value,
        json!(-3)
    );

    let swap = client
        .compare_and_swap("count", Some(&json!(7)), Some(&json!(0)), None)
        .await
        .unwrap()
        .inner;
    assert!(!swap.swapped);
    assert_eq!(swap.current.map(|entry| entry.value), Some(json!(-3)));
    let swap = client
        .compare_and_swap("count", Some(&json!(-3)), Some(&json!(0)), None)
        .await
        .unwrap()
        .inner;
    assert!(swap.swapped);
    assert_eq!(swap.revision, 3, "two increments, then the swap");

    for key in ["list/a", "list/b", "list/c"] {
        client.set(key, &json!(key)).await.unwrap();
    }
    let first = client
        .list(&ListOptions {
            prefix: "list/".into(),
            limit: Some(2),
            cursor: None,
        })
        .await
        .unwrap()
        .inner;
    assert_eq!(first.entries.len(), 2);
    let rest = client
        .list(&ListOptions {
            prefix: "list/".into(),
            limit: Some(2),
            cursor: first.next_cursor.clone(),
        })
        .await
        .unwrap()
        .inner;
    let mut keys: Vec<String> = first
        .entries
        .iter()
        .chain(&rest.entries)
        .map(|e| e.key.clone())
        .collect();
    keys.sort();
    assert_eq!(keys, ["list/a", "list/b", "list/c"]);
    assert_eq!(rest.next_cursor, None);

    assert!(client.delete("list/a").await.unwrap().inner);
    assert!(
        !client.delete("list/a").await.unwrap().inner,
        "already gone"
    );
    let etag = client.get("list/b").await.unwrap().inner.unwrap().etag;
    assert!(client.delete_if_match("list/b", &etag).await.unwrap().inner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_open_a_namespace_to_another_agent() {
    let gateway = free_gateway().await;
    let (owner_id, reader_id) = (unique_namespace("owner"), unique_namespace("reader"));
    let owner = agent(gateway.url(), &owner_id).await;
    let reader = agent(gateway.url(), &reader_id).await;
    owner.set("shared", &json!("hello")).await.unwrap();

    let theirs = reader.with_namespace(&owner_id);
    assert_eq!(theirs.target(), owner_id);
    let denied = theirs.get("shared").await.unwrap_err();
    assert_eq!(
        (denied.code(), denied.reason()),
        (Some(Code::PermissionDenied), Some("NO_GRANT"))
    );

    let grant = owner
        .grant(&reader_id, Access::Read, None)
        .await
        .unwrap()
        .inner;
    assert_eq!(
        (grant.grantee.as_str(), grant.access),
        (reader_id.as_str(), Access::Read)
    );
    let grants = owner.list_grants().await.unwrap().inner;
    assert_eq!(grants, vec![grant]);
    assert_eq!(
        theirs.get("shared").await.unwrap().inner.unwrap().value,
        json!("hello")
    );
    let write = theirs.set("shared", &json!("mine")).await.unwrap_err();
    assert_eq!(
        write.reason(),
        Some("NO_GRANT"),
        "READ does not write: {write}"
    );

    assert!(owner.revoke(&reader_id).await.unwrap().inner);
    assert!(!owner.revoke(&reader_id).await.unwrap().inner);
    assert_eq!(
        theirs.get("shared").await.unwrap_err().reason(),
        Some("NO_GRANT")
    );
}

/// The resource a lock guards, checking fencing tokens as a storage server
/// would and noticing two holders inside at once.
#[derive(Default)]
struct Fenced {
    highest: u64,
    inside: Option<u64>,
    entered: Vec<u64>,
    overlaps: usize,
    stale: usize,
}

impl Fenced {
    fn enter(&mut self, token: u64) {
        self.overlaps += usize::from(self.inside.is_some());
        self.stale += usize::from(token <= self.highest);
        self.highest = self.highest.max(token);
        self.inside = Some(token);
        self.entered.push(token);
    }

    fn leave(&mut self, token: u64) {
        assert_eq!(self.inside.take(), Some(token));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lock_admits_one_holder_at_a_time_with_growing_fencing_tokens() {
    const CLIENTS: usize = 8;
    const SECTIONS: usize = 5;
    let gateway = free_gateway().await;
    let namespace = unique_namespace("lock");
    let fenced = Arc::new(Mutex::new(Fenced::default()));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = agent(gateway.url(), &namespace).await;
        let fenced = fenced.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..SECTIONS {
                let lock = Lock::acquire(
                    &client,
                    "mutex",
                    Duration::from_secs(30),
                    Duration::from_secs(60),
                )
                .await
                .expect("acquired within a minute")
                .into_inner();
                let token = lock.fencing_token();
                fenced.lock().unwrap().enter(token);
                // Read, then write: counts exactly only under mutual exclusion.
                let count = client
                    .get("count")
                    .await
                    .unwrap()
                    .inner
                    .map_or(0, |e| e.value.as_u64().unwrap());
                client.set("count", &json!(count + 1)).await.unwrap();
                fenced.lock().unwrap().leave(token);
                lock.release().await.expect("released while held");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let fenced = std::mem::take(&mut *fenced.lock().unwrap());
    assert_eq!(fenced.entered.len(), CLIENTS * SECTIONS);
    assert_eq!(
        (fenced.overlaps, fenced.stale),
        (0, 0),
        "tokens in order: {:?}",
        fenced.entered
    );
    let checker = agent(gateway.url(), &namespace).await;
    let count = checker.get("count").await.unwrap().inner.unwrap().value;
    assert_eq!(count, json!(CLIENTS * SECTIONS));
    assert_eq!(
        checker.get("mutex").await.unwrap().inner,
        None,
        "released at the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_ran_out_is_lost_and_a_release_lets_the_next_holder_in() {
    let gateway = free_gateway().await;
    let namespace = unique_namespace("lease");
    let (first, second) = (
        agent(gateway.url(), &namespace).await,
        agent(gateway.url(), &namespace).await,
    );

    let mut short = Lock::try_acquire(&first, "lease", Duration::from_secs(1))
        .await
        .unwrap()
        .inner
        .expect("free");
    let expiry = short.expires_at().expect("a lease expires");
    short.renew().await.expect("still held");
    assert!(
        short.expires_at().unwrap() >= expiry,
        "a renewed lease ends no sooner"
    );
    assert!(
        Lock::try_acquire(&second, "lease", Duration::from_secs(30))
            .await
            .unwrap()
            .inner
            .is_none(),
        "held"
    );

    // The second holder gets in once the first lease runs out...
    let mut next = Lock::acquire(
        &second,
        "lease",
        Duration::from_secs(30),
        Duration::from_secs(20),
    )
    .await
    .expect("the lease expires")
    .into_inner();
    assert!(next.fencing_token() > short.fencing_token());
    // ...so the first holder's renew and release say the lease is lost, and
    // change nothing.
    assert!(matches!(short.renew().await, Err(Error::LeaseLost { key }) if key == "lease"));
    assert!(matches!(
        short.release().await,
        Err(Error::LeaseLost { .. })
    ));
    next.renew().await.expect("the new holder still holds");
    let stored = second.get("lease").await.unwrap().inner.unwrap();
    assert_eq!(&stored.value, next.holder());

    // A release lets a waiter in at once, long before the 30 s lease ends.
    let waiter = tokio::spawn({
        let first = first.clone();
        async move {
            let started = Instant::now();
            let lock = Lock::acquire(
                &first,
                "lease",
                Duration::from_secs(30),
                Duration::from_secs(25),
            )
            .await
            .expect("released")
            .into_inner();
            (lock, started.elapsed())
        }
    });
    let released_token = next.fencing_token();
    next.release().await.unwrap();
    let (lock, waited) = waiter.await.unwrap();
    assert!(lock.fencing_token() > released_token);
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");

    let timeout = Lock::acquire(
        &second,
        "lease",
        Duration::from_secs(30),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(timeout, Error::LockTimeout { .. }), "{timeout}");
}

fn payer(stack: &PaidStack, signer: alloy::signers::local::PrivateKeySigner, cap: u64) -> Payer {
    Payer::new(signer).allow(
        Network::new(stack.chain.chain_id),
        stack.chain.token,
        U256::from(cap),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_pays_each_call_once_and_surfaces_its_settlement() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.new_buyer(1_000_000).await;
    let wallet = buyer.address();
    let client = Client::connect(
        &stack.gateway_url,
        Identity::Payer(payer(&stack, buyer, 10_000)),
    )
    .await
    .unwrap();
    assert_eq!(client.namespace(), format!("{wallet:#x}"));
    let before = stack.balance(wallet).await;

    let set = client.set("counter", &json!(41)).await.unwrap();
    assert_eq!(
        set.inner.namespace,
        client.namespace(),
        "the wallet is the namespace"
    );
    let got = client.get("counter").await.unwrap();
    assert_eq!(got.inner.as_ref().map(|e| &e.value), Some(&json!(41)));
    let incremented = client.increment("counter", 1).await.unwrap();
    assert_eq!(incremented.inner.value, json!(42));
    let lock = Lock::acquire(
        &client,
        "lock",
        Duration::from_secs(30),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let released = lock.inner.release().await.unwrap();

    // Prices: set 2000; get, increment, compare-and-swap 1000 each.
    let settlements: Vec<_> = [
        set.settlements,
        got.settlements,
        incremented.settlements,
        lock.settlements,
        released.settlements,
    ]
    .into_iter()
    .inspect(|settlements| assert_eq!(settlements.len(), 1, "one payment per call"))
    .flatten()
    .collect();
    for settlement in &settlements {
        assert!(settlement.success, "{settlement:?}");
        assert!(settlement.transaction.is_some(), "{settlement:?}");
        assert_eq!(settlement.payer, Some(wallet));
        assert_eq!(settlement.network, Some(Network::new(stack.chain.chain_id)));
    }
    let mut transactions: Vec<_> = settlements.iter().map(|s| s.transaction).collect();
    transactions.sort();
    transactions.dedup();
    assert_eq!(transactions.len(), 5, "five transfers");
    assert_eq!(
        before - stack.balance(wallet).await,
        U256::from(2000 + 4 * 1000)
    );

    // A failed call is not charged: a missing key is None, and free.
    let before = stack.balance(wallet).await;
    let missing = client.get("no-such-key").await.unwrap();
    assert_eq!((missing.inner, missing.settlements.len()), (None, 0));
    assert_eq!(stack.balance(wallet).await, before);
}

/// A channel that records, per request sent, whether it carried a payment.
#[derive(Clone)]
struct Recorded {
    channel: Channel,
    paid: Arc<Mutex<Vec<bool>>>,
}

impl Service<http::Request<Body>> for Recorded {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = <Channel as Service<http::Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.channel.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let paid = request.headers().contains_key("payment-signature");
        self.paid.lock().unwrap().push(paid);
        self.channel.call(request)
    }
}

async fn recorded(url: &str) -> Recorded {
    Recorded {
        channel: Channel::from_shared(url.to_string())
            .unwrap()
            .connect()
            .await
            .unwrap(),
        paid: Arc::default(),
    }
}

fn payment_error(status: &tonic::Status) -> &PaymentError {
    std::error::Error::source(status)
        .and_then(|source| source.downcast_ref::<PaymentError>())
        .unwrap_or_else(|| panic!("no payment error in {status:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_above_the_cap_is_not_signed() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.new_buyer(1_000_000).await;
    let wallet = buyer.address();
    let before = stack.balance(wallet).await;
    let payer = payer(&stack, buyer, 1500);

    let channel = recorded(&stack.gateway_url).await;
    let mut raw = MemoryServiceClient::new(X402Service::new(channel.clone(), payer.clone()));
    let set = pb::SetRequest {
        key: "k".into(),
        value_json: "1".into(),
        ..Default::default()
    };
    let status = raw.set(set).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "the server's status stays"
    );
    assert!(status.metadata().get("payment-required").is_some());
    assert_eq!(
        payment_error(&status),
        &PaymentError::OverCap {
            price: U256::from(2000),
            cap: U256::from(1500),
            network: Network::new(stack.chain.chain_id),
            asset: stack.chain.token,
        }
    );
    assert_eq!(
        *channel.paid.lock().unwrap(),
        [false],
        "asked once, never paid"
    );

    let client = Client::connect(&stack.gateway_url, Identity::Payer(payer))
        .await
        .unwrap();
    let refused = client.set("k", &json!(1)).await.unwrap_err();
    assert!(
        matches!(refused, Error::Payment(PaymentError::OverCap { .. })),
        "{refused}"
    );
    assert_eq!(stack.balance(wallet).await, before, "nothing paid");
    assert_eq!(stack.ledger_rows().await, 0, "nothing presented");

    // Within the cap is paid as usual.
    let counted = client.increment("n", 1).await.unwrap();
    assert_eq!(counted.settlements.len(), 1);
    assert_eq!(before - stack.balance(wallet).await, U256::from(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_payment_is_returned_not_paid_again() {
    let stack = PaidStack::start().await;
    let broke = stack.chain.new_buyer(0).await;
    let payer = payer(&stack, broke, 10_000);

    let channel = recorded(&stack.gateway_url).await;
    let mut raw = MemoryServiceClient::new(X402Service::new(channel.clone(), payer.clone()));
    let status = raw
        .get(pb::GetRequest {
            key: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        matches!(payment_error(&status), PaymentError::Refused { reason: Some(reason), .. } if reason == "insufficient_funds"),
        "{status:?}"
    );
    assert_eq!(
        *channel.paid.lock().unwrap(),
        [false, true],
        "one quote, one payment, no third call"
    );

    let client = Client::connect(&stack.gateway_url, Identity::Payer(payer))
        .await
        .unwrap();
    let refused = client.increment("n", 1).await.unwrap_err();
    let Error::Payment(PaymentError::Refused { reason, quote }) = refused else {
        panic!("not a refusal: {refused}");
    };
    assert_eq!(reason.as_deref(), Some("insufficient_funds"));
    assert!(quote
        .resource
        .url
        .ends_with("/tessera.memory.v1.MemoryService/Increment"));
}

/// A waiter watches the lock instead of polling it: one try, one watch that
/// ends when the holder releases, one more try: three paid calls, however
/// long it waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_acquire_watches_the_lock_and_pays_for_three_calls() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.new_buyer(1_000_000).await;
    let wallet = buyer.address();
    let connect = || {
        let payer = payer(&stack, buyer.clone(), 10_000);
        Client::connect(&stack.gateway_url, Identity::Payer(payer))
    };
    let (holder, waiter) = (connect().await.unwrap(), connect().await.unwrap());
    let before = stack.balance(wallet).await;
    let mut held = Lock::acquire(
        &holder,
        "job",
        Duration::from_secs(30),
        Duration::from_secs(1),
    )
    .await
    .unwrap()
    .into_inner();
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let lock = Lock::acquire(
            &waiter,
            "job",
            Duration::from_secs(30),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
        (lock, started.elapsed())
    });
    // The holder renewing is not a release: the waiter keeps watching.
    tokio::time::sleep(Duration::from_millis(700)).await;
    held.renew().await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let token = held.fencing_token();
    held.release().await.unwrap();
    let (lock, waited) = waiting.await.unwrap();
    assert!(lock.inner.fencing_token() > token);
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    assert!(
        waited < Duration::from_secs(10),
        "woken by the release, not the lease: {waited:?}"
    );
    assert_eq!(
        lock.settlements.len(),
        3,
        "try, watch, try: {:?}",
        lock.settlements
    );
    assert!(lock.settlements.iter().all(|s| s.success));
    // Holder: acquire + renew + release; waiter: try + watch + try; 1000 each.
    assert_eq!(
        before - stack.balance(wallet).await,
        alloy::primitives::U256::from(6000)
    );
}
