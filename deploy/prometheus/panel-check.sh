#!/usr/bin/env bash
# Every Grafana panel shows data: starts the split services (the real
# binaries, memory on Redis + PostgreSQL, paid with x402 on a local chain),
# a real Prometheus scraping each /metrics every second, a short load
# (panel-load.mjs), then asks Prometheus every panel query of
# deploy/grafana/dashboards/ (panel_check.py). A query that returns no
# series, or only NaN, fails the run. The check is shown to fail: on a
# fixture of such panels (testdata/empty-panel.json), and, for the
# dashboards' structure checked first (--lint), on a repeated panel id and
# title (testdata/repeated-panel.json).
#
# Needs: the binaries (cargo build -p tessera-gateway -p tessera-memory
# -p tessera-payment -p tessera-facilitator -p tessera-pow -p tessera-tools
# -p tessera-discovery -p tessera-stats), `make chain-deps`, prometheus
# (Debian package), Redis at REDIS_URL and PostgreSQL at DATABASE_URL.
# PANEL_CHECK_KEEP=1 keeps the work directory (logs, Prometheus data);
# PANEL_CHECK_VERBOSE=1 prints what each query returned.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
BIN=${TESSERA_BIN_DIR:-target/debug}
HERE=deploy/prometheus
DASHBOARDS=(deploy/grafana/dashboards/*.json)
SERVICES=(gateway memory payment facilitator pow tools discovery stats)

# panel_check.py imports its siblings: no __pycache__ left in the tree.
export PYTHONDONTWRITEBYTECODE=1

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

for service in "${SERVICES[@]}"; do
  [ -x "$BIN/tessera-$service" ] || die "$BIN/tessera-$service is missing: cargo build -p tessera-$service (make panels-check builds them)"
done
[ -d tests/chain/node_modules/@x402/fetch ] || die "tests/chain/node_modules is missing: make chain-deps"
command -v prometheus >/dev/null || die "prometheus not found: install the Debian 'prometheus' package (apt-get install prometheus)"
redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG || die "Redis does not answer at REDIS_URL"
psql "$DATABASE_URL" -qAtc 'select 1' >/dev/null 2>&1 || die "PostgreSQL does not answer at DATABASE_URL"

say "the dashboards can be provisioned (panel_check.py --lint)"
python3 "$HERE/panel_check.py" --lint "${DASHBOARDS[@]}"
if out=$(python3 "$HERE/panel_check.py" --lint "$HERE/testdata/repeated-panel.json" 2>&1); then
  die "panel_check.py --lint accepted a repeated panel id and title"
fi
grep -q 'panel id 1 used by' <<<"$out" && grep -q "panel title 'Requests' used by" <<<"$out" \
  || { echo "$out" >&2; die "panel_check.py --lint did not name the repeated panel id and title"; }

work=$(mktemp -d -t tessera-panel-check.XXXXXX)
# One PostgreSQL schema per service, one Redis namespace (the buyer's): this run's only.
schema=panels_$$_$RANDOM
declare -A pids=()
cleanup() {
  local status=$?
  for name in "${!pids[@]}"; do kill "${pids[$name]}" 2>/dev/null || true; done
  for name in "${!pids[@]}"; do
    for _ in $(seq 50); do kill -0 "${pids[$name]}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${pids[$name]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ -s "$work/namespace" ]; then
    redis-cli -u "$REDIS_URL" --scan --pattern "tm:{$(cat "$work/namespace")}:*" \
      | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
  fi
  for service in memory payment stats discovery; do
    psql "$DATABASE_URL" -qc "DROP SCHEMA IF EXISTS ${schema}_$service CASCADE" >/dev/null 2>&1 || true
  done
  if [ "${PANEL_CHECK_KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports free on 127.0.0.1 a moment ago, all distinct.
read -r -a ports <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(17)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
')"
port() { echo "127.0.0.1:${ports[$1]}"; }
GATEWAY=$(port 0) FACILITATOR=$(port 1) FACILITATOR_GRPC=$(port 2) PROMETHEUS=$(port 3) REGISTRY=$(port 16)
declare -A GRPC=([memory]=$(port 4) [payment]=$(port 5) [pow]=$(port 6) [tools]=$(port 7) [discovery]=$(port 8) [stats]=$(port 9))
declare -A METRICS=([memory]=$(port 10) [payment]=$(port 11) [pow]=$(port 12) [tools]=$(port 13) [discovery]=$(port 14) [stats]=$(port 15)
  [gateway]=$GATEWAY [facilitator]=$FACILITATOR)

logs_of() {
  echo "--- $1 (last lines of $work/$1.log, scrapes left out)" >&2
  grep -v 'GET /metrics' "$work/$1.log" | tail -n 40 >&2 || true
}
start() { # name command... : runs it in the background, output in $work/name.log
  local name=$1; shift
  "$@" >"$work/$name.log" 2>&1 &
  pids[$name]=$!
}
wait_until() { # name what test-command... : until the test passes, or the process dies
  local name=$1 what=$2; shift 2
  for _ in $(seq 150); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "${pids[$name]}" 2>/dev/null || { logs_of "$name"; die "$name exited before $what"; }
    sleep 0.1
  done
  logs_of "$name"; die "$name: no $what after 15 s"
}
foreground() { # command... : runs it as a child the traps can stop at once; its status
  "$@" &
  pids[foreground]=$!
  local status=0
  wait "${pids[foreground]}" || status=$?
  unset 'pids[foreground]'
  return "$status"
}
listening() { (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }
json() { node -e "process.stdout.write(String(JSON.parse(require('fs').readFileSync(0,'utf8'))$1))"; }
pg_url() { # the database URL with search_path set to this service's schema
  local separator='?'; [[ $DATABASE_URL == *\?* ]] && separator='&'
  echo "${DATABASE_URL}${separator}options=-c%20search_path%3D${schema}_$1"
}

say "a local chain (anvil, our EIP-3009 token)"
start chain node tests/chain/anvil.mjs
wait_until chain "chain address" grep -q rpcUrl "$work/chain.log"
chain=$(grep rpcUrl "$work/chain.log")
rpc=$(json .rpcUrl <<<"$chain") token=$(json .token <<<"$chain") pay_to=$(json .payTo <<<"$chain")

for service in memory payment stats discovery; do
  psql "$DATABASE_URL" -qc "CREATE SCHEMA ${schema}_$service" >/dev/null
done
INTERNAL_TOKEN=panel-check-$RANDOM$RANDOM
NO_COLOR=1
export INTERNAL_TOKEN NO_COLOR
API_KEY=panel-check-facilitator-$RANDOM$RANDOM
# anvil's fourth dev account sends the settlements.
FACILITATOR_KEY=0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6

say "the split services on 127.0.0.1 (logs in $work)"
start facilitator env FACILITATOR_RPC_URL="$rpc" FACILITATOR_PRIVATE_KEY=$FACILITATOR_KEY \
  FACILITATOR_HTTP_ADDR="$FACILITATOR" FACILITATOR_GRPC_ADDR="$FACILITATOR_GRPC" FACILITATOR_API_KEYS="$API_KEY" \
  "$BIN/tessera-facilitator"
start memory env MEMORY_BACKEND=redis-postgres REDIS_URL="$REDIS_URL" DATABASE_URL="$(pg_url memory)" \
  DATABASE_POOL_SIZE=4 MEMORY_GRPC_ADDR="${GRPC[memory]}" METRICS_ADDR="${METRICS[memory]}" "$BIN/tessera-memory"
start payment env DATABASE_URL="$(pg_url payment)" FACILITATOR_URL="http://$FACILITATOR" FACILITATOR_API_KEY="$API_KEY" \
  PAYMENT_PAY_TO="$pay_to" PAYMENT_NETWORK=eip155:84532 PAYMENT_ASSET="$token" PAYMENT_ASSET_NAME=USDC \
  PAYMENT_ASSET_VERSION=2 PAYMENT_RPC_URL="$rpc" PAYMENT_RETRY_SECONDS=1 \
  PAYMENT_GRPC_ADDR="${GRPC[payment]}" METRICS_ADDR="${METRICS[payment]}" "$BIN/tessera-payment"
start pow env POW_SECRET="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" POW_DIFFICULTY=8 \
  POW_STORE=embedded POW_EMBEDDED_PATH="$work/pow.db" \
  POW_GRPC_ADDR="${GRPC[pow]}" METRICS_ADDR="${METRICS[pow]}" "$BIN/tessera-pow"
# A Bazaar-style registry with nothing listed: with a registry to crawl,
# discovery opens its store (and so its pool) as in production.
mkdir -p "$work/registry/discovery"
echo '{"x402Version": 2, "items": [], "pagination": {"limit": 100, "offset": 0, "total": 0}}' \
  >"$work/registry/discovery/resources"
start registry python3 -m http.server "${REGISTRY#*:}" --bind 127.0.0.1 --directory "$work/registry"
wait_until registry "HTTP answer" curl -fs "http://$REGISTRY/discovery/resources"
start tools env TOOLS_GRPC_ADDR="${GRPC[tools]}" METRICS_ADDR="${METRICS[tools]}" "$BIN/tessera-tools"
start discovery env DISCOVERY_STORE=postgres DATABASE_URL="$(pg_url discovery)" PAYMENT_NETWORK=eip155:84532 \
  DISCOVERY_REGISTRIES="http://$REGISTRY" DISCOVERY_ALLOW_PRIVATE=true DISCOVERY_CRAWL_SECONDS=2 \
  PAYMENT_ASSET="$token" PAYMENT_PAY_TO="$pay_to" \
  DISCOVERY_GRPC_ADDR="${GRPC[discovery]}" METRICS_ADDR="${METRICS[discovery]}" "$BIN/tessera-discovery"
start stats env STATS_STORE=postgres DATABASE_URL="$(pg_url stats)" STATS_RPC_URL="$rpc" STATS_ASSET="$token" \
  STATS_NETWORK=eip155:84532 STATS_CONFIRMATIONS=0 STATS_INDEX_SECONDS=1 \
  STATS_GRPC_ADDR="${GRPC[stats]}" METRICS_ADDR="${METRICS[stats]}" "$BIN/tessera-stats"
wait_until facilitator "HTTP answer" curl -fs "http://$FACILITATOR/supported"
for service in memory payment pow tools discovery stats; do
  wait_until "$service" "gRPC listener on ${GRPC[$service]}" listening "${GRPC[$service]}"
done
start gateway env FREE_MODE=false GATEWAY_ADDR="$GATEWAY" PAYMENT_URL="http://${GRPC[payment]}" \
  MEMORY_URL="http://${GRPC[memory]}" TOOLS_URL="http://${GRPC[tools]}" POW_URL="http://${GRPC[pow]}" \
  DISCOVERY_URL="http://${GRPC[discovery]}" STATS_URL="http://${GRPC[stats]}" STATS_FLUSH_MILLIS=100 \
  IDEMPOTENCY_STORE=memory RELIABILITY_REDIS_URL="$REDIS_URL" RELIABILITY_DATABASE_URL="$DATABASE_URL" \
  RELIABILITY_PROBE_SECONDS=1 "$BIN/tessera-gateway"
wait_until gateway "HTTP answer" curl -fs "http://$GATEWAY/health"

say "prometheus on http://$PROMETHEUS scraping every /metrics each second"
{
  echo "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}"
  echo "scrape_configs:"
  for service in "${!METRICS[@]}"; do
    echo "  - {job_name: tessera-$service, static_configs: [{targets: ['${METRICS[$service]}']}]}"
  done
} >"$work/prometheus.yml"
start prometheus prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="$PROMETHEUS" --log.level=warn
wait_until prometheus "readiness" curl -fs "http://$PROMETHEUS/-/ready"
# Every target scraped once and up (a binary without /metrics on METRICS_ADDR is down).
targets_up() {
  curl -fs "http://$PROMETHEUS/api/v1/targets?state=active" | python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
down = [t for t in targets if t["health"] != "up"]
for t in down:
    print(t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"])
sys.exit(1 if down or not targets else 0)'
}
for _ in $(seq 50); do targets_up >/dev/null && break; sleep 0.2; done
down=$(targets_up) || true
[ -z "$down" ] || printf 'error: scrape targets down:\n%s\n' "$down" >&2

say "a short load: paid and free calls on every surface"
foreground node "$HERE/panel-load.mjs" --gateway "http://$GATEWAY" --rpc "$rpc" --token "$token" --redis "$REDIS_URL" \
  --namespace-file "$work/namespace" || { for s in gateway payment memory; do logs_of "$s"; done; die "the load failed"; }

say "every panel query of ${DASHBOARDS[*]}"
failed=false
foreground python3 "$HERE/panel_check.py" --prometheus "http://$PROMETHEUS" --interval 1m --settle 15 \
  ${PANEL_CHECK_VERBOSE:+--verbose} "${DASHBOARDS[@]}" \
  || failed=true

say "the check must fail on panels without data ($HERE/testdata/empty-panel.json)"
if out=$(python3 "$HERE/panel_check.py" --prometheus "http://$PROMETHEUS" --interval 1m \
  "$HERE/testdata/empty-panel.json" 2>&1); then
  echo "$out" >&2; die "panel_check.py accepted panels whose queries return no data"
fi
grep -q 'FAIL empty-panel.json panel 2 "No such service" \[A\]: no series' <<<"$out" \
  && grep -q 'FAIL empty-panel.json panel 3 "Only NaN" \[A\]: only NaN' <<<"$out" \
  && ! grep -q 'panel 1 ' <<<"$out" \
  || { echo "$out" >&2; die "panel_check.py did not report exactly the panels without data"; }
echo "panel_check.py reports the fixture's panel without series and its panel of only NaN, and only them"

[ -z "$down" ] && ! $failed || die "some scrape targets are down or some panels have no data (above)"
say "every panel has data"
