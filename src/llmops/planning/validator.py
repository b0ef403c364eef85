"""The independent plan validator: checks any plan against its inputs, whoever produced it.

It re-derives every fact it checks from the inputs, the catalog and the replica options
(llmops.planning.options) and never looks at how a plan was found, so a solver bug, a baseline,
a hand-edited plan.json and a stale plan are all caught the same way. Each violation is one
readable line naming the plan element it concerns.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from pydantic import ValidationError

from llmops.catalog import ModelArchitecture

from .fleet import ResolvedPool, resolve_inputs
from .options import ReplicaOption, floor_reason, replica_options, useful_options
from .problems import quantity
from .result import Plan, PlanModel, PlanReplica
from .sizing import DEFAULT_MEMORY_UTILIZATION
from .spec import (
    Fleet,
    InputError,
    ModelDeployment,
    ModelsFile,
    Spread,
    format_validation_error,
    parse_fleet,
    parse_models,
)
from .traffic import peak_requests_per_second

# Plans are written as JSON and read back; relative tolerances absorb float round trips and the
# rounding a producer may apply to the numbers it prints (2 decimals on values of order 1-100).
COST_REL_TOL = 1e-6
VALUE_REL_TOL = 1e-3
VALUE_ABS_TOL = 0.006


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=VALUE_REL_TOL, abs_tol=VALUE_ABS_TOL)


def _at_most(value: float, limit: float) -> bool:
    return value <= limit or _close(value, limit)


def _gpu_supports(gpu: Any, precision: str) -> bool:
    if precision == "fp8":
        return bool(gpu.supports_fp8)
    if precision == "int4":
        return bool(gpu.supports_int4)
    return True


def _is_power_of_two(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


class _Checker:
    """Holds the resolved inputs and collects violations; one method per family of checks."""

    def __init__(
        self,
        plan: Plan,
        models: ModelsFile,
        pools: list[ResolvedPool],
        architectures: dict[str, ModelArchitecture],
    ):
        self.plan = plan
        self.architectures = architectures
        self.pools = {pool.name: pool for pool in pools}
        self.deployments: dict[str, ModelDeployment] = {m.name: m for m in models.models}
        self.violations: list[str] = []
        self._options: dict[tuple[str, str], list[ReplicaOption]] = {}

    def fail(self, line: str) -> None:
        self.violations.append(line)

    def options(self, deployment: ModelDeployment, pool: ResolvedPool) -> list[ReplicaOption]:
        """The options the planner may offer: fit, meet the SLO and clear the model's replica floor."""
        key = (deployment.name, pool.name)
        if key not in self._options:
            self._options[key] = useful_options(deployment, pool.gpu_type, pool.gpus_per_node)
        return self._options[key]

    # -- nodes and cost ---------------------------------------------------------------------

    def check_nodes(self) -> None:
        seen: set[str] = set()
        for index, node in enumerate(self.plan.nodes):
            where = f"nodes[{index}] ({node.name})"
            if node.name in seen:
                self.fail(f"{where}: node name appears more than once in nodes")
            seen.add(node.name)
            pool = self.pools.get(node.pool)
            if pool is None:
                self.fail(f"{where}: pool {node.pool!r} is not in the fleet")
                continue
            if node.name not in pool.node_names:
                if pool.fixed:
                    self.fail(f"{where}: not one of pool {pool.name}'s nodes ({', '.join(pool.node_names)})")
                else:
                    self.fail(
                        f"{where}: cloud nodes of pool {pool.name} are named {pool.name}-<i> "
                        f"with 0 <= i < {len(pool.node_names)}"
                    )
            if node.zone != pool.zone:
                self.fail(f"{where}: zone {node.zone!r} but pool {pool.name} is in {pool.zone!r}")
            if node.gpu_type != pool.gpu_type.name:
                self.fail(f"{where}: gpu_type {node.gpu_type} but pool {pool.name} has {pool.gpu_type.name}")
            if node.gpus != pool.gpus_per_node:
                self.fail(f"{where}: gpus {node.gpus} but pool {pool.name} has {pool.gpus_per_node} per node")
            if not math.isclose(node.hourly_cost, pool.node_hourly_cost, rel_tol=COST_REL_TOL, abs_tol=1e-9):
                self.fail(
                    f"{where}: hourly_cost {quantity(node.hourly_cost)} but pool {pool.name} costs "
                    f"{quantity(pool.node_hourly_cost)} per node"
                )
        used = {replica.node for replica in self.plan.replicas}
        for node in self.plan.nodes:
            if node.name not in used:
                self.fail(f"node {node.name}: listed in nodes but runs no replica (nodes lists only used nodes)")

    def check_cost(self) -> None:
        total = sum(node.hourly_cost for node in self.plan.nodes)
        if not math.isclose(self.plan.cost_per_hour, total, rel_tol=COST_REL_TOL, abs_tol=1e-9):
            self.fail(
                f"cost_per_hour {quantity(self.plan.cost_per_hour)} is not the sum of the nodes' hourly_cost "
                f"({quantity(total)})"
            )
        if self.plan.lower_bound_per_hour < 0:
            self.fail(f"lower_bound_per_hour {quantity(self.plan.lower_bound_per_hour)} is negative")
        bound, cost = self.plan.lower_bound_per_hour, self.plan.cost_per_hour
        if bound > cost and not math.isclose(bound, cost, rel_tol=COST_REL_TOL, abs_tol=1e-9):
            self.fail(f"lower_bound_per_hour {quantity(bound)} exceeds cost_per_hour {quantity(cost)}")

    # -- replicas ---------------------------------------------------------------------------

    def check_replicas(self) -> dict[int, ReplicaOption]:
        """Check every replica on its own; returns the catalog option each valid replica matches."""
        nodes = {node.name: node for node in self.plan.nodes}
        gpus_taken: dict[str, dict[int, int]] = defaultdict(dict)
        matched: dict[int, ReplicaOption] = {}
        for index, replica in enumerate(self.plan.replicas):
            where = f"replicas[{index}] ({replica.model} on {replica.node})"
            deployment = self.deployments.get(replica.model)
            if deployment is None:
                self.fail(f"{where}: model {replica.model!r} is not in the models file")
            node = nodes.get(replica.node)
            if node is None:
                self.fail(f"{where}: node {replica.node!r} is not in the plan's nodes")
                continue
            pool = self.pools.get(node.pool)
            if replica.gpu_type != node.gpu_type:
                self.fail(f"{where}: gpu_type {replica.gpu_type} but node {node.name} has {node.gpu_type}")
            tp = replica.tensor_parallel
            if not _is_power_of_two(tp):
                self.fail(f"{where}: tensor_parallel {tp} is not a power of two")
            if tp != len(replica.gpu_indices):
                self.fail(f"{where}: tensor_parallel {tp} but {len(replica.gpu_indices)} gpu_indices")
            for gpu in replica.gpu_indices:
                if not 0 <= gpu < node.gpus:
                    self.fail(f"{where}: GPU index {gpu} outside 0..{node.gpus - 1}")
                elif gpu in gpus_taken[node.name]:
                    other = gpus_taken[node.name][gpu]
                    self.fail(f"{where}: GPU {gpu} of {node.name} is already used by replicas[{other}]")
                else:
                    gpus_taken[node.name][gpu] = index
            if deployment is None or pool is None:
                continue
            option = self._check_against_options(where, replica, deployment, pool)
            if option is not None:
                matched[index] = option
        return matched

    def _check_against_options(
        self, where: str, replica: PlanReplica, deployment: ModelDeployment, pool: ResolvedPool
    ) -> ReplicaOption | None:
        gpu = pool.gpu_type
        if replica.precision not in deployment.precisions:
            self.fail(
                f"{where}: precision {replica.precision} is not allowed for {deployment.name} "
                f"(precisions: {', '.join(deployment.precisions)})"
            )
        if not _gpu_supports(gpu, replica.precision):
            self.fail(f"{where}: {gpu.name} does not support {replica.precision}")
        limit = DEFAULT_MEMORY_UTILIZATION * gpu.memory_gib
        if not _at_most(replica.memory_per_gpu_gib, limit):
            self.fail(
                f"{where}: memory_per_gpu_gib {replica.memory_per_gpu_gib:.2f} exceeds "
                f"{DEFAULT_MEMORY_UTILIZATION:.2f} x {gpu.memory_gib} GiB = {limit:.2f} GiB"
            )
        option = next(
            (
                o
                for o in self.options(deployment, pool)
                if o.precision == replica.precision and o.tensor_parallel == replica.tensor_parallel
            ),
            None,
        )
        if option is None:
            raw = next(
                (
                    o
                    for o in replica_options(deployment, pool.gpu_type, pool.gpus_per_node)
                    if o.precision == replica.precision and o.tensor_parallel == replica.tensor_parallel
                ),
                None,
            )
            config = f"{gpu.name} {replica.precision} TP{replica.tensor_parallel}"
            if raw is not None:
                self.fail(f"{where}: replica configuration {config} is below the replica floor: {floor_reason(deployment, raw)}")
            else:
                self.fail(f"{where}: no replica configuration {config} fits in memory and meets {deployment.name}'s SLO")
            return None
        if not _close(replica.capacity_requests_per_second, option.capacity_requests_per_second):
            self.fail(
                f"{where}: capacity_requests_per_second {quantity(replica.capacity_requests_per_second)} but this "
                f"configuration sustains {option.capacity_requests_per_second:.4g} within the SLO"
            )
        if not _close(replica.memory_per_gpu_gib, option.memory_per_gpu_gib):
            self.fail(
                f"{where}: memory_per_gpu_gib {quantity(replica.memory_per_gpu_gib)} but this configuration "
                f"needs {option.memory_per_gpu_gib:.4g} GiB per GPU"
            )
        return option

    # -- models -----------------------------------------------------------------------------

    def check_models(self, matched: dict[int, ReplicaOption]) -> None:
        replicas_of: dict[str, list[int]] = defaultdict(list)
        for index, replica in enumerate(self.plan.replicas):
            replicas_of[replica.model].append(index)

        entries: dict[str, list[PlanModel]] = defaultdict(list)
        for entry in self.plan.models:
            entries[entry.name].append(entry)
        unplaced: dict[str, int] = defaultdict(int)
        for item in self.plan.unplaced:
            unplaced[item.model] += 1
            if item.model not in self.deployments:
                self.fail(f"unplaced {item.model!r}: not in the models file")
            if not item.reason.strip():
                self.fail(f"unplaced {item.model}: reason is empty")
        for name in entries:
            if name not in self.deployments:
                self.fail(f"models entry {name!r}: not in the models file")

        for name, deployment in self.deployments.items():
            served_entries = [e for e in entries.get(name, []) if e.served]
            if len(entries.get(name, [])) > 1:
                self.fail(f"model {name}: appears {len(entries[name])} times in models")
            if unplaced[name] > 1:
                self.fail(f"model {name}: appears {unplaced[name]} times in unplaced")
            if served_entries and unplaced[name]:
                self.fail(f"model {name}: marked served in models and also listed in unplaced")
            elif not served_entries and not unplaced[name]:
                self.fail(f"model {name}: neither served in models nor listed in unplaced")
            indices = replicas_of.get(name, [])
            if unplaced[name] and indices:
                self.fail(f"model {name}: listed in unplaced but has {len(indices)} replicas")
            for entry in entries.get(name, []):
                self._check_model_entry(entry, deployment, self.architectures[name], indices, matched)
            if served_entries:
                self._check_served(deployment, indices)

    def _check_model_entry(
        self,
        entry: PlanModel,
        deployment: ModelDeployment,
        architecture: ModelArchitecture,
        indices: list[int],
        matched: dict[int, ReplicaOption],
    ) -> None:
        where = f"models entry {entry.name}"
        capacity = sum(self.plan.replicas[i].capacity_requests_per_second for i in indices)
        if entry.replicas != len(indices):
            self.fail(f"{where}: replicas {entry.replicas} but the plan has {len(indices)} replicas of it")
        if not _close(entry.capacity_requests_per_second, capacity):
            self.fail(
                f"{where}: capacity_requests_per_second {quantity(entry.capacity_requests_per_second)} but its "
                f"replicas add up to {capacity:.4g}"
            )
        if not _close(entry.demand_requests_per_second, deployment.traffic.requests_per_second):
            self.fail(
                f"{where}: demand_requests_per_second {quantity(entry.demand_requests_per_second)} but traffic is "
                f"{quantity(deployment.traffic.requests_per_second)}"
            )
        if not _close(entry.params_billion, architecture.total_params / 1e9):
            self.fail(
                f"{where}: params_billion {quantity(entry.params_billion)} but the architecture has "
                f"{architecture.total_params / 1e9:.2f}"
            )
        if entry.kv_bytes_per_token_bf16 != architecture.kv_bytes_per_token(2):
            self.fail(
                f"{where}: kv_bytes_per_token_bf16 {entry.kv_bytes_per_token_bf16} but the architecture "
                f"needs {architecture.kv_bytes_per_token(2)}"
            )
        if not entry.served:
            if indices or entry.replicas:
                self.fail(f"{where}: served is false but it has replicas")
            return
        for field, value, slo in (
            ("ttft_ms", entry.ttft_ms, deployment.slo.ttft_ms),
            ("tpot_ms", entry.tpot_ms, deployment.slo.tpot_ms),
        ):
            if value is None:
                self.fail(f"{where}: served but {field} is missing")
                continue
            if not _at_most(value, slo):
                self.fail(f"{where}: {field} {quantity(value)} exceeds the SLO {quantity(slo)}")
            options = [matched[i] for i in indices if i in matched]
            if options and len(options) == len(indices):
                worst = max(getattr(option, field) for option in options)
                if not _close(value, worst):
                    self.fail(
                        f"{where}: {field} {quantity(value)} but its slowest replica configuration has {worst:.4g}"
                    )
        # Below capacity the queue is shorter: the TTFT at the demand cannot exceed the one at capacity.
        at_demand = entry.ttft_at_demand_ms
        if at_demand is not None and entry.ttft_ms is not None and not _at_most(at_demand, entry.ttft_ms):
            self.fail(
                f"{where}: ttft_at_demand_ms {quantity(at_demand)} exceeds ttft_ms {quantity(entry.ttft_ms)} "
                "at full capacity"
            )

    def _check_served(self, deployment: ModelDeployment, indices: list[int]) -> None:
        name = deployment.name
        replicas = [self.plan.replicas[i] for i in indices]
        capacity = sum(r.capacity_requests_per_second for r in replicas)
        demand = deployment.traffic.requests_per_second
        if not _at_most(demand, capacity):
            self.fail(f"model {name}: capacity {capacity:.4g} req/s is below demand {demand} req/s")
        if len(replicas) < deployment.min_replicas:
            self.fail(f"model {name}: {len(replicas)} replicas but min_replicas is {deployment.min_replicas}")
        if not replicas:
            self.fail(f"model {name}: marked served but has no replicas")
            return
        self._check_survival(deployment, replicas)
        self._check_weights(deployment, indices)
        self._check_autoscaling(deployment, replicas)

    def _check_survival(self, deployment: ModelDeployment, replicas: list[PlanReplica]) -> None:
        """spread=zone/node: after losing any one zone/node, the rest serve survive_fraction of demand."""
        name = deployment.name
        need = deployment.survive_fraction * deployment.traffic.requests_per_second
        node_zone = {node.name: node.zone for node in self.plan.nodes}
        if deployment.spread == Spread.zone:
            # A pool counts when it has nodes at all and some offered configuration of the model fits its nodes.
            feasible_zones = {
                pool.zone for pool in self.pools.values() if pool.node_names and self.options(deployment, pool)
            }
            if len(feasible_zones) < 2:
                return  # no plan can survive the loss of the only zone; the rule does not bind
            by_zone: dict[str, float] = defaultdict(float)
            for replica in replicas:
                by_zone[node_zone.get(replica.node, "?")] += replica.capacity_requests_per_second
            total = sum(by_zone.values())
            for zone in sorted(feasible_zones | set(by_zone)):
                left = total - by_zone.get(zone, 0.0)
                if not _at_most(need, left):
                    self.fail(
                        f"model {name}: spread=zone but losing zone {zone} leaves {left:.4g} req/s, below "
                        f"{deployment.survive_fraction:g} x demand = {need:.4g} req/s"
                    )
        elif deployment.spread == Spread.node:
            per_node: dict[str, int] = defaultdict(int)
            by_node: dict[str, float] = defaultdict(float)
            for replica in replicas:
                per_node[replica.node] += 1
                by_node[replica.node] += replica.capacity_requests_per_second
            for node, count in sorted(per_node.items()):
                if count > 1:
                    self.fail(f"model {name}: spread=node but {count} replicas share node {node}")
            total = sum(by_node.values())
            for node, lost in sorted(by_node.items()):
                if not _at_most(need, total - lost):
                    self.fail(
                        f"model {name}: spread=node but losing node {node} leaves {total - lost:.4g} req/s, "
                        f"below {deployment.survive_fraction:g} x demand = {need:.4g} req/s"
                    )

    def _check_weights(self, deployment: ModelDeployment, indices: list[int]) -> None:
        """Traffic weights: every replica has one, they sum to 1, and none sends a replica past its capacity."""
        demand = deployment.traffic.requests_per_second
        weights = []
        for i in indices:
            replica = self.plan.replicas[i]
            where = f"replicas[{i}] ({replica.model} on {replica.node})"
            if replica.traffic_weight is None:
                self.fail(f"{where}: traffic_weight is missing")
                return
            if replica.traffic_weight < 0:
                self.fail(f"{where}: traffic_weight {quantity(replica.traffic_weight)} is negative")
            elif not _at_most(replica.traffic_weight * demand, replica.capacity_requests_per_second):
                self.fail(
                    f"{where}: traffic_weight {replica.traffic_weight:.4g} sends {replica.traffic_weight * demand:.4g} "
                    f"req/s, above its capacity {replica.capacity_requests_per_second:.4g}"
                )
            weights.append(replica.traffic_weight)
        if weights and not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
            self.fail(f"model {deployment.name}: traffic weights sum to {sum(weights):.6g}, not 1")

    def _check_autoscaling(self, deployment: ModelDeployment, replicas: list[PlanReplica]) -> None:
        entry = next((e for e in self.plan.models if e.name == deployment.name), None)
        if entry is None:
            return
        where = f"models entry {deployment.name}"
        scaling = entry.autoscaling
        if scaling is None:
            self.fail(f"{where}: served but autoscaling is missing")
            return
        if scaling.min_replicas != len(replicas):
            self.fail(f"{where}: autoscaling.min_replicas {scaling.min_replicas} but the plan runs {len(replicas)}")
        if scaling.max_replicas < scaling.min_replicas:
            self.fail(f"{where}: autoscaling.max_replicas {scaling.max_replicas} < min_replicas {scaling.min_replicas}")
        smallest = min(r.capacity_requests_per_second for r in replicas)
        if scaling.target_requests_per_second <= 0 or not _at_most(scaling.target_requests_per_second, smallest):
            self.fail(
                f"{where}: autoscaling.target_requests_per_second {quantity(scaling.target_requests_per_second)} "
                "must be > 0 "
                f"and at most the smallest replica capacity {smallest:.4g}"
            )
        if scaling.target_requests_in_flight <= 0:
            self.fail(f"{where}: autoscaling.target_requests_in_flight must be > 0")
        peak = peak_requests_per_second(deployment)
        capacity = sum(r.capacity_requests_per_second for r in replicas)
        reach = capacity * scaling.max_replicas / max(1, scaling.min_replicas)
        if not _at_most(peak, reach):
            self.fail(f"{where}: autoscaling.max_replicas {scaling.max_replicas} cannot reach the peak {peak:g} req/s")

    def check_status(self) -> None:
        partial = bool(self.plan.unplaced)
        if partial and self.plan.status != "partial":
            self.fail(f"status {self.plan.status!r} but {len(self.plan.unplaced)} models are unplaced (expected 'partial')")
        if not partial and self.plan.status == "partial":
            self.fail("status 'partial' but every model is placed")


def validate(plan: Plan | dict, fleet: Fleet | dict, models: ModelsFile | dict) -> list[str]:
    """Every way `plan` breaks its inputs' constraints, one line each; empty when the plan is valid.

    Invalid inputs (not the plan) raise InputError: a plan cannot be judged against them.
    """
    if not isinstance(fleet, Fleet):
        fleet = parse_fleet(fleet)
    if not isinstance(models, ModelsFile):
        models = parse_models(models)
    pools, architectures = resolve_inputs(fleet, models)
    if not isinstance(plan, Plan):
        try:
            plan = Plan.model_validate(plan)
        except ValidationError as exc:
            return [f"plan is not a valid plan document: {line}" for line in format_validation_error(exc)]
    checker = _Checker(plan, models, pools, architectures)
    checker.check_nodes()
    checker.check_cost()
    matched = checker.check_replicas()
    checker.check_models(matched)
    checker.check_status()
    return checker.violations


__all__ = ["InputError", "validate"]
