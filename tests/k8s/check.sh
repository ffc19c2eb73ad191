#!/usr/bin/env bash
# Offline checks of k8s/ (make k8s-check): every overlay and k8s/monitoring
# render with kustomize, every rendered object is valid for
# KUBERNETES_VERSION (built-in kinds with kubernetes-validate --strict,
# custom resources against the vendored CRDs in crds/), and checkov fails no
# check but the documented skips (checkov.yaml). Then, over the renders:
# every Service, PodDisruptionBudget, spread constraint and HPA selects its
# Deployment (selector_targets.py); Prometheus scrapes every Tessera Service
# once and the NetworkPolicies let it reach exactly those ports
# (scrape_reach.py); every custom metric of the HPAs has its
# prometheus-adapter rule, whose queries parse (promtool) and name metrics
# the code has (adapter_rules.py); every Grafana dashboard is in one sidecar
# ConfigMap (dashboards.py). The checkers' own tests run first
# (test_checks.py). A missing tool is an error, never a skip.
#
# usage: tests/k8s/check.sh [KUSTOMIZATION_DIR...]
#        (default: every k8s/overlays/* and k8s/monitoring)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${K8S_VENV:-$here/.venv}
# The checkers run from this directory: leave no __pycache__ in the tree.
export PYTHONDONTWRITEBYTECODE=1
KUBERNETES_VERSION=${KUBERNETES_VERSION:-1.31.0}

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v kubectl >/dev/null \
  || die "kubectl not found (it renders the kustomizations: apt-get install kubectl, or run .ci/run)"
command -v promtool >/dev/null \
  || die "promtool not found (it parses the prometheus-adapter rule's queries): apt-get install prometheus, or run .ci/run"
for tool in python kubernetes-validate checkov; do
  [[ -x $venv/bin/$tool ]] || die "$venv/bin/$tool not found: run make k8s-check (it installs tests/k8s/requirements.txt)"
done

targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=("$root"/k8s/overlays/*/ "$root"/k8s/monitoring/)
fi
((${#targets[@]})) || die "no kustomization to check"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

printf '==> the checkers reject what they must (test_checks.py)\n'
"$venv/bin/python" -m unittest discover -s "$here" -p 'test_*.py' >"$out/unittest.out" 2>&1 \
  || { cat "$out/unittest.out" >&2; die "the checkers' own tests failed"; }
printf '    %s\n' "$(grep '^Ran ' "$out/unittest.out")"

for target in "${targets[@]}"; do
  name=$(basename "$target")
  rendered=$out/$name.yaml
  printf '==> %s: kubectl kustomize\n' "$name"
  kubectl kustomize "$target" >"$rendered" || die "$name: kustomize could not render $target"
  printf '    %s objects\n' "$(grep -c '^kind:' "$rendered")"

  printf '==> %s: custom resources against crds/, Kubernetes %s schemas for the rest\n' \
    "$name" "$KUBERNETES_VERSION"
  "$venv/bin/python" "$here/validate_crs.py" "$rendered" "$here/crds" "$out/$name.builtin.yaml" \
    || die "$name: a custom resource is invalid"
  # kubernetes-validate only warns on a kind it has no schema for: none may
  # be left after the split above, so a warning fails the run too.
  report=$("$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" \
    "$out/$name.builtin.yaml" 2>&1) && status=0 || status=$?
  [[ -z $report ]] || printf '%s\n' "$report" >&2
  ((status == 0)) && [[ -z $report ]] || die "$name: kubernetes-validate rejected the manifests"
  printf '    every built-in object valid (strict)\n'

  printf '==> %s: checkov\n' "$name"
  "$venv/bin/checkov" --config-file "$here/checkov.yaml" -f "$rendered" 2>"$out/checkov.err" \
    || { cat "$out/checkov.err" >&2; die "$name: checkov found failed checks"; }
done

# Checks across objects, on the renders they need (all of them by default;
# with KUSTOMIZATION_DIR arguments, the others are skipped, saying so).
have_render() { [[ -f $out/$1.yaml ]] || { printf '    (skipped: needs the %s render)\n' "$1"; return 1; }; }
py() { (cd "$here" && "$venv/bin/python" "$@"); }

printf '==> selectors select their Deployments\n'
for name in dev prod; do
  if have_render "$name"; then
    py selector_targets.py "$out/$name.yaml" || die "$name: a selector selects the wrong pods"
  fi
done

printf '==> Prometheus scrapes every Tessera Service once and reaches only those ports\n'
if have_render prod; then
  py scrape_reach.py "$out/prod.yaml" || die "prod: scrape targets and NetworkPolicies disagree"
fi
if have_render dev && have_render monitoring; then
  py scrape_reach.py "$out/dev.yaml" "$out/monitoring.yaml" \
    || die "dev + k8s/monitoring: scrape targets and NetworkPolicies disagree"
fi

printf "==> prod: the HPAs' custom metrics and the prometheus-adapter rules\n"
if have_render prod; then
  adapter_values=$root/k8s/monitoring/prometheus-adapter-values.yaml
  py adapter_rules.py "$out/prod.yaml" "$adapter_values" "$out/adapter.rules.yaml" \
    || die "an HPA metric and $adapter_values disagree"
  promtool check rules "$out/adapter.rules.yaml" >"$out/promtool.out" 2>&1 \
    || { cat "$out/promtool.out" >&2; die "a prometheus-adapter query of $adapter_values does not parse"; }
  printf "    promtool parses every rule's seriesQuery and metricsQuery\n"
  "$venv/bin/python" "$root/deploy/prometheus/check_metric_names.py" "$out/adapter.rules.yaml" \
    || die "a prometheus-adapter rule of $adapter_values names a metric the code does not register"
fi

printf "==> Grafana dashboards in the sidecar's ConfigMaps\n"
for name in monitoring prod; do
  if have_render "$name"; then
    py dashboards.py "$root/deploy/grafana/dashboards" "$out/$name.yaml" \
      || die "$name: the dashboard ConfigMaps and deploy/grafana/dashboards disagree"
  fi
done
printf 'k8s-check: %d kustomization(s) render, validate and pass checkov and the cross checks\n' "${#targets[@]}"
