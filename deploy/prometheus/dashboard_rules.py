#!/usr/bin/env python3
"""Writes the queries of Grafana dashboards as a Prometheus rule file, so
`promtool check rules` parses every panel's PromQL.

Grafana's interval variables ($__rate_interval, ...) become 5m and the
dashboard's own variables (used inside label matchers) become `.*`.

    dashboard_rules.py DASHBOARD.json... > dashboards.rules.yaml
"""

import json
import pathlib
import re
import sys

from check_metric_names import dashboard_queries


def as_promql(query):
    query = re.sub(r"\$\{?__\w+\}?", "5m", query)
    return re.sub(r"\$\{?\w+\}?", ".*", query)


def main(paths):
    print("groups:")
    for path in map(pathlib.Path, paths):
        print(f"  - name: {json.dumps(path.name)}")
        print("    rules:")
        for number, query in enumerate(dashboard_queries(path)):
            if query.startswith("label_values("):
                query = re.sub(r"^label_values\((.*?)(?:,\s*\w+)?\)$", r"\1", query)
            print(f"      - record: dashboard:query_{number}")
            print(f"        expr: {json.dumps(as_promql(query))}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
