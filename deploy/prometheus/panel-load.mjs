// A short load on a paid Tessera, so every dashboard panel has data
// (panel-check.sh runs it). A fresh buyer (its own namespace, so nothing
// collides with other users of the shared Redis) is funded on the local
// chain, then each round makes:
//   - x402-paid memory calls on the three REST faces through the official
//     client (@x402/fetch): set, get, list, cas, incr, delete, grant, grants, a
//     long poll that times out (204) and one that answers a change (200),
//     and expected failures: 404 (missing key), 412 (stale If-Match);
//   - a key read after its Redis copy is dropped, so it is loaded from
//     PostgreSQL; x402-paid tools;
//   - a replayed payment (409) and a malformed one (402), both refused;
//   - a tool paid with proof of work (200), its solution spent again (409);
//   - the free routes: discovery, pricing, stats, leaderboard, reliability.
// Rounds are apart by --pause seconds, so each series moves between two
// scrapes and rates and quantiles over it are not empty.
//
//   node deploy/prometheus/panel-load.mjs --gateway http://127.0.0.1:PORT \
//     --rpc http://127.0.0.1:PORT --token 0xTOKEN --redis redis://… \
//     [--rounds 2] [--pause 2.5] [--namespace-file FILE]
//
// Exits non-zero, saying which call, when an answer is not the one expected.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { clients, send } from "../../tests/chain/anvil.mjs";

// The official x402 client and viem, from tests/chain's pinned packages.
const require = createRequire(new URL("../../tests/chain/package.json", import.meta.url));
const { wrapFetchWithPayment } = require("@x402/fetch");
const { x402Client } = require("@x402/core/client");
const { registerExactEvmScheme } = require("@x402/evm/exact/client");
const { generatePrivateKey, privateKeyToAccount } = require("viem/accounts");

const { values: args } = parseArgs({
  options: {
    gateway: { type: "string" },
    rpc: { type: "string" },
    token: { type: "string" },
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    rounds: { type: "string", default: "2" },
    pause: { type: "string", default: "2.5" },
    "namespace-file": { type: "string" },
  },
});
for (const name of ["gateway", "rpc", "token"]) {
  if (!args[name]) throw new Error(`--${name} is required`);
}
const gateway = args.gateway.replace(/\/$/, "");

// A buyer of this run only: its address is its memory namespace.
const buyer = privateKeyToAccount(generatePrivateKey());
await send(clients(args.rpc), args.token, "mint", [buyer.address, 1_000_000_000n]);

const client = new x402Client();
registerExactEvmScheme(client, { signer: buyer });
client.setSpendControls({ allowedAssets: [{ network: "*", asset: args.token }] });
const paidFetch = wrapFetchWithPayment(fetch, client);
// The paid request of one call as sent (recording it), to replay it after
// that call is done: a replay racing its original would refuse the original.
let recorded;
const recordingFetch = wrapFetchWithPayment(async (request) => {
  if (request.headers.has("PAYMENT-SIGNATURE")) recorded = request.clone();
  return fetch(request);
}, client);

const counts = {};
async function call(what, expected, path, { method = "GET", body, headers = {}, paid = true, record = false } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const res = await (record ? recordingFetch : paid ? paidFetch : fetch)(`${gateway}${path}`, init);
  const text = await res.text();
  if (res.status !== expected) {
    throw new Error(`${what}: ${method} ${path} answered ${res.status}, not ${expected}: ${text.slice(0, 300)}`);
  }
  counts[res.status] = (counts[res.status] ?? 0) + 1;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const redis = (...command) => execFileSync("redis-cli", ["-u", args.redis, ...command], { encoding: "utf8" });

// The reference solver (deploy/demo/pow-solve.mjs), as a client would run it.
const solve = (challenge) =>
  execFileSync("node", [new URL("../demo/pow-solve.mjs", import.meta.url).pathname], {
    input: JSON.stringify(challenge),
    encoding: "utf8",
  }).trim();

let namespace;
async function memoryCalls(round) {
  const key = `notes/r${round}`;
  const set = await call("set", 200, "/api/memory", { method: "POST", body: { key, value: { round } } });
  if (!namespace) {
    namespace = set.owner;
    if (args["namespace-file"]) writeFileSync(args["namespace-file"], `${namespace}\n`);
  }
  await call("set again", 200, "/api/memory", { method: "POST", body: { key, value: { round, again: true } } });
  await call("get", 200, `/api/memory?key=${encodeURIComponent(key)}`);
  await call("get a missing key", 404, `/api/memory?key=missing/r${round}`);
  await call("list", 200, "/api/memory?prefix=notes/");
  await call("cas on an absent key", 200, "/api/memory/cas", {
    method: "POST",
    body: { key: `locks/r${round}`, expected: null, value: "me", ttlSeconds: 60 },
  });
  await call("cas that does not match", 200, "/api/memory/cas", {
    method: "POST",
    body: { key: `locks/r${round}`, expected: "someone else", value: "me" },
  });
  await call("incr", 200, "/api/memory/incr", { method: "POST", body: { key: "hits", by: 2 } });
  await call("stale If-Match", 412, "/api/memory", {
    method: "POST",
    headers: { "If-Match": '"999999"' },
    body: { key, value: "stale" },
  });
  await call("grant", 200, "/api/memory/grant", {
    method: "POST",
    body: { grantee: privateKeyToAccount(generatePrivateKey()).address, mode: "read", ttlSeconds: 60 },
  });
  await call("grants", 200, "/api/memory/grants");
  // Long polls: one answered by a change already logged, one timing out.
  await call("watch a change", 200, `/api/memory/watch?key=${encodeURIComponent(key)}&sinceRevision=1&timeoutSeconds=5`);
  const timedOut = call("watch timing out", 204, `/api/memory/watch?prefix=quiet/&timeoutSeconds=1`);
  // 2s.io and per-agent faces.
  await call("2s.io put", 200, "/api/agent/memory/put", { method: "POST", body: { key: `two/r${round}`, value: 1 } });
  await call("2s.io get", 200, `/api/agent/memory/get?key=two/r${round}`);
  await call("2s.io list", 200, "/api/agent/memory/list?prefix=two/&limit=10");
  await call("2s.io delete", 200, "/api/agent/memory/delete", { method: "POST", body: { key: `two/r${round}` } });
  await call("agents put", 200, `/agents/${namespace}/memory/agents/r${round}`, { method: "PUT", body: { value: 5 } });
  await call("agents get", 200, `/agents/${namespace}/memory/agents/r${round}`);
  await call("agents list", 200, `/agents/${namespace}/memory`);
  await call("agents delete", 204, `/agents/${namespace}/memory/agents/r${round}`, { method: "DELETE" });
  // A cache miss: the key's Redis copy dropped, its next read loads it from PostgreSQL.
  redis("DEL", `tm:{${namespace}}:e:${key}`);
  await call("get after a cache miss", 200, `/api/memory?key=${encodeURIComponent(key)}`);
  await call("delete", 200, "/api/memory", { method: "POST", body: { key, delete: true } });
  await timedOut;
}

async function paymentCalls() {
  await call("paid tool: hash", 200, "/api/hash", { method: "POST", body: { text: "hello" } });
  await call("paid tool: uuid", 200, "/api/uuid?version=7&count=2", { record: true });
  // The same signed payment again: refused before the facilitator.
  const res = await fetch(recorded);
  const body = await res.text();
  if (res.status !== 409) throw new Error(`a replayed payment answered ${res.status}, not 409: ${body}`);
  await call("malformed payment", 402, "/api/uuid?version=4", {
    paid: false,
    headers: { "PAYMENT-SIGNATURE": "not-a-payment" },
  });
}

async function powCalls() {
  const challenge = await call("pow challenge", 200, "/api/pow/challenge?slug=hash", { paid: false });
  const solution = solve(challenge);
  const body = { text: "hello" };
  const headers = { "X-Pow-Solution": solution };
  await call("tool paid with proof of work", 200, "/api/hash", { method: "POST", body, headers, paid: false });
  await call("spent proof of work", 409, "/api/hash", { method: "POST", body, headers, paid: false });
}

async function freeCalls() {
  await call("find", 200, "/api/find?q=sha256%20hash%20of%20text&k=3", { paid: false });
  await call("route", 200, "/api/route", {
    method: "POST",
    body: { query: "hash text with sha256", top: 3, include: "all" },
    paid: false,
  });
  await call("pricing", 200, "/api/pricing", { paid: false });
  await call("stats", 200, "/api/stats", { paid: false });
  await call("leaderboard", 200, "/api/leaderboard?top=10", { paid: false });
  await call("reliability", 200, "/api/reliability", { paid: false });
  await call("pow describe", 200, "/api/pow", { paid: false });
  await call("unpaid call: a quote", 402, "/api/memory?key=x", { paid: false });
}

const rounds = Number(args.rounds);
const started = Date.now();
for (let round = 1; round <= rounds; round++) {
  await Promise.all([memoryCalls(round), paymentCalls(), powCalls(), freeCalls()]);
  if (round < rounds) await new Promise((resolve) => setTimeout(resolve, Number(args.pause) * 1000));
}
const summary = Object.entries(counts)
  .map(([status, n]) => `${n}x${status}`)
  .join(" ");
console.log(`load: ${rounds} rounds in ${((Date.now() - started) / 1000).toFixed(1)} s as ${buyer.address}: ${summary}`);
