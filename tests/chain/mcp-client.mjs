#!/usr/bin/env node
// An outside MCP client: the official MCP TypeScript SDK (Client over
// StreamableHTTPClientTransport) calling a gateway's /mcp, paying quotes
// with the official x402 client packages as the x402 MCP transport says
// (PaymentPayload in _meta["x402/payment"]), or in the PAYMENT-SIGNATURE
// header of the HTTP request.
//
//   node tests/chain/mcp-client.mjs --url URL/mcp [--header 'Name: value']...
//        [--key 0xPRIVATE_KEY [--allow-asset 0xTOKEN]...] --steps JSON
//
// --steps is a JSON array run in order, each one of:
//   {"op": "list"}                                   → {"tools": [...]}
//   {"op": "call", "name", "arguments"}              → {"result"} or {"protocolError": {code, message}}
//   {"op": "call", "name", "arguments", "pay": "meta" | "header"}
//        calls unpaid; when the result is a payment-required tool error,
//        signs its quote (needs --key) and calls again with the payment
//        → {"quote": <unpaid result>, "result": <paid result>, "payer"}
// --header sets a header on every HTTP request (e.g. X-Agent-Id in FREE_MODE).
//
// Prints ONE line of JSON to stdout:
//   {"server": <serverInfo>, "instructions", "sessionId": <or null>, "steps": [...]}
// Exits 0 when every step ran, 1 when the client failed, 2 on bad usage.
// Diagnostics go to stderr.
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { x402Client } from "@x402/core/client";
import { encodePaymentSignatureHeader } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

function usage(msg) {
  console.error(`mcp-client.mjs: ${msg}\nusage: node mcp-client.mjs --url URL [--header 'N: v']... [--key 0x… [--allow-asset 0x…]...] --steps JSON`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      url: { type: "string" },
      header: { type: "string", multiple: true, default: [] },
      key: { type: "string" },
      "allow-asset": { type: "string", multiple: true, default: [] },
      steps: { type: "string" },
    },
  }));
} catch (err) {
  usage(err.message);
}
if (!values.url) usage("--url is required");
let steps;
try {
  steps = JSON.parse(values.steps ?? "");
} catch (err) {
  usage(`--steps must be a JSON array: ${err.message}`);
}
if (!Array.isArray(steps)) usage("--steps must be a JSON array");
if (values.key !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(values.key)) usage("--key must be a 0x-prefixed 32-byte hex private key");

const headers = {};
for (const h of values.header) {
  const i = h.indexOf(":");
  if (i <= 0) usage(`bad --header ${JSON.stringify(h)}`);
  headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}

function payer() {
  if (!values.key) usage("a step pays: --key is required");
  const account = privateKeyToAccount(values.key);
  const client = new x402Client();
  registerExactEvmScheme(client, { signer: account });
  const allowed = values["allow-asset"];
  if (allowed.some((a) => !/^0x[0-9a-fA-F]{40}$/.test(a))) usage("--allow-asset must be a 0x token address");
  if (allowed.length > 0) {
    client.setSpendControls({ allowedAssets: allowed.map((asset) => ({ network: "*", asset })) });
  }
  return { account, client };
}

async function connect(extraHeaders = {}) {
  const transport = new StreamableHTTPClientTransport(new URL(values.url), {
    requestInit: { headers: { ...headers, ...extraHeaders } },
  });
  const client = new Client({ name: "tessera-mcp-test", version: "0.0.0" });
  await client.connect(transport);
  return { client, transport };
}

// The x402 MCP transport's client rule: structuredContent first, else content[0].text.
function paymentRequiredOf(result) {
  if (!result?.isError) return null;
  const candidates = [result.structuredContent];
  try {
    candidates.push(JSON.parse(result.content?.[0]?.text ?? ""));
  } catch {}
  return candidates.find((c) => c && typeof c === "object" && "x402Version" in c && Array.isArray(c.accepts)) ?? null;
}

async function call(client, name, args, meta) {
  try {
    const params = { name, arguments: args ?? {} };
    if (meta) params._meta = meta;
    return { result: await client.callTool(params) };
  } catch (err) {
    if (err instanceof McpError) return { protocolError: { code: err.code, message: err.message } };
    throw err;
  }
}

async function paidCall(client, step) {
  const unpaid = await call(client, step.name, step.arguments);
  const quote = paymentRequiredOf(unpaid.result);
  if (!quote) return { quote: null, ...unpaid };
  const { account, client: payments } = payer();
  const payload = await payments.createPaymentPayload(quote);
  console.error(`mcp-client.mjs: paying ${step.name} as ${account.address} via ${step.pay} (value ${payload.payload?.authorization?.value})`);
  if (step.pay === "meta") {
    return { quote: unpaid.result, payer: account.address, ...(await call(client, step.name, step.arguments, { "x402/payment": payload })) };
  }
  const paying = await connect({ "PAYMENT-SIGNATURE": encodePaymentSignatureHeader(payload) });
  try {
    return { quote: unpaid.result, payer: account.address, ...(await call(paying.client, step.name, step.arguments)) };
  } finally {
    await paying.client.close();
  }
}

try {
  const { client, transport } = await connect();
  const outputs = [];
  for (const step of steps) {
    if (step.op === "list") {
      outputs.push({ tools: (await client.listTools()).tools });
    } else if (step.op === "call" && step.pay) {
      outputs.push(await paidCall(client, step));
    } else if (step.op === "call") {
      outputs.push(await call(client, step.name, step.arguments));
    } else {
      usage(`unknown step ${JSON.stringify(step)}`);
    }
  }
  const report = {
    server: client.getServerVersion(),
    instructions: client.getInstructions() ?? null,
    sessionId: transport.sessionId ?? null,
    steps: outputs,
  };
  await client.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
} catch (err) {
  console.error(`mcp-client.mjs: ${err.stack ?? err.message}`);
  process.exit(1);
}
