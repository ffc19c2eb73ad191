//! The MCP connector at `/mcp`, called by an outside client: the official
//! MCP TypeScript SDK (tests/chain/mcp-client.mjs) over Streamable HTTP,
//! paying with the official x402 client packages as the x402 MCP transport
//! says. In FREE_MODE (X-Agent-Id names the namespace) and on the whole
//! paid stack: anvil with our EIP-3009 token, our facilitator, the payment
//! service, and a gateway charging the memory tools with x402.

use alloy::primitives::{B256, U256};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tessera_tests::chain::{self, chain_dir};
use tessera_tests::gateway_http::GatewayHarness;
use tessera_tests::harness::{embedded_memory, unique_namespace};
use tessera_tests::paid::{namespace, Options, PaidStack};

const MEMORY_TOOLS: [(&str, &str); 6] = [
    ("agent.memory.get", "agent.memory.get"),
    ("agent.memory.put", "agent.memory.put"),
    ("agent.memory.list", "agent.memory.list"),
    ("agent.memory.delete", "agent.memory.delete"),
    ("agent.memory.cas", "memory.cas"),
    ("agent.memory.incr", "memory.incr"),
];
const META_TOOLS: [&str; 3] = ["search_tools", "find_tool", "call_tool"];

/// Runs mcp-client.mjs against `gateway`'s /mcp with `args` and `steps`;
/// its one line of JSON.
async fn mcp_client(gateway: &str, args: &[String], steps: Value) -> Value {
    let mut node = tokio::process::Command::new("node");
    node.arg(chain_dir().join("mcp-client.mjs"))
        .args(["--url", &format!("{gateway}/mcp")])
        .args(args)
        .args(["--steps", &steps.to_string()])
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), node.output())
        .await
        .expect("mcp-client.mjs finishes within 120 s")
        .expect("node runs tests/chain/mcp-client.mjs (npm ci --prefix tests/chain)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "mcp-client.mjs failed ({}): {stdout}\n{stderr}",
        output.status
    );
    println!("{}\n{stderr}", stdout.trim());
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON line ({e}): {stdout}\n{stderr}"))
}

fn header(name: &str, value: &str) -> [String; 2] {
    ["--header".into(), format!("{name}: {value}")]
}

/// A call step's tool result.
fn result(step: &Value) -> &Value {
    assert!(step["result"].is_object(), "a tool result: {step}");
    &step["result"]
}

/// A successful result's structured content.
fn ok(step: &Value) -> &Value {
    let result = result(step);
    assert_ne!(result["isError"], true, "the call succeeded: {step}");
    &result["structuredContent"]
}

/// A tool error's structured content, which its text repeats.
fn tool_error(step: &Value) -> &Value {
    error_content(result(step))
}

fn error_content(result: &Value) -> &Value {
    assert_eq!(result["isError"], true, "a tool error: {result}");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap())
        .expect("content[0].text is the same JSON");
    assert_eq!(text, result["structuredContent"], "{result}");
    &result["structuredContent"]
}

/// A schema as /openapi.json has it: a `$ref` to a component, followed.
fn resolved<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &document["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// What a memory route takes, as the gateway's OpenAPI document describes
/// it: the body's schema, or the query parameters as an object's.
fn documented_input(document: &Value, route_id: &str) -> Value {
    let route = tessera_catalog::route(route_id).unwrap();
    let operation =
        &document["paths"][route.path][route.method.as_str().to_ascii_lowercase().as_str()];
    assert!(operation.is_object(), "{route_id} is documented");
    if let Some(body) = operation.pointer("/requestBody/content/application~1json/schema") {
        return resolved(document, body).clone();
    }
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for parameter in operation["parameters"].as_array().unwrap() {
        if parameter["in"] != "query" {
            continue;
        }
        let name = parameter["name"].as_str().unwrap();
        let mut schema = resolved(document, &parameter["schema"]).clone();
        if let Some(description) = parameter.get("description") {
            schema["description"] = description.clone();
        }
        if parameter["required"] == true {
            required.push(json!(name));
        }
        properties.insert(name.to_string(), schema);
    }
    json!({ "type": "object", "properties": properties, "required": required })
}

/// The tools listed: each name once, the memory tools with their routes'
/// inputs, every pure-CPU tool of the catalog with its own schema, and the
/// meta tools.
fn assert_catalog(listed: &Value, openapi: &Value) {
    let tools: BTreeMap<&str, &Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| (tool["name"].as_str().unwrap(), tool))
        .collect();
    assert_eq!(
        tools.len(),
        listed.as_array().unwrap().len(),
        "names are unique"
    );
    let cpu: Vec<&str> = tessera_catalog::routes()
        .iter()
        .filter(|route| route.tier == tessera_catalog::Tier::Cpu)
        .map(|route| route.tool.unwrap())
        .collect();
    let expected: BTreeSet<&str> = MEMORY_TOOLS
        .iter()
        .map(|(name, _)| *name)
        .chain(cpu.iter().copied())
        .chain(META_TOOLS)
        .collect();
    assert_eq!(tools.keys().copied().collect::<BTreeSet<_>>(), expected);
    for slug in &cpu {
        assert_eq!(
            tools[slug]["inputSchema"],
            *tessera_toolbox::input_schema(slug).unwrap(),
            "{slug}'s schema is the catalog's"
        );
    }
    for (name, route_id) in MEMORY_TOOLS {
        assert_eq!(
            tools[name]["inputSchema"],
            documented_input(openapi, route_id),
            "{name}'s schema is {route_id}'s input"
        );
        assert!(
            tools[name]["description"]
                .as_str()
                .unwrap()
                .contains("x402"),
            "{name} says how it is paid"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn free_mode_memory_cpu_and_meta_tools_over_the_official_client() {
    let gateway = GatewayHarness::start_in_process(embedded_memory(Default::default()).await).await;
    let agent = unique_namespace("mcp");
    let too_big = "x".repeat(tessera_toolbox::MAX_INPUT_BYTES + 1);
    let steps = json!([
        { "op": "list" },
        { "op": "call", "name": "agent.memory.put", "arguments": { "key": "plan", "value": { "step": 1 }, "ttlSeconds": 600 } },
        { "op": "call", "name": "agent.memory.get", "arguments": { "key": "plan" } },
        { "op": "call", "name": "agent.memory.incr", "arguments": { "key": "jobs", "by": 2 } },
        { "op": "call", "name": "agent.memory.incr", "arguments": { "key": "jobs" } },
        { "op": "call", "name": "agent.memory.cas", "arguments": { "key": "lock", "value": "me" } },
        { "op": "call", "name": "agent.memory.cas", "arguments": { "key": "lock", "value": "other" } },
        { "op": "call", "name": "agent.memory.list", "arguments": { "prefix": "pl" } },
        { "op": "call", "name": "agent.memory.delete", "arguments": { "key": "plan" } },
        { "op": "call", "name": "agent.memory.get", "arguments": { "key": "plan" } },
        { "op": "call", "name": "sha256", "arguments": { "text": "hello world" } },
        { "op": "call", "name": "no-such-tool", "arguments": {} },
        { "op": "call", "name": "agent.memory.get", "arguments": { "key": 5 } },
        { "op": "call", "name": "sha256", "arguments": { "text": too_big } },
        { "op": "call", "name": "sha256", "arguments": { "txet": "typo" } },
        { "op": "call", "name": "find_tool", "arguments": { "name": "agent.memory.cas" } },
        { "op": "call", "name": "search_tools", "arguments": { "query": "sha-256 digest of a text", "limit": 3 } },
        { "op": "call", "name": "call_tool", "arguments": { "name": "agent.memory.get", "arguments": { "key": "jobs" } } },
        { "op": "call", "name": "call_tool", "arguments": { "name": "nope" } },
        { "op": "call", "name": "call_tool", "arguments": { "name": "call_tool", "arguments": {} } },
    ]);
    let report = mcp_client(gateway.url(), &header("X-Agent-Id", &agent), steps).await;
    let steps = report["steps"].as_array().unwrap();

    assert_eq!(report["server"]["name"], "tessera", "{report}");
    assert!(
        report["sessionId"].is_null(),
        "stateless: no Mcp-Session-Id: {report}"
    );
    assert!(report["instructions"].as_str().unwrap().contains("x402"));
    let openapi = gateway.get("/openapi.json", &agent).await.body;
    assert_catalog(&steps[0]["tools"], &openapi);

    let put = ok(&steps[1]);
    assert_eq!(
        (&put["key"], &put["value"]),
        (&json!("plan"), &json!({ "step": 1 }))
    );
    assert!(put["expiresAt"].is_string(), "{put}");
    assert!(
        result(&steps[1])["_meta"].is_null(),
        "nothing settled in FREE_MODE"
    );
    let got = ok(&steps[2]);
    assert_eq!(got["value"], json!({ "step": 1 }));
    assert_eq!(got["etag"], put["etag"]);
    assert_eq!(ok(&steps[3])["value"], 2);
    assert_eq!(ok(&steps[4])["value"], 3);
    assert_eq!(ok(&steps[5])["swapped"], true);
    let lost = ok(&steps[6]);
    assert_eq!(
        (&lost["swapped"], &lost["value"]),
        (&json!(false), &json!("me"))
    );
    let listed = ok(&steps[7]);
    assert_eq!(listed["entries"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["entries"][0]["key"], "plan");
    assert_eq!(ok(&steps[8])["deleted"], true);
    let gone = tool_error(&steps[9]);
    assert_eq!(gone["status"], 404, "{gone}");
    assert!(
        gone["error"].as_str().unwrap().contains("not found"),
        "{gone}"
    );
    // The tools' namespace is X-Agent-Id's, as on REST.
    let rest = gateway.get("/api/agent/memory/get?key=jobs", &agent).await;
    assert_eq!(rest.body["value"], 3, "{}", rest.body);

    assert_eq!(
        ok(&steps[10])["hex"],
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
        "{}",
        steps[10]
    );
    let unknown = &steps[11]["protocolError"];
    assert_eq!(
        unknown["code"], -32602,
        "an unknown tool is the spec's protocol error: {}",
        steps[11]
    );
    assert!(unknown["message"]
        .as_str()
        .unwrap()
        .contains("Unknown tool: no-such-tool"));
    let mistyped = tool_error(&steps[12]);
    assert_eq!(
        (&mistyped["status"], &mistyped["reason"]),
        (&json!(400), &json!("INVALID_INPUT"))
    );
    assert_eq!(mistyped["details"]["field"], "key", "{mistyped}");
    let oversize = tool_error(&steps[13]);
    assert_eq!(oversize["reason"], "INPUT_TOO_LARGE", "{oversize}");
    let typo = tool_error(&steps[14]);
    assert_eq!(typo["reason"], "INVALID_INPUT", "{typo}");

    let described = ok(&steps[15]);
    assert_eq!(described["name"], "agent.memory.cas");
    assert_eq!(
        (&described["payment"], &described["price"]),
        (&json!("x402"), &json!("1000"))
    );
    assert_eq!(
        described["inputSchema"],
        documented_input(&openapi, "memory.cas")
    );
    let found = ok(&steps[16]);
    let names: Vec<&str> = found["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"sha256") && names.len() <= 3, "{found}");
    assert_eq!(ok(&steps[17])["value"], 3, "call_tool runs the tool");
    assert_eq!(tool_error(&steps[18])["reason"], "TOOL_NOT_FOUND");
    assert_eq!(
        tool_error(&steps[19])["status"],
        400,
        "call_tool does not call itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn free_mode_memory_needs_x_agent_id() {
    let gateway = GatewayHarness::start_in_process(embedded_memory(Default::default()).await).await;
    let steps = json!([
        { "op": "call", "name": "agent.memory.put", "arguments": { "key": "k", "value": 1 } },
        { "op": "call", "name": "base64-encode", "arguments": { "text": "hi" } },
    ]);
    let report = mcp_client(gateway.url(), &[], steps).await;
    let refused = tool_error(&report["steps"][0]);
    assert_eq!(refused["status"], 401, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("X-Agent-Id"),
        "{refused}"
    );
    assert_eq!(
        ok(&report["steps"][1])["encoded"],
        "aGk=",
        "{}",
        report["steps"][1]
    );
}

/// A settlement in a result's `_meta`: successful, by `buyer`, its
/// transaction mined on the token.
async fn assert_settled(stack: &PaidStack, step: &Value, buyer: &str) {
    let settled = &result(step)["_meta"]["x402/payment-response"];
    assert_eq!(settled["success"], true, "{step}");
    assert_eq!(settled["network"], chain::NETWORK);
    assert_eq!(
        settled["payer"].as_str().map(str::to_lowercase).as_deref(),
        Some(buyer)
    );
    let hash: B256 = settled["transaction"].as_str().unwrap().parse().unwrap();
    let receipt = stack
        .chain
        .receipt(hash)
        .await
        .expect("the settlement is mined");
    assert!(receipt.status());
    assert_eq!(receipt.to, Some(stack.chain.token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paid_tools_quote_settle_and_free_tools_hit_the_mcp_rate_limit() {
    let stack = PaidStack::start_with(Options {
        adjust_gateway: |config| {
            config.mcp.max_per_minute = 3;
        },
        ..Default::default()
    })
    .await;
    let buyer = stack.chain.new_buyer(1_000_000).await;
    let (buyer_before, pay_to_before) = (
        stack.balance(buyer.address()).await,
        stack.balance(stack.chain.pay_to).await,
    );
    let args = [
        "--key".to_string(),
        format!("{}", buyer.to_bytes()),
        "--allow-asset".to_string(),
        stack.chain.token.to_checksum(None),
    ];
    let put = json!({ "key": "mcp/plan", "value": { "by": "mcp" } });
    let steps = json!([
        { "op": "list" },
        { "op": "call", "name": "agent.memory.put", "arguments": put, "pay": "meta" },
        { "op": "call", "name": "agent.memory.get", "arguments": { "key": "mcp/plan" }, "pay": "header" },
        { "op": "call", "name": "call_tool", "arguments": { "name": "agent.memory.incr", "arguments": { "key": "mcp/n" } }, "pay": "meta" },
        { "op": "call", "name": "sha256", "arguments": { "text": "a" } },
        { "op": "call", "name": "sha256", "arguments": { "text": "b" } },
        { "op": "call", "name": "call_tool", "arguments": { "name": "sha256", "arguments": { "text": "c" } } },
        { "op": "call", "name": "sha256", "arguments": { "text": "d" } },
    ]);
    let report = mcp_client(&stack.gateway_url, &args, steps).await;
    let steps = report["steps"].as_array().unwrap();
    let payer = namespace(&buyer);
    assert_eq!(
        steps[0]["tools"].as_array().unwrap().len(),
        MEMORY_TOOLS.len() + tessera_toolbox::all().count() + META_TOOLS.len()
    );

    // Unpaid: a tool error carrying the route's quote.
    let quote = error_content(&steps[1]["quote"]);
    assert_eq!(quote["x402Version"], 2, "{quote}");
    assert_eq!(quote["resource"]["url"], stack.url("/api/agent/memory/put"));
    let accepts = &quote["accepts"][0];
    assert_eq!(accepts["scheme"], "exact");
    assert_eq!(accepts["network"], chain::NETWORK);
    assert_eq!(accepts["amount"], "2000");
    assert_eq!(accepts["asset"], stack.chain.token.to_checksum(None));
    assert_eq!(accepts["payTo"], stack.chain.pay_to.to_checksum(None));
    // Paid in _meta: stored in the payer's namespace, the settlement in _meta.
    let stored = ok(&steps[1]);
    assert_eq!(stored["value"], json!({ "by": "mcp" }), "{}", steps[1]);
    assert_settled(&stack, &steps[1], &payer).await;
    assert_eq!(
        stack.stored(&payer, "mcp/plan").await.as_deref(),
        Some(r#"{"by":"mcp"}"#)
    );
    // Paid in the PAYMENT-SIGNATURE header of the HTTP request.
    assert_eq!(
        error_content(&steps[2]["quote"])["accepts"][0]["amount"],
        "1200"
    );
    assert_eq!(
        ok(&steps[2])["value"],
        json!({ "by": "mcp" }),
        "{}",
        steps[2]
    );
    assert_settled(&stack, &steps[2], &payer).await;
    // Through call_tool, paid in call_tool's _meta.
    assert_eq!(
        error_content(&steps[3]["quote"])["accepts"][0]["amount"],
        "1000"
    );
    assert_eq!(ok(&steps[3])["value"], 1, "{}", steps[3]);
    assert_settled(&stack, &steps[3], &payer).await;
    let paid = U256::from(2000u64 + 1200 + 1000);
    assert_eq!(
        stack.balance(buyer.address()).await,
        buyer_before - paid,
        "the buyer paid exactly the three prices"
    );
    assert_eq!(
        stack.balance(stack.chain.pay_to).await,
        pay_to_before + paid
    );

    // Free tools: three a minute here (call_tool counts too), then refused
    // with the retry time.
    for step in &steps[4..7] {
        assert!(ok(step)["hex"].is_string(), "{step}");
    }
    let limited = tool_error(&steps[7]);
    assert_eq!(
        (&limited["status"], &limited["reason"]),
        (&json!(429), &json!("RATE_LIMITED")),
        "{limited}"
    );
    let retry = limited["retryAfterSeconds"].as_u64().unwrap();
    assert!((1..=60).contains(&retry), "{limited}");
    assert!(
        limited["error"]
            .as_str()
            .unwrap()
            .contains(&format!("retry after {retry} s")),
        "{limited}"
    );
    assert_eq!(
        stack.balance(buyer.address()).await,
        buyer_before - paid,
        "free tools cost nothing"
    );
}
