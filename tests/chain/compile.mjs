// Compiles contracts/*.sol with the pinned solcjs into artifacts/<Name>.json.
//
//   node compile.mjs          write the artifacts
//   node compile.mjs --check  recompile in memory; exit 1 if the committed
//                             artifacts differ (the reproducibility check)
//   --out DIR                 use DIR instead of artifacts/ (for either)
//
// Fixed settings and `bytecodeHash: "none"` make the output a pure function
// of the sources and the compiler version.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import solc from "solc";

const HERE = dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS_DIR = join(HERE, "artifacts");
export const CONTRACTS = ["TesseraUSD", "TestSmartWallet", "BatchCall"];

export const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
};

/** Compiles every contract; returns { Name: artifactText }. Throws on errors. */
export function compileAll() {
  const sources = {};
  for (const name of CONTRACTS) {
    const path = `contracts/${name}.sol`;
    sources[path] = { content: readFileSync(join(HERE, path), "utf8") };
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  for (const w of (output.errors ?? []).filter((e) => e.severity !== "error")) {
    process.stderr.write(w.formattedMessage);
  }
  if (errors.length > 0) {
    throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join("\n")}`);
  }
  const texts = {};
  for (const name of CONTRACTS) {
    const c = output.contracts[`contracts/${name}.sol`][name];
    const artifact = {
      contractName: name,
      abi: c.abi,
      bytecode: `0x${c.evm.bytecode.object}`,
      compiler: { version: solc.version(), settings: SETTINGS },
    };
    texts[name] = `${JSON.stringify(artifact, null, 2)}\n`;
  }
  return texts;
}

export const artifactPath = (name, dir = ARTIFACTS_DIR) => join(dir, `${name}.json`);

/** Names of artifacts in `dir` that are missing or differ from a fresh build. */
export function staleArtifacts(texts = compileAll(), dir = ARTIFACTS_DIR) {
  return CONTRACTS.filter((name) => {
    try {
      return readFileSync(artifactPath(name, dir), "utf8") !== texts[name];
    } catch {
      return true;
    }
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { check: { type: "boolean" }, out: { type: "string" } } });
  const dir = values.out ?? ARTIFACTS_DIR;
  const paths = (names) => names.map((n) => artifactPath(n, dir)).join(", ");
  try {
    const texts = compileAll();
    if (values.check) {
      const stale = staleArtifacts(texts, dir);
      if (stale.length > 0) {
        console.error(
          `artifacts out of date or not reproducible: ${paths(stale)}\n` +
            `rebuild with \`node tests/chain/compile.mjs\` (solc ${solc.version()}) and commit them`,
        );
        process.exit(1);
      }
      console.log(`artifacts reproduce exactly (solc ${solc.version()})`);
    } else {
      mkdirSync(dir, { recursive: true });
      for (const name of CONTRACTS) writeFileSync(artifactPath(name, dir), texts[name]);
      console.log(`wrote ${paths(CONTRACTS)}`);
    }
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
