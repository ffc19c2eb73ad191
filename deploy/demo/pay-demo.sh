#!/usr/bin/env bash
# Pays for a memory call with the official x402 client, end to end, on a
# local chain: anvil with our EIP-3009 token, our facilitator, and Tessera
# charging every memory route. Needs PostgreSQL (the payments ledger) at
# DATABASE_URL; `make pay-demo` runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n==> %s\n' "$*"; }
json() { node -e "process.stdout.write(String(JSON.parse(require('fs').readFileSync(0,'utf8'))$1))"; }
wait_http() {
  for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "no answer from $1" >&2; return 1
}

GATEWAY=127.0.0.1:${DEMO_GATEWAY_PORT:-18480}
FACILITATOR=127.0.0.1:${DEMO_FACILITATOR_PORT:-18402}
GRPC=127.0.0.1:${DEMO_GRPC_PORT:-18451}
# anvil's fourth dev account: it sends the settlements and pays their gas.
FACILITATOR_KEY=0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6
# What an operator sets: the facilitator only serves callers with an API key,
# and Tessera's internal gRPC only callers with the service token.
API_KEY=demo-facilitator-key-$RANDOM$RANDOM
SERVICE_TOKEN=demo-internal-token-$RANDOM$RANDOM

say "a local chain: anvil from npm, our EIP-3009 token deployed, the buyer funded"
node tests/chain/anvil.mjs > "$work/chain.json" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/chain.json" ] && break; sleep 0.2; done
rpc=$(json .rpcUrl < "$work/chain.json")
token=$(json .token < "$work/chain.json")
buyer_key=$(json .buyerKey < "$work/chain.json")
pay_to=$(json .payTo < "$work/chain.json")
echo "chain $rpc, token $token, payTo $pay_to"

say "our x402 facilitator on http://$FACILITATOR"
FACILITATOR_RPC_URL=$rpc FACILITATOR_PRIVATE_KEY=$FACILITATOR_KEY FACILITATOR_HTTP_ADDR=$FACILITATOR \
  FACILITATOR_API_KEYS=$API_KEY \
  FACILITATOR_GRPC_ADDR=127.0.0.1:0 target/debug/tessera-facilitator > "$work/facilitator.log" 2>&1 &
pids+=($!)
wait_http "http://$FACILITATOR/supported"
curl -s "http://$FACILITATOR/supported"; echo

say "Tessera charging every memory route, paid to $pay_to"
FREE_MODE=false PAYMENT_PAY_TO=$pay_to PAYMENT_NETWORK=eip155:84532 PAYMENT_ASSET=$token \
  PAYMENT_ASSET_NAME=USDC PAYMENT_ASSET_VERSION=2 FACILITATOR_URL=http://$FACILITATOR \
  FACILITATOR_API_KEY=$API_KEY PAYMENT_RPC_URL=$rpc INTERNAL_TOKEN=$SERVICE_TOKEN \
  MEMORY_EMBEDDED_PATH=$work/memory.db GATEWAY_ADDR=$GATEWAY MEMORY_GRPC_ADDR=$GRPC \
  POW_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n') POW_EMBEDDED_PATH=$work/pow.db \
  target/debug/tessera > "$work/tessera.log" 2>&1 &
pids+=($!)
wait_http "http://$GATEWAY/health"
# In paid mode the banner says how to pay, and nothing about X-Agent-Id.
for _ in $(seq 50); do grep -q '^Tessera is up' "$work/tessera.log" && break; sleep 0.1; done
if grep -q 'X-Agent-Id' "$work/tessera.log" || ! grep -q 'paid with x402' "$work/tessera.log"; then
  echo "the paid-mode banner is wrong:" >&2; cat "$work/tessera.log" >&2; exit 1
fi
sed -n '/^Tessera is up/,/^  node /p' "$work/tessera.log"

say "an unpaid call: 402 and the quote"
curl -s -i -X POST "http://$GATEWAY/api/memory/cas" -H 'Content-Type: application/json' \
  -d '{"key":"locks/import","expected":null,"value":"agent-7","ttlSeconds":30}' | sed -n '1p;/^payment-required/Ip'

say "the official x402 client (@x402/fetch) pays and retries"
result=$(node tests/chain/pay.mjs --url "http://$GATEWAY/api/memory/cas" --method POST \
  --body '{"key":"locks/import","expected":null,"value":"agent-7","ttlSeconds":30}' \
  --key "$buyer_key" --allow-asset "$token")
echo "$result"
status=$(json .status <<< "$result")
pending=$(json .paymentResponse.errorReason <<< "$result")
lookup=$(json .paymentResponse.extensions.settlement.lookup <<< "$result")
if [ "$status" != 200 ] || [ "$pending" != settlement_pending ] || [ -z "$lookup" ]; then
  echo "the paid call was not served with a pending settlement (PAYMENT_SETTLE_MODE=async, the default); logs:" >&2
  tail -20 "$work/tessera.log" "$work/facilitator.log" >&2
  exit 1
fi
say "paid: HTTP $status, answered before the chain; the settlement is at $lookup"
for _ in $(seq 200); do
  state=$(curl -s "http://$GATEWAY$lookup")
  [ "$(json .final <<< "$state")" = true ] && break
  sleep 0.1
done
echo "$state"
if [ "$(json .status <<< "$state")" != settled ]; then
  echo "the payment did not settle; logs:" >&2
  tail -20 "$work/tessera.log" "$work/facilitator.log" >&2
  exit 1
fi
say "settled in the background: $(json .transaction <<< "$state")"

say "the free tier: a tool paid with proof of work instead (README, 'Proof of work')"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$GATEWAY/api/hash" \
  -H 'Content-Type: application/json' -d '{"text":"hello"}')
[ "$status" = 402 ] || { echo "an unpaid tool call answered $status, not 402" >&2; exit 1; }
SOLUTION=$(curl -s "http://$GATEWAY/api/pow/challenge?slug=hash" | node deploy/demo/pow-solve.mjs)
answer=$(curl -s -w ' %{http_code}' -X POST "http://$GATEWAY/api/hash" -H "X-Pow-Solution: $SOLUTION" \
  -H 'Content-Type: application/json' -d '{"text":"hello"}')
echo "$answer"
case "$answer" in *'"hex":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"'*' 200') ;;
  *) echo "the proof-of-work call did not answer sha256(hello)" >&2; exit 1 ;; esac
again=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$GATEWAY/api/hash" \
  -H "X-Pow-Solution: $SOLUTION" -H 'Content-Type: application/json' -d '{"text":"hello"}')
[ "$again" = 409 ] || { echo "a spent solution answered $again, not 409" >&2; exit 1; }
say "proof of work: served once (200), refused when presented again ($again)"
