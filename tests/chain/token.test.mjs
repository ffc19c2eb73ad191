// TesseraUSD on a fresh anvil: ERC-20 basics and every EIP-3009 rule.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { hashDomain, keccak256, parseEventLogs, parseSignature, toHex } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import {
  BUYER, CHAIN_ID, DEPLOYER, DEV_KEYS, OTHER, PAY_TO, TOKEN_ABI, TOKEN_NAME, TOKEN_VERSION, WALLET_ABI,
  clients, deploy, send, startChain,
} from "./anvil.mjs";

const AUTH_FIELDS = [
  { name: "from", type: "address" },
  { name: "to", type: "address" },
  { name: "value", type: "uint256" },
  { name: "validAfter", type: "uint256" },
  { name: "validBefore", type: "uint256" },
  { name: "nonce", type: "bytes32" },
];
const TYPES = {
  TransferWithAuthorization: AUTH_FIELDS,
  ReceiveWithAuthorization: AUTH_FIELDS,
  CancelAuthorization: [
    { name: "authorizer", type: "address" },
    { name: "nonce", type: "bytes32" },
  ],
};
const START = 1_000_000_000n; // 1,000 USDC

let chain;
let wallet; // TestSmartWallet owned by OTHER
let nonceSeq = 0;
const freshNonce = () => keccak256(toHex(`nonce-${process.pid}-${++nonceSeq}`));

const read = (functionName, args = []) =>
  chain.publicClient.readContract({ address: chain.token, abi: TOKEN_ABI, functionName, args });
const domain = () => ({ name: TOKEN_NAME, version: TOKEN_VERSION, chainId: CHAIN_ID, verifyingContract: chain.token });
const sign = (signer, primaryType, message) =>
  signer.signTypedData({ domain: domain(), types: { [primaryType]: TYPES[primaryType] }, primaryType, message });
const now = async () => (await chain.publicClient.getBlock()).timestamp;

/** An authorization message from `from` with defaults valid for an hour. */
async function auth(overrides = {}) {
  return {
    from: BUYER.address,
    to: PAY_TO.address,
    value: 1_000n,
    validAfter: 0n,
    validBefore: (await now()) + 3600n,
    nonce: freshNonce(),
    ...overrides,
  };
}
const args = (m) => [m.from, m.to, m.value, m.validAfter, m.validBefore, m.nonce];
const vrs = (sig) => {
  const { v, r, s } = parseSignature(sig);
  return [Number(v), r, s];
};
/** Sends as `account` (default: DEPLOYER, a third-party relayer). */
const call = (functionName, a, account = DEPLOYER) =>
  send(clients(chain.rpcUrl, account), chain.token, functionName, a);

before(async () => {
  chain = await startChain({ mint: { [BUYER.address]: START } });
  wallet = await deploy(chain, "TestSmartWallet", [OTHER.address]);
  await send(chain, chain.token, "mint", [wallet, START]);
});
after(() => chain?.stop());

describe("TesseraUSD", () => {
  test("dev accounts are anvil's mnemonic accounts", () => {
    const mnemonic = "test test test test test test test test test test test junk";
    DEV_KEYS.forEach((_, i) => {
      assert.equal([DEPLOYER, BUYER, PAY_TO, OTHER][i].address, mnemonicToAccount(mnemonic, { addressIndex: i }).address);
    });
  });

  test("metadata, EIP-712 domain and type hashes", async () => {
    assert.equal(await read("name"), "USDC");
    assert.equal(await read("version"), "2");
    assert.equal(await read("symbol"), "USDC");
    assert.equal(await read("decimals"), 6);
    assert.equal(await read("owner"), DEPLOYER.address);
    assert.equal(await read("totalSupply"), 2n * START);
    const expected = hashDomain({
      domain: domain(),
      types: {
        EIP712Domain: [
          { name: "name", type: "string" },
          { name: "version", type: "string" },
          { name: "chainId", type: "uint256" },
          { name: "verifyingContract", type: "address" },
        ],
      },
    });
    assert.equal(await read("DOMAIN_SEPARATOR"), expected);
    const [, name, version, chainId, verifyingContract] = await read("eip712Domain");
    assert.deepEqual([name, version, chainId, verifyingContract], ["USDC", "2", BigInt(CHAIN_ID), chain.token]);
    const h = (s) => keccak256(toHex(s));
    assert.equal(
      await read("TRANSFER_WITH_AUTHORIZATION_TYPEHASH"),
      h("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"),
    );
    assert.equal(
      await read("RECEIVE_WITH_AUTHORIZATION_TYPEHASH"),
      h("ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"),
    );
    assert.equal(await read("CANCEL_AUTHORIZATION_TYPEHASH"), h("CancelAuthorization(address authorizer,bytes32 nonce)"));
  });

  test("ERC-20 transfer, approve, transferFrom; mint is owner-only", async () => {
    const before = await chain.balanceOf(OTHER.address);
    await call("transfer", [OTHER.address, 5n], BUYER);
    assert.equal(await chain.balanceOf(OTHER.address), before + 5n);
    await call("approve", [PAY_TO.address, 7n], BUYER);
    assert.equal(await read("allowance", [BUYER.address, PAY_TO.address]), 7n);
    await call("transferFrom", [BUYER.address, OTHER.address, 7n], PAY_TO);
    assert.equal(await read("allowance", [BUYER.address, PAY_TO.address]), 0n);
    await assert.rejects(call("transferFrom", [BUYER.address, OTHER.address, 1n], PAY_TO), /exceeds allowance/);
    await assert.rejects(call("transfer", [BUYER.address, 1n << 200n], OTHER), /ERC20: transfer amount exceeds balance/);
    await assert.rejects(call("mint", [OTHER.address, 1n], OTHER), /caller is not the owner/);
  });

  test("transferWithAuthorization (v, r, s) moves exactly value; replay reverts", async () => {
    const m = await auth({ value: 2_000n });
    const sig = await sign(BUYER, "TransferWithAuthorization", m);
    const [from0, to0, supply0] = [await chain.balanceOf(m.from), await chain.balanceOf(m.to), await read("totalSupply")];
    assert.equal(await read("authorizationState", [m.from, m.nonce]), false);

    const receipt = await call("transferWithAuthorization", [...args(m), ...vrs(sig)]);

    assert.equal(await chain.balanceOf(m.from), from0 - m.value);
    assert.equal(await chain.balanceOf(m.to), to0 + m.value);
    assert.equal(await read("totalSupply"), supply0);
    assert.equal(await read("authorizationState", [m.from, m.nonce]), true);
    const events = parseEventLogs({ abi: TOKEN_ABI, logs: receipt.logs }).map((e) => [e.eventName, e.args]);
    assert.deepEqual(events, [
      ["AuthorizationUsed", { authorizer: m.from, nonce: m.nonce }],
      ["Transfer", { from: m.from, to: m.to, value: m.value }],
    ]);

    await assert.rejects(call("transferWithAuthorization", [...args(m), ...vrs(sig)]), /authorization is used or canceled/);
    await assert.rejects(call("transferWithAuthorization", [...args(m), sig]), /authorization is used or canceled/);
  });

  test("time window: not yet valid and expired revert", async () => {
    const t = await now();
    const early = await auth({ validAfter: t + 3600n, validBefore: t + 7200n });
    await assert.rejects(
      call("transferWithAuthorization", [...args(early), await sign(BUYER, "TransferWithAuthorization", early)]),
      /authorization is not yet valid/,
    );
    const late = await auth({ validBefore: t - 1n });
    await assert.rejects(
      call("transferWithAuthorization", [...args(late), await sign(BUYER, "TransferWithAuthorization", late)]),
      /authorization is expired/,
    );
    assert.equal(await read("authorizationState", [BUYER.address, early.nonce]), false);
  });

  test("wrong signer, tampered message, high-s and bad v are invalid signatures", async () => {
    const m = await auth();
    const byOther = await sign(OTHER, "TransferWithAuthorization", m);
    await assert.rejects(call("transferWithAuthorization", [...args(m), byOther]), /FiatTokenV2: invalid signature/);

    const sig = await sign(BUYER, "TransferWithAuthorization", m);
    await assert.rejects(
      call("transferWithAuthorization", [...args({ ...m, value: m.value + 1n }), sig]),
      /FiatTokenV2: invalid signature/,
    );
    const { r, s, v } = parseSignature(sig);
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const highS = toHex(n - BigInt(s), { size: 32 });
    await assert.rejects(
      call("transferWithAuthorization", [...args(m), v === 27n ? 28 : 27, r, highS]),
      /FiatTokenV2: invalid signature/,
    );
    await assert.rejects(call("transferWithAuthorization", [...args(m), Number(v) - 27, r, s]), /FiatTokenV2: invalid signature/);
    await assert.rejects(call("transferWithAuthorization", [...args(m), sig.slice(0, -2)]), /FiatTokenV2: invalid signature/);
    // the untouched signature still works: none of the failures used the nonce
    await call("transferWithAuthorization", [...args(m), sig]);
  });

  test("a signature for TransferWithAuthorization is not one for ReceiveWithAuthorization", async () => {
    const m = await auth();
    const sig = await sign(BUYER, "TransferWithAuthorization", m);
    await assert.rejects(call("receiveWithAuthorization", [...args(m), sig], PAY_TO), /FiatTokenV2: invalid signature/);
  });

  test("insufficient balance reverts and leaves the nonce unused", async () => {
    const m = await auth({ value: START * 10n });
    await assert.rejects(
      call("transferWithAuthorization", [...args(m), await sign(BUYER, "TransferWithAuthorization", m)]),
      /ERC20: transfer amount exceeds balance/,
    );
    assert.equal(await read("authorizationState", [m.from, m.nonce]), false);
  });

  test("bytes overload, EOA signer", async () => {
    const m = await auth({ value: 1_234n });
    const before = await chain.balanceOf(m.to);
    await call("transferWithAuthorization", [...args(m), await sign(BUYER, "TransferWithAuthorization", m)]);
    assert.equal(await chain.balanceOf(m.to), before + m.value);
  });

  test("ERC-1271 smart wallet: owner's signature moves the wallet's tokens (both overloads)", async () => {
    const walletOwner = await chain.publicClient.readContract({ address: wallet, abi: WALLET_ABI, functionName: "owner" });
    assert.equal(walletOwner, OTHER.address);
    const m = await auth({ from: wallet, value: 3_000n });
    const sig = await sign(OTHER, "TransferWithAuthorization", m);
    const [w0, to0] = [await chain.balanceOf(wallet), await chain.balanceOf(m.to)];
    await call("transferWithAuthorization", [...args(m), sig]);
    assert.equal(await chain.balanceOf(wallet), w0 - m.value);
    assert.equal(await chain.balanceOf(m.to), to0 + m.value);
    assert.equal(await read("authorizationState", [wallet, m.nonce]), true);

    const m2 = await auth({ from: wallet });
    await call("transferWithAuthorization", [...args(m2), ...vrs(await sign(OTHER, "TransferWithAuthorization", m2))]);

    const m3 = await auth({ from: wallet });
    const notOwner = await sign(BUYER, "TransferWithAuthorization", m3);
    await assert.rejects(call("transferWithAuthorization", [...args(m3), notOwner]), /FiatTokenV2: invalid signature/);
  });

  test("receiveWithAuthorization requires caller == to", async () => {
    const m = await auth({ value: 500n });
    const sig = await sign(BUYER, "ReceiveWithAuthorization", m);
    await assert.rejects(call("receiveWithAuthorization", [...args(m), sig]), /caller must be the payee/);
    await assert.rejects(call("receiveWithAuthorization", [...args(m), sig], OTHER), /caller must be the payee/);
    const before = await chain.balanceOf(m.to);
    await call("receiveWithAuthorization", [...args(m), ...vrs(sig)], PAY_TO);
    assert.equal(await chain.balanceOf(m.to), before + m.value);
    await assert.rejects(call("receiveWithAuthorization", [...args(m), sig], PAY_TO), /used or canceled/);

    const m2 = await auth({ value: 1n });
    await call("receiveWithAuthorization", [...args(m2), await sign(BUYER, "ReceiveWithAuthorization", m2)], PAY_TO);
  });

  test("cancelAuthorization blocks later use; authorizationState flips", async () => {
    const m = await auth();
    const transferSig = await sign(BUYER, "TransferWithAuthorization", m);
    const cancel = { authorizer: BUYER.address, nonce: m.nonce };
    await assert.rejects(
      call("cancelAuthorization", [cancel.authorizer, cancel.nonce, await sign(OTHER, "CancelAuthorization", cancel)]),
      /FiatTokenV2: invalid signature/,
    );
    assert.equal(await read("authorizationState", [BUYER.address, m.nonce]), false);
    const receipt = await call("cancelAuthorization", [
      cancel.authorizer,
      cancel.nonce,
      ...vrs(await sign(BUYER, "CancelAuthorization", cancel)),
    ]);
    assert.deepEqual(
      parseEventLogs({ abi: TOKEN_ABI, logs: receipt.logs }).map((e) => [e.eventName, e.args]),
      [["AuthorizationCanceled", { authorizer: BUYER.address, nonce: m.nonce }]],
    );
    assert.equal(await read("authorizationState", [BUYER.address, m.nonce]), true);
    await assert.rejects(call("transferWithAuthorization", [...args(m), transferSig]), /authorization is used or canceled/);
    await assert.rejects(
      call("cancelAuthorization", [cancel.authorizer, cancel.nonce, await sign(BUYER, "CancelAuthorization", cancel)]),
      /authorization is used or canceled/,
    );
  });
});
