#!/usr/bin/env node
// The outside client: the official x402 packages paying an HTTP resource.
//
//   node tests/chain/pay.mjs --url URL [--method POST] [--body JSON]
//                            [--header 'Name: value']... --key 0xPRIVATE_KEY
//                            [--allow-asset 0xTOKEN]...
//
// The official client (x402Client spend controls) only pays the well-known
// USDC deployments per network, up to $1, unless told otherwise: a locally
// deployed token must be named with --allow-asset (uncapped for that token).
//
// Prints ONE line of JSON to stdout:
//   {"status": <http status>, "body": <JSON body, or text>,
//    "paymentResponse": <decoded PAYMENT-RESPONSE (or X-PAYMENT-RESPONSE), or null>}
// plus "error" when the x402 client gave up after an HTTP answer (e.g. a 402
// it could not pay); then status/body are those of the last answer. Exits 0
// whenever an HTTP answer came back, 1 when none did, 2 on bad usage.
// Diagnostics go to stderr.
import { parseArgs } from "node:util";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { x402Client } from "@x402/core/client";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

function usage(msg) {
  console.error(`pay.mjs: ${msg}\nusage: node pay.mjs --url URL [--method M] [--body JSON] [--header 'N: v']... --key 0x… [--allow-asset 0x…]...`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      url: { type: "string" },
      method: { type: "string", default: "GET" },
      body: { type: "string" },
      header: { type: "string", multiple: true, default: [] },
      key: { type: "string" },
      "allow-asset": { type: "string", multiple: true, default: [] },
    },
  }));
} catch (err) {
  usage(err.message);
}
if (!values.url) usage("--url is required");
if (!/^0x[0-9a-fA-F]{64}$/.test(values.key ?? "")) usage("--key must be a 0x-prefixed 32-byte hex private key");

const headers = new Headers();
if (values.body !== undefined) headers.set("Content-Type", "application/json");
for (const h of values.header) {
  const i = h.indexOf(":");
  if (i <= 0) usage(`bad --header ${JSON.stringify(h)}`);
  headers.set(h.slice(0, i).trim(), h.slice(i + 1).trim());
}

const account = privateKeyToAccount(values.key);
const client = new x402Client();
registerExactEvmScheme(client, { signer: account });
const allowed = values["allow-asset"];
if (allowed.some((a) => !/^0x[0-9a-fA-F]{40}$/.test(a))) usage("--allow-asset must be a 0x token address");
if (allowed.length > 0) {
  // network "*" matches v2 CAIP-2 ids and v1 names alike
  client.setSpendControls({ allowedAssets: allowed.map((asset) => ({ network: "*", asset })) });
}
client.onAfterPaymentCreation(async ({ paymentPayload }) => {
  const a = paymentPayload.payload?.authorization;
  console.error(`pay.mjs: paying as ${account.address} (x402 v${paymentPayload.x402Version}, nonce ${a?.nonce}, value ${a?.value})`);
});

// Keep a copy of every answer so one can be reported even if the x402 client throws on it.
let last;
const recordingFetch = async (input, init) => {
  const res = await fetch(input, init);
  last = res.clone();
  return res;
};
const payFetch = wrapFetchWithPayment(recordingFetch, client);

async function report(res, extra = {}) {
  const text = await res.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {}
  let paymentResponse = null;
  const header = res.headers.get("PAYMENT-RESPONSE") ?? res.headers.get("X-PAYMENT-RESPONSE");
  if (header) {
    try {
      paymentResponse = decodePaymentResponseHeader(header);
    } catch (err) {
      console.error(`pay.mjs: undecodable payment response header: ${err.message}`);
    }
  }
  process.stdout.write(`${JSON.stringify({ status: res.status, body, paymentResponse, ...extra })}\n`);
}

try {
  const res = await payFetch(values.url, { method: values.method, headers, body: values.body });
  await report(res);
} catch (err) {
  console.error(`pay.mjs: ${err.message}`);
  if (!last) process.exit(1);
  await report(last, { error: err.message });
}
