"""Reading rendered manifests, and Kubernetes label selectors, for the
checks of tests/k8s (scrape_reach.py, adapter_rules.py, dashboards.py)."""

import pathlib

import yaml


def load(*paths):
    """Every object of the given multi-document YAML files."""
    objects = []
    for path in paths:
        text = pathlib.Path(path).read_text(encoding="utf-8")
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def of_kind(objects, kind):
    return [obj for obj in objects if obj.get("kind") == kind]


def name(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def labels(obj):
    return obj.get("metadata", {}).get("labels") or {}


def selects(selector, object_labels):
    """Whether a LabelSelector (matchLabels, matchExpressions) matches the
    labels; an empty selector matches everything, as in Kubernetes."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if object_labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in object_labels
        if operator == "In" and not (present and object_labels[key] in values):
            return False
        if operator == "NotIn" and present and object_labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {operator!r}")
    return True
