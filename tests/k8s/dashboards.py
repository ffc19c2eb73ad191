"""Every Grafana dashboard of deploy/grafana/dashboards/ is rendered, with
the same content, in exactly one ConfigMap the Grafana sidecar loads (label
grafana_dashboard: "1"), and no such ConfigMap holds anything else.

usage: dashboards.py DASHBOARD_DIR RENDERED.yaml
"""

import pathlib
import sys

from manifests import labels, load, name, of_kind

SIDECAR_LABEL = ("grafana_dashboard", "1")


def check(dashboards, objects):
    """dashboards: {file name: text}."""
    errors, seen = [], {}
    for config_map in of_kind(objects, "ConfigMap"):
        if labels(config_map).get(SIDECAR_LABEL[0]) != SIDECAR_LABEL[1]:
            continue
        for key, text in (config_map.get("data") or {}).items():
            seen.setdefault(key, []).append(name(config_map))
            if key not in dashboards:
                errors.append(f"{name(config_map)}: {key} is no file of the dashboards directory")
            elif text != dashboards[key]:
                errors.append(f"{name(config_map)}: {key} differs from the file")
    for key in sorted(dashboards):
        holders = seen.get(key, [])
        if len(holders) != 1:
            errors.append(
                f"{key}: in {len(holders)} ConfigMaps labelled grafana_dashboard=1 "
                f"({', '.join(holders) or 'none'}); list it once in deploy/grafana/kustomization.yaml"
            )
    return errors


def main(directory, rendered):
    dashboards = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(pathlib.Path(directory).glob("*.json"))
    }
    if not dashboards:
        print(f"ERROR: no dashboard in {directory}", file=sys.stderr)
        return 1
    errors = check(dashboards, load(rendered))
    for error in errors:
        print(f"ERROR {rendered}: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"    {len(dashboards)} dashboard(s), each in one grafana_dashboard ConfigMap")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
