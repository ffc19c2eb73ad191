#!/usr/bin/env node
// An official x402 resource server in front of OUR facilitator, paid by the
// official client: interop both ways round, with nothing of ours in between.
//
//   node tests/chain/interop-express.mjs --facilitator http://127.0.0.1:PORT \
//        --token 0xTOKEN --pay-to 0xPAYTO --key 0xBUYER_PRIVATE_KEY [--price 1000] \
//        [--api-key FACILITATOR_API_KEY]
//
// Starts Express with `@x402/express`'s paymentMiddleware on a free 127.0.0.1
// port; its x402ResourceServer talks to the facilitator at --facilitator
// through `@x402/core`'s HTTPFacilitatorClient (GET /supported at start,
// POST /verify and POST /settle per payment) with `@x402/evm`'s exact EVM
// server scheme registered for eip155:84532. With --api-key, the client's
// `createAuthHeaders` sends `Authorization: Bearer <key>` on verify, settle
// and supported (a facilitator with FACILITATOR_API_KEYS requires it on
// verify and settle). `GET /weather` costs --price
// atomic units of --token (an explicit AssetAmount with the token's EIP-712
// domain USDC/2: the packages only price "$…" in the known USDC contracts).
// Then it calls /weather once bare and once through `@x402/fetch`
// (wrapFetchWithPayment + x402Client + the exact EVM client scheme, the
// buyer a viem account; the local token allowed as pay.mjs does).
//
// Prints ONE line of JSON to stdout:
//   {"unpaidStatus": <status of the bare GET>, "status": <paid GET's status>,
//    "body": <its JSON body, or text>, "paymentResponse": <decoded PAYMENT-RESPONSE, or null>}
// plus "error" when the x402 client gave up after an HTTP answer. Exits 0
// whenever both answers came back, 1 when the server could not start (the
// facilitator unreachable, or not supporting exact on eip155:84532) or a
// request got no answer, 2 on bad usage. Diagnostics go to stderr.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import express from "express";
import { paymentMiddleware, x402ResourceServer, x402HTTPResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { x402Client } from "@x402/core/client";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { privateKeyToAccount } from "viem/accounts";

const NETWORK = "eip155:84532";
const log = (msg) => console.error(`interop-express.mjs: ${msg}`);

function usage(msg) {
  console.error(
    `interop-express.mjs: ${msg}\nusage: node interop-express.mjs --facilitator URL --token 0x… --pay-to 0x… --key 0x… [--price UNITS] [--api-key KEY]`,
  );
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      facilitator: { type: "string" },
      token: { type: "string" },
      "pay-to": { type: "string" },
      key: { type: "string" },
      price: { type: "string", default: "1000" },
      "api-key": { type: "string" },
    },
  }));
} catch (err) {
  usage(err.message);
}
const address = /^0x[0-9a-fA-F]{40}$/;
if (!/^https?:\/\//.test(values.facilitator ?? "")) usage("--facilitator must be an http(s) URL");
if (!address.test(values.token ?? "")) usage("--token must be a 0x token address");
if (!address.test(values["pay-to"] ?? "")) usage("--pay-to must be a 0x address");
if (!/^0x[0-9a-fA-F]{64}$/.test(values.key ?? "")) usage("--key must be a 0x-prefixed 32-byte hex private key");
if (!/^[1-9][0-9]*$/.test(values.price)) usage("--price must be a positive integer (atomic units)");
if (values["api-key"] !== undefined && !/^[\x21-\x7e]+$/.test(values["api-key"])) {
  usage("--api-key must be visible ASCII without spaces");
}

// ---- the resource server: official middleware, our facilitator ----
const routes = {
  "GET /weather": {
    accepts: {
      scheme: "exact",
      network: NETWORK,
      payTo: values["pay-to"],
      // Price = Money | AssetAmount; an AssetAmount is used as is (no USDC lookup).
      price: { amount: values.price, asset: values.token, extra: { name: "USDC", version: "2" } },
      maxTimeoutSeconds: 60,
    },
    description: "Today's weather",
    mimeType: "application/json",
  },
};
// The facilitator's API key, as the official client sends one: headers keyed
// by request path (a flat headers object is refused by @x402/core).
const apiKey = values["api-key"];
const createAuthHeaders = apiKey
  ? async () => {
      const headers = { Authorization: `Bearer ${apiKey}` };
      return { verify: headers, settle: headers, supported: headers };
    }
  : undefined;
const resourceServer = new x402ResourceServer(
  new HTTPFacilitatorClient({ url: values.facilitator, timeoutMs: 30_000, createAuthHeaders }),
).register(NETWORK, new ExactEvmScheme());

// Fail fast, before listening: the facilitator answers GET /supported with
// exact on our network, and the routes validate against it (the middleware
// would otherwise only find out on the first request).
try {
  await new x402HTTPResourceServer(resourceServer, routes).initialize();
} catch (err) {
  log(`the resource server did not start against ${values.facilitator}: ${err.message}`);
  for (let cause = err.cause; cause; cause = cause.cause) log(`  caused by: ${cause.message ?? cause}`);
  if (err.errors) log(`  route errors: ${JSON.stringify(err.errors)}`);
  process.exit(1);
}

const app = express();
app.use(paymentMiddleware(routes, resourceServer));
app.get("/weather", (_req, res) => {
  res.json({ report: { weather: "sunny", temperature: 70 } });
});

const server = createServer(app);
try {
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
} catch (err) {
  log(`listening on 127.0.0.1 failed: ${err.message}`);
  process.exit(1);
}
const url = `http://127.0.0.1:${server.address().port}/weather`;
log(`official resource server at ${url}, facilitator ${values.facilitator}${apiKey ? " (with an API key)" : ""}`);

function shutdown(code) {
  server.closeAllConnections();
  server.close();
  process.exit(code);
}

// ---- the client: official fetch wrapper, a viem account ----
const account = privateKeyToAccount(values.key);
const client = new x402Client();
registerExactEvmScheme(client, { signer: account });
// The official client pays only the well-known USDC deployments unless told otherwise.
client.setSpendControls({ allowedAssets: [{ network: "*", asset: values.token }] });
client.onAfterPaymentCreation(async ({ paymentPayload }) => {
  const a = paymentPayload.payload?.authorization;
  log(`paying as ${account.address} (x402 v${paymentPayload.x402Version}, nonce ${a?.nonce}, value ${a?.value})`);
});

let last;
const recordingFetch = async (input, init) => {
  const res = await fetch(input, init);
  last = res.clone();
  return res;
};
const payFetch = wrapFetchWithPayment(recordingFetch, client);

async function parsed(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

let unpaidStatus;
try {
  const unpaid = await fetch(url, { headers: { Accept: "application/json" } });
  unpaidStatus = unpaid.status;
  const body = await parsed(unpaid);
  if (unpaidStatus !== 402) log(`the bare GET answered ${unpaidStatus}: ${JSON.stringify(body)}`);
} catch (err) {
  log(`the bare GET got no answer: ${err.message}`);
  shutdown(1);
}

let res;
const extra = {};
try {
  res = await payFetch(url, { headers: { Accept: "application/json" } });
} catch (err) {
  log(`the paid GET: ${err.message}`);
  if (!last) shutdown(1);
  res = last;
  extra.error = err.message;
}
const body = await parsed(res);
let paymentResponse = null;
const header = res.headers.get("PAYMENT-RESPONSE") ?? res.headers.get("X-PAYMENT-RESPONSE");
if (header) {
  try {
    paymentResponse = decodePaymentResponseHeader(header);
  } catch (err) {
    log(`undecodable payment response header: ${err.message}`);
  }
}
process.stdout.write(
  `${JSON.stringify({ unpaidStatus, status: res.status, body, paymentResponse, ...extra })}\n`,
  () => shutdown(0),
);
