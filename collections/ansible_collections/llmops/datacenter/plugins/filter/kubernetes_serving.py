# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Filters for serving on Kubernetes, on the controller (they import the llmops package)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

try:
    from llmops.serving.kubernetes import ServiceTargetError, gateway_spec

    HAS_LLMOPS = True
except ImportError:  # pragma: no cover - reported when a filter is used
    HAS_LLMOPS = False


def _kubernetes_gateway_spec(spec, services):
    """The serving spec with each model's gateway targets set to its pools' Services (cluster IPs)."""
    if not HAS_LLMOPS:
        raise AnsibleFilterError(
            "the llmops Python package is required on the controller (pip install -e . in the llmops checkout)"
        )
    try:
        return gateway_spec(spec, services or [])
    except ServiceTargetError as exc:
        raise AnsibleFilterError("the cluster's Services cannot carry the serving spec:\n" + str(exc)) from None


class FilterModule:
    def filters(self):
        return {"kubernetes_gateway_spec": _kubernetes_gateway_spec}
