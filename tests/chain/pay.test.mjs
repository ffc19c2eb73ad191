// pay.mjs (the official x402 client) against a tiny hand-written resource
// server that answers 402, then checks and settles what the client sends on
// a real anvil. This pins down exactly what the official packages put on
// the wire for x402 v2 (PAYMENT-SIGNATURE) and v1 (X-PAYMENT).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { getAddress, recoverTypedDataAddress, verifyTypedData } from "viem";
import { BUYER, CHAIN_ID, DEV_KEYS, NETWORK, PAY_TO, TOKEN_NAME, TOKEN_VERSION, send, startChain } from "./anvil.mjs";

const PAY = join(dirname(fileURLToPath(import.meta.url)), "pay.mjs");
const PRICE = "1000"; // 0.001 USDC
const AUTH_TYPES = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
};
const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64");
const unb64 = (s) => JSON.parse(Buffer.from(s, "base64").toString("utf8"));

let chain;
before(async () => {
  chain = await startChain({ mint: { [BUYER.address]: 1_000_000n } });
});
after(() => chain?.stop());

/** Runs pay.mjs (allowing the local token unless `allow` is false); resolves to { code, stdout, stderr, json }. */
function pay(args, { allow = true } = {}) {
  if (allow) args = [...args, "--allow-asset", chain.token];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PAY, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const lines = stdout.split("\n").filter(Boolean);
      resolve({ code, stdout, stderr, json: lines.length === 1 ? JSON.parse(lines[0]) : undefined });
    });
  });
}

/** A resource server: `handle(req, body)` → { status, headers, body }. Records every request. */
async function server(handle) {
  const requests = [];
  const srv = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    requests.push({ method: req.method, url: req.url, headers: req.headers, body });
    const out = await handle(req, body);
    res.writeHead(out.status, { "content-type": "application/json", ...out.headers });
    res.end(typeof out.body === "string" ? out.body : JSON.stringify(out.body));
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${srv.address().port}/api/memory/cas`;
  return { url, requests, close: () => new Promise((r) => srv.close(r)) };
}

const requirementsV2 = () => ({
  scheme: "exact",
  network: NETWORK,
  amount: PRICE,
  asset: chain.token,
  payTo: PAY_TO.address,
  maxTimeoutSeconds: 60,
  extra: { name: TOKEN_NAME, version: TOKEN_VERSION },
});

/** Checks an EIP-3009 authorization's signature and settles it on chain like a facilitator. */
async function verifyAndSettle({ authorization: a, signature }, { asset, chainId }) {
  const typed = {
    domain: { name: TOKEN_NAME, version: TOKEN_VERSION, chainId, verifyingContract: asset },
    types: AUTH_TYPES,
    primaryType: "TransferWithAuthorization",
    message: { ...a, value: BigInt(a.value), validAfter: BigInt(a.validAfter), validBefore: BigInt(a.validBefore) },
    signature,
  };
  assert.equal(await verifyTypedData({ address: BUYER.address, ...typed }), true);
  assert.equal(await recoverTypedDataAddress(typed), BUYER.address);
  const receipt = await send(chain, asset, "transferWithAuthorization", [
    a.from, a.to, BigInt(a.value), BigInt(a.validAfter), BigInt(a.validBefore), a.nonce, signature,
  ]);
  return receipt.transactionHash;
}

describe("pay.mjs (official @x402/fetch client)", () => {
  test("x402 v2: 402 + PAYMENT-REQUIRED → retry with PAYMENT-SIGNATURE that settles on chain", async () => {
    const body = { key: "locks/import", expected: null, value: "agent-7", ttlSeconds: 30 };
    let paid;
    const srv = await server(async (req, raw) => {
      const sig = req.headers["payment-signature"];
      if (!sig) {
        const required = {
          x402Version: 2,
          error: "PAYMENT-SIGNATURE header is required",
          resource: { url: srv.url, description: "memory cas", mimeType: "application/json" },
          accepts: [requirementsV2()],
        };
        return { status: 402, headers: { "PAYMENT-REQUIRED": b64(required) }, body: required };
      }
      paid = unb64(sig);
      const transaction = await verifyAndSettle(paid.payload, { asset: chain.token, chainId: CHAIN_ID });
      const settled = { success: true, transaction, network: NETWORK, payer: paid.payload.authorization.from };
      return { status: 200, headers: { "PAYMENT-RESPONSE": b64(settled) }, body: { ...JSON.parse(raw), swapped: true } };
    });
    try {
      const [buyer0, payTo0] = [await chain.balanceOf(BUYER.address), await chain.balanceOf(PAY_TO.address)];
      const t0 = Math.floor(Date.now() / 1000);
      const r = await pay(["--url", srv.url, "--method", "POST", "--body", JSON.stringify(body), "--key", DEV_KEYS[1]]);
      assert.equal(r.code, 0, r.stderr);

      // what pay.mjs prints
      assert.equal(r.json.status, 200);
      assert.deepEqual(r.json.body, { ...body, swapped: true });
      assert.deepEqual(Object.keys(r.json.paymentResponse), ["success", "transaction", "network", "payer"]);
      assert.equal(r.json.paymentResponse.payer, BUYER.address);

      // the requests: unpaid first, then the same request with the payment header
      assert.equal(srv.requests.length, 2);
      const [first, second] = srv.requests;
      assert.equal(first.headers["payment-signature"], undefined);
      assert.equal(first.headers["x-payment"], undefined);
      for (const req of srv.requests) {
        assert.equal(req.method, "POST");
        assert.equal(req.headers["content-type"], "application/json");
        assert.deepEqual(JSON.parse(req.body), body);
      }
      assert.match(second.headers["payment-signature"], /^[A-Za-z0-9+/]+={0,2}$/, "standard base64");

      // the v2 PaymentPayload, exactly
      assert.deepEqual(Object.keys(paid).sort(), ["accepted", "payload", "resource", "x402Version"]);
      assert.equal(paid.x402Version, 2);
      assert.deepEqual(paid.accepted, requirementsV2());
      assert.deepEqual(paid.resource, { url: srv.url, description: "memory cas", mimeType: "application/json" });
      assert.deepEqual(Object.keys(paid.payload), ["authorization", "signature"]);
      const a = paid.payload.authorization;
      assert.deepEqual(Object.keys(a), ["from", "to", "value", "validAfter", "validBefore", "nonce"]);
      assert.equal(a.from, BUYER.address); // checksummed
      assert.equal(a.to, getAddress(PAY_TO.address));
      assert.equal(a.value, PRICE); // decimal string, = amount
      assert.equal(a.validAfter, "0"); // v2 client sends 0
      const validBefore = Number(a.validBefore);
      assert.ok(validBefore >= t0 + 60 && validBefore <= t0 + 60 + 10, `validBefore ${validBefore} ≈ now + maxTimeoutSeconds`);
      assert.match(a.nonce, /^0x[0-9a-f]{64}$/);
      assert.match(paid.payload.signature, /^0x[0-9a-f]{130}$/); // 65 bytes r‖s‖v

      // it settled: the balance moved by exactly the price
      assert.equal(await chain.balanceOf(BUYER.address), buyer0 - BigInt(PRICE));
      assert.equal(await chain.balanceOf(PAY_TO.address), payTo0 + BigInt(PRICE));
      assert.match(r.stderr, /paying as 0x70997970C51812dc3A010C7d01b50e0d17dc79C8/);
    } finally {
      await srv.close();
    }
  });

  test("x402 v2: a rejected payment is reported as the second 402, exit 0", async () => {
    const srv = await server(async (req) => {
      const required = {
        x402Version: 2,
        error: req.headers["payment-signature"] ? "invalid_exact_evm_payload_signature" : "payment required",
        resource: { url: srv.url, description: "memory get", mimeType: "application/json" },
        accepts: [requirementsV2()],
      };
      return { status: 402, headers: { "PAYMENT-REQUIRED": b64(required) }, body: required };
    });
    try {
      const r = await pay(["--url", srv.url, "--key", DEV_KEYS[1]]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.status, 402);
      assert.equal(r.json.body.error, "invalid_exact_evm_payload_signature");
      assert.equal(r.json.paymentResponse, null);
      assert.equal(srv.requests.length, 2);
      assert.equal(srv.requests[1].method, "GET");
    } finally {
      await srv.close();
    }
  });

  test("x402 v1: 402 body with accepts[] → retry with X-PAYMENT (base-sepolia) that settles", async () => {
    let paid;
    const srv = await server(async (req) => {
      if (!req.headers["x-payment"]) {
        return {
          status: 402,
          body: {
            x402Version: 1,
            error: "X-PAYMENT header is required",
            accepts: [{
              scheme: "exact",
              network: "base-sepolia",
              maxAmountRequired: PRICE,
              resource: srv.url,
              description: "memory cas",
              mimeType: "application/json",
              payTo: PAY_TO.address,
              maxTimeoutSeconds: 60,
              asset: chain.token,
              extra: { name: TOKEN_NAME, version: TOKEN_VERSION },
            }],
          },
        };
      }
      paid = unb64(req.headers["x-payment"]);
      const transaction = await verifyAndSettle(paid.payload, { asset: chain.token, chainId: CHAIN_ID });
      const settled = { success: true, transaction, network: "base-sepolia", payer: BUYER.address };
      return { status: 200, headers: { "X-PAYMENT-RESPONSE": b64(settled) }, body: { ok: true } };
    });
    try {
      const buyer0 = await chain.balanceOf(BUYER.address);
      const t0 = Math.floor(Date.now() / 1000);
      const r = await pay(["--url", srv.url, "--method", "POST", "--body", "{}", "--key", DEV_KEYS[1]]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.json, {
        status: 200,
        body: { ok: true },
        paymentResponse: { success: true, transaction: r.json.paymentResponse.transaction, network: "base-sepolia", payer: BUYER.address },
      });
      assert.equal(srv.requests[1].headers["payment-signature"], undefined);
      assert.deepEqual(Object.keys(paid), ["x402Version", "scheme", "network", "payload"]);
      assert.deepEqual([paid.x402Version, paid.scheme, paid.network], [1, "exact", "base-sepolia"]);
      const a = paid.payload.authorization;
      assert.equal(a.value, PRICE);
      const validAfter = Number(a.validAfter); // v1 client sends now - 600
      assert.ok(validAfter >= t0 - 600 && validAfter <= t0 - 590, `validAfter ${validAfter} ≈ now - 600`);
      assert.equal(await chain.balanceOf(BUYER.address), buyer0 - BigInt(PRICE));
    } finally {
      await srv.close();
    }
  });

  test("no payment asked: the answer passes through untouched", async () => {
    const srv = await server(async () => ({ status: 404, body: "not here" }));
    try {
      const r = await pay(["--url", srv.url, "--key", DEV_KEYS[1]]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.json, { status: 404, body: "not here", paymentResponse: null });
      assert.equal(srv.requests.length, 1);
    } finally {
      await srv.close();
    }
  });

  test("without --allow-asset the official client refuses a non-default token (spend controls)", async () => {
    const srv = await server(async () => {
      const required = { x402Version: 2, resource: { url: srv.url }, accepts: [requirementsV2()] };
      return { status: 402, headers: { "PAYMENT-REQUIRED": b64(required) }, body: required };
    });
    try {
      const r = await pay(["--url", srv.url, "--key", DEV_KEYS[1]], { allow: false });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.status, 402);
      assert.match(r.json.error, /rejected by spendControls/);
      assert.equal(srv.requests.length, 1, "nothing was paid");
    } finally {
      await srv.close();
    }
  });

  test("a 402 the client cannot pay still reports the answer, with error", async () => {
    const srv = await server(async () => ({ status: 402, body: { x402Version: 2, accepts: [] } }));
    try {
      const r = await pay(["--url", srv.url, "--key", DEV_KEYS[1]]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.status, 402);
      assert.deepEqual(r.json.body, { x402Version: 2, accepts: [] });
      assert.equal(r.json.paymentResponse, null);
      assert.match(r.json.error, /payment requirements/i);
    } finally {
      await srv.close();
    }
  });

  test("bad usage exits 2; no HTTP answer exits 1 with nothing on stdout", async () => {
    const usage = await pay(["--url", "http://127.0.0.1:9/", "--key", "nope"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--key/);
    const srv = await server(async () => ({ status: 200, body: {} }));
    const { url } = srv;
    await srv.close();
    const down = await pay(["--url", url, "--key", DEV_KEYS[1]]);
    assert.equal(down.code, 1);
    assert.equal(down.stdout, "");
  });
});
