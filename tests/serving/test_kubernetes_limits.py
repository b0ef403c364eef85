"""Every rendered pod is admissible under its namespace's LimitRange: requests never exceed the
limits the LimitRange's defaults fill in (the API server rejects such a pod, so no replica starts)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from llmops.serving.kubernetes import RenderOptions, render_objects

_CASES = Path(__file__).with_name("k8s_cases.py")
_module_spec = importlib.util.spec_from_file_location("k8s_cases", _CASES)
cases = importlib.util.module_from_spec(_module_spec)
_module_spec.loader.exec_module(cases)

UNITS = {"m": 1e-3, "": 1.0, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(text: str) -> float:
    for suffix in ("Ki", "Mi", "Gi", "m"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * UNITS[suffix]
    return float(text)


def effective_resources(container: dict, limit_range: dict) -> tuple[dict, dict]:
    """What the LimitRange admission plugin gives a container: defaults for what it does not name."""
    resources = container.get("resources") or {}
    requests, limits = dict(resources.get("requests") or {}), dict(resources.get("limits") or {})
    for item in limit_range["spec"]["limits"]:
        if item["type"] != "Container":
            continue
        for name, value in (item.get("default") or {}).items():
            limits.setdefault(name, value)
        for name, value in (item.get("defaultRequest") or {}).items():
            # A request defaults to the limit when one is set, else to defaultRequest.
            requests.setdefault(name, limits.get(name, value))
    return requests, limits


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("version", ["v1.20.2", "1.33"])
def test_every_container_request_fits_its_limit_after_the_limit_range_defaults(device, version):
    objects = render_objects(cases.spec(device=device), version, RenderOptions(image=cases.IMAGE, plan_name="lab"))
    limit_ranges = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "LimitRange"}
    pods = [(o["metadata"]["namespace"], o["spec"]["template"]["spec"]) for o in objects if o["kind"] == "Deployment"]
    assert pods
    for namespace, pod in pods:
        for container in pod.get("initContainers", []) + pod["containers"]:
            requests, limits = effective_resources(container, limit_ranges[namespace])
            for name, limit in limits.items():
                assert quantity(requests.get(name, "0")) <= quantity(limit), (
                    f"{namespace} {container['name']}: request {name}={requests.get(name)} above limit {limit}"
                )
