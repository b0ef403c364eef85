# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Filters that render serving-spec data on the controller (they import the llmops package)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

try:
    from llmops.serving.gateway import GatewayConfigError, gateway_routes, scrape_targets

    HAS_LLMOPS = True
except ImportError:  # pragma: no cover - reported when a filter is used
    HAS_LLMOPS = False


def _require_llmops():
    if not HAS_LLMOPS:
        raise AnsibleFilterError(
            "the llmops Python package is required on the controller (pip install -e . in the llmops checkout)"
        )


def _gateway_routes(spec, api_keys):
    """gateway_routes(spec, api_keys): upstreams, routes, models and key digests for the gateway role."""
    _require_llmops()
    try:
        return gateway_routes(spec, api_keys or [])
    except GatewayConfigError as exc:
        # Problems name fields and values, never a key itself.
        raise AnsibleFilterError("gateway configuration is invalid:\n" + str(exc)) from None


def _serving_scrape_targets(spec):
    """Model-server scrape targets (model, tenant, GPU type, zone labels) in the prometheus role's format."""
    _require_llmops()
    try:
        return scrape_targets(spec)
    except (GatewayConfigError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"serving spec cannot be turned into scrape targets: {exc}") from None


class FilterModule:
    def filters(self):
        return {
            "gateway_routes": _gateway_routes,
            "serving_scrape_targets": _serving_scrape_targets,
        }
