#!/usr/bin/env node
// An outside gRPC client of the gateway's public memory API: @grpc/grpc-js
// with @grpc/proto-loader reading proto/tessera/memory/v1/memory.proto as it
// is (no generated code), paying with the official x402 client packages.
//
//   node tests/chain/grpc-client.mjs --url http://127.0.0.1:PORT
//        --call 'Method={"field": ...}'...   (proto3 field names in camelCase)
//        [--agent AGENT_ID]                  (free mode: x-agent-id metadata)
//        [--private-key 0x… --allow-asset 0xTOKEN [--replay]]   (paid)
//
// Each call (unary methods only) is made in turn. Paid, a call is made
// unpaid first; when it is refused with the x402 quote (UNAUTHENTICATED,
// ErrorInfo reason PAYMENT_REQUIRED, metadata payment-required),
// x402HTTPClient signs it and the call is made again with metadata
// payment-signature; with --replay the same payment is sent a third time.
//
// Prints ONE line of JSON to stdout: {"calls": [outcome...]}, where an
// outcome is {"method", "ok": true, "response", "trailers"} or
// {"method", "ok": false, "code", "codeName", "message", "errorInfo",
// "metadata"}; paid, {"method", "unpaid", "paymentRequired", "paid",
// "paymentResponse", "replay"} with outcomes in unpaid/paid/replay. Exits 0
// when every call was made, 1 otherwise, 2 on bad usage. Diagnostics go to
// stderr.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import { x402Client, x402HTTPClient } from "@x402/core/client";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const CALL_DEADLINE_MS = 60_000;

function usage(msg) {
  console.error(
    `grpc-client.mjs: ${msg}\nusage: node grpc-client.mjs --url URL --call 'Method={…}'... [--agent ID] [--private-key 0x… --allow-asset 0x… [--replay]]`,
  );
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      url: { type: "string" },
      call: { type: "string", multiple: true, default: [] },
      agent: { type: "string" },
      "private-key": { type: "string" },
      "allow-asset": { type: "string", multiple: true, default: [] },
      replay: { type: "boolean", default: false },
    },
  }));
} catch (err) {
  usage(err.message);
}
let target;
try {
  const url = new URL(values.url ?? "");
  if (url.protocol !== "http:") usage("--url must be http:// (h2c)");
  target = url.host;
} catch {
  usage("--url must be a URL");
}
const calls = values.call.map((spec) => {
  const i = spec.indexOf("=");
  if (i <= 0) usage(`bad --call ${JSON.stringify(spec)}`);
  try {
    return { method: spec.slice(0, i), request: JSON.parse(spec.slice(i + 1)) };
  } catch (err) {
    usage(`--call ${spec.slice(0, i)}: ${err.message}`);
  }
});
if (calls.length === 0) usage("at least one --call");
const privateKey = values["private-key"];
if (privateKey !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(privateKey)) {
  usage("--private-key must be a 0x-prefixed 32-byte hex key");
}
if (values["allow-asset"].some((a) => !/^0x[0-9a-fA-F]{40}$/.test(a))) usage("--allow-asset must be a 0x token address");

const protoRoot = fileURLToPath(new URL("../../proto", import.meta.url));
const definition = protoLoader.loadSync("tessera/memory/v1/memory.proto", {
  includeDirs: [protoRoot],
  longs: String,
  enums: String,
  defaults: true,
});
const MemoryService = grpc.loadPackageDefinition(definition).tessera.memory.v1.MemoryService;
const client = new MemoryService(target, grpc.credentials.createInsecure());
for (const { method } of calls) {
  const rpc = MemoryService.service[method];
  if (!rpc) usage(`MemoryService has no method ${method}`);
  if (rpc.requestStream || rpc.responseStream) usage(`${method} is not unary`);
}

// google.rpc.Status and ErrorInfo, decoded with the protobufjs proto-loader
// itself runs on. `Any` is declared inline by its two fields (wire-identical),
// so no well-known import needs resolving.
const protobuf = createRequire(createRequire(import.meta.url).resolve("@grpc/proto-loader"))("protobufjs");
const googleRpc = protobuf.parse(`
  syntax = "proto3";
  package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
`).root;
const StatusMessage = googleRpc.lookupType("google.rpc.Status");
const ErrorInfoMessage = googleRpc.lookupType("google.rpc.ErrorInfo");

/** The ErrorInfo in a status's `grpc-status-details-bin`, or null. */
function errorInfo(metadata) {
  const [details] = metadata.get("grpc-status-details-bin");
  if (!details) return null;
  const status = StatusMessage.decode(details);
  const any = status.details.find((d) => d.typeUrl.endsWith("/google.rpc.ErrorInfo"));
  return any ? ErrorInfoMessage.toObject(ErrorInfoMessage.decode(any.value), { defaults: true }) : null;
}

/** Text metadata as a plain object (binary values as base64). */
function plain(metadata) {
  return Object.fromEntries(
    Object.entries(metadata.getMap()).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString("base64") : v]),
  );
}

/** One unary call with `headers` as metadata: its outcome and trailing metadata. */
function invoke(method, request, headers) {
  const metadata = new grpc.Metadata();
  for (const [name, value] of Object.entries(headers)) metadata.set(name, value);
  return new Promise((resolve) => {
    let answer;
    const call = client[method](
      request,
      metadata,
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (error, response) => {
        answer = { error, response };
      },
    );
    // grpc-js runs the callback, then emits the status with the trailers.
    call.on("status", (status) => {
      const { error, response } = answer;
      if (error) {
        resolve({
          outcome: {
            method,
            ok: false,
            code: error.code,
            codeName: grpc.status[error.code],
            message: error.details,
            errorInfo: errorInfo(error.metadata),
            metadata: plain(error.metadata),
          },
          trailers: error.metadata,
        });
      } else {
        resolve({ outcome: { method, ok: true, response, trailers: plain(status.metadata) }, trailers: status.metadata });
      }
    });
  });
}

const identity = values.agent === undefined ? {} : { "x-agent-id": values.agent };

async function free({ method, request }) {
  return (await invoke(method, request, identity)).outcome;
}

function payer() {
  const account = privateKeyToAccount(privateKey);
  const core = new x402Client();
  registerExactEvmScheme(core, { signer: account });
  const allowed = values["allow-asset"];
  if (allowed.length > 0) {
    core.setSpendControls({ allowedAssets: allowed.map((asset) => ({ network: "*", asset })) });
  }
  console.error(`grpc-client.mjs: paying as ${account.address}`);
  return new x402HTTPClient(core);
}

const header = (metadata) => (name) => metadata.get(name.toLowerCase())[0]?.toString();

async function paid(x402, { method, request }) {
  const unpaid = await invoke(method, request, identity);
  const summary = { method, unpaid: unpaid.outcome };
  if (unpaid.outcome.ok || unpaid.outcome.errorInfo?.reason !== "PAYMENT_REQUIRED") return summary;
  summary.paymentRequired = x402.getPaymentRequiredResponse(header(unpaid.trailers));
  const payload = await x402.createPaymentPayload(summary.paymentRequired);
  const signature = x402.encodePaymentSignatureHeader(payload);
  const served = await invoke(method, request, { ...identity, ...signature });
  summary.paid = served.outcome;
  if (served.outcome.ok) summary.paymentResponse = x402.getPaymentSettleResponse(header(served.trailers));
  if (values.replay) summary.replay = (await invoke(method, request, { ...identity, ...signature })).outcome;
  return summary;
}

try {
  const x402 = privateKey === undefined ? null : payer();
  const outcomes = [];
  for (const call of calls) outcomes.push(x402 ? await paid(x402, call) : await free(call));
  process.stdout.write(`${JSON.stringify({ calls: outcomes })}\n`);
} catch (err) {
  console.error(`grpc-client.mjs: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  client.close();
}
