"""The serving spec: plan.json + models + inventory -> per-replica runtime specs, and its renderers.

    serving_spec(plan, models, inventory_hosts=..., device="cuda"|"cpu") -> ServingSpec
    render_systemd_unit(replica, ...) -> str

Every rollout target (host-mode systemd units, the gateway's upstreams, Prometheus scrape jobs,
Kubernetes objects) renders from the ServingSpec; none re-derives what the planner decided.
"""

from __future__ import annotations

from .spec import (
    DEVICES,
    ModelRoute,
    ReplicaSpec,
    ServingSpec,
    ServingSpecError,
    TenantAccess,
    serving_spec,
)
from .systemd import render_systemd_unit, unit_name

__all__ = [
    "DEVICES",
    "ModelRoute",
    "ReplicaSpec",
    "ServingSpec",
    "ServingSpecError",
    "TenantAccess",
    "render_systemd_unit",
    "serving_spec",
    "unit_name",
]
