// Validates an OpenAPI JSON document against the OpenAPI
// specification's own JSON Schema (2.0, 3.0, 3.1 or 3.2, by its `openapi`
// field) with @seriousme/openapi-schema-validator, which also checks that
// every $ref resolves. Reads the file named on the command line, or stdin.
//
//   node tests/chain/validate-openapi.mjs openapi.json
//   curl -s localhost:8080/openapi.json | node tests/chain/validate-openapi.mjs
//
// Prints `valid: OpenAPI <version>` and exits 0, or prints the errors and
// exits 1 (2 for an unreadable input).

import { readFile } from "node:fs/promises";
import { Validator } from "@seriousme/openapi-schema-validator";

async function readInput(path) {
  if (path && path !== "-") {
    return readFile(path, "utf-8");
  }
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf-8");
}

let specification;
try {
  const text = await readInput(process.argv[2]);
  specification = JSON.parse(text);
} catch (error) {
  console.error(`cannot read an OpenAPI JSON document: ${error.message}`);
  process.exit(2);
}

const validator = new Validator();
const result = await validator.validate(specification);
if (result.valid) {
  console.log(`valid: OpenAPI ${validator.version}`);
} else {
  console.error("invalid OpenAPI document:");
  console.error(JSON.stringify(result.errors, null, 2));
  process.exit(1);
}
