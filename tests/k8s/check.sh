#!/usr/bin/env bash
# Offline checks of k8s/ (make k8s-check): every overlay renders with
# kustomize, every rendered object is valid for KUBERNETES_VERSION (built-in
# kinds with kubernetes-validate --strict, custom resources against the
# vendored CRDs in crds/), and checkov fails no check but the documented skips
# (checkov.yaml). A missing tool is an error, never a skip.
#
# usage: tests/k8s/check.sh [OVERLAY_DIR...]   (default: every k8s/overlays/*)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${K8S_VENV:-$here/.venv}
KUBERNETES_VERSION=${KUBERNETES_VERSION:-1.31.0}

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v kubectl >/dev/null \
  || die "kubectl not found (it renders the overlays: apt-get install kubectl, or run .ci/run)"
for tool in python kubernetes-validate checkov; do
  [[ -x $venv/bin/$tool ]] || die "$venv/bin/$tool not found: run make k8s-check (it installs tests/k8s/requirements.txt)"
done

overlays=("$@")
if ((${#overlays[@]} == 0)); then
  overlays=("$root"/k8s/overlays/*/)
fi
((${#overlays[@]})) || die "no overlay under k8s/overlays"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for overlay in "${overlays[@]}"; do
  name=$(basename "$overlay")
  rendered=$out/$name.yaml
  printf '==> %s: kubectl kustomize\n' "$name"
  kubectl kustomize "$overlay" >"$rendered" || die "$name: kustomize could not render $overlay"
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
printf 'k8s-check: %d overlay(s) render, validate and pass checkov\n' "${#overlays[@]}"
