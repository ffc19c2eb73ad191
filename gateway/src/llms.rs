//! `GET /llms.txt`: what Tessera is, how to pay, how to find a tool, the
//! memory API in five lines and every tool with its route and price, for an
//! agent to read. Written from the catalog once per process, so it never
//! disagrees with the routes.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use std::fmt::Write;
use std::sync::LazyLock;
use tessera_catalog::Tier;

/// The memory routes of the five lines, and the body each takes.
const MEMORY_LINES: &[(&str, &str)] = &[
    ("memory.set", r#"{"key","value","ttlSeconds"?}"#),
    ("memory.get", "?key="),
    ("memory.list", "?prefix="),
    (
        "memory.cas",
        r#"{"key","expected","value","ttlSeconds"?} (a lock: expected null)"#,
    ),
    ("memory.incr", r#"{"key","by"?}"#),
];

static TEXT: LazyLock<String> = LazyLock::new(write_text);

/// `GET /llms.txt`.
pub(crate) async fn llms_txt() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], TEXT.as_str())
}

fn write_text() -> String {
    let routes = tessera_catalog::routes();
    let tools: Vec<_> = routes.iter().filter(|r| r.tier == Tier::Cpu).collect();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Tessera\n\n\
         > Paid coordination for AI agent fleets: a memory of your own (key-value with \
         compare-and-swap locks, counters, TTL leases, etags and grants) and {} pure-CPU \
         tools, paid per call with x402 (USDC, EIP-3009) or, for tools, with proof of work.\n",
        tools.len()
    );
    text.push_str(
        "## How to pay\n\
         - Call any paid route. Unpaid, it answers 402 with a PAYMENT-REQUIRED header (x402 v2; \
         the same JSON in the body). Sign the EIP-3009 transferWithAuthorization it asks for \
         and send the call again with PAYMENT-SIGNATURE (v1 clients: X-PAYMENT). A served call \
         answers PAYMENT-RESPONSE; a call that fails is not charged. Where the gateway settles \
         asynchronously, that PAYMENT-RESPONSE says settlement_pending and names the payment \
         (extensions.settlement.id): GET /api/payments/<id> (free) shows its state and \
         transaction once settled.\n\
         - Tools only, instead of USDC: GET /api/pow/challenge?slug=<tool>, find a nonce such \
         that sha256(challenge + \":\" + nonce) has `difficulty` leading zero bits, and send \
         X-Pow-Solution: <token>:<nonce> (one call per solution). GET /api/pow describes it.\n\
         - To retry safely, send Idempotency-Key: <unique key>; a replay answers the first \
         result with X-Idempotent-Replay: true and is not charged again.\n\
         - Errors are {\"error\": \"...\"}; 429 carries Retry-After.\n\n",
    );
    text.push_str(
        "## Find a tool (free)\n\
         - GET /api/find?q=<task>&k=5: tools ranked for the task, each with price, route, \
         method, inputSchema and a ready call.\n\
         - GET /api/pricing: every route with its price (atomic units of USDC: 1000 = $0.001), \
         input schema and example.\n\n",
    );
    text.push_str("## Memory (your namespace is the wallet that pays)\n");
    for (id, takes) in MEMORY_LINES {
        if let Some(route) = tessera_catalog::route(id) {
            let _ = writeln!(
                text,
                "- {} {} {takes}: {} ({} units)",
                route.method.as_str(),
                route.path,
                route.summary,
                route.price
            );
        }
    }
    text.push_str(
        "\n## Other ways in (same port, same prices)\n\
         - GET /api/memory/watch?key=<key>&sinceRevision=<n> (or prefix=&sinceCursor=): waits \
         for the next change (long poll, 1000 units); 204 with X-Watch-Cursor when none came.\n\
         - gRPC tessera.memory.v1.MemoryService (h2c, reflection on): the payment is metadata \
         payment-signature; unpaid, the status carries the quote in payment-required.\n\
         - MCP at /mcp (Streamable HTTP): agent.memory.* tools, the CPU tools, search_tools, \
         find_tool, call_tool; pay in _meta[\"x402/payment\"].\n",
    );
    text.push_str("\n## Tools\n");
    for route in tools {
        let Some(tool) = route.tool.and_then(tessera_toolbox::find) else {
            continue;
        };
        let _ = writeln!(
            text,
            "- {}: {} {} ({} units): {}",
            tool.slug,
            route.method.as_str(),
            route.path,
            route.price,
            tool.description
        );
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_tool_and_the_five_memory_lines_are_written() {
        let text = super::write_text();
        for tool in tessera_toolbox::all() {
            assert!(
                text.contains(&format!("- {}: ", tool.slug)),
                "{}",
                tool.slug
            );
        }
        let memory = text
            .lines()
            .skip_while(|line| !line.starts_with("## Memory"))
            .skip(1)
            .take_while(|line| line.starts_with("- "))
            .count();
        assert_eq!(memory, 5, "{text}");
        assert!(text.contains("POST /api/memory/cas"), "{text}");
        for needle in [
            "PAYMENT-SIGNATURE",
            "X-Pow-Solution",
            "/api/find",
            "Idempotency-Key",
            "/api/memory/watch",
            "payment-signature",
            "/mcp",
            "/api/payments/",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
    }
}
