//! The public gRPC API as clients nobody here wrote call it, from node:
//! `@grpc/grpc-js` reading `memory.proto` as it is
//! (tests/chain/grpc-client.mjs), and a page's grpc-web client, connect-es
//! over HTTP/1.1 with the service built at run time from our descriptor set
//! (tests/chain/grpc-web-client.mjs). Both pay with the official x402 client
//! packages. What the scripts report is checked against what the servers
//! hold: values read back over REST or from memory, token balances on anvil,
//! the settlement transactions, a replay refused.

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use tessera_gateway::{Cors, GatewayConfig};
use tessera_tests::chain::{self, chain_dir};
use tessera_tests::gateway_http::GatewayHarness;
use tessera_tests::harness::{
    embedded_memory, in_process_backends, spawn_gateway, unique_namespace,
};
use tessera_tests::paid::{self, Options, PaidStack};

const SERVICE_PATH: &str = "/tessera.memory.v1.MemoryService";
const APP_ORIGIN: &str = "https://app.example";
/// A lock's value before and after a compare-and-swap.
const OWNER_A: &str = r#"{"owner":"a"}"#;
const OWNER_B: &str = r#"{"owner":"b"}"#;

/// gRPC codes the scripts report.
const NOT_FOUND: u64 = 5;
const PERMISSION_DENIED: u64 = 7;
const ABORTED: u64 = 10;
const UNAUTHENTICATED: u64 = 16;

/// One run of a node client script: the gateway, who calls, and the calls.
struct Script {
    file: &'static str,
    args: Vec<String>,
}

impl Script {
    /// tests/chain/grpc-client.mjs (`@grpc/grpc-js`, h2c) against `url`.
    fn grpc(url: &str) -> Self {
        Script {
            file: "grpc-client.mjs",
            args: vec!["--url".into(), url.into()],
        }
    }

    /// tests/chain/grpc-web-client.mjs (connect-es grpc-web on HTTP/1.1)
    /// against `url`, the service read from our descriptor set.
    fn grpc_web(url: &str) -> Self {
        let descriptors = descriptor_set_file();
        Script {
            file: "grpc-web-client.mjs",
            args: vec![
                "--url".into(),
                url.into(),
                "--descriptors".into(),
                descriptors.display().to_string(),
            ],
        }
    }

    fn arg(mut self, name: &str, value: impl Into<String>) -> Self {
        self.args.push(name.into());
        self.args.push(value.into());
        self
    }

    /// `method` with `request` (proto3 JSON).
    fn call(self, method: &str, request: Value) -> Self {
        self.arg("--call", format!("{method}={request}"))
    }

    fn agent(self, agent: &str) -> Self {
        self.arg("--agent", agent)
    }

    fn origin(self, origin: &str) -> Self {
        self.arg("--origin", origin)
    }

    /// Pays every call from `buyer`'s wallet in `token`.
    fn paid_by(self, buyer: &PrivateKeySigner, token: Address) -> Self {
        self.arg("--private-key", buyer.to_bytes().to_string())
            .arg("--allow-asset", token.to_checksum(None))
    }

    /// Presents each payment a second time after it was served.
    fn replaying(mut self) -> Self {
        self.args.push("--replay".into());
        self
    }

    /// Runs the script; its one line of JSON.
    async fn run(self) -> Value {
        let path = chain_dir().join(self.file);
        let mut node = tokio::process::Command::new("node");
        node.arg(&path).args(&self.args).kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(120), node.output())
            .await
            .unwrap_or_else(|_| panic!("{} finishes within 120 s", self.file))
            .expect("node runs the script (npm ci --prefix tests/chain)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{} failed ({}): {stdout}\n{stderr}",
            self.file,
            output.status
        );
        println!("{} {}\n{stderr}", self.file, stdout.trim());
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("one JSON line ({e}): {stdout}\n{stderr}"))
    }
}

/// `tessera_proto::FILE_DESCRIPTOR_SET` in a fresh temporary file.
fn descriptor_set_file() -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("{}.binpb", unique_namespace("tessera-descriptors")));
    std::fs::write(&path, tessera_proto::FILE_DESCRIPTOR_SET).unwrap();
    path
}

/// The outcomes of a run, one per call.
fn outcomes(run: &Value) -> &[Value] {
    run["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("no calls: {run}"))
}

/// A successful outcome's response.
fn served(outcome: &Value) -> &Value {
    assert_eq!(outcome["ok"], true, "not served: {outcome}");
    &outcome["response"]
}

/// A failed outcome's gRPC code and `ErrorInfo` reason.
fn refusal(outcome: &Value) -> (u64, &str) {
    assert_eq!(outcome["ok"], false, "not refused: {outcome}");
    assert_eq!(outcome["errorInfo"]["domain"], "tessera", "{outcome}");
    (
        outcome["code"].as_u64().unwrap(),
        outcome["errorInfo"]["reason"].as_str().unwrap_or_default(),
    )
}

/// A comma-separated header value as lower-case names.
fn listed(header: &Value) -> Vec<String> {
    header
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect()
}

fn assert_lists(header: &Value, names: &[&str]) {
    let listed = listed(header);
    for name in names {
        assert!(listed.iter().any(|n| n == name), "{name} not in {header}");
    }
}

/// Checks the quote of an unpaid call of `method` against the stack: one
/// `exact` offer of `price` of its token to its payTo on its chain.
fn assert_quote(stack: &PaidStack, call: &Value, method: &str, price: u64) {
    assert_eq!(
        refusal(&call["unpaid"]),
        (UNAUTHENTICATED, "PAYMENT_REQUIRED"),
        "{call}"
    );
    let quote = &call["paymentRequired"];
    assert_eq!(quote["x402Version"], 2, "{quote}");
    assert_eq!(
        quote["resource"]["url"],
        stack.url(&format!("{SERVICE_PATH}/{method}")),
        "{quote}"
    );
    let offers = quote["accepts"].as_array().unwrap();
    assert_eq!(offers.len(), 1, "{quote}");
    let offer = &offers[0];
    assert_eq!(offer["scheme"], "exact");
    assert_eq!(offer["network"], chain::NETWORK);
    assert_eq!(offer["amount"], price.to_string(), "{method}'s price");
    assert_eq!(offer["asset"], stack.chain.token.to_checksum(None));
    assert_eq!(offer["payTo"], stack.chain.pay_to.to_checksum(None));
    assert_eq!(
        offer["extra"],
        json!({ "name": chain::TOKEN_NAME, "version": chain::TOKEN_VERSION })
    );
}

/// Checks that `call` was settled on chain from `buyer`: a successful
/// settlement naming the payer and a mined transaction to the token that
/// our facilitator sent.
async fn assert_settled(stack: &PaidStack, call: &Value, buyer: &PrivateKeySigner) {
    let settlement = &call["paymentResponse"];
    assert_eq!(settlement["success"], true, "{call}");
    assert_eq!(settlement["network"], chain::NETWORK);
    assert_eq!(
        settlement["payer"].as_str().map(str::to_lowercase),
        Some(paid::namespace(buyer)),
        "{settlement}"
    );
    let hash: B256 = settlement["transaction"]
        .as_str()
        .and_then(|hash| hash.parse().ok())
        .unwrap_or_else(|| panic!("a transaction hash: {settlement}"));
    let receipt = stack
        .chain
        .receipt(hash)
        .await
        .expect("the settlement is mined");
    assert!(receipt.status(), "the settlement succeeded");
    assert_eq!(receipt.from, stack.chain.facilitator_key.address());
    assert_eq!(receipt.to, Some(stack.chain.token));
}

/// The buyer's and payTo's balances.
async fn balances(stack: &PaidStack, buyer: &PrivateKeySigner) -> (U256, U256) {
    (
        stack.balance(buyer.address()).await,
        stack.balance(stack.chain.pay_to).await,
    )
}

/// Checks that exactly `price` moved from the buyer to payTo since `before`.
async fn assert_moved(
    stack: &PaidStack,
    buyer: &PrivateKeySigner,
    before: (U256, U256),
    price: u64,
) {
    let after = balances(stack, buyer).await;
    let price = U256::from(price);
    assert_eq!(before.0 - after.0, price, "the buyer paid exactly {price}");
    assert_eq!(after.1 - before.1, price, "payTo received exactly {price}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_reads_writes_and_fences_as_the_agent_id_says() {
    let gateway = GatewayHarness::start_in_process(embedded_memory(Default::default()).await).await;
    let agent = unique_namespace("grpc-js");

    let anonymous = Script::grpc(gateway.url())
        .call("Get", json!({ "key": "lock" }))
        .run()
        .await;
    let [unidentified] = outcomes(&anonymous) else {
        panic!("{anonymous}")
    };
    assert_eq!(
        refusal(unidentified),
        (UNAUTHENTICATED, "AGENT_ID_REQUIRED")
    );
    assert_eq!(unidentified["codeName"], "UNAUTHENTICATED");

    let run = Script::grpc(gateway.url())
        .agent(&agent)
        .call(
            "Set",
            json!({ "key": "lock", "valueJson": OWNER_A, "ttlSeconds": 60 }),
        )
        .call("Get", json!({ "key": "lock" }))
        .call(
            "CompareAndSwap",
            json!({ "key": "lock", "expectedJson": OWNER_A, "valueJson": OWNER_B }),
        )
        .call(
            "CompareAndSwap",
            json!({ "key": "lock", "expectedJson": OWNER_A, "valueJson": r#"{"owner":"c"}"# }),
        )
        .call("Increment", json!({ "key": "hits", "byJson": "5" }))
        .call("Increment", json!({ "key": "hits", "byJson": "5" }))
        .call(
            "Get",
            json!({ "key": "lock", "namespace": unique_namespace("someone-else") }),
        )
        .run()
        .await;
    let [set, get, swapped, stale, first, second, foreign] = outcomes(&run) else {
        panic!("seven outcomes: {run}")
    };

    let entry = served(set);
    assert_eq!(
        entry["namespace"],
        agent.as_str(),
        "an empty namespace is the caller's"
    );
    assert_eq!(entry["valueJson"], OWNER_A);
    assert_eq!(entry["revision"], "1", "64-bit integers as strings");
    let expires: i64 = entry["expiresAtMs"].as_str().unwrap().parse().unwrap();
    let created: i64 = entry["createdAtMs"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires - created, 60_000, "{entry}");
    assert_eq!(served(get), entry, "read back as written");

    let swapped = served(swapped);
    assert_eq!(swapped["swapped"], true, "{swapped}");
    assert_eq!(swapped["revision"], "2", "the fencing token moved on");
    assert_eq!(swapped["current"]["valueJson"], OWNER_B);
    let stale = served(stale);
    assert_eq!(
        stale["swapped"], false,
        "a stale expectation loses: {stale}"
    );
    assert_eq!(stale["revision"], "2");
    assert_eq!(stale["current"]["valueJson"], OWNER_B);

    assert_eq!(served(first)["valueJson"], "5");
    assert_eq!(served(second)["valueJson"], "10");
    assert_eq!(refusal(foreign), (PERMISSION_DENIED, "NO_GRANT"));

    // The same store behind REST.
    let lock = gateway.get("/api/agent/memory/get?key=lock", &agent).await;
    assert_eq!(lock.body["value"], json!({ "owner": "b" }), "{}", lock.body);
    let hits = gateway.get("/api/agent/memory/get?key=hits", &agent).await;
    assert_eq!(hits.body["value"], 10, "{}", hits.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_js_pays_each_method_its_price_with_the_official_x402_client() {
    let stack = PaidStack::start().await;
    let buyer = stack.chain.new_buyer(1_000_000).await;
    let wallet = paid::namespace(&buyer);
    let paying = || Script::grpc(&stack.gateway_url).paid_by(&buyer, stack.chain.token);

    let before = balances(&stack, &buyer).await;
    let run = paying()
        .replaying()
        .call("Set", json!({ "key": "counter", "valueJson": "41" }))
        .run()
        .await;
    let [set] = outcomes(&run) else {
        panic!("{run}")
    };
    assert_quote(&stack, set, "Set", 2000);
    assert!(
        set["unpaid"]["metadata"]["payment-required"].is_string(),
        "the quote travels as metadata: {set}"
    );
    let entry = served(&set["paid"]);
    assert_eq!(entry["namespace"], wallet.as_str(), "the payer's wallet");
    assert_eq!(entry["valueJson"], "41");
    assert!(
        set["paid"]["trailers"]["payment-response"].is_string(),
        "the settlement is trailing metadata: {set}"
    );
    assert_settled(&stack, set, &buyer).await;
    assert_eq!(
        refusal(&set["replay"]),
        (ABORTED, "PAYMENT_ALREADY_USED"),
        "one call per authorization"
    );
    assert_moved(&stack, &buyer, before, 2000).await;
    assert_eq!(
        stack.stored(&wallet, "counter").await.as_deref(),
        Some("41")
    );

    // Each other method at its own price, each served on what the last wrote.
    let priced = [
        ("Get", json!({ "key": "counter" }), "41"),
        (
            "Increment",
            json!({ "key": "counter", "byJson": "1" }),
            "42",
        ),
        (
            "CompareAndSwap",
            json!({ "key": "counter", "expectedJson": "42", "valueJson": "43" }),
            "43",
        ),
    ];
    for (method, request, stored) in priced {
        let before = balances(&stack, &buyer).await;
        let run = paying().call(method, request).run().await;
        let [call] = outcomes(&run) else {
            panic!("{run}")
        };
        assert_quote(&stack, call, method, 1000);
        let response = served(&call["paid"]);
        let entry = response.get("current").unwrap_or(response);
        assert_eq!(entry["valueJson"], stored, "{method}: {response}");
        assert_settled(&stack, call, &buyer).await;
        assert_moved(&stack, &buyer, before, 1000).await;
        assert_eq!(
            stack.stored(&wallet, "counter").await.as_deref(),
            Some(stored)
        );
    }

    // A paid call that fails is not charged.
    let before = balances(&stack, &buyer).await;
    let run = paying()
        .call("Get", json!({ "key": "no-such-key" }))
        .run()
        .await;
    let [missing] = outcomes(&run) else {
        panic!("{run}")
    };
    assert_quote(&stack, missing, "Get", 1000);
    assert_eq!(refusal(&missing["paid"]), (NOT_FOUND, "NOT_FOUND"));
    assert!(missing["paymentResponse"].is_null(), "{missing}");
    assert_moved(&stack, &buyer, before, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_sets_gets_and_swaps_from_any_origin() {
    // FREE_MODE allows no origin unless told to (CORS_ALLOWED_ORIGINS=*).
    let config = GatewayConfig {
        free_mode: true,
        cors: Some(Cors::AnyOrigin),
        ..Default::default()
    };
    let url = spawn_gateway(config, in_process_backends().await)
        .await
        .unwrap();
    let agent = unique_namespace("grpc-web");
    let origin = "https://anywhere.example";

    let run = Script::grpc_web(&url)
        .origin(origin)
        .agent(&agent)
        .call(
            "Set",
            json!({ "key": "lock", "valueJson": OWNER_A, "ttlSeconds": "60" }),
        )
        .call("Get", json!({ "key": "lock" }))
        .call(
            "CompareAndSwap",
            json!({ "key": "lock", "expectedJson": OWNER_A, "valueJson": OWNER_B }),
        )
        .call("Get", json!({ "key": "lock" }))
        .call("Get", json!({ "key": "no-such-key" }))
        .run()
        .await;

    let preflight = &run["preflight"];
    assert!(
        (200..300).contains(&preflight["status"].as_u64().unwrap()),
        "{preflight}"
    );
    assert_eq!(preflight["allowOrigin"], "*", "{preflight}");
    assert_lists(&preflight["allowMethods"], &["post"]);
    assert_lists(
        &preflight["allowHeaders"],
        &[
            "content-type",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
            "x-agent-id",
            "payment-signature",
        ],
    );

    let [set, get, swapped, after, missing] = outcomes(&run) else {
        panic!("five outcomes: {run}")
    };
    let entry = served(set);
    assert_eq!(
        entry["namespace"],
        agent.as_str(),
        "an empty namespace is the caller's"
    );
    assert_eq!(entry["revision"], "1");
    assert!(entry["expiresAtMs"].is_string(), "{entry}");
    assert_eq!(served(get), entry, "read back as written");
    let swapped = served(swapped);
    assert_eq!(
        (&swapped["swapped"], &swapped["revision"]),
        (&json!(true), &json!("2"))
    );
    assert_eq!(served(after)["valueJson"], OWNER_B);
    assert_eq!(refusal(missing), (NOT_FOUND, "NOT_FOUND"));

    // A page may read the x402 and gRPC headers of answers and refusals.
    for (outcome, headers) in [(set, &set["headers"]), (missing, &missing["metadata"])] {
        assert_eq!(headers["access-control-allow-origin"], "*", "{outcome}");
        assert_lists(
            &headers["access-control-expose-headers"],
            &[
                "payment-required",
                "payment-response",
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
            ],
        );
    }
    assert_eq!(
        set["trailers"]["grpc-status"], "0",
        "trailers from the body: {set}"
    );

    let lock: Value = reqwest::Client::new()
        .get(format!("{url}/api/agent/memory/get?key=lock"))
        .header("x-agent-id", &agent)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(lock["value"], json!({ "owner": "b" }), "{lock}");
}

/// A paid gateway whose CORS allows only `APP_ORIGIN`.
async fn paid_stack_for_app_origin() -> PaidStack {
    PaidStack::start_with(Options {
        adjust_gateway: |config| config.cors = Some(Cors::parse(APP_ORIGIN).unwrap()),
        ..Options::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_web_pays_in_headers_and_trailers_from_the_allowed_origin() {
    let stack = paid_stack_for_app_origin().await;
    let buyer = stack.chain.new_buyer(1_000_000).await;
    let wallet = paid::namespace(&buyer);

    let before = balances(&stack, &buyer).await;
    let run = Script::grpc_web(&stack.gateway_url)
        .origin(APP_ORIGIN)
        .paid_by(&buyer, stack.chain.token)
        .replaying()
        .call("Set", json!({ "key": "web", "valueJson": "[1,2]" }))
        .run()
        .await;

    let preflight = &run["preflight"];
    assert_eq!(preflight["allowOrigin"], APP_ORIGIN, "{preflight}");
    assert_lists(
        &preflight["allowHeaders"],
        &["payment-signature", "x-grpc-web"],
    );

    let [set] = outcomes(&run) else {
        panic!("{run}")
    };
    assert_quote(&stack, set, "Set", 2000);
    let refused = &set["unpaid"]["metadata"];
    assert!(refused["payment-required"].is_string(), "{set}");
    assert_eq!(refused["access-control-allow-origin"], APP_ORIGIN);
    assert_lists(
        &refused["access-control-expose-headers"],
        &["payment-required", "grpc-status", "grpc-status-details-bin"],
    );

    let paid_call = &set["paid"];
    let entry = served(paid_call);
    assert_eq!(entry["namespace"], wallet.as_str(), "the payer's wallet");
    assert_eq!(entry["valueJson"], "[1,2]");
    assert!(
        paid_call["trailers"]["payment-response"].is_string(),
        "the settlement is a grpc-web trailer: {paid_call}"
    );
    assert_eq!(
        paid_call["headers"]["access-control-allow-origin"],
        APP_ORIGIN
    );
    assert_lists(
        &paid_call["headers"]["access-control-expose-headers"],
        &["payment-response"],
    );
    assert_settled(&stack, set, &buyer).await;
    assert_eq!(refusal(&set["replay"]), (ABORTED, "PAYMENT_ALREADY_USED"));
    assert_moved(&stack, &buyer, before, 2000).await;
    assert_eq!(stack.stored(&wallet, "web").await.as_deref(), Some("[1,2]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_for_one_origin_tells_browsers_of_no_other() {
    let config = GatewayConfig {
        free_mode: true,
        cors: Some(Cors::parse(APP_ORIGIN).unwrap()),
        ..Default::default()
    };
    let url = spawn_gateway(config, in_process_backends().await)
        .await
        .unwrap();
    let agent = unique_namespace("grpc-web-cors");
    let set = |origin: &str| {
        Script::grpc_web(&url)
            .origin(origin)
            .agent(&agent)
            .call("Set", json!({ "key": "k", "valueJson": "1" }))
    };

    let allowed = set(APP_ORIGIN).run().await;
    assert_eq!(allowed["preflight"]["allowOrigin"], APP_ORIGIN, "{allowed}");
    assert_lists(
        &allowed["preflight"]["allowHeaders"],
        &["payment-signature", "x-agent-id"],
    );
    let [call] = outcomes(&allowed) else {
        panic!("{allowed}")
    };
    served(call);
    assert_eq!(call["headers"]["access-control-allow-origin"], APP_ORIGIN);

    // CORS binds browsers, not servers: the call is served, but without an
    // allowed origin in the answer a browser hands the page nothing.
    let other = set("https://elsewhere.example").run().await;
    assert!(other["preflight"]["allowOrigin"].is_null(), "{other}");
    let [call] = outcomes(&other) else {
        panic!("{other}")
    };
    served(call);
    assert!(
        call["headers"]["access-control-allow-origin"].is_null(),
        "{call}"
    );
    assert_lists(&call["headers"]["vary"], &["origin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grpc_web_refusal_reaches_a_client_still_sending_its_body() {
    // connect-node sends a grpc-web request's body after its headers; the
    // gateway refuses on the headers alone (no x-agent-id), and its answer
    // must still reach the client, every time.
    let gateway = GatewayHarness::start_in_process(embedded_memory(Default::default()).await).await;
    let attempts = 20;
    let run = (0..attempts)
        .fold(Script::grpc_web(gateway.url()), |script, _| {
            script.call("Get", json!({ "key": "k" }))
        })
        .run()
        .await;
    let lost: Vec<&Value> = outcomes(&run)
        .iter()
        .filter(|outcome| outcome["errorInfo"]["reason"] != "AGENT_ID_REQUIRED")
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {attempts} refusals never reached the client: {lost:?}",
        lost.len()
    );
}
