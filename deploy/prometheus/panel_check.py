#!/usr/bin/env python3
"""Fails unless every panel query of the given Grafana dashboards returns
data from a live Prometheus.

Each panel target's `expr` and each query variable's `label_values(...)`
goes to Prometheus's HTTP API (`/api/v1/query`, now) as Grafana would send
it: `$__rate_interval` and the other interval variables become --interval,
a textbox or custom variable its default value, any other variable `.*`
(All). A query fails when it returns no series, or only NaN (what
Grafana draws as "No data": a ratio or quantile of nothing). Until
--settle seconds have passed, failing queries are asked again, so
the first scrapes after a load can land. Python's standard library only.

    panel_check.py --prometheus http://127.0.0.1:9090 [--interval 1m]
                   [--settle 20] [--verbose] DASHBOARD.json...
    panel_check.py --lint DASHBOARD.json...   (the structure only)

Either way the dashboards must first be fit to provision: a uid, title
and schemaVersion, a `datasource` variable every target uses, panel ids
and titles that do not repeat.
"""

import argparse
import json
import math
import pathlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from dashboard_rules import as_promql


def variable_defaults(board):
    """Values of the variables a person types or picks from a fixed list."""
    values = {}
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") in ("textbox", "custom", "constant"):
            current = variable.get("current", {}).get("value")
            value = current if isinstance(current, str) else variable.get("query", "")
            values[variable["name"]] = value
    return values


def panels(nodes):
    """Every panel, those inside rows included."""
    for panel in nodes:
        yield panel
        yield from panels(panel.get("panels", []))


def board_queries(path):
    """(what, expr, variable values) for each panel target and query
    variable of a dashboard."""
    board = json.loads(path.read_text(encoding="utf-8"))
    values = variable_defaults(board)
    queries = []
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        queries.append((f"variable ${variable['name']}", query, values))
    for panel in panels(board.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("hide") or not target.get("expr"):
                continue
            what = f"panel {panel.get('id')} \"{panel.get('title')}\" [{target.get('refId', '?')}]"
            queries.append((what, target["expr"], values))
    return queries


def lint(path):
    """What makes a dashboard unfit for provisioning: no uid or
    schemaVersion, no datasource variable, a panel id or title twice, a
    panel target not on that variable."""
    board = json.loads(path.read_text(encoding="utf-8"))
    problems = [f"no {key}" for key in ("uid", "title", "schemaVersion") if not board.get(key)]
    variables = board.get("templating", {}).get("list", [])
    if not any(v.get("type") == "datasource" and v.get("name") == "datasource" for v in variables):
        problems.append("no `datasource` variable of type datasource")
    ids, titles = {}, {}
    for panel in panels(board.get("panels", [])):
        ids.setdefault(panel.get("id"), []).append(panel.get("title"))
        titles.setdefault(panel.get("title"), []).append(panel.get("id"))
        refs = [target.get("refId") for target in panel.get("targets", [])]
        if len(refs) != len(set(refs)):
            problems.append(f"panel {panel.get('id')}: refIds repeat: {refs}")
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"panel {panel.get('id')} [{target.get('refId')}]: datasource is not ${{datasource}}")
    problems += [f"panel id {key!r} used by {value}" for key, value in ids.items() if key is None or len(value) > 1]
    problems += [f"panel title {key!r} used by ids {value}" for key, value in titles.items() if not key or len(value) > 1]
    return problems


def substitute(expr, values, interval):
    for name, value in sorted(values.items(), key=lambda item: -len(item[0])):
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    return as_promql(expr, interval)


def instant_query(prometheus, expr):
    """The result of `expr` now, or raises with Prometheus's error."""
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        answer = json.load(error)
    if answer.get("status") != "success":
        raise ValueError(f"{answer.get('errorType')}: {answer.get('error')}")
    return answer["data"]


def samples_of(data):
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return [result[1]]
    if kind == "vector":
        return [series["value"][1] for series in result]
    if kind == "matrix":
        return [value for series in result for _, value in series["values"]]
    raise ValueError(f"a {kind} result")


def verdict(samples):
    """None when the samples are data; else why not."""
    if not samples:
        return "no series"
    if all(math.isnan(float(sample)) for sample in samples):
        return f"only NaN ({len(samples)} series)"
    return None


def check(prometheus, items, interval, verbose=False):
    """[(dashboard, what, promql, reason)] of the queries without data."""
    failures = []
    for dashboard, what, expr, values in items:
        promql = substitute(expr, values, interval)
        try:
            samples = samples_of(instant_query(prometheus, promql))
            reason = verdict(samples)
        except (ValueError, OSError) as error:
            samples, reason = [], f"query error: {error}"
        if reason:
            failures.append((dashboard, what, promql, reason))
        elif verbose:
            shown = ", ".join(f"{float(sample):.4g}" for sample in samples[:6])
            print(f"ok   {dashboard} {what}: {len(samples)} series ({shown}{', ...' if len(samples) > 6 else ''})")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--lint", action="store_true",
                        help="only check the dashboards' structure (ids, titles, datasource), no queries")
    parser.add_argument("--interval", default="1m", help="what $__rate_interval becomes")
    parser.add_argument("--settle", type=float, default=0, help="seconds to keep asking failing queries")
    parser.add_argument("--verbose", action="store_true", help="print each query's values too")
    parser.add_argument("dashboards", nargs="+", type=pathlib.Path)
    args = parser.parse_args()

    problems = [f"{path}: {problem}" for path in args.dashboards for problem in lint(path)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    if args.lint:
        print(f"panel check: {len(args.dashboards)} dashboards: unique panel ids and titles, "
              "a datasource variable, every target on it")
        return
    if not args.prometheus:
        parser.error("--prometheus is required unless --lint")

    items = []
    panel_count = 0
    for path in args.dashboards:
        board = json.loads(path.read_text(encoding="utf-8"))
        panel_count += sum(1 for panel in panels(board.get("panels", [])) if panel.get("targets"))
        items += [(path.name, what, expr, values) for what, expr, values in board_queries(path)]
    if not items:
        sys.exit("error: no queries in " + " ".join(map(str, args.dashboards)))

    deadline = time.monotonic() + args.settle
    pending = items
    while True:
        failures = check(args.prometheus, pending, args.interval, args.verbose)
        if not failures or time.monotonic() >= deadline:
            break
        failed = {(dashboard, what) for dashboard, what, _, _ in failures}
        pending = [item for item in pending if (item[0], item[1]) in failed]
        time.sleep(1)

    for dashboard, what, promql, reason in failures:
        print(f"FAIL {dashboard} {what}: {reason}\n     {promql}", file=sys.stderr)
    names = ", ".join(path.name for path in args.dashboards)
    if failures:
        print(
            f"panel check: {len(failures)} of {len(items)} queries returned no data "
            f"({len(args.dashboards)} dashboards, {panel_count} panels: {names})",
            file=sys.stderr,
        )
        sys.exit(1)
    print(
        f"panel check: {len(args.dashboards)} dashboards, {panel_count} panels, {len(items)} queries: "
        f"all returned series ({names})"
    )


if __name__ == "__main__":
    main()
