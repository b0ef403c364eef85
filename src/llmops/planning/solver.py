"""Cost-optimal placement: `solve(fleet, models, time_limit_s) -> Plan`.

Stages, all on the aggregate model of `formulation` (node counts per pool group, replica counts
per model x pool group x replica option; never per-node variables):

1. Models with no feasible replica option anywhere are unplaced with `explain_no_option`'s reason.
2. Serve everything else at minimum hourly cost (one CP-SAT solve), unless the linear relaxation
   already proves that impossible.
3. When capacity is short: priorities are served lexicographically. For each priority level,
   highest first, maximise how many of its models are served while every higher level keeps its
   count; then minimise cost with all those counts fixed as lower bounds. The rest is unplaced
   with the pools that ran out and the GPUs it needed.
4. Pack the replicas onto concrete nodes and GPU indices (`assignment`).

CP-SAT runs with a fixed seed and deterministic interleaved workers, so the same inputs give the
same plan (the placement_plan module relies on that for idempotence).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from .assignment import Assignment, assign_replicas
from .bounds import model_gpu_cost_floor, relaxation_lower_bound
from .formulation import (
    COST_UNITS_PER_DOLLAR,
    AggregateModel,
    PlacementProblem,
    build_aggregate_model,
    build_problem,
    node_cost_term,
    served_term,
)
from .result import Plan, PlanModel, PlanNode, PlanReplica, Unplaced
from .spec import Fleet, ModelsFile

logger = logging.getLogger(__name__)

SOLVER_WORKERS = 2
SOLVER_SEED = 0


@dataclass
class StageResult:
    name: str
    status: str
    """optimal | feasible | infeasible | timeout"""
    objective: float | None
    bound: float | None
    seconds: float
    message: str


@dataclass
class SolverReport:
    """What the solve did, for logs and benchmarks; the Plan's JSON stays as published."""

    stages: list[StageResult] = field(default_factory=list)
    objective_terms: dict[str, float] = field(default_factory=dict)
    lower_bounds: dict[str, float] = field(default_factory=dict)
    extra_nodes: int = 0

    def summary(self) -> str:
        parts = [f"{s.name}: {s.status} in {s.seconds:.2f}s ({s.message})" for s in self.stages]
        terms = ", ".join(f"{k}={v:g}" for k, v in self.objective_terms.items())
        bounds = ", ".join(f"{k}={v:.2f}" for k, v in self.lower_bounds.items())
        return "; ".join(parts) + f"; objective terms: {terms}; lower bounds: {bounds}"


@dataclass
class Solution:
    node_counts: list[int]
    replica_counts: list[int]
    served: list[int]
    optimal: bool
    cp_bound_per_hour: float | None


def solve(fleet: Fleet, models: ModelsFile, time_limit_s: float = 30.0) -> Plan:
    plan, report = solve_with_report(fleet, models, time_limit_s)
    logger.info("placement solve: %s", report.summary())
    return plan


def solve_with_report(fleet: Fleet, models: ModelsFile, time_limit_s: float = 30.0) -> tuple[Plan, SolverReport]:
    started = time.monotonic()
    deadline = started + time_limit_s
    report = SolverReport()
    problem = build_problem(fleet, models)
    placeable = [m for m, members in problem.candidates_of_model.items() if members]
    floors = {m: model_gpu_cost_floor(problem, m) for m in placeable}
    report.lower_bounds["per_model_gpu_cost"] = sum(floors.values()) / COST_UNITS_PER_DOLLAR

    solution: Solution | None = None
    relaxation = relaxation_lower_bound(problem, placeable, floors) if placeable else 0.0
    if relaxation is not None:
        report.lower_bounds["relaxation"] = relaxation
        solution = _serve_everything(problem, placeable, floors, deadline, report)
    if solution is None:
        solution = _serve_by_priority(problem, placeable, floors, deadline, report)

    assignment = assign_replicas(problem, solution.node_counts, solution.replica_counts)
    report.extra_nodes = assignment.extra_nodes
    unpackable = sorted({problem.candidates[c].model for c in assignment.unpacked})
    if unpackable:
        # Rare: spread=node replicas that do not fit the pool's remaining nodes. Leave those models out
        # whole rather than serve them below demand; the bound is then recomputed for what is served.
        solution.served = [m for m in solution.served if m not in unpackable]
        assignment.placements = [p for p in assignment.placements if problem.candidates[p.candidate].model not in unpackable]

    lower_bound = _lower_bound(problem, solution, placeable, floors, unpackable, report)
    plan = _build_plan(problem, solution, assignment, unpackable, lower_bound, started)
    report.objective_terms["node_cost_per_hour"] = plan.cost_per_hour
    report.objective_terms["unserved_models"] = float(len(plan.unplaced))
    if plan.status == "optimal" and assignment.extra_nodes:
        plan.status = "feasible"
    return plan, report


# ----------------------------------------------------------------------------------------------
# Stages
# ----------------------------------------------------------------------------------------------


def _serve_everything(
    problem: PlacementProblem, placeable: Sequence[int], floors: dict[int, int], deadline: float, report: SolverReport
) -> Solution | None:
    if not placeable:
        return Solution([0] * len(problem.groups), [0] * len(problem.candidates), [], True, 0.0)
    model = build_aggregate_model(problem, placeable, must_serve=placeable, cost_floors=floors)
    model.cp.minimize(node_cost_term(model))
    # Keep a share of the time for the priority stages in case serving everything is impossible.
    budget = max(0.1, (deadline - time.monotonic()) * 0.8)
    stage, solver = run_stage(model.cp, "serve all at minimum cost", budget, cost_objective=True)
    report.stages.append(stage)
    if stage.status not in ("optimal", "feasible"):
        return None
    return _extract(model, solver, placeable, stage)


def _serve_by_priority(
    problem: PlacementProblem, placeable: Sequence[int], floors: dict[int, int], deadline: float, report: SolverReport
) -> Solution:
    model = build_aggregate_model(problem, placeable, must_serve=[], cost_floors=floors)
    levels = sorted({problem.deployments[m].priority for m in placeable}, reverse=True)
    solver: cp_model.CpSolver | None = None
    for position, level in enumerate(levels):
        members = [m for m in placeable if problem.deployments[m].priority == level]
        model.cp.maximize(served_term(model, members))
        budget = max(0.1, (deadline - time.monotonic()) / (len(levels) + 1 - position))
        stage, solver = run_stage(model.cp, f"serve priority {level}", budget, cost_objective=False)
        report.stages.append(stage)
        achieved = round(stage.objective or 0)
        # Later stages may not serve fewer models of this level than it was shown possible to serve.
        model.cp.add(served_term(model, members) >= achieved)
        _hint(model, solver, stage)
    model.cp.minimize(node_cost_term(model))
    budget = max(0.1, deadline - time.monotonic())
    stage, solver = run_stage(model.cp, "minimum cost for the served models", budget, cost_objective=True)
    report.stages.append(stage)
    if stage.status in ("optimal", "feasible"):
        return _extract(model, solver, placeable, stage)
    # No time left to find any plan: serve nothing rather than guess.
    return Solution([0] * len(problem.groups), [0] * len(problem.candidates), [], False, None)


def _hint(model: AggregateModel, solver: cp_model.CpSolver, stage: StageResult) -> None:
    """Start the next stage from this one's plan (it stays feasible there)."""
    model.cp.clear_hints()
    if stage.status not in ("optimal", "feasible"):
        return
    for var in model.nodes + model.replicas:
        model.cp.add_hint(var, solver.value(var))
    for var in model.served.values():
        if not isinstance(var, int):
            model.cp.add_hint(var, solver.value(var))


def _extract(model: AggregateModel, solver: cp_model.CpSolver, placeable: Sequence[int], stage: StageResult) -> Solution:
    served = [m for m in placeable if isinstance(model.served[m], int) or solver.value(model.served[m])]
    return Solution(
        node_counts=[solver.value(v) for v in model.nodes],
        replica_counts=[solver.value(v) for v in model.replicas],
        served=served,
        optimal=stage.status == "optimal",
        cp_bound_per_hour=stage.bound,
    )


def run_stage(
    cp: cp_model.CpModel, name: str, time_limit_s: float, cost_objective: bool
) -> tuple[StageResult, cp_model.CpSolver]:
    """The one place CP-SAT runs: fixed seed, deterministic workers, a time limit, every status mapped."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = SOLVER_WORKERS
    solver.parameters.interleave_search = True
    solver.parameters.random_seed = SOLVER_SEED
    started = time.monotonic()
    status = solver.solve(cp)
    seconds = time.monotonic() - started
    scale = COST_UNITS_PER_DOLLAR if cost_objective else 1
    if status == cp_model.MODEL_INVALID:
        raise RuntimeError(f"placement model is invalid ({name}): {cp.validate()}")
    if status == cp_model.OPTIMAL:
        value = solver.objective_value / scale
        return StageResult(name, "optimal", value, value, seconds, "proven optimal"), solver
    if status == cp_model.FEASIBLE:
        value, bound = solver.objective_value / scale, solver.best_objective_bound / scale
        gap = abs(value - bound) / max(abs(value), 1e-9)
        return StageResult(name, "feasible", value, bound, seconds, f"time limit hit, gap {gap:.2%}"), solver
    if status == cp_model.INFEASIBLE:
        message = "infeasible: the fleet cannot meet every demand, min_replicas and spread rule at once"
        return StageResult(name, "infeasible", None, None, seconds, message), solver
    return (
        StageResult(name, "timeout", None, None, seconds, f"no plan found within {time_limit_s:.1f}s"),
        solver,
    )


# ----------------------------------------------------------------------------------------------
# Bound, plan and reasons
# ----------------------------------------------------------------------------------------------


def _lower_bound(
    problem: PlacementProblem,
    solution: Solution,
    placeable: Sequence[int],
    floors: dict[int, int],
    unpackable: Sequence[int],
    report: SolverReport,
) -> float:
    """Largest of the valid bounds for what the plan serves (see bounds.py for the proofs)."""
    served = solution.served
    if unpackable:
        return relaxation_lower_bound(problem, served, floors) or 0.0
    candidates = []
    if solution.cp_bound_per_hour is not None:
        cp_bound = max(0.0, solution.cp_bound_per_hour - problem.cost_rounding_error())
        report.lower_bounds["cp_sat"] = cp_bound
        candidates.append(cp_bound)
    if len(served) == len(placeable):
        # The relaxation and per-model bounds are for serving every placeable model; they only
        # apply when the plan does so.
        candidates.append(report.lower_bounds.get("relaxation", 0.0))
        candidates.append(report.lower_bounds["per_model_gpu_cost"] - problem.cost_rounding_error())
    return max([0.0, *candidates])


def _build_plan(
    problem: PlacementProblem,
    solution: Solution,
    assignment: Assignment,
    unpackable: Sequence[int],
    lower_bound: float,
    started: float,
) -> Plan:
    used_nodes: dict[str, PlanNode] = {}
    replicas: list[PlanReplica] = []
    options_of_model: dict[int, list] = {m: [] for m in range(len(problem.deployments))}
    for placement in assignment.placements:
        cand = problem.candidates[placement.candidate]
        options_of_model[cand.model].append(cand.option)
        group = problem.groups[cand.group]
        if placement.node not in used_nodes:
            used_nodes[placement.node] = PlanNode(
                name=placement.node,
                pool=placement.pool.name,
                zone=placement.pool.zone,
                gpu_type=group.gpu_type.name,
                gpus=group.gpus_per_node,
                hourly_cost=placement.pool.node_hourly_cost,
            )
        option = cand.option
        replicas.append(
            PlanReplica(
                model=problem.deployments[cand.model].name,
                node=placement.node,
                gpu_indices=list(placement.gpu_indices),
                gpu_type=group.gpu_type.name,
                precision=option.precision,
                tensor_parallel=option.tensor_parallel,
                memory_per_gpu_gib=option.memory_per_gpu_gib,
                capacity_requests_per_second=option.capacity_requests_per_second,
            )
        )
    order = {d.name: i for i, d in enumerate(problem.deployments)}
    replicas.sort(key=lambda r: (order[r.model], r.node, r.gpu_indices))
    nodes = list(used_nodes.values())
    cost = math.fsum(node.hourly_cost for node in nodes)
    served = set(solution.served)
    unplaced = [
        Unplaced(model=problem.deployments[m].name, reason=_unplaced_reason(problem, m, solution, unpackable))
        for m in range(len(problem.deployments))
        if m not in served
    ]
    if unplaced:
        status = "partial"
    else:
        status = "optimal" if solution.optimal else "feasible"
    return Plan(
        status=status,
        cost_per_hour=cost,
        lower_bound_per_hour=min(lower_bound, cost),
        solve_seconds=round(time.monotonic() - started, 3),
        nodes=nodes,
        replicas=replicas,
        models=[_plan_model(problem, m, options_of_model[m], m in served) for m in range(len(problem.deployments))],
        unplaced=unplaced,
    )


def _plan_model(problem: PlacementProblem, model_index: int, options: Sequence, served: bool) -> PlanModel:
    """`options`: the replica option of each of the model's placed replicas."""
    deployment = problem.deployments[model_index]
    architecture = problem.architectures[deployment.name]
    return PlanModel(
        name=deployment.name,
        params_billion=round(architecture.total_params / 1e9, 2),
        kv_bytes_per_token_bf16=architecture.kv_bytes_per_token(2),
        demand_requests_per_second=deployment.traffic.requests_per_second,
        capacity_requests_per_second=math.fsum(o.capacity_requests_per_second for o in options),
        ttft_ms=max((o.ttft_ms for o in options), default=None),
        tpot_ms=max((o.tpot_ms for o in options), default=None),
        replicas=len(options),
        served=served,
    )


def _unplaced_reason(problem: PlacementProblem, model_index: int, solution: Solution, unpackable: Sequence[int]) -> str:
    if model_index in problem.no_option_reason:
        return f"no replica configuration fits: {problem.no_option_reason[model_index]}"
    deployment = problem.deployments[model_index]
    if model_index in unpackable:
        return "its spread=node replicas do not fit on distinct nodes of the pools the plan opened"
    # Smallest GPU need over the model's candidates: what it would take to serve it on one option.
    needs = []
    for c in problem.candidates_of_model[model_index]:
        cand = problem.candidates[c]
        count = max(deployment.min_replicas, math.ceil(problem.demand_units(model_index) / cand.capacity_units), 1)
        if problem.needs_zone_spread(model_index):
            count = max(count, 2)
        needs.append((count * cand.tensor_parallel, count, cand))
    gpus, count, cand = min(needs, key=lambda n: (n[0], n[1]))
    group_names = sorted({problem.groups[problem.candidates[c].group].name for c in problem.candidates_of_model[model_index]})
    pools = []
    for name in group_names:
        g = next(i for i, group in enumerate(problem.groups) if group.name == name)
        group = problem.groups[g]
        used = sum(
            problem.candidates[c].tensor_parallel * solution.replica_counts[c] for c in problem.candidates_of_group[g]
        )
        pools.append(f"{name} ({used} of {group.max_nodes * group.gpus_per_node} GPUs used)")
    option = cand.option
    gpu = problem.groups[cand.group].gpu_type.name
    return (
        f"capacity exhausted by models of priority >= {deployment.priority}: pools {', '.join(pools)}; "
        f"it needs at least {gpus} GPUs ({count} x TP{option.tensor_parallel} {option.precision} on {gpu})"
    )
