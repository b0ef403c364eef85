"""What the serving layer needs beyond placement: traffic weights and autoscaling ranges.

Traffic weights. The capacity constraints count a model's replicas' capacities together, which
assumes the router splits traffic in proportion to them; round-robin would overload the small
ones. So every replica gets weight  capacity_i / sum of its model's capacities:  the weights sum
to 1, and the replica receives  demand * weight_i <= capacity_i  because demand <= the sum. The
gateway's upstream weights and the per-pool Deployments use them. After a zone or node loss the
gateway spreads the traffic over the healthy upstreams in the same proportions; survivability
guarantees the survivors' capacity covers (survive_fraction of) the demand, so each survivor
still stays within its capacity at that share.

Autoscaling range, per model:
- min_replicas: the plan's replica count, the cheapest set that meets demand, min_replicas and
  survivability at base demand;
- max_replicas: that set scaled to the peak, ceil(min_replicas * peak / demand), with peak
  `traffic.peak_requests_per_second` or PEAK_FACTOR x demand. Scaling every pool's replicas by
  the same factor keeps each zone's share, so the scaled set is survivable at the peak too;
- target_requests_per_second: the smallest replica capacity at the SLO (a per-pod average target
  that keeps the slowest replica within its SLO);
- target_requests_in_flight: Little's law at that rate, rate x (TTFT + (output_tokens - 1) x TPOT)
  with the model's worst predicted TTFT and TPOT at the operating point.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from .latency import annotate_latency
from .result import Autoscaling, Plan
from .spec import ModelDeployment

PEAK_FACTOR = 1.5


def traffic_weights(capacities: list[float]) -> list[float]:
    """Shares proportional to capacity; they sum to 1 (the last one absorbs rounding)."""
    total = math.fsum(capacities)
    if total <= 0:
        return [1.0 / len(capacities)] * len(capacities) if capacities else []
    weights = [c / total for c in capacities]
    weights[-1] = 1.0 - math.fsum(weights[:-1])
    return weights


def peak_requests_per_second(deployment: ModelDeployment) -> float:
    peak = deployment.traffic.peak_requests_per_second
    return peak if peak is not None else PEAK_FACTOR * deployment.traffic.requests_per_second


def autoscaling_range(
    deployment: ModelDeployment, capacities: list[float], ttft_ms: float, tpot_ms: float
) -> Autoscaling:
    replicas = len(capacities)
    demand = deployment.traffic.requests_per_second
    peak = peak_requests_per_second(deployment)
    target = min(capacities)
    latency_s = (ttft_ms + max(0, deployment.traffic.output_tokens - 1) * tpot_ms) / 1e3
    return Autoscaling(
        min_replicas=replicas,
        # A hair of tolerance so that peak == demand gives exactly min_replicas.
        max_replicas=max(replicas, math.ceil(replicas * peak / demand - 1e-9)),
        target_requests_per_second=target,
        target_requests_in_flight=round(target * latency_s, 3),
    )


def annotate(plan: Plan, deployments: Iterable[ModelDeployment]) -> Plan:
    """Fill every replica's traffic_weight and every served model's autoscaling range and predicted
    TTFT at the planned demand (latency.py), in place."""
    deployments = {d.name: d for d in deployments}
    replicas_of: dict[str, list] = defaultdict(list)
    for replica in plan.replicas:
        replicas_of[replica.model].append(replica)
    for replicas in replicas_of.values():
        for replica, weight in zip(
            replicas, traffic_weights([r.capacity_requests_per_second for r in replicas]), strict=True
        ):
            replica.traffic_weight = weight
    for entry in plan.models:
        replicas = replicas_of.get(entry.name, [])
        deployment = deployments.get(entry.name)
        if not entry.served or not replicas or deployment is None:
            entry.autoscaling = None
            continue
        entry.autoscaling = autoscaling_range(
            deployment,
            [r.capacity_requests_per_second for r in replicas],
            entry.ttft_ms or 0.0,
            entry.tpot_ms or 0.0,
        )
    return annotate_latency(plan, deployments)
