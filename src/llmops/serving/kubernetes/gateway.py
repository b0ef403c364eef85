"""The gateway's view of a serving spec rolled out on Kubernetes: one target per pool's Service.

On hosts the gateway's upstreams are the replicas themselves (node:port). On a cluster the
replicas are pods that come and go, so the gateway names each pool's Service instead (its
ClusterIP; kube-proxy on the gateway's node routes it to the ready pods and follows the
endpoints). Each Service's weight is the sum of the plan's traffic weights of the replicas in its
pool, so traffic still splits across pools as the plan split it. The result is the serving spec
with only `models.<name>.targets` replaced: `llmops.serving.gateway.gateway_routes` reads it
unchanged, and the endpoint clients use is the same for both rollout targets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from .render import MODEL_LABEL, POOL_LABEL, PORT_NAME


class ServiceTargetError(ValueError):
    """Services that cannot carry the spec's traffic; `problems` holds one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _service_entry(service: Mapping[str, Any]) -> tuple[str, str, dict[str, Any] | str]:
    meta = service.get("metadata") or {}
    labels = meta.get("labels") or {}
    where = f"Service {meta.get('namespace')}/{meta.get('name')}"
    spec = service.get("spec") or {}
    address = spec.get("clusterIP")
    ports = [p for p in spec.get("ports") or [] if p.get("name") == PORT_NAME]
    if not address or address == "None":
        return labels.get(MODEL_LABEL, ""), labels.get(POOL_LABEL, ""), f"{where}: has no cluster IP"
    if not ports:
        return labels.get(MODEL_LABEL, ""), labels.get(POOL_LABEL, ""), f"{where}: has no port named {PORT_NAME!r}"
    return labels.get(MODEL_LABEL, ""), labels.get(POOL_LABEL, ""), {
        "replica": f"{meta.get('namespace')}/{meta.get('name')}",
        "address": address,
        "port": int(ports[0]["port"]),
    }


def gateway_spec(spec: Mapping[str, Any], services: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The serving spec (its to_dict()) with every served model's targets set to its pools' Services.

    services: live Service objects (as the API server returns them) rendered by `render_objects`;
    the per-model Services (no pool label) and Services of other plans' models are ignored.
    Raises ServiceTargetError naming every served (model, pool) without a usable Service.
    """
    by_pool: dict[tuple[str, str], dict[str, Any]] = {}
    problems: list[str] = []
    for service in services:
        model, pool, entry = _service_entry(service)
        if not model or not pool:
            continue
        if isinstance(entry, str):
            problems.append(entry)
            continue
        by_pool[(model, pool)] = entry
    weights: dict[tuple[str, str], float] = defaultdict(float)
    for replica in spec.get("replicas") or []:
        weights[(replica["model"], replica["pool"])] += float(replica.get("traffic_weight") or 0.0)
    models = {}
    for name, route in (spec.get("models") or {}).items():
        route = dict(route or {})
        if route.get("targets"):
            pools = sorted(pool for model, pool in weights if model == name)
            targets = []
            for pool in pools:
                entry = by_pool.get((name, pool))
                if entry is None:
                    problems.append(
                        f"models.{name}: no Service with labels {MODEL_LABEL}={name}, {POOL_LABEL}={pool}; "
                        "roll the plan out first (k8s_serving)"
                    )
                    continue
                targets.append({**entry, "weight": weights[(name, pool)]})
            route["targets"] = targets
        models[name] = route
    if problems:
        raise ServiceTargetError(problems)
    return {**dict(spec), "models": models}
