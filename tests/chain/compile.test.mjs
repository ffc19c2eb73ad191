// The committed artifacts are exactly what the pinned solc builds from the sources.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { CONTRACTS, SETTINGS, artifactPath, compileAll, staleArtifacts } from "./compile.mjs";

const COMPILE = join(dirname(fileURLToPath(import.meta.url)), "compile.mjs");
const cli = (...args) => spawnSync(process.execPath, [COMPILE, ...args], { encoding: "utf8" });

test("committed artifacts reproduce exactly from the sources", () => {
  const texts = compileAll();
  assert.deepEqual(staleArtifacts(texts), [], "run `node tests/chain/compile.mjs` and commit artifacts/");
  for (const name of CONTRACTS) {
    const a = JSON.parse(readFileSync(artifactPath(name), "utf8"));
    assert.deepEqual(Object.keys(a), ["contractName", "abi", "bytecode", "compiler"]);
    assert.equal(a.contractName, name);
    assert.match(a.bytecode, /^0x([0-9a-f]{2})+$/);
    assert.match(a.compiler.version, /^0\.8\.37\+commit\./);
    assert.deepEqual(a.compiler.settings, SETTINGS);
  }
});

test("compile.mjs --check passes on the committed artifacts", () => {
  const r = cli("--check");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /artifacts reproduce exactly/);
});

test("compile.mjs --check fails clearly on a stale or missing artifact", () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-artifacts-"));
  try {
    assert.equal(cli("--out", dir).status, 0);
    assert.equal(cli("--check", "--out", dir).status, 0);
    const path = artifactPath("TestSmartWallet", dir);
    writeFileSync(path, readFileSync(path, "utf8").replace(/"bytecode": "0x../, '"bytecode": "0x00'));
    rmSync(artifactPath("TesseraUSD", dir));
    const r = cli("--check", "--out", dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /artifacts out of date or not reproducible: .*TesseraUSD\.json, .*TestSmartWallet\.json/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
