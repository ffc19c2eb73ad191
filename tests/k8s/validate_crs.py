"""Splits rendered manifests into built-in objects and custom resources.

Built-in objects are written to OUT_BUILTIN for kubernetes-validate. Each
custom resource is validated here against the openAPIV3Schema of its vendored
CRD (tests/k8s/crds/), strictly: a field the schema does not declare is an
error, as the API server would prune it. A custom resource without a vendored
CRD is an error too.

usage: validate_crs.py RENDERED.yaml CRD_DIR OUT_BUILTIN.yaml
"""

import pathlib
import sys

import jsonschema
import yaml


def strict(schema):
    """The schema with unknown properties refused wherever it lists its own."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_schemas(crd_dir):
    """(apiVersion, kind) -> the strict schema of that served version."""
    schemas = {}
    for path in sorted(pathlib.Path(crd_dir).glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = strict(version["schema"]["openAPIV3Schema"])
                # metadata is the API server's, not the CRD's, to check.
                schema.get("properties", {}).pop("metadata", None)
                schema["properties"]["metadata"] = {"type": "object"}
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def main(rendered, crd_dir, out_builtin):
    schemas = crd_schemas(crd_dir)
    builtin, errors, checked = [], [], 0
    for doc in yaml.safe_load_all(pathlib.Path(rendered).read_text()):
        if not doc:
            continue
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        group = api_version.split("/")[0] if "/" in api_version else ""
        if "." not in group or group.endswith(".k8s.io"):
            builtin.append(doc)
            continue
        name = f"{kind}/{doc.get('metadata', {}).get('name')}"
        schema = schemas.get((api_version, kind))
        if schema is None:
            errors.append(f"{name}: no CRD for {api_version} in {crd_dir}")
            continue
        validator = jsonschema.Draft7Validator(schema)
        for error in validator.iter_errors(doc):
            path = ".".join(str(part) for part in error.absolute_path)
            errors.append(f"{name}: {path}: {error.message}")
        checked += 1
    pathlib.Path(out_builtin).write_text(yaml.safe_dump_all(builtin, sort_keys=False))
    for error in errors:
        print(f"ERROR {rendered}: {error}", file=sys.stderr)
    print(f"{rendered}: {checked} custom resource(s) valid against vendored CRDs"
          if not errors else f"{rendered}: {len(errors)} custom resource error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
