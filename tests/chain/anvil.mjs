// A real local chain for tests: anvil from the npm package, TesseraUSD on it.
//
//   import { startChain } from "./anvil.mjs";
//   const chain = await startChain({ mint: { [BUYER.address]: 10_000_000n } });
//   ... chain.rpcUrl, chain.token, chain.publicClient, chain.walletClient ...
//   await chain.stop();
//
// Run directly (`node tests/chain/anvil.mjs [--port N]`) it starts a chain,
// deploys the token and the batch contract (at Multicall3's address), mints
// 1,000 USDC to the buyer, prints one JSON line ({rpcUrl, chainId, token,
// deployer, buyer, payTo}) and runs until killed.
import { spawn } from "node:child_process";
import { accessSync, chmodSync, constants, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createPublicClient, createWalletClient, defineChain, getAddress, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const HERE = dirname(fileURLToPath(import.meta.url));

/** The anvil binary shipped in the npm registry package (postinstall is not needed). */
export const ANVIL_BIN =
  process.env.ANVIL_BIN ?? join(HERE, "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");

/** Base Sepolia's chain id, so the v1 network name `base-sepolia` maps here. */
export const CHAIN_ID = 84532;
export const NETWORK = `eip155:${CHAIN_ID}`;
/** Base Sepolia USDC's EIP-712 domain name and version. */
export const TOKEN_NAME = "USDC";
export const TOKEN_VERSION = "2";

/** Anvil's default dev keys (mnemonic "test test test test test test test test test test test junk"). */
export const DEV_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];
export const [DEPLOYER, BUYER, PAY_TO, OTHER] = DEV_KEYS.map((k) => privateKeyToAccount(k));

export const loadArtifact = (name) =>
  JSON.parse(readFileSync(join(HERE, "artifacts", `${name}.json`), "utf8"));

export const TOKEN_ABI = loadArtifact("TesseraUSD").abi;
export const WALLET_ABI = loadArtifact("TestSmartWallet").abi;

export function chainFor(rpcUrl) {
  return defineChain({
    id: CHAIN_ID,
    name: "anvil (base-sepolia id)",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function ensureExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    chmodSync(path, 0o755); // throws ENOENT with the path if `npm ci` was not run
  }
}

async function rpcAnswers(url) {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
    });
    return res.ok && Number((await res.json()).result) === CHAIN_ID;
  } catch {
    return false;
  }
}

/** Starts anvil on a free loopback port; resolves once it answers JSON-RPC. */
export async function startAnvil({ port, timeoutMs = 20_000 } = {}) {
  ensureExecutable(ANVIL_BIN);
  port ??= await freePort();
  const args = ["--host", "127.0.0.1", "--port", String(port), "--chain-id", String(CHAIN_ID), "--silent"];
  const child = spawn(ANVIL_BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let exited = null;
  child.on("exit", (code, signal) => (exited = { code, signal }));
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit); // never leave an orphan anvil behind
  child.once("exit", () => process.off("exit", killOnExit));
  const rpcUrl = `http://127.0.0.1:${port}`;
  const stop = () =>
    new Promise((resolve) => {
      if (exited) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  const deadline = Date.now() + timeoutMs;
  while (!(await rpcAnswers(rpcUrl))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`anvil did not come up on ${rpcUrl} (${JSON.stringify(exited)}): ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { rpcUrl, port, process: child, stop };
}

export function clients(rpcUrl, account = DEPLOYER) {
  const chain = chainFor(rpcUrl);
  const transport = http(rpcUrl);
  return {
    publicClient: createPublicClient({ chain, transport, pollingInterval: 50 }),
    walletClient: createWalletClient({ chain, transport, account, pollingInterval: 50 }),
  };
}

/** Deploys an artifact; resolves to the contract address. */
export async function deploy({ publicClient, walletClient }, name, args = []) {
  const { abi, bytecode } = loadArtifact(name);
  const hash = await walletClient.deployContract({ abi, bytecode, args });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`deploying ${name} failed`);
  return getAddress(receipt.contractAddress);
}

/** Sends a transaction to `address` and waits for a successful receipt. */
export async function send({ publicClient, walletClient }, address, functionName, args, abi) {
  abi ??= TOKEN_ABI;
  const hash = await walletClient.writeContract({ address, abi, functionName, args });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${functionName} reverted (${hash})`);
  return receipt;
}

/** Multicall3's address on Base and most chains: the facilitator batches there. */
export const MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11";

/**
 * Puts our BatchCall (Multicall3's `aggregate3`) at Multicall3's canonical
 * address, so the facilitator batches settlements here as on Base.
 */
export async function installBatchCall(c) {
  const deployed = await deploy(c, "BatchCall");
  const code = await c.publicClient.getCode({ address: deployed });
  await c.publicClient.request({ method: "anvil_setCode", params: [MULTICALL3, code] });
}

/**
 * Starts anvil, deploys TesseraUSD("USDC", "2") from DEPLOYER and mints
 * `mint` ({address: atomic units}). `stop()` ends anvil.
 */
export async function startChain({ port, mint = {} } = {}) {
  const anvil = await startAnvil({ port });
  try {
    const c = clients(anvil.rpcUrl);
    const token = await deploy(c, "TesseraUSD", [TOKEN_NAME, TOKEN_VERSION]);
    await installBatchCall(c);
    for (const [to, amount] of Object.entries(mint)) await send(c, token, "mint", [to, BigInt(amount)]);
    const balanceOf = (who) =>
      c.publicClient.readContract({ address: token, abi: TOKEN_ABI, functionName: "balanceOf", args: [who] });
    return { ...anvil, ...c, chainId: CHAIN_ID, network: NETWORK, token, balanceOf };
  } catch (err) {
    await anvil.stop();
    throw err;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: "string" } } });
  const chain = await startChain({
    port: values.port ? Number(values.port) : undefined,
    mint: { [BUYER.address]: 1_000_000_000n },
  });
  console.log(
    JSON.stringify({
      rpcUrl: chain.rpcUrl,
      chainId: CHAIN_ID,
      token: chain.token,
      deployer: DEPLOYER.address,
      buyer: BUYER.address,
      buyerKey: DEV_KEYS[1],
      payTo: PAY_TO.address,
    }),
  );
  const shutdown = () => chain.stop().then(() => process.exit(0));
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}
