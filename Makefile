SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

REDIS_URL ?= redis://127.0.0.1:6379
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
export REDIS_URL DATABASE_URL

# A URL with any password masked, for messages.
redact = $(shell printf '%s' '$(1)' | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#')

# cargo-nextest when installed, plain cargo test otherwise.
TEST_CMD := $(if $(shell command -v cargo-nextest 2>/dev/null),cargo nextest run --workspace --no-tests=pass,cargo test --workspace)

.PHONY: help run test check-services chain-deps py-deps k8s-check pay-demo bench jepsen fmt lint build alerts-check panels-check

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

run: ## Build and start the all-in-one on the embedded backend (no Redis/Postgres).
	FREE_MODE=true cargo run --release -p tessera-suite --bin tessera

test: check-services chain-deps py-deps k8s-check alerts-check panels-check ## Everything, incl. the conformance suite on Redis + PostgreSQL.
	node --test tests/chain/
	$(MAKE) --no-print-directory pay-demo
	$(TEST_CMD)

chain-deps: ## anvil, solc and the official x402 client packages (npm, pinned).
	@if [ ! -x tests/chain/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ] \
	  || [ tests/chain/package-lock.json -nt tests/chain/node_modules/.package-lock.json ]; then \
	  npm ci --prefix tests/chain --no-audit --no-fund; fi

PY_VENV := tests/reflection/.venv
py-deps: ## Python's grpcio-reflection client in a venv (pinned), for the reflection test.
	@if [ ! -x $(PY_VENV)/bin/python ] || [ tests/reflection/requirements.txt -nt $(PY_VENV)/.installed ]; then \
	  python3 -m venv $(PY_VENV) && $(PY_VENV)/bin/pip install -q --disable-pip-version-check -r tests/reflection/requirements.txt \
	  && touch $(PY_VENV)/.installed; fi

K8S_VENV := tests/k8s/.venv
k8s-check: ## Render every k8s overlay; kubernetes-validate and checkov (pinned, in a venv) must pass.
	@if [ ! -x $(K8S_VENV)/bin/python ] || [ tests/k8s/requirements.txt -nt $(K8S_VENV)/.installed ]; then \
	  python3 -m venv $(K8S_VENV) && $(K8S_VENV)/bin/pip install -q --disable-pip-version-check -r tests/k8s/requirements.txt \
	  && touch $(K8S_VENV)/.installed; fi
	tests/k8s/check.sh

ALERTS := deploy/prometheus
DASHBOARDS := $(wildcard deploy/grafana/dashboards/*.json)
alerts-check: ## Alert rules (promtool check + unit tests); dashboard queries parse and name only metrics the code has.
	@command -v promtool >/dev/null || { \
	  echo "error: promtool not found: install the Debian 'prometheus' package (apt-get install prometheus), or run .ci/run" >&2; exit 1; }
	promtool check rules $(ALERTS)/alerts.yaml
	promtool test rules $(ALERTS)/alerts.test.yaml
	@# Every dashboard query, as a recording rule, through promtool's parser.
	@rules=$$(mktemp --suffix=.rules.yaml); trap 'rm -f "$$rules"' EXIT; \
	  $(ALERTS)/dashboard_rules.py $(DASHBOARDS) > "$$rules"; \
	  echo "promtool check rules <the queries of $(DASHBOARDS)>"; promtool check rules "$$rules"
	$(ALERTS)/check_metric_names.py $(DASHBOARDS) $(ALERTS)/alerts.yaml
	python3 $(ALERTS)/panel_check.py --lint $(DASHBOARDS)
	@# The name check must be able to fail: these fixtures name metrics the code lacks.
	@out=$$($(ALERTS)/check_metric_names.py $(ALERTS)/testdata/unknown-metric.json $(ALERTS)/testdata/unknown-metric.rules.yaml 2>&1) \
	  && { echo "error: check_metric_names.py accepted unknown metric names" >&2; exit 1; }; \
	for name in tessera_request_total process_cpu_seconds_total tessera_settlements_failed_total; do \
	  grep -q "metric $$name is not registered" <<<"$$out" \
	    || { echo "error: check_metric_names.py did not reject $$name:" >&2; echo "$$out" >&2; exit 1; }; \
	done; echo "check_metric_names.py rejects the unknown names in $(ALERTS)/testdata"

panels-check: chain-deps check-services ## Every Grafana panel query returns data from a real Prometheus scraping the split services under load.
	@command -v prometheus >/dev/null || { \
	  echo "error: prometheus not found: install the Debian 'prometheus' package (apt-get install prometheus), or run .ci/run" >&2; exit 1; }
	cargo build $(SERVICE_BINARIES)
	deploy/prometheus/panel-check.sh

check-services: ## Fail loudly unless Redis and PostgreSQL answer.
	@redis-cli -u "$(REDIS_URL)" ping 2>/dev/null | grep -q PONG || { \
	  echo "error: Redis does not answer at REDIS_URL=$(call redact,$(REDIS_URL))." >&2; \
	  echo "  start one: redis-server --port 6379 --save '' --appendonly no --daemonize yes" >&2; \
	  echo "  (or run .ci/run, or point REDIS_URL at a running Redis)" >&2; exit 1; }
	@{ pg_isready -q -d "$(DATABASE_URL)" && psql "$(DATABASE_URL)" -qAtc 'select 1' >/dev/null; } 2>/dev/null || { \
	  echo "error: PostgreSQL does not answer at DATABASE_URL=$(call redact,$(DATABASE_URL))." >&2; \
	  echo "  start one with trust auth for 127.0.0.1 and a 'test' database (.ci/run does this)," >&2; \
	  echo "  e.g. docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16" >&2; \
	  echo "  (or point DATABASE_URL at a running PostgreSQL)" >&2; exit 1; }
	@echo "Redis ($(call redact,$(REDIS_URL))) and PostgreSQL ($(call redact,$(DATABASE_URL))) answer."

# Every server binary, built in one command (one feature resolution, so the
# demo, the panel check and tests/src/binaries.rs share one build).
SERVICE_BINARIES := -p tessera-suite -p tessera-gateway -p tessera-memory -p tessera-payment \
  -p tessera-facilitator -p tessera-pow -p tessera-tools -p tessera-discovery -p tessera-stats

pay-demo: chain-deps ## Pay a memory call with the official x402 client on a local chain.
	cargo build $(SERVICE_BINARIES)
	deploy/demo/pay-demo.sh

bench: chain-deps ## Raw Redis vs memory over gRPC vs the gateway over HTTP; x402 verify and paid CAS.
	cargo run --release -p tessera-tests --bin tessera-bench

jepsen: ## The full nemesis: >=100,000 recorded ops under every fault, checked for linearizability.
	cargo run --release -p tessera-tests --bin tessera-jepsen

fmt: ## Format every crate.
	cargo fmt --all

lint: ## Formatting check and clippy with warnings as errors.
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

build: ## Build every crate and binary.
	cargo build --workspace --all-targets
