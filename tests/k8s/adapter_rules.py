"""Every custom metric the HorizontalPodAutoscalers scale on (type Pods or
Object) is served by a prometheus-adapter rule of the Helm values (its
`name.as`), each rule is well formed, and its queries are written out as a
Prometheus rule file for `promtool check rules` and check_metric_names.py.

A rule's seriesQuery must be `metric{matchers}` (the series it names is
what `name.matches` must match and what <<.Series>> stands for); its
metricsQuery template is filled as the adapter fills it for the pods of an
HPA: <<.LabelMatchers>> = namespace="tessera",pod=~"…", <<.GroupBy>> = pod.

usage: adapter_rules.py RENDERED.yaml ADAPTER_VALUES.yaml OUT_RULES.yaml
"""

import pathlib
import re
import sys

import yaml

from manifests import load, name, of_kind

SERIES = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
TEMPLATE_FIELD = re.compile(r"<<\s*\.(\w+)\s*>>")
# What the adapter puts in the template for a Pods metric of two pods.
EXAMPLE_FIELDS = {
    "LabelMatchers": 'namespace="tessera",pod=~"gateway-a|gateway-b"',
    "GroupBy": "pod",
}


def hpa_metrics(objects):
    """[(HPA name, metric name)] of the custom (Pods, Object) metrics."""
    used = []
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        for metric in hpa["spec"].get("metrics") or []:
            kind = metric.get("type")
            if kind in ("Pods", "Object"):
                used.append((name(hpa), metric[kind.lower()]["metric"]["name"]))
    return used


def fill(template, series):
    def field(match):
        if match.group(1) == "Series":
            return series
        if match.group(1) not in EXAMPLE_FIELDS:
            raise ValueError(f"template field <<.{match.group(1)}>> is not supported here")
        return EXAMPLE_FIELDS[match.group(1)]

    return TEMPLATE_FIELD.sub(field, template)


def rule_errors(rule):
    """(metric name the rule serves, errors, recording rules for promtool)."""
    errors, records = [], []
    served = (rule.get("name") or {}).get("as")
    where = f"rule {served or rule.get('seriesQuery')!r}"
    if not served:
        errors.append(f"{where}: no name.as (the metric name the HPA asks for)")
    series_match = SERIES.match(rule.get("seriesQuery") or "")
    if not series_match:
        errors.append(f"{where}: seriesQuery is not `metric{{matchers}}`")
        return served, errors, records
    series = series_match.group(1)
    matches = (rule.get("name") or {}).get("matches") or ""
    if not re.search(matches, series):
        errors.append(f"{where}: name.matches {matches!r} does not match the series {series}")
    overrides = (rule.get("resources") or {}).get("overrides") or {}
    mapped = {target.get("resource") for target in overrides.values()}
    if not {"namespace", "pod"} <= mapped:
        errors.append(f"{where}: resources.overrides must map labels to `namespace` and `pod`")
    try:
        query = fill(rule.get("metricsQuery") or "", series)
    except ValueError as error:
        errors.append(f"{where}: {error}")
        return served, errors, records
    record = f"adapter:{served or series}"
    records.append({"record": f"{record}:series", "expr": rule["seriesQuery"]})
    records.append({"record": record, "expr": query})
    return served, errors, records


def check(objects, values):
    errors, records, served = [], [], set()
    rules = (values.get("rules") or {}).get("custom") or []
    for rule in rules:
        metric, rule_problems, rule_records = rule_errors(rule)
        served.add(metric)
        errors.extend(rule_problems)
        records.extend(rule_records)
    for hpa, metric in hpa_metrics(objects):
        if metric not in served:
            errors.append(
                f"{hpa}: scales on {metric}, which no prometheus-adapter rule serves "
                f"(rules.custom[].name.as: {sorted(m for m in served if m) or 'none'})"
            )
    return errors, records


def main(rendered, values_path, out_rules):
    values = yaml.safe_load(pathlib.Path(values_path).read_text(encoding="utf-8")) or {}
    errors, records = check(load(rendered), values)
    for error in errors:
        print(f"ERROR {values_path}: {error}", file=sys.stderr)
    if errors:
        return 1
    groups = {"groups": [{"name": "prometheus-adapter", "rules": records}]}
    pathlib.Path(out_rules).write_text(yaml.safe_dump(groups, sort_keys=False))
    print(f"    every HPA custom metric has its prometheus-adapter rule ({len(records) // 2} rule(s))")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
