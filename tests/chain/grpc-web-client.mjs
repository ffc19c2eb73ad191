#!/usr/bin/env node
// An outside grpc-web client of the gateway's public memory API, as a page
// would call it: @connectrpc/connect's createClient over
// @connectrpc/connect-node's grpc-web transport on HTTP/1.1, the service
// built at run time from a FileDescriptorSet (no generated code), paying
// with the official x402 client packages.
//
//   node tests/chain/grpc-web-client.mjs --url http://127.0.0.1:PORT
//        --descriptors FILE                  (a binary FileDescriptorSet with tessera.memory.v1)
//        --call 'Method={"field": ...}'...   (proto3 JSON of the request)
//        [--origin https://app.example]      (sent as Origin; also runs a CORS preflight)
//        [--agent AGENT_ID]                  (free mode: x-agent-id header)
//        [--private-key 0x… --allow-asset 0xTOKEN [--replay]]   (paid)
//
// Each call (unary methods only) is made in turn. Paid, a call is made
// unpaid first; when it is refused with the x402 quote (UNAUTHENTICATED,
// ErrorInfo reason PAYMENT_REQUIRED, header payment-required),
// x402HTTPClient signs it and the call is made again with header
// payment-signature; with --replay the same payment is sent a third time.
//
// Prints ONE line of JSON to stdout: {"preflight", "calls": [outcome...]},
// where preflight (null without --origin) is {"status", "allowOrigin",
// "allowMethods", "allowHeaders"} of an OPTIONS asking for what a browser
// sends, and an outcome is {"method", "ok": true, "response" (proto3 JSON),
// "headers", "trailers"} or {"method", "ok": false, "code", "codeName",
// "message", "errorInfo", "metadata"} (headers and trailers together); paid,
// {"method", "unpaid", "paymentRequired", "paid", "paymentResponse",
// "replay"} with outcomes in unpaid/paid/replay. Exits 0 when every call was
// made, 1 otherwise, 2 on bad usage. Diagnostics go to stderr.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { create, createFileRegistry, fromBinary, fromJson, toJson } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { x402Client, x402HTTPClient } from "@x402/core/client";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const SERVICE = "tessera.memory.v1.MemoryService";
const CALL_TIMEOUT_MS = 60_000;
// What a page's grpc-web call sends beyond the CORS-safelisted headers.
const BROWSER_REQUEST_HEADERS = "content-type,x-grpc-web,x-user-agent,grpc-timeout,x-agent-id,payment-signature";

function usage(msg) {
  console.error(
    `grpc-web-client.mjs: ${msg}\nusage: node grpc-web-client.mjs --url URL --descriptors FILE --call 'Method={…}'... [--origin O] [--agent ID] [--private-key 0x… --allow-asset 0x… [--replay]]`,
  );
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      url: { type: "string" },
      descriptors: { type: "string" },
      call: { type: "string", multiple: true, default: [] },
      origin: { type: "string" },
      agent: { type: "string" },
      "private-key": { type: "string" },
      "allow-asset": { type: "string", multiple: true, default: [] },
      replay: { type: "boolean", default: false },
    },
  }));
} catch (err) {
  usage(err.message);
}
if (!URL.canParse(values.url ?? "")) usage("--url must be a URL");
if (!values.descriptors) usage("--descriptors is required");
const privateKey = values["private-key"];
if (privateKey !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(privateKey)) {
  usage("--private-key must be a 0x-prefixed 32-byte hex key");
}
if (values["allow-asset"].some((a) => !/^0x[0-9a-fA-F]{40}$/.test(a))) usage("--allow-asset must be a 0x token address");

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(values.descriptors)));
const service = registry.getService(SERVICE);
if (!service) usage(`${values.descriptors} does not describe ${SERVICE}`);
const calls = values.call.map((spec) => {
  const i = spec.indexOf("=");
  if (i <= 0) usage(`bad --call ${JSON.stringify(spec)}`);
  const method = service.methods.find((m) => m.name === spec.slice(0, i));
  if (!method) usage(`${SERVICE} has no method ${spec.slice(0, i)}`);
  if (method.methodKind !== "unary") usage(`${method.name} is not unary`);
  try {
    return { method, request: fromJson(method.input, JSON.parse(spec.slice(i + 1))) };
  } catch (err) {
    usage(`--call ${method.name}: ${err.message}`);
  }
});
if (calls.length === 0) usage("at least one --call");

// google.rpc.ErrorInfo, described here: the FileDescriptorSet holds only
// Tessera's own protos.
const ErrorInfo = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "google/rpc/error_details.proto",
    package: "google.rpc",
    syntax: "proto3",
    messageType: [
      {
        name: "ErrorInfo",
        field: [
          { name: "reason", jsonName: "reason", number: 1, type: Type.STRING, label: Label.OPTIONAL },
          { name: "domain", jsonName: "domain", number: 2, type: Type.STRING, label: Label.OPTIONAL },
          {
            name: "metadata",
            jsonName: "metadata",
            number: 3,
            type: Type.MESSAGE,
            label: Label.REPEATED,
            typeName: ".google.rpc.ErrorInfo.MetadataEntry",
          },
        ],
        nestedType: [
          {
            name: "MetadataEntry",
            field: [
              { name: "key", jsonName: "key", number: 1, type: Type.STRING, label: Label.OPTIONAL },
              { name: "value", jsonName: "value", number: 2, type: Type.STRING, label: Label.OPTIONAL },
            ],
            options: { mapEntry: true },
          },
        ],
      },
    ],
  }),
  () => undefined,
).getMessage("google.rpc.ErrorInfo");

const transport = createGrpcWebTransport({ baseUrl: values.url, httpVersion: "1.1" });
const client = createClient(service, transport);

const identity = {
  ...(values.origin === undefined ? {} : { origin: values.origin }),
  ...(values.agent === undefined ? {} : { "x-agent-id": values.agent }),
};

/** What a browser would ask before its first call, and what it was told. */
async function preflight() {
  const res = await fetch(`${values.url}/${SERVICE}/${calls[0].method.name}`, {
    method: "OPTIONS",
    headers: {
      origin: values.origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": BROWSER_REQUEST_HEADERS,
    },
  });
  await res.arrayBuffer();
  return {
    status: res.status,
    allowOrigin: res.headers.get("access-control-allow-origin"),
    allowMethods: res.headers.get("access-control-allow-methods"),
    allowHeaders: res.headers.get("access-control-allow-headers"),
  };
}

/** One unary call with extra `headers`: its outcome and trailers (or error metadata). */
async function invoke({ method, request }, headers) {
  let responseHeaders = new Headers();
  let trailers = new Headers();
  try {
    const response = await client[method.localName](request, {
      headers,
      timeoutMs: CALL_TIMEOUT_MS,
      onHeader: (h) => (responseHeaders = h),
      onTrailer: (t) => (trailers = t),
    });
    return {
      outcome: {
        method: method.name,
        ok: true,
        response: toJson(method.output, response, { alwaysEmitImplicit: true }),
        headers: Object.fromEntries(responseHeaders),
        trailers: Object.fromEntries(trailers),
      },
      metadata: trailers,
    };
  } catch (err) {
    const error = ConnectError.from(err);
    const [info] = error.findDetails(ErrorInfo);
    return {
      outcome: {
        method: method.name,
        ok: false,
        code: error.code,
        codeName: Code[error.code],
        message: error.rawMessage,
        errorInfo: info ? toJson(ErrorInfo, info, { alwaysEmitImplicit: true }) : null,
        metadata: Object.fromEntries(error.metadata),
      },
      metadata: error.metadata,
    };
  }
}

function payer() {
  const account = privateKeyToAccount(privateKey);
  const core = new x402Client();
  registerExactEvmScheme(core, { signer: account });
  const allowed = values["allow-asset"];
  if (allowed.length > 0) {
    core.setSpendControls({ allowedAssets: allowed.map((asset) => ({ network: "*", asset })) });
  }
  console.error(`grpc-web-client.mjs: paying as ${account.address}`);
  return new x402HTTPClient(core);
}

const header = (headers) => (name) => headers.get(name);

async function paid(x402, call) {
  const unpaid = await invoke(call, identity);
  const summary = { method: call.method.name, unpaid: unpaid.outcome };
  if (unpaid.outcome.ok || unpaid.outcome.errorInfo?.reason !== "PAYMENT_REQUIRED") return summary;
  summary.paymentRequired = x402.getPaymentRequiredResponse(header(unpaid.metadata));
  const payload = await x402.createPaymentPayload(summary.paymentRequired);
  const signature = x402.encodePaymentSignatureHeader(payload);
  const served = await invoke(call, { ...identity, ...signature });
  summary.paid = served.outcome;
  if (served.outcome.ok) summary.paymentResponse = x402.getPaymentSettleResponse(header(served.metadata));
  if (values.replay) summary.replay = (await invoke(call, { ...identity, ...signature })).outcome;
  return summary;
}

try {
  const cors = values.origin === undefined ? null : await preflight();
  const x402 = privateKey === undefined ? null : payer();
  const outcomes = [];
  for (const call of calls) outcomes.push(x402 ? await paid(x402, call) : (await invoke(call, identity)).outcome);
  process.stdout.write(`${JSON.stringify({ preflight: cors, calls: outcomes })}\n`);
} catch (err) {
  console.error(`grpc-web-client.mjs: ${err.stack ?? err}`);
  process.exitCode = 1;
}
