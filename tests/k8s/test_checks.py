"""The checkers of tests/k8s reject what they must (check.sh runs these
first): small hand-made objects, each broken in one way."""

import unittest

import adapter_rules
import dashboards
import scrape_reach
import selector_targets
from manifests import selects

PROMETHEUS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def service(app, *ports):
    return {
        "kind": "Service",
        "metadata": {
            "name": app,
            "namespace": "tessera",
            "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "tessera"},
        },
        "spec": {
            "selector": {"app.kubernetes.io/name": app},
            "ports": [{"name": n, "port": p, "targetPort": n} for n, p in ports],
        },
    }


def deployment(app, *ports):
    return {
        "kind": "Deployment",
        "metadata": {"name": app, "namespace": "tessera"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": app}},
                "spec": {
                    "containers": [
                        {"name": app, "ports": [{"name": n, "containerPort": p} for n, p in ports]}
                    ]
                },
            }
        },
    }


def policy(policy_name, app, ports, sources=None):
    rule = {"ports": [{"port": p, "protocol": "TCP"} for p in ports]}
    if sources is not None:
        rule["from"] = sources
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": policy_name, "namespace": "tessera"},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": app}} if app else {},
            "policyTypes": ["Ingress"],
            "ingress": [rule] if ports else [],
        },
    }


MONITOR = {
    "kind": "ServiceMonitor",
    "metadata": {"name": "tessera", "namespace": "tessera"},
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/part-of": "tessera"}},
        "endpoints": [{"port": "http"}, {"port": "metrics"}],
    },
}


def payment_cluster(*extra):
    """payment: gRPC 50052 from the gateway, metrics 9090 from Prometheus."""
    return [
        MONITOR,
        service("payment", ("grpc", 50052), ("metrics", 9090)),
        deployment("payment", ("grpc", 50052), ("metrics", 9090)),
        policy("deny", None, []),
        policy(
            "grpc",
            "payment",
            [50052],
            [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}],
        ),
        *extra,
    ]


class Case(unittest.TestCase):
    def assertError(self, message, errors):
        """Some error says `message`."""
        self.assertTrue(any(message in error for error in errors), f"{message!r} not in {errors}")


class ScrapeReach(Case):
    def test_scraped_port_admitted_passes(self):
        objects = payment_cluster(policy("metrics", "payment", [9090], [PROMETHEUS_PEER]))
        self.assertEqual(scrape_reach.check(objects), [])

    def test_scraped_port_prometheus_cannot_reach(self):
        errors = scrape_reach.check(payment_cluster())
        self.assertEqual(len(errors), 1)
        self.assertError("Deployment/payment port 9090 (metrics): scraped, but no NetworkPolicy", errors)

    def test_prometheus_reaching_an_unscraped_port(self):
        objects = payment_cluster(policy("all", "payment", [9090, 50052], [PROMETHEUS_PEER]))
        errors = scrape_reach.check(objects)
        self.assertEqual(len(errors), 1)
        self.assertError("port 50052 (grpc): not scraped, yet", errors)

    def test_prometheus_from_its_namespace_only(self):
        elsewhere = dict(PROMETHEUS_PEER, namespaceSelector={"matchLabels": {"x": "y"}})
        errors = scrape_reach.check(payment_cluster(policy("metrics", "payment", [9090], [elsewhere])))
        self.assertError("port 9090 (metrics): scraped, but", errors)
        # A podSelector alone names pods of the policy's own namespace.
        same_namespace = {"podSelector": PROMETHEUS_PEER["podSelector"]}
        errors = scrape_reach.check(payment_cluster(policy("metrics", "payment", [9090], [same_namespace])))
        self.assertError("port 9090 (metrics): scraped, but", errors)

    def test_port_open_to_anyone_is_no_leak(self):
        objects = [
            MONITOR,
            service("gateway", ("http", 8080)),
            deployment("gateway", ("http", 8080), ("admin", 8081)),
            policy("deny", None, []),
            policy("public", "gateway", [8080]),
        ]
        self.assertEqual(scrape_reach.check(objects), [])
        objects.append(policy("admin", "gateway", [8081], [PROMETHEUS_PEER]))
        self.assertError("port 8081 (admin): not scraped, yet", scrape_reach.check(objects))

    def test_service_scraped_twice_or_never(self):
        twice = [MONITOR, service("x", ("http", 80), ("metrics", 9090)), deployment("x")]
        self.assertError("scraped on 2 ports (http, metrics)", scrape_reach.check(twice))
        never = [MONITOR, service("x", ("grpc", 50051)), deployment("x")]
        self.assertError("scraped on 0 ports (none)", scrape_reach.check(never))
        self.assertError("no ServiceMonitor", scrape_reach.check(never[1:]))

    def test_named_and_ranged_policy_ports(self):
        by_name = payment_cluster(policy("metrics", "payment", ["metrics"], [PROMETHEUS_PEER]))
        self.assertEqual(scrape_reach.check(by_name), [])
        ranged = policy("range", "payment", [9000], [PROMETHEUS_PEER])
        ranged["spec"]["ingress"][0]["ports"][0]["endPort"] = 60000
        self.assertError("port 50052 (grpc): not scraped, yet", scrape_reach.check(payment_cluster(ranged)))


class Selectors(unittest.TestCase):
    def test_operators(self):
        pod = {"app": "a", "tier": "t"}
        self.assertTrue(selects({}, pod))
        self.assertTrue(selects({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]}, pod))
        self.assertFalse(selects({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}, pod))
        self.assertFalse(selects({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, pod))
        self.assertFalse(selects({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, pod))
        self.assertFalse(selects({"matchLabels": {"app": "b"}}, pod))


def hpa(metric):
    return {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "gateway"},
        "spec": {
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu"}},
                {"type": "Pods", "pods": {"metric": {"name": metric}}},
            ]
        },
    }


def adapter_values(**changes):
    rule = {
        "seriesQuery": 'tessera_requests_total{service="gateway",pod!=""}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": "^tessera_requests_total$", "as": "rps"},
        "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
    }
    rule.update(changes)
    return {"rules": {"custom": [rule]}}


class AdapterRules(Case):
    def test_served_metric_passes_and_fills_the_template(self):
        errors, records = adapter_rules.check([hpa("rps")], adapter_values())
        self.assertEqual(errors, [])
        self.assertEqual(
            records[1]["expr"],
            'sum(rate(tessera_requests_total{namespace="tessera",pod=~"gateway-a|gateway-b"}[2m])) by (pod)',
        )

    def test_metric_no_rule_serves(self):
        errors, _ = adapter_rules.check([hpa("requests_per_second")], adapter_values())
        self.assertEqual(len(errors), 1)
        self.assertError("scales on requests_per_second, which no prometheus-adapter rule serves", errors)

    def test_malformed_rules(self):
        cases = {
            "does not match the series": {"name": {"matches": "^http_total$", "as": "rps"}},
            "must map labels": {"resources": {"template": "<<.Resource>>"}},
            "<<.Resource>> is not supported": {"metricsQuery": "sum(<<.Series>>) by (<<.Resource>>)"},
            "is not `metric{matchers}`": {"seriesQuery": '{__name__=~"x"}'},
        }
        for message, change in cases.items():
            errors, _ = adapter_rules.check([hpa("rps")], adapter_values(**change))
            self.assertError(message, errors)


def dashboard_map(name, data):
    return {
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"grafana_dashboard": "1"}},
        "data": data,
    }


class Dashboards(Case):
    files = {"a.json": '{"uid": "a"}', "b.json": '{"uid": "b"}'}

    def test_each_once_passes(self):
        objects = [dashboard_map("a", {"a.json": '{"uid": "a"}'}), dashboard_map("b", {"b.json": '{"uid": "b"}'})]
        self.assertEqual(dashboards.check(self.files, objects), [])

    def test_missing_stale_twice_or_unlabelled(self):
        only_a = [dashboard_map("a", {"a.json": '{"uid": "a"}'})]
        self.assertError("b.json: in 0 ConfigMaps", dashboards.check(self.files, only_a))
        stale = [dashboard_map("a", {"a.json": "{}", "b.json": '{"uid": "b"}'})]
        self.assertError("a.json differs from the file", dashboards.check(self.files, stale))
        extra = only_a + [dashboard_map("b", {"b.json": '{"uid": "b"}', "c.json": "{}"})]
        self.assertError("c.json is no file", dashboards.check(self.files, extra))
        twice = extra[:1] + [dashboard_map("b", {"b.json": '{"uid": "b"}'})] * 2
        self.assertError("b.json: in 2 ConfigMaps", dashboards.check(self.files, twice))
        unlabelled = only_a + [dict(dashboard_map("b", {"b.json": '{"uid": "b"}'}), metadata={"name": "b"})]
        self.assertError("b.json: in 0 ConfigMaps", dashboards.check(self.files, unlabelled))


class SelectorTargets(Case):
    def spread_gateway(self, selector):
        gateway = deployment("gateway", ("http", 8080))
        gateway["spec"]["template"]["spec"]["topologySpreadConstraints"] = [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": selector}
        ]
        return gateway

    def test_each_selects_its_pods(self):
        objects = [
            service("gateway", ("http", 8080)),
            self.spread_gateway({"matchLabels": {"app.kubernetes.io/name": "gateway"}}),
            {"kind": "PodDisruptionBudget", "metadata": {"name": "gateway"},
             "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}},
            {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "gateway"},
             "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "gateway"}}},
        ]
        self.assertEqual(selector_targets.check(objects), [])

    def test_selectors_matching_nothing(self):
        part_of = {"matchExpressions": [{"key": "app.kubernetes.io/part-of", "operator": "In", "values": ["tessera"]}]}
        self.assertError("spreads nothing", selector_targets.check([self.spread_gateway(part_of)]))
        objects = [
            deployment("gateway"),
            service("memory", ("grpc", 50051)),
            {"kind": "PodDisruptionBudget", "metadata": {"name": "tools"},
             "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "tools"}}}},
            {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "pow"},
             "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "pow"}}},
        ]
        errors = selector_targets.check(objects)
        self.assertError("Service/memory: its selector matches the pods of no Deployment", errors)
        self.assertError("PodDisruptionBudget/tools: its selector", errors)
        self.assertError("scales Deployment/pow, not a Deployment here", errors)


if __name__ == "__main__":
    unittest.main()
