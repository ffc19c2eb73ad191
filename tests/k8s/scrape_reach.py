"""Every Tessera Service is scraped on exactly one port, Prometheus may reach
that port of its pods, and Prometheus reaches no other port of any pod
unless that port is open to everyone (the gateway's public API).

Reads rendered manifests: an overlay, plus k8s/monitoring when the overlay
does not include the ServiceMonitor. A Tessera Service is one labelled
app.kubernetes.io/part-of=tessera. The NetworkPolicies are evaluated for
the Prometheus that base/networkpolicies.yaml and k8s/README.md name: a pod
labelled app.kubernetes.io/name=prometheus in the namespace `monitoring`.
An ipBlock peer is taken to admit anyone (pod addresses may fall in it).

usage: scrape_reach.py RENDERED.yaml...
"""

import sys
from dataclasses import dataclass, field

from manifests import labels, load, name, of_kind, selects

PART_OF = ("app.kubernetes.io/part-of", "tessera")


@dataclass(frozen=True)
class Peer:
    namespace: str
    pod_labels: dict = field(default_factory=dict)


PROMETHEUS = Peer("monitoring", {"app.kubernetes.io/name": "prometheus"})
# A pod no policy names: what it may reach is open to everyone.
STRANGER = Peer("elsewhere")


def namespace_of(obj):
    return obj.get("metadata", {}).get("namespace", "default")


def pod_labels(deployment):
    return deployment["spec"]["template"]["metadata"].get("labels") or {}


def container_ports(deployment):
    """(number, name) of every TCP port the pod's containers declare."""
    ports = []
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for port in container.get("ports") or []:
            if port.get("protocol", "TCP") == "TCP":
                ports.append((port["containerPort"], port.get("name")))
    return ports


def port_rule_admits(rule_ports, number, port_name):
    if not rule_ports:
        return True
    for rule_port in rule_ports:
        if rule_port.get("protocol", "TCP") != "TCP":
            continue
        port = rule_port.get("port")
        if port is None or port == port_name:
            return True
        if isinstance(port, int) and port <= number <= rule_port.get("endPort", port):
            return True
    return False


def peer_rule_admits(sources, policy_namespace, peer):
    if not sources:
        return True
    for source in sources:
        if "ipBlock" in source:
            return True
        namespace_selector = source.get("namespaceSelector")
        if namespace_selector is None:
            namespace_ok = peer.namespace == policy_namespace
        else:
            namespace_ok = selects(
                namespace_selector, {"kubernetes.io/metadata.name": peer.namespace}
            )
        if namespace_ok and selects(source.get("podSelector"), peer.pod_labels):
            return True
    return False


def ingress_policies(policies, deployment):
    """The NetworkPolicies that isolate the deployment's pods for ingress."""
    chosen = []
    for policy in policies:
        spec = policy["spec"]
        types = spec.get("policyTypes") or ["Ingress"]
        if (
            namespace_of(policy) == namespace_of(deployment)
            and "Ingress" in types
            and selects(spec.get("podSelector"), pod_labels(deployment))
        ):
            chosen.append(policy)
    return chosen


def admits(policies, deployment, port, peer):
    """Whether `peer` may open a connection to the deployment's pods on
    `port` (number, name)."""
    isolating = ingress_policies(policies, deployment)
    if not isolating:
        return True
    for policy in isolating:
        for rule in policy["spec"].get("ingress") or []:
            if port_rule_admits(rule.get("ports"), *port) and peer_rule_admits(
                rule.get("from"), namespace_of(policy), peer
            ):
                return True
    return False


def scraped_ports(objects, errors):
    """{deployment name: {container port number}} of what the
    ServiceMonitors scrape; every Tessera Service must be scraped once."""
    monitors = of_kind(objects, "ServiceMonitor")
    if not monitors:
        errors.append("no ServiceMonitor in the manifests")
    deployments = of_kind(objects, "Deployment")
    scraped = {}
    for service in of_kind(objects, "Service"):
        if labels(service).get(PART_OF[0]) != PART_OF[1]:
            continue
        wanted = set()
        for monitor in monitors:
            if namespace_of(monitor) == namespace_of(service) and selects(
                monitor["spec"].get("selector"), labels(service)
            ):
                wanted.update(e.get("port") for e in monitor["spec"].get("endpoints") or [])
        ports = [p for p in service["spec"]["ports"] if p.get("name") in wanted]
        if len(ports) != 1:
            found = ", ".join(p.get("name") or str(p["port"]) for p in ports) or "none"
            errors.append(
                f"{name(service)}: scraped on {len(ports)} ports ({found}); "
                "name exactly one port `http` or `metrics` (k8s/monitoring/servicemonitor.yaml)"
            )
            continue
        backends = [
            d
            for d in deployments
            if namespace_of(d) == namespace_of(service)
            and service["spec"].get("selector")
            and selects({"matchLabels": service["spec"]["selector"]}, pod_labels(d))
        ]
        if not backends:
            errors.append(f"{name(service)}: selects no Deployment")
        target = ports[0].get("targetPort", ports[0]["port"])
        for deployment in backends:
            numbers = [n for n, port_name in container_ports(deployment) if target in (n, port_name)]
            if not numbers:
                errors.append(
                    f"{name(service)}: port {target} is no container port of {name(deployment)}"
                )
            scraped.setdefault(deployment["metadata"]["name"], set()).update(numbers)
    return scraped


def check(objects):
    errors = []
    scraped = scraped_ports(objects, errors)
    policies = of_kind(objects, "NetworkPolicy")
    for deployment in of_kind(objects, "Deployment"):
        wanted = scraped.get(deployment["metadata"]["name"], set())
        for port in container_ports(deployment):
            reached = admits(policies, deployment, port, PROMETHEUS)
            label = f"{name(deployment)} port {port[0]} ({port[1]})"
            if port[0] in wanted and not reached:
                errors.append(
                    f"{label}: scraped, but no NetworkPolicy lets Prometheus "
                    "(namespace monitoring, app.kubernetes.io/name=prometheus) reach it"
                )
            if reached and port[0] not in wanted and not admits(
                policies, deployment, port, STRANGER
            ):
                errors.append(f"{label}: not scraped, yet a NetworkPolicy lets Prometheus reach it")
    return errors


def main(paths):
    objects = load(*paths)
    errors = check(objects)
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    if errors:
        return 1
    scraped = sum(
        1 for s in of_kind(objects, "Service") if labels(s).get(PART_OF[0]) == PART_OF[1]
    )
    print(f"    {scraped} Services scraped once each; Prometheus reaches their scrape ports and no other")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
