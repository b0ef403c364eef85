"""Check rendered objects against the API's own schemas, offline and strictly.

Built-in kinds: `kubernetes-validate` (the Kubernetes OpenAPI schemas per version, 1.25 and
later) in strict mode, where an unknown field is an error; for Kubernetes 1.20 (the lab's
cluster) the kinds we render, cut from 1.20.2's own OpenAPI document (`schemas/`), made strict
the same way. The two custom resources: the vendored CRD schemas in `schemas/` (see its
README), made strict the same way: the CRDs are structural, so the API server would prune an
unknown field silently, and we treat that as a rendering error.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from .versions import parse_version

SCHEMAS = Path(__file__).resolve().parent / "schemas"
CUSTOM_RESOURCES = {
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): "leaderworkerset.x-k8s.io_v1_leaderworkerset.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_v1alpha1_scaledobject.json",
}
PRESERVE = "x-kubernetes-preserve-unknown-fields"
# (major, minor) -> the kinds we render, from that release's api/openapi-spec/swagger.json.
LEGACY_OPENAPI = {(1, 20): "kubernetes-1.20.2-openapi-subset.json"}
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema and not schema.get(PRESERVE):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _int_or_string(schema: Any) -> Any:
    """`x-kubernetes-int-or-string` means 'integer or string' to the API server; say so to jsonschema."""
    if isinstance(schema, dict):
        schema = {key: _int_or_string(value) for key, value in schema.items()}
        if schema.get("x-kubernetes-int-or-string"):
            schema.pop("anyOf", None)
            schema["type"] = ["integer", "string"]
        return schema
    if isinstance(schema, list):
        return [_int_or_string(item) for item in schema]
    return schema


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The strict schema of a vendored custom resource, with metadata checked as ObjectMeta's essentials."""
    raw = json.loads((SCHEMAS / CUSTOM_RESOURCES[(api_version, kind)]).read_text(encoding="utf-8"))
    schema = _strict(_int_or_string(copy.deepcopy(raw)))
    # The CRD leaves metadata to the API server; check what we render there.
    schema["properties"]["metadata"] = {
        "type": "object",
        "required": ["name", "namespace"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
            "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
            "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    schema["properties"]["apiVersion"] = {"const": api_version}
    schema["properties"]["kind"] = {"const": kind}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    return schema


@cache
def _legacy_document(file_name: str) -> dict[str, Any]:
    document = json.loads((SCHEMAS / file_name).read_text(encoding="utf-8"))
    definitions = _strict(document["definitions"])
    # Swagger 2 spells int-or-string as a string format; the API server takes either.
    definitions[INT_OR_STRING] = {"type": ["integer", "string"]}
    return {"kinds": document["kinds"], "definitions": definitions}


def _legacy_problems(obj: dict[str, Any], kubernetes_version: str, where: str, file_name: str) -> list[str]:
    import jsonschema

    document = _legacy_document(file_name)
    definition = document["kinds"].get(f"{obj.get('apiVersion')}/{obj.get('kind')}")
    if definition is None:
        return [
            f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')} in Kubernetes {kubernetes_version}"
        ]
    schema = {"$ref": f"#/definitions/{definition}", "definitions": document["definitions"]}
    validator = jsonschema.Draft4Validator(schema)
    return [
        f"{where}: {'.'.join(str(p) for p in error.absolute_path) or '(object)'}: {error.message}"
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def validate_object(obj: dict[str, Any], kubernetes_version: str) -> list[str]:
    """Problems with one object, each naming the object and the field path; empty when valid."""
    import jsonschema
    import kubernetes_validate

    meta = obj.get("metadata", {})
    where = f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name')}".replace(" /", " ")
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in CUSTOM_RESOURCES:
        validator = jsonschema.Draft7Validator(crd_schema(*key))
        return [
            f"{where}: {'.'.join(str(p) for p in error.absolute_path) or '(object)'}: {error.message}"
            for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        ]
    legacy = LEGACY_OPENAPI.get(parse_version(kubernetes_version))
    if legacy is not None:
        return _legacy_problems(obj, kubernetes_version, where, legacy)
    try:
        kubernetes_validate.validate(obj, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path) or "(object)"
        return [f"{where}: {path}: {error.message}"]
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as error:
        return [f"{where}: no schema for {key[0]} {key[1]} in Kubernetes {kubernetes_version}: {error}"]
    return []


def validate_objects(objects: list[dict[str, Any]], kubernetes_version: str) -> list[str]:
    problems: list[str] = []
    for obj in objects:
        problems += validate_object(obj, kubernetes_version)
    return problems
