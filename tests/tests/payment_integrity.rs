//! Payment integrity on real parts (anvil with our EIP-3009 token, our
//! facilitator, the payment service and its ledger in PostgreSQL, memory on
//! Redis + PostgreSQL, the gateway): nothing reaches memory unpaid, one
//! authorization buys one call in whatever spelling, a payment is bound to
//! the route it was quoted for, no wallet is served beyond what it can pay,
//! a payer whose settlement fails becomes a debtor who settles first, and
//! junk never reaches the ledger.

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tessera_proto::payment::v1 as pay;
use tessera_tests::chain::{self, exact_payload};
use tessera_tests::paid::{decode, namespace, send, Options, PaidStack, Reply};
use tessera_x402::eip3009::TransferWithAuthorization;
use tessera_x402::{encode_header, Requirements};
use tonic::{Request, Response, Status};

async fn incr(stack: &PaidStack, key: &str, header: (&str, String)) -> Reply {
    send(
        Method::POST,
        &stack.url("/api/memory/incr"),
        Some(json!({"key": key})),
        &[header],
    )
    .await
}

/// A signed authorization paying `requirements`, and its signature.
fn signed(
    stack: &PaidStack,
    buyer: &PrivateKeySigner,
    requirements: &Requirements,
) -> (TransferWithAuthorization, Bytes) {
    let authorization = stack.chain.authorization(buyer.address(), requirements);
    let signature = stack.chain.sign(buyer, &authorization);
    (authorization, signature)
}

fn v2_header(
    requirements: &Requirements,
    authorization: &TransferWithAuthorization,
    signature: &Bytes,
) -> (&'static str, String) {
    (
        "PAYMENT-SIGNATURE",
        encode_header(&chain::payload_v2(requirements, authorization, signature)),
    )
}

/// Every HTTP method a client can send.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_and_method_unpaid_is_402_or_405_and_nothing_runs() {
    let stack = PaidStack::start().await;
    let declared = tessera_gateway::declared_routes();

    // The router is the catalog: every catalog route bound exactly once.
    let bound: Vec<&str> = declared.iter().flat_map(|d| d.ids.clone()).collect();
    let catalog: BTreeSet<&str> = tessera_catalog::routes().iter().map(|r| r.id).collect();
    assert_eq!(bound.len(), catalog.len(), "{bound:?}");
    assert_eq!(bound.iter().copied().collect::<BTreeSet<_>>(), catalog);

    let owner = "0x857b06519E91e3A54538791bDbb0E22373e36b66";
    let mut methods_by_path: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for route in &declared {
        methods_by_path
            .entry(route.path)
            .or_default()
            .insert(route.method.as_str());
    }
    let mut checked = 0;
    for (pattern, methods) in &methods_by_path {
        let path = pattern
            .replace("{id}", owner)
            .replace("{*key}", "notes/today");
        for query in ["", "?key=notes"] {
            for method in METHODS {
                let url = stack.url(&format!("{path}{query}"));
                let body =
                    Some(json!({"key": "notes", "value": 1, "grantee": "0xabc", "mode": "read"}));
                let reply = send(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &url,
                    body,
                    &[],
                )
                .await;
                let grpc = pattern.starts_with("/tessera.");
                let expected = match (methods.contains(method), grpc) {
                    // A gRPC refusal is a status: HTTP 200, grpc-status 16.
                    (true, true) => StatusCode::OK,
                    (true, false) => StatusCode::PAYMENT_REQUIRED,
                    (false, _) => StatusCode::METHOD_NOT_ALLOWED,
                };
                assert_eq!(
                    reply.status, expected,
                    "{method} {path}{query}: {}",
                    reply.body
                );
                if grpc && expected == StatusCode::OK {
                    assert_eq!(reply.headers["grpc-status"], "16", "{method} {path}");
                }
                if methods.contains(method) {
                    assert!(
                        reply.headers.contains_key("payment-required"),
                        "{method} {path}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, methods_by_path.len() * METHODS.len() * 2);
    assert_eq!(stack.ledger_rows().await, 0, "nothing was reserved");
    for namespace in [owner.to_lowercase(), owner.to_string()] {
        assert_eq!(stack.stored(&namespace, "notes/today").await, None);
        assert_eq!(stack.stored(&namespace, "notes").await, None);
    }

    // Free routes stay free, and only for their methods (a challenge needs
    // its tool named, a find its task).
    // A payment's lookup answers 404 for an id nobody was given.
    let unknown_payment = format!("/api/payments/pay_{:032x}", rand::random::<u128>());
    for (method, path) in tessera_gateway::FREE_ROUTES {
        let (query, body) = match (*method, *path) {
            ("GET", "/api/pow/challenge") => ("?slug=hash", None),
            ("GET", "/api/find") => ("?q=hash", None),
            ("POST", "/api/find") => ("", Some(serde_json::json!({"q": "hash"}))),
            ("POST", "/api/route") => ("", Some(serde_json::json!({"query": "hash"}))),
            _ => ("", None),
        };
        let concrete = match *path {
            "/api/payments/{id}" => unknown_payment.clone(),
            path => path.to_string(),
        };
        let reply = send(
            Method::from_bytes(method.as_bytes()).unwrap(),
            &stack.url(&format!("{concrete}{query}")),
            body,
            &[],
        )
        .await;
        let expected_ok = concrete != unknown_payment;
        assert_eq!(
            reply.status.is_success(),
            expected_ok,
            "{method} {path}: {}",
            reply.status
        );
        if !expected_ok {
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(reply.body, json!({"error": "no such payment"}));
        }
        // Every other method, unpaid: 405, never 402 and never served (a
        // GET route answers HEAD as axum does).
        let declared: Vec<&str> = tessera_gateway::FREE_ROUTES
            .iter()
            .filter(|(_, free_path)| free_path == path)
            .map(|(free_method, _)| *free_method)
            .collect();
        for other in METHODS {
            if declared.contains(&other) || (other == "HEAD" && declared.contains(&"GET")) {
                continue;
            }
            let reply = send(
                Method::from_bytes(other.as_bytes()).unwrap(),
                &stack.url(&concrete),
                None,
                &[],
            )
            .await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{other} {path}"
            );
        }
    }
}

/// Every spelling a client or attacker can produce of one authorization, as
/// headers (name, value).
fn spellings(
    stack: &PaidStack,
    requirements: &Requirements,
    authorization: &TransferWithAuthorization,
    signature: &Bytes,
) -> Vec<(&'static str, String)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let v2 = chain::payload_v2(requirements, authorization, signature);
    let payload = exact_payload(authorization, signature);
    let nonce = authorization.nonce.to_string();
    let mut variants: Vec<Value> = Vec::new();
    let mut edit = |change: &dyn Fn(&mut Value)| {
        let mut value = v2.clone();
        change(&mut value);
        variants.push(value);
    };
    edit(&|_| {});
    edit(&|v| {
        v["payload"]["authorization"]["nonce"] = nonce.to_uppercase().replacen("0X", "0x", 1).into()
    });
    edit(&|v| v["payload"]["authorization"]["nonce"] = nonce.trim_start_matches("0x").into());
    edit(&|v| {
        v["payload"]["authorization"]["nonce"] =
            nonce.trim_start_matches("0x").to_uppercase().into()
    });
    edit(&|v| v["payload"]["authorization"]["from"] = format!("{:#x}", authorization.from).into());
    edit(&|v| {
        let upper = format!("{:x}", authorization.from).to_uppercase();
        v["payload"]["authorization"]["from"] = format!("0x{upper}").into()
    });
    edit(&|v| v["payload"]["authorization"]["to"] = format!("{:#x}", authorization.to).into());
    edit(&|v| v["accepted"]["payTo"] = requirements.pay_to.to_lowercase().into());
    edit(&|v| {
        v["accepted"]["asset"] = requirements
            .asset
            .to_uppercase()
            .replacen("0X", "0x", 1)
            .into()
    });
    edit(&|v| {
        v["payload"]["signature"] = signature
            .to_string()
            .to_uppercase()
            .replacen("0X", "0x", 1)
            .into()
    });
    edit(&|v| {
        // v as 0/1 instead of 27/28: the same signature.
        let mut bytes = signature.to_vec();
        bytes[64] -= 27;
        v["payload"]["signature"] = Bytes::from(bytes).to_string().into()
    });
    edit(&|v| {
        v["unknownTopLevel"] = json!({"x": 1});
        v["accepted"]["extra"]["unknown"] = "field".into();
        v["payload"]["authorization"]["memo"] = "ignored".into();
        v["payload"]["authorization"]["value"] = format!("000{}", authorization.value).into();
    });
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    for (i, value) in variants.iter().enumerate() {
        let json = serde_json::to_vec(value).unwrap();
        let text = match i % 4 {
            0 => STANDARD.encode(&json),
            1 => STANDARD_NO_PAD.encode(&json),
            2 => URL_SAFE.encode(&json),
            _ => format!(" {} ", URL_SAFE_NO_PAD.encode(&json)),
        };
        headers.push(("PAYMENT-SIGNATURE", text));
    }
    // v1 wrapping: the same authorization as X-PAYMENT.
    let network = "base-sepolia";
    for from in [
        authorization.from.to_checksum(None),
        format!("{:#x}", authorization.from),
    ] {
        let mut payload = payload.clone();
        payload["authorization"]["from"] = from.into();
        let v1 =
            json!({"x402Version": 1, "scheme": "exact", "network": network, "payload": payload});
        headers.push(("X-PAYMENT", encode_header(&v1)));
    }
    let _ = stack;
    headers
}

async fn present_all(
    stack: &PaidStack,
    key: &str,
    headers: &[(&'static str, String)],
    times: usize,
) -> Vec<StatusCode> {
    let url = stack.url("/api/memory/incr");
    let calls: Vec<_> = (0..times)
        .map(|i| {
            let (url, header, key) = (
                url.clone(),
                headers[i % headers.len()].clone(),
                key.to_string(),
            );
            tokio::spawn(async move {
                send(Method::POST, &url, Some(json!({"key": key})), &[header]).await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        let reply = call.await.unwrap();
        assert!(
            matches!(reply.status, StatusCode::OK | StatusCode::CONFLICT),
            "{} {}",
            reply.status,
            reply.body
        );
        statuses.push(reply.status);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_authorization_in_every_spelling_serves_exactly_one_call() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let required = stack.payments.requirements("memory.incr").unwrap();
    let price = U256::from(1000u64);
    let before = stack.balance(buyer.address()).await;

    let (authorization, signature) = signed(&stack, &buyer, &required);
    let headers = spellings(&stack, &required, &authorization, &signature);
    assert!(headers.len() >= 14, "{}", headers.len());
    let statuses = present_all(&stack, "n", &headers, 60).await;
    let served = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(served, 1, "{statuses:?}");
    assert_eq!(
        stack.stored(&me, "n").await.as_deref(),
        Some("1"),
        "served once"
    );
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - price,
        "charged once"
    );

    // After settlement: every spelling again, all refused.
    let statuses = present_all(&stack, "n", &headers, 60).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("1"));

    // After a cancel: the authorization's call failed (404, not charged);
    // every spelling of it afterwards is refused, never free.
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let headers = spellings(&stack, &required, &authorization, &signature);
    let get = send(
        Method::GET,
        &stack.url("/api/memory?key=absent"),
        None,
        &[headers[0].clone()],
    )
    .await;
    assert_eq!(get.status, StatusCode::NOT_FOUND, "{}", get.body);
    let statuses = present_all(&stack, "m", &headers, 60).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert_eq!(stack.stored(&me, "m").await, None, "never served free");
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - price,
        "never charged"
    );

    let rows = stack.payments.ledger().payments_of(&me).await.unwrap();
    let statuses: Vec<&str> = rows.iter().map(|row| row.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["settled", "cancelled"],
        "one row per authorization"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_payment_presented_again_is_refused_never_free() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let before = stack.balance(buyer.address()).await;
    // memory.get and memory.incr cost the same.
    let required = stack.payments.requirements("memory.get").unwrap();
    assert_eq!(
        required.amount,
        stack.payments.requirements("memory.incr").unwrap().amount
    );
    let (authorization, signature) = signed(&stack, &buyer, &required);

    let v1 = json!({"x402Version": 1, "scheme": "exact", "network": "base-sepolia",
                    "payload": exact_payload(&authorization, &signature)});
    let missing = send(
        Method::GET,
        &stack.url("/api/memory?key=missing"),
        None,
        &[("X-PAYMENT", encode_header(&v1))],
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);

    let again = incr(
        &stack,
        "counter",
        v2_header(&required, &authorization, &signature),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(
        again.body["error"]
            .as_str()
            .unwrap()
            .contains("already presented"),
        "{}",
        again.body
    );
    assert_eq!(stack.stored(&me, "counter").await, None, "nothing served");
    assert_eq!(
        stack.balance(buyer.address()).await,
        before,
        "nothing charged"
    );
    assert!(
        !stack
            .chain
            .authorization_used(buyer.address(), authorization.nonce)
            .await
    );

    let rows = stack.payments.ledger().payments_of(&me).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].status.as_str(),
            rows[0].route.as_str(),
            rows[0].x402_version
        ),
        ("cancelled", "memory.get", 1),
        "the row keeps what it was bound to"
    );

    // The ledger's sessions never wait long on a lock, nor sit in a
    // transaction forever.
    let pool = stack.payments.ledger().pool();
    for (setting, value) in [
        ("lock_timeout", "5s"),
        ("idle_in_transaction_session_timeout", "30s"),
    ] {
        let shown: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(shown, value, "{setting}");
    }
}

/// What the official client sends for a 402: the quote's resource and its
/// first requirements as `accepted`, signed by `buyer`.
fn pay_quote(stack: &PaidStack, buyer: &PrivateKeySigner, quote: &Value) -> (&'static str, String) {
    let accepted: Requirements = serde_json::from_value(quote["accepts"][0].clone()).unwrap();
    let (authorization, signature) = signed(stack, buyer, &accepted);
    let payload = json!({
        "x402Version": 2,
        "resource": quote["resource"],
        "accepted": quote["accepts"][0],
        "payload": exact_payload(&authorization, &signature),
    });
    ("PAYMENT-SIGNATURE", encode_header(&payload))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_quoted_for_one_route_is_refused_on_another_of_the_same_price() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let me = buyer.address().to_checksum(None);
    let before = stack.balance(buyer.address()).await;

    let quote_of = |method: Method, path: String| {
        let url = stack.url(&path);
        async move {
            send(method, &url, Some(json!({"key": "k", "value": 1})), &[])
                .await
                .body
        }
    };
    // Same path and price, another method.
    let delete_quote = quote_of(Method::DELETE, format!("/agents/{me}/memory/k")).await;
    let read = send(
        Method::GET,
        &stack.url(&format!("/agents/{me}/memory/k")),
        None,
        &[pay_quote(&stack, &buyer, &delete_quote)],
    )
    .await;
    assert_eq!(read.status, StatusCode::PAYMENT_REQUIRED, "{}", read.body);
    assert_eq!(
        read.body["error"], "invalid_payment_requirements",
        "{}",
        read.body
    );
    assert_eq!(
        decode(read.headers.get("payment-required").unwrap())["error"],
        "invalid_payment_requirements"
    );
    // Same price, another path.
    let cas_quote = quote_of(Method::POST, "/api/memory/cas".into()).await;
    let counted = incr(&stack, "n", pay_quote(&stack, &buyer, &cas_quote)).await;
    assert_eq!(
        counted.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        counted.body
    );
    assert_eq!(counted.body["error"], "invalid_payment_requirements");
    assert_eq!(stack.ledger_rows().await, 0, "refused before the ledger");
    assert_eq!(stack.stored(&namespace(&buyer), "n").await, None);

    // The quote for the route itself is paid and served; the per-agent
    // face takes the payer's address in checksummed form.
    let read_quote = quote_of(Method::GET, format!("/agents/{me}/memory/k")).await;
    let write_quote = send(
        Method::PUT,
        &stack.url(&format!("/agents/{me}/memory/k")),
        Some(json!({"value": 7})),
        &[],
    )
    .await
    .body;
    let written = send(
        Method::PUT,
        &stack.url(&format!("/agents/{me}/memory/k")),
        Some(json!({"value": 7})),
        &[pay_quote(&stack, &buyer, &write_quote)],
    )
    .await;
    assert_eq!(written.status, StatusCode::OK, "{}", written.body);
    let read = send(
        Method::GET,
        &stack.url(&format!("/agents/{me}/memory/k")),
        None,
        &[pay_quote(&stack, &buyer, &read_quote)],
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["value"], 7);
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - U256::from(3000u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wallet_is_served_no_more_calls_than_it_can_pay() {
    const AFFORDABLE: u64 = 3;
    const SENT: usize = 24;
    let stack = PaidStack::start_with(Options {
        buyers: 0,
        ..Options::default()
    })
    .await;
    let required = stack.payments.requirements("memory.incr").unwrap();
    let buyer = stack.chain.new_buyer(AFFORDABLE * 1000).await;
    let me = namespace(&buyer);

    let headers: Vec<_> = (0..SENT)
        .map(|_| {
            let (authorization, signature) = signed(&stack, &buyer, &required);
            v2_header(&required, &authorization, &signature)
        })
        .collect();
    let url = stack.url("/api/memory/incr");
    let calls: Vec<_> = headers
        .into_iter()
        .map(|header| {
            let url = url.clone();
            tokio::spawn(async move {
                send(Method::POST, &url, Some(json!({"key": "n"})), &[header]).await
            })
        })
        .collect();
    let mut served = 0u64;
    for call in calls {
        let reply = call.await.unwrap();
        match reply.status {
            StatusCode::OK => {
                served += 1;
                let settled = decode(reply.headers.get("payment-response").unwrap());
                assert_eq!(settled["success"], true, "{settled}");
            }
            StatusCode::PAYMENT_REQUIRED => {
                assert_eq!(reply.body["error"], "insufficient_funds", "{}", reply.body)
            }
            other => panic!("{other}: {}", reply.body),
        }
    }
    assert!(
        (1..=AFFORDABLE).contains(&served),
        "served {served} of {SENT}"
    );

    // Whatever the burst left is still spendable, one call at a time, and
    // not a unit more.
    loop {
        let (authorization, signature) = signed(&stack, &buyer, &required);
        let reply = incr(
            &stack,
            "n",
            v2_header(&required, &authorization, &signature),
        )
        .await;
        if reply.status != StatusCode::OK {
            assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED, "{}", reply.body);
            break;
        }
        served += 1;
        assert!(served <= AFFORDABLE);
    }
    assert_eq!(served, AFFORDABLE, "every affordable call is served");
    assert_eq!(stack.stored(&me, "n").await, Some(AFFORDABLE.to_string()));
    assert_eq!(stack.balance(buyer.address()).await, U256::ZERO);
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        U256::from(AFFORDABLE * 1000),
        "every served call was paid"
    );
    let rows = stack.payments.ledger().payments_of(&me).await.unwrap();
    assert_eq!(
        rows.iter().filter(|r| r.status == "settled").count() as u64,
        AFFORDABLE
    );
    assert!(
        rows.iter().all(|r| r.status == "settled"),
        "refused ones left no row: {rows:?}"
    );
    let account = stack.account(&me).await;
    assert_eq!(account.outstanding, U256::ZERO);
    assert_eq!(account.settled_total, U256::from(AFFORDABLE * 1000));
    assert_eq!(account.debt, U256::ZERO);
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payer_whose_settlement_fails_becomes_a_debtor_and_then_settles_first() {
    let stack = PaidStack::start_with(Options {
        buyers: 0,
        ..Options::default()
    })
    .await;
    let required = stack.payments.requirements("memory.incr").unwrap();
    let price = U256::from(1000u64);
    let buyer = stack.chain.new_buyer(5_000).await;
    let me = namespace(&buyer);
    let elsewhere = PrivateKeySigner::random().address();

    // Verified, then held at memory; meanwhile the payer empties its wallet.
    stack.memory_proxy.pause();
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let header = v2_header(&required, &authorization, &signature);
    let url = stack.url("/api/memory/incr");
    let call = tokio::spawn(async move {
        send(Method::POST, &url, Some(json!({"key": "n"})), &[header]).await
    });
    wait_for("the payment to be verified", async || {
        stack.payments.ledger_statuses(&me).await.unwrap() == ["verified"]
    })
    .await;
    stack
        .chain
        .transfer_as(&buyer, elsewhere, U256::from(5_000u64))
        .await;
    stack.memory_proxy.resume();
    let served = call.await.unwrap();
    assert_eq!(
        served.status,
        StatusCode::OK,
        "the call was served: {}",
        served.body
    );
    let settlement = decode(served.headers.get("payment-response").unwrap());
    assert_eq!(settlement["success"], false, "{settlement}");
    assert_eq!(
        settlement["errorReason"], "insufficient_funds",
        "{settlement}"
    );

    let ledger = stack.payments.ledger();
    let state = stack.account(&me).await;
    assert_eq!(
        (state.debt, state.outstanding),
        (price, U256::ZERO),
        "recorded as a debt"
    );
    let rows = ledger.payments_of(&me).await.unwrap();
    assert_eq!((rows[0].status.as_str(), rows[0].served), ("failed", true));
    let metrics = tessera_runtime::metrics::render();
    assert!(
        metrics.contains("tessera_payments_total{outcome=\"debt\"}"),
        "debts are counted"
    );

    // Funded again, the debtor's next call is settled before it runs: the
    // money has moved while the call is still held at memory.
    stack
        .chain
        .mint(buyer.address(), U256::from(5_000u64))
        .await;
    stack.memory_proxy.pause();
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let header = v2_header(&required, &authorization, &signature);
    let url = stack.url("/api/memory/incr");
    let call = tokio::spawn(async move {
        send(Method::POST, &url, Some(json!({"key": "n"})), &[header]).await
    });
    wait_for("the settlement before execution", async || {
        stack.balance(buyer.address()).await == U256::from(4_000u64)
    })
    .await;
    assert!(!call.is_finished(), "the call has not run yet");
    assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("1"));
    stack.memory_proxy.resume();
    let reply = call.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        decode(reply.headers.get("payment-response").unwrap())["success"],
        true
    );
    assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("2"));
    let state = stack.account(&me).await;
    assert_eq!(
        (state.debt, state.settled_total),
        (price, price),
        "still a debtor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn junk_and_forgeries_never_reach_the_ledger() {
    let stack = PaidStack::start_with(Options {
        settle_timeout: Duration::from_secs(20),
        ..Options::default()
    })
    .await;
    let buyer = stack.chain.buyers[0].clone();
    let stranger = PrivateKeySigner::random();
    let required = stack.payments.requirements("memory.incr").unwrap();
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);

    let mut junk: Vec<(&str, String, StatusCode)> = vec![
        ("garbage", "%%%%".into(), StatusCode::PAYMENT_REQUIRED),
        (
            "not JSON",
            b64("{\"x402Version\":"),
            StatusCode::PAYMENT_REQUIRED,
        ),
        ("empty object", b64("{}"), StatusCode::PAYMENT_REQUIRED),
        (
            "version 3",
            b64("{\"x402Version\":3}"),
            StatusCode::PAYMENT_REQUIRED,
        ),
        (
            "oversized",
            "A".repeat(20 * 1024),
            StatusCode::from_u16(431).unwrap(),
        ),
    ];
    let mut forged =
        |label: &'static str, change: &dyn Fn(&mut TransferWithAuthorization, &mut Vec<u8>)| {
            let (mut authorization, signature) = signed(&stack, &buyer, &required);
            let mut bytes = signature.to_vec();
            change(&mut authorization, &mut bytes);
            let header = v2_header(&required, &authorization, &Bytes::from(bytes)).1;
            junk.push((label, header, StatusCode::PAYMENT_REQUIRED));
        };
    forged("flipped signature byte", &|_, sig| sig[5] ^= 1);
    forged("short signature", &|_, sig| sig.truncate(64));
    forged("another value than signed", &|a, _| {
        a.nonce = chain::random_nonce()
    });
    forged("high s", &|_, sig| {
        // s' = n - s, v flipped: the same point, not canonical.
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let s = U256::from_be_slice(&sig[32..64]);
        sig[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        sig[64] = if sig[64] == 27 { 28 } else { 27 };
    });
    let (authorization, _) = signed(&stack, &buyer, &required);
    let by_stranger = stack.chain.sign(&stranger, &authorization);
    junk.push((
        "signed by another key",
        v2_header(&required, &authorization, &by_stranger).1,
        StatusCode::PAYMENT_REQUIRED,
    ));
    let mut soon = stack.chain.authorization(buyer.address(), &required);
    soon.validBefore = U256::from(chain::unix_now() + 10);
    let signature = stack.chain.sign(&buyer, &soon);
    junk.push((
        "expires before a settlement could finish",
        v2_header(&required, &soon, &signature).1,
        StatusCode::PAYMENT_REQUIRED,
    ));
    let mut wrong_amount = required.clone();
    wrong_amount.amount = "999".into();
    let (authorization, signature) = signed(&stack, &buyer, &wrong_amount);
    junk.push((
        "another amount",
        v2_header(&wrong_amount, &authorization, &signature).1,
        StatusCode::PAYMENT_REQUIRED,
    ));
    let mut other_payee = required.clone();
    other_payee.pay_to = Address::repeat_byte(9).to_checksum(None);
    let (authorization, signature) = signed(&stack, &buyer, &other_payee);
    junk.push((
        "another payee",
        v2_header(&other_payee, &authorization, &signature).1,
        StatusCode::PAYMENT_REQUIRED,
    ));

    // A flood: every piece of junk, many times, at once.
    let url = stack.url("/api/memory/incr");
    let calls: Vec<_> = (0..junk.len() * 8)
        .map(|i| {
            let (label, header, expected) = junk[i % junk.len()].clone();
            let url = url.clone();
            tokio::spawn(async move {
                let reply = send(
                    Method::POST,
                    &url,
                    Some(json!({"key": "n"})),
                    &[("PAYMENT-SIGNATURE", header)],
                )
                .await;
                assert_eq!(reply.status, expected, "{label}: {}", reply.body);
                assert!(
                    reply.body["error"].is_string(),
                    "{label}: the family's body: {}",
                    reply.body
                );
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(
        stack.ledger_rows().await,
        0,
        "the payments table is unchanged"
    );
    assert_eq!(stack.stored(&namespace(&buyer), "n").await, None);

    // The per-agent face answers an oversized header in its own body.
    let reply = send(
        Method::GET,
        &stack.url("/agents/0xabc/memory/k"),
        None,
        &[("X-PAYMENT", "B".repeat(17 * 1024))],
    )
    .await;
    assert_eq!(reply.status.as_u16(), 431);
    assert_eq!(
        reply.body["error"]["category"], "InvalidInput",
        "{}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_past_its_deadline_is_504_and_not_charged() {
    let stack = PaidStack::start_with(Options {
        request_timeout: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let buyer = stack.chain.buyers[0].clone();
    let before = stack.balance(buyer.address()).await;
    let required = stack.payments.requirements("memory.incr").unwrap();
    stack.memory_proxy.pause();
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let reply = incr(
        &stack,
        "slow",
        v2_header(&required, &authorization, &signature),
    )
    .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{}", reply.body);
    assert!(reply.headers.get("payment-response").is_none());
    stack.memory_proxy.resume();
    assert_eq!(
        stack
            .payments
            .ledger_statuses(&namespace(&buyer))
            .await
            .unwrap(),
        ["cancelled"]
    );
    assert_eq!(stack.balance(buyer.address()).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_concurrency_limit_paid_routes_answer_503_at_once() {
    let stack = PaidStack::start_with(Options {
        max_concurrent_requests: 1,
        ..Options::default()
    })
    .await;
    let buyer = stack.chain.buyers[0].clone();
    let required = stack.payments.requirements("memory.incr").unwrap();
    stack.memory_proxy.pause();
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let header = v2_header(&required, &authorization, &signature);
    let url = stack.url("/api/memory/incr");
    let held = tokio::spawn(async move {
        send(Method::POST, &url, Some(json!({"key": "n"})), &[header]).await
    });
    let me = namespace(&buyer);
    wait_for("the held call", async || {
        stack.payments.ledger_statuses(&me).await.unwrap() == ["verified"]
    })
    .await;
    let refused = send(
        Method::POST,
        &stack.url("/api/memory/cas"),
        Some(json!({"key": "k"})),
        &[],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    let health = send(Method::GET, &stack.url("/health"), None, &[]).await;
    assert_eq!(health.status, StatusCode::OK, "health is never refused");
    stack.memory_proxy.resume();
    assert_eq!(held.await.unwrap().status, StatusCode::OK);
    let after = send(
        Method::POST,
        &stack.url("/api/memory/cas"),
        Some(json!({"key": "k"})),
        &[],
    )
    .await;
    assert_eq!(after.status, StatusCode::PAYMENT_REQUIRED);
}

/// A payment service that prices every route but the ones it is told to
/// leave out, and answers nothing else.
struct PartialPrices {
    missing: &'static [&'static str],
}

#[tonic::async_trait]
impl pay::payment_service_server::PaymentService for PartialPrices {
    async fn quote(
        &self,
        _: Request<pay::QuoteRequest>,
    ) -> Result<Response<pay::QuoteResponse>, Status> {
        Err(Status::unimplemented("stub"))
    }
    async fn verify(
        &self,
        _: Request<pay::VerifyRequest>,
    ) -> Result<Response<pay::VerifyResponse>, Status> {
        Err(Status::unimplemented("stub"))
    }
    async fn identify(
        &self,
        _: Request<pay::IdentifyRequest>,
    ) -> Result<Response<pay::IdentifyResponse>, Status> {
        Err(Status::unimplemented("stub"))
    }
    async fn settle(
        &self,
        _: Request<pay::SettleRequest>,
    ) -> Result<Response<pay::SettleResponse>, Status> {
        Err(Status::unimplemented("stub"))
    }
    async fn cancel(
        &self,
        _: Request<pay::CancelRequest>,
    ) -> Result<Response<pay::CancelResponse>, Status> {
        Err(Status::unimplemented("stub"))
    }
    async fn get_payment(
        &self,
        _: Request<pay::GetPaymentRequest>,
    ) -> Result<Response<pay::GetPaymentResponse>, Status> {
        Err(Status::unimplemented("stub"))
    }
    async fn list_prices(
        &self,
        _: Request<pay::ListPricesRequest>,
    ) -> Result<Response<pay::ListPricesResponse>, Status> {
        Ok(Response::new(pay::ListPricesResponse {
            prices: tessera_catalog::routes()
                .iter()
                .filter(|route| !self.missing.contains(&route.id))
                .map(|route| pay::RoutePrice {
                    route: route.id.into(),
                    amount: route.price,
                })
                .collect(),
            network: chain::NETWORK.into(),
            asset: Address::ZERO.to_checksum(None),
            ..Default::default()
        }))
    }
    async fn probe_dependency(
        &self,
        _: Request<pay::ProbeDependencyRequest>,
    ) -> Result<Response<pay::ProbeDependencyResponse>, Status> {
        Err(Status::unimplemented("stub"))
    }
}

async fn gateway_over(missing: &'static [&'static str]) -> anyhow::Result<axum::Router> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tessera_runtime::grpc::GrpcServer::new(
        tessera_payment::SERVICE_NAME,
        pay::payment_service_server::PaymentServiceServer::new(PartialPrices { missing }),
    );
    let shutdown = tessera_runtime::Shutdown::new();
    tokio::spawn(server.serve(listener, shutdown.clone()));
    let config = tessera_gateway::GatewayConfig {
        payment_url: Some(url),
        ..Default::default()
    };
    let router = tessera_gateway::router(&config).await;
    shutdown.trigger();
    router
}

#[tokio::test]
async fn a_gateway_does_not_start_while_a_paid_route_has_no_price() {
    let error = gateway_over(&["memory.cas", "agents.memory.delete"])
        .await
        .expect_err("refuses to start");
    let message = format!("{error:#}");
    assert!(
        message.contains("memory.cas") && message.contains("agents.memory.delete"),
        "{message}"
    );
    let _router = gateway_over(&[])
        .await
        .expect("starts when every route is priced");
}

/// A contract wallet's signature cannot be recovered locally: the payment
/// service asks the wallet (ERC-1271) before the ledger sees anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_contract_wallet_pays_and_a_stranger_cannot_sign_for_it() {
    let stack = PaidStack::start_with(Options {
        buyers: 0,
        ..Options::default()
    })
    .await;
    let owner = PrivateKeySigner::random();
    let wallet = stack.chain.deploy_smart_wallet(owner.address()).await;
    stack.chain.mint(wallet, U256::from(5_000u64)).await;
    let required = stack.payments.requirements("memory.incr").unwrap();

    let authorization = stack.chain.authorization(wallet, &required);
    let by_stranger = stack
        .chain
        .sign(&PrivateKeySigner::random(), &authorization);
    let refused = incr(
        &stack,
        "n",
        v2_header(&required, &authorization, &by_stranger),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["error"], "invalid_exact_evm_payload_signature");
    assert_eq!(stack.ledger_rows().await, 0);

    let by_owner = stack.chain.sign(&owner, &authorization);
    let served = incr(&stack, "n", v2_header(&required, &authorization, &by_owner)).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    assert_eq!(served.body["owner"], format!("{wallet:#x}"));
    assert_eq!(stack.balance(wallet).await, U256::from(4_000u64));
}

/// With `INTERNAL_TOKEN` set, memory and payment serve only a gateway that
/// sends it; a gateway with another token does not start (its price check
/// is refused) and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_ports_serve_only_holders_of_the_service_token() {
    const TOKEN: &str = "integrity-internal-s3cret";
    let stack = PaidStack::start_with(Options {
        internal_token: TOKEN,
        ..Options::default()
    })
    .await;
    let buyer = stack.chain.buyers[0].clone();
    let required = stack.payments.requirements("memory.incr").unwrap();
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let served = incr(
        &stack,
        "n",
        v2_header(&required, &authorization, &signature),
    )
    .await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    assert_eq!(
        stack.stored(&namespace(&buyer), "n").await.as_deref(),
        Some("1")
    );

    let mut stranger =
        pay::payment_service_client::PaymentServiceClient::connect(stack.payment_url.clone())
            .await
            .unwrap();
    let refused = stranger
        .verify(pay::VerifyRequest {
            route: "memory.incr".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        tessera_error::Error::from_status(&refused).reason,
        tessera_runtime::grpc_auth::REASON
    );

    for token in ["", "another-s3cret"] {
        let started = std::time::Instant::now();
        let error = tessera_gateway::router(&tessera_gateway::GatewayConfig {
            payment_url: Some(stack.payment_url.clone()),
            internal_token: tessera_runtime::grpc_auth::ServiceToken::new(token).unwrap(),
            ..Default::default()
        })
        .await
        .expect_err("a gateway without the token does not start");
        assert!(format!("{error:#}").contains("INTERNAL_TOKEN"), "{error:#}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "fails at once, not after retries"
        );
    }
}

/// A client that hangs up while its paid call runs cannot leave the call
/// served and unpaid: the gateway finishes the call and its settlement
/// whether anyone still listens or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_hanging_up_mid_call_still_pays_for_what_ran() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let before = stack.balance(buyer.address()).await;
    let required = stack.payments.requirements("memory.incr").unwrap();
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let (name, value) = v2_header(&required, &authorization, &signature);

    stack.memory_proxy.pause();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
        .post(stack.url("/api/memory/incr"))
        .header(name, value)
        .json(&json!({"key": "n"}))
        .send();
    let call = tokio::spawn(impatient);
    wait_for("the payment to be verified", async || {
        stack.payments.ledger_statuses(&me).await.unwrap() == ["verified"]
    })
    .await;
    assert!(call.await.unwrap().is_err(), "the client gave up");
    stack.memory_proxy.resume();

    wait_for("the served call to be settled", async || {
        stack.payments.ledger_statuses(&me).await.unwrap() == ["settled"]
    })
    .await;
    assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("1"));
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - U256::from(1000u64)
    );
}

/// Makes a payment look untouched for an hour (its driver stopped long ago).
async fn age(stack: &PaidStack, payment_id: &str) {
    sqlx::query("UPDATE payments SET updated_at = now() - interval '1 hour' WHERE id = $1")
        .bind(payment_id)
        .execute(stack.payments.ledger().pool())
        .await
        .unwrap();
}

/// The payment service stopped between reserving an authorization and
/// answering: the reservation was never answered verified, so nothing was
/// served; the background pass releases it and its hold on the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reservation_whose_verification_never_finished_is_released() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let required = stack.payments.requirements("memory.incr").unwrap();
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let payload = chain::payload_v2(&required, &authorization, &signature);
    let payment = tessera_x402::ExactPayment::parse(
        &tessera_x402::PaymentPayload::from_value(payload.clone()).unwrap(),
    )
    .unwrap();
    let key = payment.key(stack.chain.token);
    let ledger = stack.payments.ledger();
    let reserved = ledger
        .reserve(
            &tessera_payment::ledger::NewPayment {
                key: &key,
                route: "memory.incr",
                resource: &stack.url("/api/memory/incr"),
                amount: U256::from(1000u64),
                pay_to: &required.pay_to,
                x402_version: 2,
                payload: &payload,
                requirements: &serde_json::to_value(&required).unwrap(),
                verified: false,
            },
            U256::from(chain::BUYER_FUNDS),
            U256::ZERO,
        )
        .await
        .unwrap();
    let tessera_payment::ledger::Reservation::Reserved { id, .. } = reserved else {
        panic!("{reserved:?}");
    };
    assert_eq!(stack.account(&me).await.outstanding, U256::from(1000u64));

    stack.payments.retry_pending().await.unwrap();
    assert_eq!(
        ledger.statuses_of(&me).await.unwrap(),
        ["reserved"],
        "young: left alone"
    );
    age(&stack, &id).await;
    stack.payments.retry_pending().await.unwrap();
    assert_eq!(ledger.statuses_of(&me).await.unwrap(), ["cancelled"]);
    assert_eq!(
        stack.account(&me).await.outstanding,
        U256::ZERO,
        "hold released"
    );
    // Released for good: the authorization still buys nothing.
    let again = incr(
        &stack,
        "n",
        v2_header(&required, &authorization, &signature),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
}

/// A gateway stopped between verifying a payment and settling or
/// cancelling it: the call may have been served, so the background pass
/// settles it as served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verified_payment_whose_gateway_stopped_is_settled_as_served() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let before = stack.balance(buyer.address()).await;
    let required = stack.payments.requirements("memory.incr").unwrap();
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let header = v2_header(&required, &authorization, &signature).1;
    let verified = stack
        .payments
        .verify(
            "memory.incr",
            &stack.url("/api/memory/incr"),
            &header,
            false,
        )
        .await
        .unwrap();

    stack.payments.retry_pending().await.unwrap();
    assert_eq!(
        stack.payments.ledger_statuses(&me).await.unwrap(),
        ["verified"]
    );
    age(&stack, &verified.payment_id).await;
    stack.payments.retry_pending().await.unwrap();
    let rows = stack.payments.ledger().payments_of(&me).await.unwrap();
    assert_eq!((rows[0].status.as_str(), rows[0].served), ("settled", true));
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - U256::from(1000u64)
    );
    let state = stack.account(&me).await;
    assert_eq!(
        (state.outstanding, state.settled_total),
        (U256::ZERO, U256::from(1000u64))
    );
    // The gateway, were it back, cannot settle it a second time.
    let late = stack
        .payments
        .settle(&verified.payment_id, false)
        .await
        .unwrap_err();
    assert_eq!(late.reason, "PAYMENT_NOT_SETTLEABLE");
}

/// A settler that took a payment and stopped before recording the outcome
/// leaves it `settling`: the background pass settles it again, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settlement_whose_settler_stopped_is_finished_once() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let before = stack.balance(buyer.address()).await;
    let required = stack.payments.requirements("memory.incr").unwrap();
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let header = v2_header(&required, &authorization, &signature).1;
    let verified = stack
        .payments
        .verify(
            "memory.incr",
            &stack.url("/api/memory/incr"),
            &header,
            false,
        )
        .await
        .unwrap();
    let ledger = stack.payments.ledger();
    assert!(ledger
        .claim_for_settle(&verified.payment_id)
        .await
        .unwrap()
        .is_some());

    stack.payments.retry_pending().await.unwrap();
    assert_eq!(
        ledger.statuses_of(&me).await.unwrap(),
        ["settling"],
        "young: left alone"
    );
    age(&stack, &verified.payment_id).await;
    stack.payments.retry_pending().await.unwrap();
    stack.payments.retry_pending().await.unwrap();
    assert_eq!(ledger.statuses_of(&me).await.unwrap(), ["settled"]);
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - U256::from(1000u64),
        "once"
    );
}

/// A ledger transaction that stalls holding a payer's account (a stuck
/// replica) makes that payer's next payment fail fast (503), not hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_ledger_lock_fails_a_payment_fast_and_charges_nothing() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let required = stack.payments.requirements("memory.incr").unwrap();
    // Create the account, then hold its row.
    let (authorization, signature) = signed(&stack, &buyer, &required);
    let first = incr(
        &stack,
        "n",
        v2_header(&required, &authorization, &signature),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let before = stack.balance(buyer.address()).await;
    let mut stall = stack.payments.ledger().pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM payer_accounts WHERE payer = $1 FOR UPDATE")
        .bind(&me)
        .execute(&mut *stall)
        .await
        .unwrap();

    let (authorization, signature) = signed(&stack, &buyer, &required);
    let started = std::time::Instant::now();
    let stalled = tokio::time::timeout(
        Duration::from_secs(20),
        incr(
            &stack,
            "n",
            v2_header(&required, &authorization, &signature),
        ),
    )
    .await
    .expect("answered, not hung");
    assert_eq!(
        stalled.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        stalled.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(stall);
    assert_eq!(
        stack.stored(&me, "n").await.as_deref(),
        Some("1"),
        "not served"
    );
    assert_eq!(stack.balance(buyer.address()).await, before, "not charged");
    assert_eq!(
        stack.payments.ledger_statuses(&me).await.unwrap(),
        ["settled"],
        "nothing left behind"
    );
}
