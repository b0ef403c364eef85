"""The two baselines the benchmarks compare the optimiser against.

first_fit_decreasing: what Kubernetes' scheduler plus Karpenter do today. Each model gets one
  fixed replica configuration, chosen the way a platform team writes a Deployment: the first
  allowed precision and the smallest tensor-parallel degree that fits, on the GPU type of the
  pool whose node is cheapest among those that can hold it (Karpenter launches the cheapest
  instance type that fits the pending pod). Models are taken by replica GPU count, largest first;
  each replica is bound first-fit to an already open node of any GPU type the pod runs on (its
  precision and TP fit there and meet the SLO), else the cheapest node (per node) of a pool that
  can hold it is launched; replicas are added one at a time until they cover demand and
  min_replicas, as a horizontal autoscaler grows a Deployment. spread=node is an anti-affinity
  rule, spread=zone a topology spread constraint with maxSkew 1 across the zones that offer a
  GPU type it runs on (and at least two replicas).

best_single_gpu_type: the optimiser itself, restricted to the pools of one GPU type at a time;
  the cheapest plan among the types (fewest unplaced models first).

Neither computes a lower bound; their plans report lower_bound_per_hour 0.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .assignment import OpenNode
from .fleet import ResolvedPool, resolve_inputs, resolve_pools
from .options import explain_no_option, replica_options
from .result import Plan, PlanNode, PlanReplica, Unplaced
from .solver import model_summary, solve
from .spec import Fleet, ModelDeployment, ModelsFile, Spread


@dataclass(frozen=True)
class _PodSpec:
    """One model's Deployment: precision and TP fixed, and how that replica runs on each GPU type."""

    precision: str
    tensor_parallel: int
    options_by_gpu_type: dict[str, object]
    """ReplicaOption per GPU type where this precision and TP fit and meet the SLO."""


def _pod_spec(deployment: ModelDeployment, pools_by_node_cost: list[ResolvedPool]) -> _PodSpec | None:
    """First allowed precision, smallest TP that fits, on the GPU type of the cheapest node that can hold it.

    A spread=zone model prefers a GPU type offered in two zones (a team picks an instance type
    its topology spread constraint can use); only if none fits does it take a single-zone type.
    """
    zones_of_type: dict[str, set[str]] = {}
    for pool in pools_by_node_cost:
        zones_of_type.setdefault(pool.gpu_type.name, set()).add(pool.zone)
    preferred = pools_by_node_cost
    if deployment.spread == Spread.zone:
        multi_zone = [p for p in pools_by_node_cost if len(zones_of_type[p.gpu_type.name]) >= 2]
        preferred = multi_zone + [p for p in pools_by_node_cost if p not in multi_zone]
    for pool in preferred:
        options = replica_options(deployment, pool.gpu_type, pool.gpus_per_node)
        for precision in deployment.precisions:
            fitting = [o for o in options if o.precision == precision]
            if fitting:
                chosen = min(fitting, key=lambda o: o.tensor_parallel)
                everywhere = _same_spec_everywhere(deployment, chosen, pools_by_node_cost)
                return _PodSpec(precision, chosen.tensor_parallel, everywhere)
    return None


def _same_spec_everywhere(deployment: ModelDeployment, chosen, pools: list[ResolvedPool]) -> dict[str, object]:
    """The pod runs unchanged on any GPU type where its precision and TP fit and meet the SLO."""
    found: dict[str, object] = {}
    for pool in pools:
        if pool.gpu_type.name in found:
            continue
        for option in replica_options(deployment, pool.gpu_type, pool.gpus_per_node):
            if option.precision == chosen.precision and option.tensor_parallel == chosen.tensor_parallel:
                found[pool.gpu_type.name] = option
    return found


@dataclass
class _Cluster:
    """Open nodes in launch order, the nodes each pool can still launch, replicas bound so far."""

    usable: list[ResolvedPool]
    opened: list[OpenNode] = field(default_factory=list)
    unopened: dict[str, list[str]] = field(default_factory=dict)
    bound: list[tuple[int, object, OpenNode, int]] = field(default_factory=list)
    zone_counts: dict[int, dict[str, int]] = field(default_factory=dict)

    def schedule(self, model_index: int, deployment: ModelDeployment, spec: _PodSpec) -> object | None:
        """Bind one replica: first fit on an open node, else launch the cheapest node that fits it."""
        size = spec.tensor_parallel
        pools = [p for p in self.usable if p.gpu_type.name in spec.options_by_gpu_type and p.gpus_per_node >= size]
        zones = {p.zone for p in pools}
        if deployment.spread == Spread.zone and len(zones) >= 2:
            # Topology spread, maxSkew 1: only zones holding the fewest replicas of this model so far.
            counts = self.zone_counts.get(model_index, {})
            fewest = min(counts.get(zone, 0) for zone in zones)
            zones = {zone for zone in zones if counts.get(zone, 0) == fewest}
        chosen: tuple[OpenNode, int] | None = None
        for node in self.opened:
            if node.pool.gpu_type.name not in spec.options_by_gpu_type or node.pool.zone not in zones:
                continue
            if deployment.spread == Spread.node and model_index in node.models:
                continue
            start = node.free_block(size)
            if start is not None:
                chosen = (node, start)
                break
        if chosen is None:
            for pool in sorted(pools, key=lambda p: (p.node_hourly_cost, p.name)):
                if pool.zone in zones and self.unopened[pool.name]:
                    node = OpenNode(pool, self.unopened[pool.name].pop(0), pool.gpus_per_node, [True] * pool.gpus_per_node)
                    self.opened.append(node)
                    chosen = (node, 0)
                    break
        if chosen is None:
            return None
        node, start = chosen
        for gpu in range(start, start + size):
            node.free[gpu] = False
        node.models.add(model_index)
        counts = self.zone_counts.setdefault(model_index, {})
        counts[node.pool.zone] = counts.get(node.pool.zone, 0) + 1
        option = spec.options_by_gpu_type[node.pool.gpu_type.name]
        self.bound.append((model_index, option, node, start))
        return option


def first_fit_decreasing(fleet: Fleet, models: ModelsFile) -> Plan:
    started = time.monotonic()
    pools, architectures = resolve_inputs(fleet, models)
    usable = [pool for pool in pools if pool.node_names]
    by_node_cost = sorted(usable, key=lambda p: (p.node_hourly_cost, p.name))
    specs: dict[int, _PodSpec] = {}
    unplaced: dict[int, str] = {}
    for index, deployment in enumerate(models.models):
        spec = _pod_spec(deployment, by_node_cost)
        if spec is None:
            closest = max(usable, key=lambda p: p.gpu_type.memory_gib * p.gpus_per_node) if usable else None
            unplaced[index] = (
                f"no replica configuration fits: {explain_no_option(deployment, closest.gpu_type, closest.gpus_per_node)}"
                if closest
                else "the fleet has no nodes to open"
            )
            continue
        specs[index] = spec
    cluster = _Cluster(usable=usable, unopened={pool.name: list(pool.node_names) for pool in usable})
    # Largest replicas first; each model scales out one replica at a time until its bound replicas
    # cover demand and min_replicas, as a horizontal autoscaler grows a Deployment: a replica that
    # lands on a faster or slower GPU type than expected changes how many more it needs.
    for model_index in sorted(specs, key=lambda m: (-specs[m].tensor_parallel, m)):
        deployment = models.models[model_index]
        least = max(deployment.min_replicas, 1, 2 if deployment.spread == Spread.zone else 1)
        count, capacity = 0, 0.0
        while count < least or capacity < deployment.traffic.requests_per_second:
            option = cluster.schedule(model_index, deployment, specs[model_index])
            if option is None:
                unplaced[model_index] = _no_room(specs[model_index])
                break
            count, capacity = count + 1, capacity + option.capacity_requests_per_second

    kept = [b for b in cluster.bound if b[0] not in unplaced]
    used_names = {node.name for _, _, node, _ in kept}
    nodes = [
        PlanNode(
            name=node.name,
            pool=node.pool.name,
            zone=node.pool.zone,
            gpu_type=node.pool.gpu_type.name,
            gpus=node.gpus_per_node,
            hourly_cost=node.pool.node_hourly_cost,
        )
        for node in cluster.opened
        if node.name in used_names
    ]
    plan_replicas = [
        PlanReplica(
            model=models.models[m].name,
            node=node.name,
            gpu_indices=list(range(start, start + option.tensor_parallel)),
            gpu_type=node.pool.gpu_type.name,
            precision=option.precision,
            tensor_parallel=option.tensor_parallel,
            memory_per_gpu_gib=option.memory_per_gpu_gib,
            capacity_requests_per_second=option.capacity_requests_per_second,
        )
        for m, option, node, start in sorted(kept, key=lambda b: (b[0], b[2].name, b[3]))
    ]
    summaries = []
    for index, deployment in enumerate(models.models):
        options = [option for m, option, _, _ in kept if m == index]
        summaries.append(model_summary(deployment, architectures[deployment.name], options, index not in unplaced))
    return Plan(
        status="partial" if unplaced else "feasible",
        cost_per_hour=math.fsum(node.hourly_cost for node in nodes),
        lower_bound_per_hour=0.0,
        solve_seconds=round(time.monotonic() - started, 3),
        nodes=nodes,
        replicas=plan_replicas,
        models=summaries,
        unplaced=[Unplaced(model=models.models[m].name, reason=reason) for m, reason in sorted(unplaced.items())],
    )


def _no_room(spec: _PodSpec) -> str:
    return (
        f"first-fit found no node with {spec.tensor_parallel} free GPUs of a type that runs it "
        f"({', '.join(sorted(spec.options_by_gpu_type))}) and no such pool with nodes left"
    )


def best_single_gpu_type(fleet: Fleet, models: ModelsFile, time_limit_s: float = 30.0) -> Plan:
    """The optimiser on one GPU type's pools at a time; the cheapest plan (fewest unplaced first)."""
    started = time.monotonic()
    pools = resolve_pools(fleet)
    types = sorted({pool.gpu_type.name for pool in pools})
    best: Plan | None = None
    for position, gpu_type in enumerate(types):
        subset = Fleet(pools=[spec for spec, pool in zip(fleet.pools, pools, strict=True) if pool.gpu_type.name == gpu_type])
        budget = max(1.0, (started + time_limit_s - time.monotonic()) / (len(types) - position))
        plan = solve(subset, models, time_limit_s=budget)
        if best is None or (len(plan.unplaced), plan.cost_per_hour) < (len(best.unplaced), best.cost_per_hour):
            best = plan
    best.solve_seconds = round(time.monotonic() - started, 3)
    return best
