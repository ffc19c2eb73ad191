#!/usr/bin/env python3
"""Fails unless every metric a PromQL query names exists in Tessera's code.

Reads the queries of Grafana dashboards (*.json: panel `expr`s and query
variables) and of Prometheus rule files (*.yaml: `expr:`), takes the metric
names out of them, and looks each up among the names the Rust code registers:
a string literal that is exactly a metric name, e.g.
`Opts::new("tessera_requests_total", ...)`. A histogram's `_bucket`, `_sum`
and `_count` series count as its name. Python's standard library only, so it
runs wherever promtool does.

    check_metric_names.py FILE...
"""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {"target", "node_modules", ".git"}
# Series Prometheus makes itself, not the code.
PROMETHEUS_SERIES = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_KEYWORDS = {
    "and", "or", "unless", "offset", "bool", "by", "without", "on",
    "ignoring", "group_left", "group_right", "inf", "nan",
}
LITERAL_NAME = re.compile(r'"(tessera_[a-z0-9_]+)"')


def registered_names():
    names = set()
    for path in ROOT.rglob("*.rs"):
        if SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts):
            continue
        names.update(LITERAL_NAME.findall(path.read_text(encoding="utf-8")))
    return names


def dashboard_queries(path):
    """Panel target `expr`s and the queries of `query` variables."""
    queries = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                queries.append(node["expr"])
            if node.get("type") == "query":
                query = node.get("query")
                query = query.get("query") if isinstance(query, dict) else query
                if isinstance(query, str):
                    queries.append(query)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(path.read_text(encoding="utf-8")))
    return queries


def rule_queries(path):
    """`expr:` values of a rule file, inline or as a block scalar."""
    queries = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"^(\s*)(?:- )?expr:\s*(.*)$", line)
        if not match:
            continue
        indent, inline = len(match.group(1)), match.group(2).strip()
        if inline and inline[0] not in "|>":
            queries.append(inline.strip("'\""))
            continue
        block = []
        for following in lines[number + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            block.append(following)
        queries.append("\n".join(block))
    return queries


def metric_names(query):
    # label_values(metric{...}, label): the label is not a metric.
    query = re.sub(r"label_values\(([^,()]*(?:\{[^}]*\})?)\s*(?:,[^)]*)?\)", r"(\1)", query)
    query = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', "", query)
    query = re.sub(r"\{[^}]*\}", "", query)
    query = re.sub(r"\[[^\]]*\]", "", query)
    query = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", query
    )
    query = re.sub(r"\$\{?\w+\}?", "", query)
    names = set()
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", query):
        rest = query[match.end():].lstrip()
        if rest.startswith("(") or match.group(0).lower() in PROMQL_KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def known(name, registered):
    if name in registered or name in PROMETHEUS_SERIES:
        return True
    return any(
        name.endswith(suffix) and name[: -len(suffix)] in registered
        for suffix in HISTOGRAM_SUFFIXES
    )


def main(paths):
    registered = registered_names()
    if not registered:
        sys.exit(f"error: no tessera_* metric names found in the Rust code under {ROOT}")
    failed = False
    for path in map(pathlib.Path, paths):
        queries = dashboard_queries(path) if path.suffix == ".json" else rule_queries(path)
        names = set().union(*map(metric_names, queries)) if queries else set()
        if not names:
            print(f"error: {path}: no metric names found in its queries", file=sys.stderr)
            failed = True
            continue
        unknown = sorted(name for name in names if not known(name, registered))
        for name in unknown:
            print(f"error: {path}: metric {name} is not registered by the code", file=sys.stderr)
        failed = failed or bool(unknown)
        if not unknown:
            print(f"{path}: {len(queries)} queries, metrics {', '.join(sorted(names))}: all in the code")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
