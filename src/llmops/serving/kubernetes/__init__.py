"""Kubernetes objects from the serving spec, their offline validation and their rollout.

    render_objects(spec, kubernetes_version, RenderOptions(image=...)) -> list[dict]
    validate_objects(objects, kubernetes_version) -> list[str]
    api_versions(kubernetes_version) -> ApiVersions
    gateway_spec(spec, live_services) -> the spec with each model's targets set to its pools' Services

The rollout (server-side apply, pruning by label, check-mode diff, waiting) is in `.rollout`;
it imports the `kubernetes` client only when used.
"""

from __future__ import annotations

from .gateway import ServiceTargetError, gateway_spec
from .render import (
    REPLICA_FIELDS,
    EgressRule,
    KubernetesRenderError,
    RenderOptions,
    Workload,
    object_key,
    render_objects,
    workloads,
)
from .validate import validate_objects
from .versions import ApiVersions, VersionError, api_versions

__all__ = [
    "REPLICA_FIELDS",
    "ApiVersions",
    "EgressRule",
    "KubernetesRenderError",
    "RenderOptions",
    "ServiceTargetError",
    "VersionError",
    "Workload",
    "api_versions",
    "gateway_spec",
    "object_key",
    "render_objects",
    "validate_objects",
    "workloads",
]
