// Reference proof-of-work solver. Reads a challenge as GET /api/pow/challenge
// answers it ({challenge, difficulty, token, expiresAt}) on stdin and prints
// the X-Pow-Solution value "token:nonce": the first nonce such that
// sha256(challenge + ":" + nonce) has at least `difficulty` leading zero bits.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

const { challenge, difficulty, token } = JSON.parse(readFileSync(0, "utf8"));
const zeroBits = (digest) => {
  let bits = 0;
  for (const byte of digest) {
    if (byte !== 0) return bits + Math.clz32(byte) - 24;
    bits += 8;
  }
  return bits;
};
for (let nonce = 0; ; nonce++) {
  const digest = createHash("sha256").update(`${challenge}:${nonce}`).digest();
  if (zeroBits(digest) >= difficulty) {
    console.log(`${token}:${nonce}`);
    break;
  }
}
