#!/usr/bin/env python3
"""Writes the queries of Grafana dashboards as a Prometheus rule file, so
`promtool check rules` parses every panel's PromQL.

Grafana's interval variables ($__rate_interval, ...) become 5m and the
dashboard's own variables (used inside label matchers) become `.*`
(`as_promql`, which panel_check.py shares).

    dashboard_rules.py DASHBOARD.json... > dashboards.rules.yaml
"""

import json
import pathlib
import re
import sys

from check_metric_names import dashboard_queries


def as_promql(query, interval="5m"):
    """The query Prometheus would get: `interval` for Grafana's interval
    variables, `.*` for the dashboard's own (and label_values(...) reduced
    to its selector)."""
    if query.startswith("label_values("):
        query = re.sub(r"^label_values\((.*?)(?:,\s*\w+)?\)$", r"\1", query)
    query = re.sub(r"\$\{?__\w+\}?", interval, query)
    return re.sub(r"\$\{?\w+\}?", ".*", query)


def record_prefix(path):
    """A metric-name-safe prefix per dashboard, so rule names never repeat."""
    return "dashboard:" + re.sub(r"[^a-zA-Z0-9_]", "_", path.stem)


def main(paths):
    print("groups:")
    for path in map(pathlib.Path, paths):
        print(f"  - name: {json.dumps(path.name)}")
        print("    rules:")
        for number, query in enumerate(dashboard_queries(path)):
            print(f"      - record: {record_prefix(path)}:query_{number}")
            print(f"        expr: {json.dumps(as_promql(query))}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
