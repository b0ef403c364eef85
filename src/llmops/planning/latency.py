"""Predicted latency at the planned load, for people reading a plan.

A replica option's `ttft_ms` is the TTFT at its capacity: the capacity is the highest arrival rate
at which the 90th-percentile TTFT still meets the SLO, so that number equals the SLO by
construction and says nothing about the plan. What the plan will see is each replica at its share
of the demand (demand x traffic_weight), with the same operating point (batch size) and queueing
model the capacity came from: `PlanModel.ttft_at_demand_ms` is the worst of those.
"""

from __future__ import annotations

from functools import lru_cache

from llmops.catalog import ModelArchitecture, gpu_types

from .performance import ReplicaPerformance, sustainable_operating_point, ttft_at_rate_s
from .result import Plan
from .sizing import DEFAULT_MEMORY_UTILIZATION, memory_plan
from .spec import ModelDeployment


@lru_cache(maxsize=4096)
def _operating_point(
    arch: ModelArchitecture,
    gpu_name: str,
    precision: str,
    tensor_parallel: int,
    input_tokens: int,
    output_tokens: int,
    ttft_slo_ms: float,
    tpot_slo_ms: float,
) -> tuple[ReplicaPerformance, int] | None:
    # The same memory plan and operating point options.py derives the replica's capacity from.
    gpu = gpu_types()[gpu_name]
    plan = memory_plan(arch, gpu, precision, tensor_parallel, DEFAULT_MEMORY_UTILIZATION)
    max_sequences = plan.max_concurrent_sequences(input_tokens + output_tokens)
    if max_sequences < 1:
        return None
    perf = ReplicaPerformance.for_plan(arch, gpu, plan)
    point = sustainable_operating_point(perf, max_sequences, input_tokens, output_tokens, ttft_slo_ms, tpot_slo_ms)
    return None if point is None else (perf, point.concurrency)


def ttft_at_rate_ms(
    deployment: ModelDeployment,
    arch: ModelArchitecture,
    gpu_name: str,
    precision: str,
    tensor_parallel: int,
    rate_rps: float,
) -> float | None:
    """90th-percentile TTFT of one replica receiving `rate_rps`; None when the configuration has no
    operating point (it would not be in a plan)."""
    traffic, slo = deployment.traffic, deployment.slo
    found = _operating_point(
        arch, gpu_name, precision, tensor_parallel, traffic.input_tokens, traffic.output_tokens, slo.ttft_ms,
        slo.tpot_ms,
    )
    if found is None:
        return None
    perf, concurrency = found
    return ttft_at_rate_s(perf, concurrency, rate_rps, traffic.input_tokens, traffic.output_tokens) * 1e3


def annotate_latency(plan: Plan, deployments: dict[str, ModelDeployment]) -> Plan:
    """Fill every served model's `ttft_at_demand_ms` from its replicas' traffic weights, in place."""
    from .options import resolve_architecture

    worst: dict[str, float] = {}
    for replica in plan.replicas:
        deployment = deployments.get(replica.model)
        if deployment is None or replica.traffic_weight is None or replica.gpu_type not in gpu_types():
            continue
        rate = deployment.traffic.requests_per_second * replica.traffic_weight
        ttft = ttft_at_rate_ms(
            deployment, resolve_architecture(deployment), replica.gpu_type, replica.precision,
            replica.tensor_parallel, rate,
        )
        if ttft is not None:
            worst[replica.model] = max(worst.get(replica.model, 0.0), ttft)
    for entry in plan.models:
        entry.ttft_at_demand_ms = round(worst[entry.name], 1) if entry.served and entry.name in worst else None
    return plan
