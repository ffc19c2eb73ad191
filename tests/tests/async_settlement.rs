//! Asynchronous settlement (`PAYMENT_SETTLE_MODE=async`) on real parts:
//! anvil with our EIP-3009 token, our facilitator, the payment service and
//! its ledger in PostgreSQL, memory on Redis + PostgreSQL, the gateway. A
//! paid call is answered before its transfer is sent, with a pending
//! `PAYMENT-RESPONSE` naming the payment; the settler settles it in the
//! background exactly once (also after a restart, also with several
//! settlers), a failure makes the payer a debtor who then settles first,
//! and `GET /api/payments/{id}` shows where a payment is.

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tessera_gateway::SettleMode;
use tessera_payment::Settler;
use tessera_runtime::Shutdown;
use tessera_tests::chain;
use tessera_tests::paid::{decode, namespace, send, Options, PaidStack, Reply};

const PRICE: u64 = 1000;

fn async_mode() -> Options {
    Options {
        settle_mode: SettleMode::Async,
        ..Options::default()
    }
}

/// A signed `PAYMENT-SIGNATURE` for `memory.incr` from `buyer`, and the
/// nonce of its authorization.
fn payment(stack: &PaidStack, buyer: &PrivateKeySigner) -> ((&'static str, String), B256) {
    payment_valid_for(stack, buyer, None)
}

/// [`payment`], its authorization valid for `seconds` from now (else for
/// the route's `maxTimeoutSeconds`).
fn payment_valid_for(
    stack: &PaidStack,
    buyer: &PrivateKeySigner,
    seconds: Option<u64>,
) -> ((&'static str, String), B256) {
    let required = stack.payments.requirements("memory.incr").unwrap();
    let mut authorization = stack.chain.authorization(buyer.address(), &required);
    if let Some(seconds) = seconds {
        authorization.validBefore = U256::from(chain::unix_now() + seconds);
    }
    let signature = stack.chain.sign(buyer, &authorization);
    let header =
        tessera_x402::encode_header(&chain::payload_v2(&required, &authorization, &signature));
    (("PAYMENT-SIGNATURE", header), authorization.nonce)
}

async fn incr(stack: &PaidStack, key: &str, headers: &[(&str, String)]) -> Reply {
    send(
        Method::POST,
        &stack.url("/api/memory/incr"),
        Some(json!({"key": key})),
        headers,
    )
    .await
}

/// A call of `memory.incr` on key `n`, paid by `buyer` with a fresh
/// authorization; its answer.
async fn paid_incr(stack: &PaidStack, buyer: &PrivateKeySigner) -> Reply {
    let (header, _) = payment(stack, buyer);
    incr(stack, "n", &[header]).await
}

/// Asserts that a call paid by `buyer` (see [`paid_incr`]) is refused
/// with a 402.
async fn assert_paid_incr_refused(stack: &PaidStack, buyer: &PrivateKeySigner) {
    let refused = paid_incr(stack, buyer).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
}

/// The pending settlement a served call was answered with: checks its x402
/// fields and returns the payment's id.
fn pending_settlement(reply: &Reply, payer: &str) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let settlement = decode(
        reply
            .headers
            .get("payment-response")
            .expect("PAYMENT-RESPONSE"),
    );
    assert_pending(&settlement, payer)
}

/// `settlement` says pending as the x402 spec spells it and names its
/// payment in `extensions`; its id.
fn assert_pending(settlement: &Value, payer: &str) -> String {
    assert_eq!(settlement["success"], false, "{settlement}");
    assert_eq!(
        settlement["errorReason"], "settlement_pending",
        "{settlement}"
    );
    assert_eq!(settlement["transaction"], "", "{settlement}");
    assert_eq!(settlement["network"], chain::NETWORK, "{settlement}");
    assert_eq!(settlement["payer"], payer, "{settlement}");
    assert_eq!(settlement["amount"], PRICE.to_string(), "{settlement}");
    assert!(settlement["errorMessage"].is_string(), "{settlement}");
    let named = &settlement["extensions"]["settlement"];
    let id = named["id"].as_str().expect("the payment's id").to_string();
    assert!(
        id.len() == 36
            && id.starts_with("pay_")
            && id[4..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
    assert_eq!(named["status"], "queued", "{settlement}");
    assert_eq!(named["lookup"], format!("/api/payments/{id}"));
    id
}

async fn lookup(stack: &PaidStack, id: &str) -> Reply {
    send(
        Method::GET,
        &stack.url(&format!("/api/payments/{id}")),
        None,
        &[],
    )
    .await
}

/// Polls the payment's lookup until its state is final; that state.
async fn final_state(stack: &PaidStack, id: &str) -> Value {
    for _ in 0..400 {
        let reply = lookup(stack, id).await;
        assert_eq!(reply.status, StatusCode::OK, "{id}: {}", reply.body);
        if reply.body["final"] == true {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} did not reach a final state");
}

/// Asserts a lookup's answer matches the schema `/openapi.json` documents.
async fn assert_documented(stack: &PaidStack, state: &Value) {
    let document = send(Method::GET, &stack.url("/openapi.json"), None, &[])
        .await
        .body;
    let schema = &document["paths"]["/api/payments/{id}"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    let validator = tessera_toolbox::Validator::new(schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(state)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{state} is not as documented: {errors:?}"
    );
}

/// How many times the ledger took this payment for settling.
async fn attempts(stack: &PaidStack, id: &str) -> i32 {
    sqlx::query_scalar("SELECT attempts FROM payments WHERE id = $1")
        .bind(id)
        .fetch_one(stack.payments.ledger().pool())
        .await
        .unwrap()
}

/// A stack of `options` with no settler running (queued payments wait
/// until the test starts one) and a single payer, a new buyer funded with
/// `funds`: the stack, the payer and its namespace.
async fn one_payer_without_settler(
    options: Options,
    funds: u64,
) -> (PaidStack, PrivateKeySigner, String) {
    let stack = PaidStack::start_with(Options {
        settler: false,
        buyers: 0,
        ..options
    })
    .await;
    let buyer = stack.chain.new_buyer(funds).await;
    let me = namespace(&buyer);
    (stack, buyer, me)
}

/// A settler of queued payments that a test started, and the shutdown
/// that stops it.
struct StartedSettler {
    settler: Settler,
    shutdown: Shutdown,
}

impl StartedSettler {
    /// Starts a settler on `stack`'s payment service, settling at most
    /// `concurrency` at once and looking for queued rows hourly (besides
    /// when one is queued).
    fn start(stack: &PaidStack, concurrency: usize) -> StartedSettler {
        let shutdown = Shutdown::new();
        let settler = Settler::spawn(
            stack.payments.clone(),
            concurrency,
            Duration::from_secs(3600),
            shutdown.clone(),
        );
        StartedSettler { settler, shutdown }
    }

    /// Stops the settler and waits until it has returned.
    async fn stop(self) {
        self.shutdown.trigger();
        self.settler.stopped().await;
    }
}

fn is_transaction_hash(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|hash| hash.starts_with("0x") && hash.len() == 66)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_call_is_answered_before_its_settlement_which_lands_once_in_the_background() {
    let stack = PaidStack::start_with(async_mode()).await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let (buyer_before, pay_to_before) = (
        stack.balance(buyer.address()).await,
        stack.balance(stack.chain.pay_to).await,
    );

    // The settlement is held at the facilitator: the call is answered anyway.
    stack.facilitator_proxy.hold_on(b"/settle");
    let (header, nonce) = payment(&stack, &buyer);
    let served = incr(&stack, "n", &[header]).await;
    let id = pending_settlement(&served, &me);
    assert_eq!(served.body["value"], 1, "served: {}", served.body);
    assert!(
        stack
            .facilitator_proxy
            .held_within(Duration::from_secs(10))
            .await,
        "the settler sent the settlement"
    );

    // Meanwhile: not yet paid, the amount held against the payer.
    let meanwhile = lookup(&stack, &id).await;
    assert_eq!(meanwhile.status, StatusCode::OK, "{}", meanwhile.body);
    assert_eq!(
        meanwhile.headers["cache-control"], "no-store",
        "a state that changes"
    );
    let state = &meanwhile.body;
    assert!(
        ["queued", "settling"].contains(&state["status"].as_str().unwrap()),
        "{state}"
    );
    assert_eq!(state["final"], false, "{state}");
    assert_eq!(state["transaction"], Value::Null, "{state}");
    assert_eq!(
        (
            &state["id"],
            &state["payer"],
            &state["amount"],
            &state["route"]
        ),
        (
            &json!(id),
            &json!(me),
            &json!("1000"),
            &json!("memory.incr")
        ),
        "{state}"
    );
    assert_eq!(state["served"], true, "{state}");
    assert_documented(&stack, state).await;
    assert_eq!(stack.balance(buyer.address()).await, buyer_before);
    assert!(!stack.chain.authorization_used(buyer.address(), nonce).await);
    let ledger = stack.payments.ledger();
    let held = stack.account(&me).await;
    assert_eq!(held.outstanding, U256::from(PRICE), "still outstanding");

    // Released: settled in the background, once.
    stack.facilitator_proxy.resume();
    let settled = final_state(&stack, &id).await;
    assert_eq!(settled["status"], "settled", "{settled}");
    assert!(is_transaction_hash(&settled["transaction"]), "{settled}");
    assert_eq!(settled["errorReason"], Value::Null, "{settled}");
    assert_documented(&stack, &settled).await;
    let hash: B256 = settled["transaction"].as_str().unwrap().parse().unwrap();
    assert!(stack.chain.receipt(hash).await.is_some(), "mined");
    assert!(stack.chain.authorization_used(buyer.address(), nonce).await);
    assert_eq!(
        stack.balance(buyer.address()).await,
        buyer_before - U256::from(PRICE),
        "the buyer paid exactly the price"
    );
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        pay_to_before + U256::from(PRICE)
    );
    let rows = ledger.payments_of(&me).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].status.as_str(), rows[0].served), ("settled", true));
    assert_eq!(attempts(&stack, &id).await, 1, "settled exactly once");
    let account = stack.account(&me).await;
    assert_eq!(
        (account.outstanding, account.settled_total, account.debt),
        (U256::ZERO, U256::from(PRICE), U256::ZERO)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_calls_from_four_payers_are_each_answered_and_settled_once() {
    const PER_PAYER: usize = 10;
    let stack = PaidStack::start_with(async_mode()).await;
    let buyers = stack.chain.buyers.clone();
    assert_eq!(buyers.len(), 4);
    let mut before = Vec::new();
    for buyer in &buyers {
        before.push(stack.balance(buyer.address()).await);
    }
    let pay_to_before = stack.balance(stack.chain.pay_to).await;

    let mut calls = Vec::new();
    for buyer in &buyers {
        for _ in 0..PER_PAYER {
            let (header, nonce) = payment(&stack, buyer);
            let url = stack.url("/api/memory/incr");
            let payer = namespace(buyer);
            calls.push(tokio::spawn(async move {
                let reply = send(Method::POST, &url, Some(json!({"key": "n"})), &[header]).await;
                (payer, nonce, reply)
            }));
        }
    }
    let mut served = Vec::new();
    for call in calls {
        let (payer, nonce, reply) = call.await.unwrap();
        let id = pending_settlement(&reply, &payer);
        served.push((payer, nonce, id));
    }
    let ids: std::collections::BTreeSet<_> = served.iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(ids.len(), buyers.len() * PER_PAYER, "one payment per call");

    for (_, _, id) in &served {
        let state = final_state(&stack, id).await;
        assert_eq!(state["status"], "settled", "{state}");
        assert!(is_transaction_hash(&state["transaction"]), "{state}");
        assert_eq!(attempts(&stack, id).await, 1, "{id}: settled once");
    }
    let ledger = stack.payments.ledger();
    for (buyer, before) in buyers.iter().zip(before) {
        let me = namespace(buyer);
        assert_eq!(
            stack.balance(buyer.address()).await,
            before - U256::from(PRICE * PER_PAYER as u64),
            "{me} paid exactly its calls"
        );
        assert_eq!(
            stack.stored(&me, "n").await.as_deref(),
            Some(PER_PAYER.to_string().as_str())
        );
        let rows = ledger.payments_of(&me).await.unwrap();
        assert_eq!(rows.len(), PER_PAYER, "{rows:?}");
        assert!(rows.iter().all(|r| r.status == "settled" && r.served));
        let account = stack.account(&me).await;
        assert_eq!(
            (account.outstanding, account.settled_total, account.debt),
            (U256::ZERO, U256::from(PRICE * PER_PAYER as u64), U256::ZERO)
        );
    }
    for (payer, nonce, _) in &served {
        let from = payer.parse().unwrap();
        assert!(stack.chain.authorization_used(from, *nonce).await);
    }
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        pay_to_before + U256::from(PRICE * (buyers.len() * PER_PAYER) as u64)
    );
}

/// What async mode lends is bounded by the exposure bound: of a burst from
/// a wallet that can pay for 3 calls, at most 3 are served (the rest 402
/// before anything runs), even while none is settled yet; each served one
/// is then settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_payments_count_against_the_payers_means() {
    const AFFORDABLE: u64 = 3;
    let (stack, buyer, me) = one_payer_without_settler(async_mode(), AFFORDABLE * PRICE).await;
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let (header, _) = payment(&stack, &buyer);
            let url = stack.url("/api/memory/incr");
            tokio::spawn(async move {
                send(Method::POST, &url, Some(json!({"key": "n"})), &[header]).await
            })
        })
        .collect();
    let mut served = Vec::new();
    for call in calls {
        let reply = call.await.unwrap();
        match reply.status {
            StatusCode::OK => served.push(pending_settlement(&reply, &me)),
            StatusCode::PAYMENT_REQUIRED => {
                assert_eq!(reply.body["error"], "insufficient_funds", "{}", reply.body)
            }
            other => panic!("{other}: {}", reply.body),
        }
    }
    assert!(
        (1..=AFFORDABLE as usize).contains(&served.len()),
        "served {}",
        served.len()
    );
    // Whatever the burst left is still spendable one call at a time, and
    // not a call more, though nothing has settled.
    loop {
        let reply = paid_incr(&stack, &buyer).await;
        if reply.status != StatusCode::OK {
            assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED, "{}", reply.body);
            break;
        }
        served.push(pending_settlement(&reply, &me));
        assert!(
            served.len() <= AFFORDABLE as usize,
            "served {}",
            served.len()
        );
    }
    assert_eq!(served.len(), AFFORDABLE as usize);
    let held = stack.account(&me).await;
    assert_eq!(held.outstanding, U256::from(PRICE * served.len() as u64));

    let settler = StartedSettler::start(&stack, 2);
    for id in &served {
        assert_eq!(final_state(&stack, id).await["status"], "settled");
    }
    assert_eq!(stack.balance(buyer.address()).await, U256::ZERO);
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        U256::from(AFFORDABLE * PRICE),
        "every served call was paid"
    );
    settler.stop().await;
}

/// Payments served and queued while no settler ran (the payment service
/// stopped right after answering) are settled by the settlers of the next
/// start, each exactly once though two replicas start at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_payments_left_by_a_stopped_process_are_settled_once_after_a_restart() {
    const CALLS: usize = 8;
    let stack = PaidStack::start_with(Options {
        settler: false,
        ..async_mode()
    })
    .await;
    let buyers = &stack.chain.buyers[..2];
    let mut before = Vec::new();
    for buyer in buyers {
        before.push(stack.balance(buyer.address()).await);
    }
    let mut served = Vec::new();
    for call in 0..CALLS {
        let buyer = &buyers[call % buyers.len()];
        let (header, nonce) = payment(&stack, buyer);
        let reply = incr(&stack, "n", &[header]).await;
        served.push((
            buyer.address(),
            nonce,
            pending_settlement(&reply, &namespace(buyer)),
        ));
    }
    // Nothing settles them: they wait in the ledger, held against their payers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (_, nonce, id) in &served {
        let state = lookup(&stack, id).await.body;
        assert_eq!(state["status"], "queued", "{state}");
        assert_eq!(state["served"], true, "{state}");
        assert!(!stack.chain.authorization_used(served[0].0, *nonce).await);
    }
    let ledger = stack.payments.ledger();
    for buyer in buyers {
        let held = stack.account(&namespace(buyer)).await;
        assert_eq!(held.outstanding, U256::from(PRICE * (CALLS / 2) as u64));
    }
    assert!(
        ledger.queued(stack.payments.scope()).await.unwrap() >= CALLS as i64,
        "queued for this stack's terms"
    );

    // The restart: two replicas open the ledger and start their settlers
    // at once, each looking for queued rows as it starts.
    let shutdown = Shutdown::new();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        replicas.push(tessera_payment::open(&stack.payment_config).await.unwrap());
    }
    let settlers: Vec<Settler> = replicas
        .into_iter()
        .map(|payments| Settler::spawn(payments, 4, Duration::from_secs(3600), shutdown.clone()))
        .collect();
    for (payer, nonce, id) in &served {
        let state = final_state(&stack, id).await;
        assert_eq!(state["status"], "settled", "{state}");
        assert_eq!(attempts(&stack, id).await, 1, "{id}: settled once");
        assert!(stack.chain.authorization_used(*payer, *nonce).await);
    }
    for (buyer, before) in buyers.iter().zip(before) {
        assert_eq!(
            stack.balance(buyer.address()).await,
            before - U256::from(PRICE * (CALLS / 2) as u64)
        );
        let account = stack.account(&namespace(buyer)).await;
        assert_eq!(account.outstanding, U256::ZERO);
        assert_eq!(
            account.settled_total,
            U256::from(PRICE * (CALLS / 2) as u64)
        );
    }
    assert_eq!(ledger.queued(stack.payments.scope()).await.unwrap(), 0);
    // Stopped, the settlers return (nothing was in flight).
    shutdown.trigger();
    for settler in settlers {
        tokio::time::timeout(Duration::from_secs(10), settler.stopped())
            .await
            .expect("the settler stops");
    }
}

/// Many claimers at once (settlers of several replicas) never take one
/// queued payment twice, and together take them all; a claimer that dies
/// with its claim leaves it `settling`, which the background pass settles
/// (once) when it is old enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_take_one_queued_payment_twice() {
    const CALLS: usize = 12;
    let stack = PaidStack::start_with(Options {
        settler: false,
        ..async_mode()
    })
    .await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let before = stack.balance(buyer.address()).await;
    let mut queued = std::collections::BTreeSet::new();
    for _ in 0..CALLS {
        let reply = paid_incr(&stack, &buyer).await;
        queued.insert(pending_settlement(&reply, &me));
    }

    let claimers: Vec<_> = (0..8)
        .map(|_| {
            let ledger = stack.payments.ledger().clone();
            let scope = stack.payments.scope().clone();
            tokio::spawn(async move { ledger.claim_queued(&scope, 3).await.unwrap() })
        })
        .collect();
    let mut claimed = Vec::new();
    for claimer in claimers {
        claimed.extend(claimer.await.unwrap().into_iter().map(|claimed| claimed.id));
    }
    let distinct: std::collections::BTreeSet<_> = claimed.iter().cloned().collect();
    assert_eq!(distinct.len(), claimed.len(), "claimed twice: {claimed:?}");
    let ours: std::collections::BTreeSet<_> = distinct.intersection(&queued).cloned().collect();
    assert_eq!(ours, queued, "every queued payment claimed");
    for id in &queued {
        assert_eq!(lookup(&stack, id).await.body["status"], "settling");
        assert_eq!(attempts(&stack, id).await, 1);
    }

    // The claimers died: once stale, the background pass settles each.
    sqlx::query("UPDATE payments SET updated_at = now() - interval '1 hour' WHERE id = ANY($1)")
        .bind(queued.iter().cloned().collect::<Vec<_>>())
        .execute(stack.payments.ledger().pool())
        .await
        .unwrap();
    // (Each pass takes at most 32 rows, some perhaps other tests'.)
    for _ in 0..10 {
        stack.payments.retry_pending().await.unwrap();
        let rows = stack.payments.ledger().payments_of(&me).await.unwrap();
        if rows.iter().all(|row| row.status == "settled") {
            break;
        }
    }
    for id in &queued {
        let state = lookup(&stack, id).await.body;
        assert_eq!(state["status"], "settled", "{state}");
        assert_eq!(attempts(&stack, id).await, 2, "claimed, then retried once");
    }
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - U256::from(PRICE * CALLS as u64),
        "each paid once"
    );
}

/// The payer empties its wallet after being served and before its queued
/// settlement is sent: the settlement fails, the payer becomes a debtor,
/// and its next call (async mode or not) is settled before it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queued_settlement_that_fails_makes_the_payer_a_debtor_who_then_settles_first() {
    let (stack, buyer, me) = one_payer_without_settler(async_mode(), 5_000).await;
    let elsewhere = PrivateKeySigner::random().address();

    let (header, nonce) = payment(&stack, &buyer);
    let served = incr(&stack, "n", &[header]).await;
    let id = pending_settlement(&served, &me);
    assert_eq!(served.body["value"], 1);
    stack
        .chain
        .transfer_as(&buyer, elsewhere, U256::from(5_000u64))
        .await;

    let settler = StartedSettler::start(&stack, 2);
    let failed = final_state(&stack, &id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["served"], true, "{failed}");
    assert_eq!(failed["errorReason"], "insufficient_funds", "{failed}");
    assert_documented(&stack, &failed).await;
    assert!(!stack.chain.authorization_used(buyer.address(), nonce).await);
    let account = stack.account(&me).await;
    assert_eq!(
        (account.debt, account.outstanding),
        (U256::from(PRICE), U256::ZERO),
        "recorded as a debt"
    );

    // Funded again, the debtor's next call is settled before it runs: the
    // money moves while the call is held at memory, and the answer says
    // settled, not pending.
    stack
        .chain
        .mint(buyer.address(), U256::from(5_000u64))
        .await;
    stack.memory_proxy.pause();
    let (header, nonce) = payment(&stack, &buyer);
    let url = stack.url("/api/memory/incr");
    let call = tokio::spawn(async move {
        send(Method::POST, &url, Some(json!({"key": "n"})), &[header]).await
    });
    for _ in 0..200 {
        if stack.balance(buyer.address()).await == U256::from(4_000u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stack.balance(buyer.address()).await,
        U256::from(4_000u64),
        "settled before the call ran"
    );
    assert!(stack.chain.authorization_used(buyer.address(), nonce).await);
    assert!(!call.is_finished(), "the call has not run yet");
    stack.memory_proxy.resume();
    let reply = call.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let settlement = decode(reply.headers.get("payment-response").unwrap());
    assert_eq!(settlement["success"], true, "{settlement}");
    assert!(settlement.get("extensions").is_none(), "{settlement}");
    assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("2"));
    settler.stop().await;
}

/// A served call whose settlement is queued counts as paid for
/// Idempotency-Key: a retry is answered the first answer, and not charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_with_the_same_idempotency_key_replays_a_queued_answer_without_a_charge() {
    let stack = PaidStack::start_with(async_mode()).await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let before = stack.balance(buyer.address()).await;
    let key = ("Idempotency-Key", format!("k-{:x}", rand::random::<u64>()));

    let (header, _) = payment(&stack, &buyer);
    let first = incr(&stack, "n", &[header, key.clone()]).await;
    let id = pending_settlement(&first, &me);
    let (another, unused) = payment(&stack, &buyer);
    let retried = incr(&stack, "n", &[another, key]).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.headers["x-idempotent-replay"], "true");
    assert_eq!(retried.body, first.body, "the first answer");
    assert_eq!(
        pending_settlement(&retried, &me),
        id,
        "the first payment's settlement"
    );

    assert_eq!(final_state(&stack, &id).await["status"], "settled");
    assert_eq!(
        stack.stored(&me, "n").await.as_deref(),
        Some("1"),
        "ran once"
    );
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - U256::from(PRICE),
        "charged once"
    );
    assert!(
        !stack
            .chain
            .authorization_used(buyer.address(), unused)
            .await
    );
    assert_eq!(
        stack
            .payments
            .ledger()
            .payments_of(&me)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_grpc_the_trailers_carry_the_pending_settlement() {
    use tessera_proto::memory::v1 as pb;
    let stack = PaidStack::start_with(async_mode()).await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let before = stack.balance(buyer.address()).await;
    let channel = tonic::transport::Channel::from_shared(stack.gateway_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::memory_service_client::MemoryServiceClient::new(channel);
    let incr = pb::IncrementRequest {
        key: "n".into(),
        by_json: "1".into(),
        ..Default::default()
    };
    let quote = client.increment(incr.clone()).await.unwrap_err();
    let quote: Value = tessera_x402::decode_header(
        quote
            .metadata()
            .get("payment-required")
            .unwrap()
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let required: tessera_x402::Requirements =
        serde_json::from_value(quote["accepts"][0].clone()).unwrap();
    let mut request = tonic::Request::new(incr);
    request.metadata_mut().insert(
        "payment-signature",
        tessera_x402::encode_header(&stack.chain.pay(&buyer, &required))
            .parse()
            .unwrap(),
    );
    let served = client.increment(request).await.unwrap();
    let settlement: Value = tessera_x402::decode_header(
        served
            .metadata()
            .get("payment-response")
            .expect("payment-response in the trailers")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let id = assert_pending(&settlement, &me);
    assert_eq!(served.into_inner().value_json, "1");
    assert_eq!(final_state(&stack, &id).await["status"], "settled");
    assert_eq!(
        stack.balance(buyer.address()).await,
        before - U256::from(PRICE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_lookup_is_404_for_unknown_or_malformed_ids_get_only_and_rate_limited() {
    let stack = PaidStack::start_with(Options {
        adjust_gateway: |config| config.free_per_minute = 20,
        ..async_mode()
    })
    .await;
    let no_such_payment = json!({"error": "no such payment"});
    let unknown = format!("pay_{:032x}", rand::random::<u128>());
    let reply = lookup(&stack, &unknown).await;
    assert_eq!(
        (reply.status, &reply.body),
        (StatusCode::NOT_FOUND, &no_such_payment)
    );
    for malformed in [
        "nope".to_string(),
        "pay_".to_string(),
        unknown.to_ascii_uppercase(),
        unknown.replace("pay_", "pay_0"),
        unknown[..35].to_string(),
        format!("{unknown}%20"),
        format!("{unknown}'--"),
    ] {
        let reply = lookup(&stack, &malformed).await;
        assert_eq!(
            (reply.status, &reply.body),
            (StatusCode::NOT_FOUND, &no_such_payment),
            "{malformed}"
        );
    }
    for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let reply = send(
            Method::from_bytes(method.as_bytes()).unwrap(),
            &stack.url(&format!("/api/payments/{unknown}")),
            None,
            &[],
        )
        .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    // Free, but counted per client IP like the other free routes: 20 a
    // minute, of which 8 to 13 are spent (whether a 405 counts is axum's).
    let mut limited = None;
    for _ in 0..20 {
        let reply = lookup(&stack, &unknown).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(reply);
            break;
        }
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    let limited = limited.expect("rate limited");
    assert!(limited.headers.contains_key("retry-after"));
}

/// In async mode the answer waits for neither the facilitator nor the
/// chain: once a payer's balance was read, its calls are answered with the
/// facilitator and the payment service's chain RPC both unreachable (the
/// settlements wait for them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_answer_waits_for_neither_the_facilitator_nor_the_chain() {
    let stack = PaidStack::start_with(Options {
        balance_max_age: Duration::from_secs(30),
        ..async_mode()
    })
    .await;
    let buyer = stack.chain.buyers[0].clone();
    let me = namespace(&buyer);
    let mut ids = vec![pending_settlement(&paid_incr(&stack, &buyer).await, &me)];
    final_state(&stack, &ids[0]).await;

    stack.facilitator_proxy.pause();
    stack.payment_rpc_proxy.pause();
    for _ in 0..5 {
        let (header, _) = payment(&stack, &buyer);
        let served = tokio::time::timeout(Duration::from_secs(5), incr(&stack, "n", &[header]))
            .await
            .expect("answered without the facilitator or the chain");
        ids.push(pending_settlement(&served, &me));
    }
    assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("6"));
    for id in &ids[1..] {
        assert_eq!(lookup(&stack, id).await.body["final"], false);
    }

    stack.facilitator_proxy.resume();
    stack.payment_rpc_proxy.resume();
    for id in &ids {
        let settled = final_state(&stack, id).await;
        assert_eq!(settled["status"], "settled", "{settled}");
    }
    let account = stack.account(&me).await;
    assert_eq!(
        (account.outstanding, account.settled_total, account.debt),
        (U256::ZERO, U256::from(6 * PRICE), U256::ZERO)
    );
}

/// The exposure an operator accepts in async mode, and its bound: a payer
/// that empties its wallet mid-run is served on its recent balance, never
/// beyond it; the settlements that then fail make it a debtor, and a
/// debtor is served only with settle-before (refused here: it cannot pay).
/// A refusal re-reads the balance, so a top-up counts at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payer_that_empties_its_wallet_mid_run_becomes_a_debtor_then_settles_first() {
    let (stack, buyer, me) = one_payer_without_settler(
        Options {
            balance_max_age: Duration::from_secs(30),
            ..async_mode()
        },
        3_000,
    )
    .await;
    let elsewhere = PrivateKeySigner::random().address();

    let first = pending_settlement(&paid_incr(&stack, &buyer).await, &me);
    // Emptied elsewhere; the balance read a moment ago still says 3000.
    stack
        .chain
        .transfer_as(&buyer, elsewhere, U256::from(3_000u64))
        .await;
    let mut served = vec![first];
    for _ in 0..2 {
        served.push(pending_settlement(&paid_incr(&stack, &buyer).await, &me));
    }
    // The bound: never more than the balance read (3 × 1000).
    assert_paid_incr_refused(&stack, &buyer).await;
    assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("3"));

    let settler = StartedSettler::start(&stack, 4);
    for id in &served {
        let failed = final_state(&stack, id).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["served"], true, "{failed}");
    }
    let account = stack.account(&me).await;
    assert_eq!(
        (account.debt, account.outstanding),
        (U256::from(3 * PRICE), U256::ZERO),
        "three debts, bounded by the balance read"
    );

    // A debtor settles before its call runs: with an empty wallet, refused
    // and not served.
    let debtor = paid_incr(&stack, &buyer).await;
    assert_ne!(debtor.status, StatusCode::OK, "{}", debtor.body);
    assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("3"));

    // Topped up, it is served again, settled first (no pending answer).
    stack
        .chain
        .mint(buyer.address(), U256::from(10_000u64))
        .await;
    let (header, nonce) = payment(&stack, &buyer);
    let paid = incr(&stack, "n", &[header]).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    let settlement = decode(paid.headers.get("payment-response").unwrap());
    assert_eq!(settlement["success"], true, "{settlement}");
    assert!(stack.chain.authorization_used(buyer.address(), nonce).await);
    settler.stop().await;
}

/// A balance read recently may be stale the other way too: a payer that
/// topped up is not refused on the old reading, because a refusal is only
/// ever made on a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusal_is_judged_on_a_fresh_balance_so_a_top_up_counts_at_once() {
    let (stack, buyer, me) = one_payer_without_settler(
        Options {
            balance_max_age: Duration::from_secs(30),
            ..async_mode()
        },
        PRICE,
    )
    .await;
    pending_settlement(&paid_incr(&stack, &buyer).await, &me);
    assert_paid_incr_refused(&stack, &buyer).await;

    stack
        .chain
        .mint(buyer.address(), U256::from(5 * PRICE))
        .await;
    pending_settlement(&paid_incr(&stack, &buyer).await, &me);
    assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("2"));
}

/// A settlement that outlives the payment service's settle timeout (it
/// waits behind the facilitator's busy key: batches of 2, a block a second)
/// is recorded pending and retried while its first attempt still holds the
/// authorization. The retry follows that attempt instead of being refused
/// as a replay, so every payment ends settled once and no payer who paid
/// becomes a debtor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_while_the_first_settle_still_waits_for_its_batch_is_not_a_debt() {
    const CALLS: usize = 12;
    let stack = PaidStack::start_with(Options {
        settle_timeout: Duration::from_secs(2),
        adjust_facilitator: |config| {
            config.batch =
                tessera_facilitator::BatchConfig::parse(Some("2"), Some("0"), None).unwrap();
            // One batch at a time: the key stays busy past the settle timeout.
            config.batch.in_flight = 1;
        },
        ..async_mode()
    })
    .await;
    stack.chain.set_block_time(1).await;
    let buyers = stack.chain.buyers.clone();
    let pay_to_before = stack.balance(stack.chain.pay_to).await;

    let mut ids = Vec::new();
    for i in 0..CALLS {
        let buyer = &buyers[i % buyers.len()];
        let (header, _) = payment(&stack, buyer);
        let reply = incr(&stack, "n", &[header]).await;
        ids.push(pending_settlement(&reply, &namespace(buyer)));
    }
    let started = std::time::Instant::now();
    let mut retried = 0;
    loop {
        retried += stack.payments.retry_pending().await.unwrap();
        let mut open = 0;
        for id in &ids {
            let state = lookup(&stack, id).await.body;
            assert_ne!(
                state["status"], "failed",
                "a payer who paid became a debtor: {state}"
            );
            open += usize::from(state["status"] != "settled");
        }
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{open} payments still unsettled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        retried > 0,
        "some settlement outlived the settle timeout and was retried"
    );
    for buyer in &buyers {
        let me = namespace(buyer);
        let account = stack.account(&me).await;
        let paid = U256::from(PRICE * (CALLS / buyers.len()) as u64);
        assert_eq!(
            (account.outstanding, account.settled_total, account.debt),
            (U256::ZERO, paid, U256::ZERO),
            "{me}"
        );
    }
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        pay_to_before + U256::from(PRICE * CALLS as u64)
    );
}

/// A replay is a replay, also from a payer whose balance no longer covers
/// another call: 409, not 402, and nothing more is held or served. (Settled
/// later, the reserve statement alone finds replays; a refusal for funds
/// then checks whether the authorization was already presented.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_from_a_payer_who_cannot_pay_again_is_409_not_402() {
    let (stack, buyer, me) = one_payer_without_settler(async_mode(), PRICE).await;
    let (header, _) = payment(&stack, &buyer);
    let first = incr(&stack, "n", std::slice::from_ref(&header)).await;
    pending_settlement(&first, &me);
    let covered = paid_incr(&stack, &buyer).await;
    assert_eq!(
        covered.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        covered.body
    );
    for _ in 0..2 {
        let again = incr(&stack, "n", std::slice::from_ref(&header)).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    }
    let account = stack.account(&me).await;
    assert_eq!(account.outstanding, U256::from(PRICE), "one call held");
    assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("1"));
}

/// The lease of the lease tests: short beside their settle timeout.
const LEASE: Duration = Duration::from_secs(2);

/// One funded payer, no settler running, a [`LEASE`] on settling payments
/// and a settle timeout 20 times as long.
async fn one_payer_with_a_short_lease() -> (PaidStack, PrivateKeySigner, String) {
    one_payer_without_settler(
        Options {
            settle_lease: LEASE,
            settle_timeout: Duration::from_secs(40),
            ..async_mode()
        },
        10 * PRICE,
    )
    .await
}

/// Queued payments claimed by a settler that then died (nothing renews
/// their lease) are taken by the background pass once the lease ran out,
/// long before the settle timeout, so they are settled while their
/// authorizations are still valid; settled once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_settlers_claims_are_settled_again_once_their_lease_ran_out() {
    let (stack, buyer, me) = one_payer_with_a_short_lease().await;
    let mut queued = Vec::new();
    for _ in 0..3 {
        queued.push(pending_settlement(&paid_incr(&stack, &buyer).await, &me));
    }
    // A claimer that dies at once: its rows stay settling, unrenewed.
    let claimed = stack
        .payments
        .ledger()
        .claim_queued(stack.payments.scope(), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    assert_eq!(
        stack.payments.retry_pending().await.unwrap(),
        0,
        "still leased"
    );
    tokio::time::sleep(LEASE + Duration::from_millis(500)).await;
    assert_eq!(stack.payments.retry_pending().await.unwrap(), 3);
    for id in &queued {
        let state = final_state(&stack, id).await;
        assert_eq!(state["status"], "settled", "{state}");
        assert_eq!(attempts(&stack, id).await, 2, "claimed, then retried once");
    }
    assert_eq!(
        stack.account(&me).await.settled_total,
        U256::from(3 * PRICE)
    );
}

/// Settlements mined on chain whose endings never reach the ledger (each
/// grouped write's connection dies before PostgreSQL reads it) leave their
/// payments settling, and their settler is answered with an error, not a
/// success: once the lease runs out the background pass settles them
/// again, the facilitator finds each authorization spent by the first
/// transfer, and each ends settled, paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settlements_whose_ending_writes_are_lost_are_settled_once_by_the_retry() {
    const CALLS: usize = 3;
    let (stack, buyer, me) = one_payer_without_settler(
        Options {
            ledger_proxy: true,
            settle_lease: LEASE,
            settle_timeout: Duration::from_secs(40),
            ..async_mode()
        },
        10 * PRICE,
    )
    .await;
    let ledger = stack.ledger_proxy.as_ref().expect("a ledger proxy");
    let pay_to_before = stack.balance(stack.chain.pay_to).await;
    let mut queued = Vec::new();
    for _ in 0..CALLS {
        queued.push(pending_settlement(&paid_incr(&stack, &buyer).await, &me));
    }
    // The statement of `Ledger::end_settlements`, sent with its text the
    // first time a connection runs it (a severed connection is replaced).
    const ENDING: &[u8] = b"DISTINCT ON (id)";
    ledger.hold_on(ENDING);
    let settler = StartedSettler::start(&stack, 4);
    let mut lost = 0;
    let mut wait = Duration::from_secs(30);
    while ledger.held_within(wait).await {
        lost += 1;
        ledger.hold_on(ENDING);
        ledger.sever();
        wait = Duration::from_secs(3);
    }
    assert!(lost >= 1, "the settlements never came to their endings");
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        pay_to_before + U256::from(CALLS as u64 * PRICE),
        "paid on chain, the endings lost"
    );
    for id in &queued {
        assert_eq!(lookup(&stack, id).await.body["status"], "settling", "{id}");
    }
    assert_eq!(stack.account(&me).await.settled_total, U256::ZERO);
    settler.stop().await;
    ledger.cancel_hold();

    tokio::time::sleep(LEASE + Duration::from_millis(500)).await;
    assert_eq!(stack.payments.retry_pending().await.unwrap(), CALLS);
    for id in &queued {
        let state = final_state(&stack, id).await;
        assert_eq!(state["status"], "settled", "{state}");
        assert!(is_transaction_hash(&state["transaction"]), "{state}");
        assert_eq!(attempts(&stack, id).await, 2, "claimed, then retried once");
    }
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        pay_to_before + U256::from(CALLS as u64 * PRICE),
        "paid once each"
    );
    let account = stack.account(&me).await;
    assert_eq!(account.settled_total, U256::from(CALLS as u64 * PRICE));
    assert_eq!(account.outstanding, U256::ZERO);
    assert_eq!(account.debt, U256::ZERO);
}

/// A claim that fails (its connection to the ledger dies) is made again a
/// moment later: the queued payment is settled although no call queues
/// another and the settler's next scan is an hour away.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_claim_is_made_again_without_waiting_for_the_next_scan() {
    let (stack, buyer, me) = one_payer_without_settler(
        Options {
            ledger_proxy: true,
            ..async_mode()
        },
        10 * PRICE,
    )
    .await;
    let ledger = stack.ledger_proxy.as_ref().expect("a ledger proxy");
    let settler = StartedSettler::start(&stack, 4);
    // A first call settled: the settler's first scan and the call's
    // notification are spent.
    let first = pending_settlement(&paid_incr(&stack, &buyer).await, &me);
    assert_eq!(final_state(&stack, &first).await["status"], "settled");
    // The statement of `Ledger::claim_queued`.
    ledger.hold_on(b"FOR UPDATE SKIP LOCKED");
    let id = pending_settlement(&paid_incr(&stack, &buyer).await, &me);
    assert!(
        ledger.held_within(Duration::from_secs(10)).await,
        "the settler never claimed"
    );
    ledger.sever();
    let state = final_state(&stack, &id).await;
    assert_eq!(state["status"], "settled", "{state}");
    assert_eq!(
        attempts(&stack, &id).await,
        1,
        "the lost claim took nothing"
    );
    settler.stop().await;
}

/// A settlement running longer than the lease (the facilitator does not
/// answer) keeps its payment: the heartbeat renews it, so the background
/// pass does not take it, and it is settled once when the facilitator
/// answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_settlement_renews_its_lease_so_the_retry_pass_leaves_it_alone() {
    let (stack, buyer, me) = one_payer_with_a_short_lease().await;
    let id = pending_settlement(&paid_incr(&stack, &buyer).await, &me);
    stack.facilitator_proxy.pause();
    let settler = StartedSettler::start(&stack, 4);
    let started = std::time::Instant::now();
    while lookup(&stack, &id).await.body["status"] != "settling" {
        assert!(started.elapsed() < Duration::from_secs(10), "never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(3 * LEASE).await;
    assert_eq!(
        stack.payments.retry_pending().await.unwrap(),
        0,
        "the running settlement kept its lease"
    );
    assert_eq!(attempts(&stack, &id).await, 1);
    stack.facilitator_proxy.resume();
    let state = final_state(&stack, &id).await;
    assert_eq!(state["status"], "settled", "{state}");
    assert_eq!(attempts(&stack, &id).await, 1, "settled by its first claim");
    settler.stop().await;
}

/// Served faster than it can settle, the queue would grow until
/// authorizations expire in it: each such call served for nothing and its
/// payer, who signed a good authorization, taken for a debtor. A call is
/// answered before the chain only while the settler will reach it with a
/// settle timeout left; the others are settled before they run. Here the
/// settler settles one payment at a time (about a block each) while 40
/// calls whose authorizations are valid for 25 s arrive at once: queued,
/// the last would be reached after 40 blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_the_settler_cannot_reach_in_time_are_settled_before_they_run() {
    const PER_PAYER: usize = 10;
    const VALID_FOR: u64 = 25;
    let stack = PaidStack::start_with(Options {
        settle_timeout: Duration::from_secs(10),
        settle_concurrency: 1,
        adjust_facilitator: |config| {
            config.batch =
                tessera_facilitator::BatchConfig::parse(Some("40"), Some("0"), None).unwrap();
            config.batch.in_flight = 1;
        },
        ..async_mode()
    })
    .await;
    stack.chain.set_block_time(1).await;
    let buyers = stack.chain.buyers.clone();
    let pay_to_before = stack.balance(stack.chain.pay_to).await;

    let mut calls = Vec::new();
    for buyer in &buyers {
        for _ in 0..PER_PAYER {
            let (header, _) = payment_valid_for(&stack, buyer, Some(VALID_FOR));
            let url = stack.url("/api/memory/incr");
            let payer = namespace(buyer);
            calls.push(tokio::spawn(async move {
                let reply = send(Method::POST, &url, Some(json!({"key": "n"})), &[header]).await;
                (payer, reply)
            }));
        }
    }
    let (mut queued, mut settled_before) = (Vec::new(), 0);
    for call in calls {
        let (payer, reply) = call.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let settlement = decode(reply.headers.get("payment-response").unwrap());
        if settlement["success"] == true {
            assert!(
                is_transaction_hash(&settlement["transaction"]),
                "{settlement}"
            );
            settled_before += 1;
        } else {
            queued.push(assert_pending(&settlement, &payer));
        }
    }
    assert!(
        !queued.is_empty(),
        "the settler's share is still answered at once"
    );
    assert!(
        settled_before >= PER_PAYER,
        "only {settled_before} of {} calls settled before they ran",
        PER_PAYER * buyers.len()
    );
    for id in &queued {
        let state = final_state(&stack, id).await;
        assert_eq!(state["status"], "settled", "{state}");
    }
    for buyer in &buyers {
        let me = namespace(buyer);
        let rows = stack.payments.ledger().payments_of(&me).await.unwrap();
        assert_eq!(rows.len(), PER_PAYER, "{rows:?}");
        assert!(rows.iter().all(|row| row.status == "settled"), "{rows:?}");
        let account = stack.account(&me).await;
        assert_eq!(
            (account.outstanding, account.settled_total, account.debt),
            (U256::ZERO, U256::from(PRICE * PER_PAYER as u64), U256::ZERO),
            "{me}: paid for every call, no debt"
        );
        assert_eq!(stack.stored(&me, "n").await.as_deref(), Some("10"));
    }
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        pay_to_before + U256::from(PRICE * (PER_PAYER * buyers.len()) as u64)
    );
}
