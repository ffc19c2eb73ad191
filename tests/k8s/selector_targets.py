"""Selectors select what they are meant to, which no schema can tell: each
Service and PodDisruptionBudget selects the pods of some Deployment, each
topology spread constraint selects the pods of its own Deployment (or it
spreads nothing), and each HorizontalPodAutoscaler targets a Deployment of
the manifests.

usage: selector_targets.py RENDERED.yaml
"""

import sys

from manifests import load, name, of_kind, selects


def pod_labels(deployment):
    return deployment["spec"]["template"]["metadata"].get("labels") or {}


def check(objects):
    errors = []
    deployments = of_kind(objects, "Deployment")

    def selects_some_deployment(selector):
        return any(selects(selector, pod_labels(d)) for d in deployments)

    for service in of_kind(objects, "Service"):
        selector = service["spec"].get("selector")
        if selector and not selects_some_deployment({"matchLabels": selector}):
            errors.append(f"{name(service)}: its selector matches the pods of no Deployment")
    for budget in of_kind(objects, "PodDisruptionBudget"):
        if not selects_some_deployment(budget["spec"].get("selector")):
            errors.append(f"{name(budget)}: its selector matches the pods of no Deployment")
    for deployment in deployments:
        template = deployment["spec"]["template"]["spec"]
        for constraint in template.get("topologySpreadConstraints") or []:
            if not selects(constraint.get("labelSelector"), pod_labels(deployment)):
                errors.append(
                    f"{name(deployment)}: the labelSelector of its spread over "
                    f"{constraint.get('topologyKey')} does not match its own pods, so it spreads nothing"
                )
    deployment_names = {d["metadata"]["name"] for d in deployments}
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if target.get("kind") != "Deployment" or target.get("name") not in deployment_names:
            errors.append(f"{name(hpa)}: scales {target.get('kind')}/{target.get('name')}, not a Deployment here")
    return errors


def main(rendered):
    errors = check(load(rendered))
    for error in errors:
        print(f"ERROR {rendered}: {error}", file=sys.stderr)
    if errors:
        return 1
    print("    every Service, PodDisruptionBudget, spread constraint and HPA selects its Deployment")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
