"""Strict offline validation of the node-layer objects (RuntimeClass, DaemonSet).

Current releases: `kubernetes-validate` in strict mode, through the serving renderer's
validator. Kubernetes 1.20 (the lab's cluster): the two kinds cut from 1.20.2's own OpenAPI
document (`schemas/`, see its README), made strict the same way as the serving subset.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from llmops.serving.kubernetes import validate as serving_validate

from .versions import parse_kube_version

SCHEMAS = Path(__file__).resolve().parent / "schemas"
LEGACY_OPENAPI = {(1, 20): "kubernetes-1.20.2-device-plugin-subset.json"}


@cache
def _legacy_document(file_name: str) -> dict[str, Any]:
    document = json.loads((SCHEMAS / file_name).read_text(encoding="utf-8"))
    definitions = serving_validate._strict(document["definitions"])
    definitions[serving_validate.INT_OR_STRING] = {"type": ["integer", "string"]}
    return {"kinds": document["kinds"], "definitions": definitions}


def validate_object(obj: dict[str, Any], kubernetes_version: str) -> list[str]:
    """Problems with one object, each naming the object and the field path; empty when valid."""
    import jsonschema

    legacy = LEGACY_OPENAPI.get(parse_kube_version(kubernetes_version).minor_version)
    if legacy is None:
        return serving_validate.validate_object(obj, kubernetes_version)
    meta = obj.get("metadata", {})
    where = f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name')}".replace(" /", " ")
    document = _legacy_document(legacy)
    definition = document["kinds"].get(f"{obj.get('apiVersion')}/{obj.get('kind')}")
    if definition is None:
        return [f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')} in Kubernetes {kubernetes_version}"]
    validator = jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": document["definitions"]})
    return [
        f"{where}: {'.'.join(str(p) for p in error.absolute_path) or '(object)'}: {error.message}"
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def validate_objects(objects: list[dict[str, Any]], kubernetes_version: str) -> list[str]:
    problems: list[str] = []
    for obj in objects:
        problems += validate_object(obj, kubernetes_version)
    return problems
