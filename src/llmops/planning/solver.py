"""Cost-optimal placement: `solve(fleet, models, time_limit_s) -> Plan`.

Stages, all on the aggregate model of `formulation` (node counts per pool group, replica counts
per model x pool group x replica option; never per-node variables):

1. Models with no feasible replica option anywhere are unplaced with `explain_no_option`'s reason.
2. Serve everything else at minimum hourly cost, unless the linear relaxation already proves
   that impossible: a warm start first (the integer model restricted to the (model, pool group)
   pairs that the relaxation or each model's own cheapest mix uses: small, solved in seconds),
   then the full integer model from that start, whose proven bound feeds the lower bound. With
   LNS_MIN_MODELS models or more, the large neighbourhood search improves the start first and
   the full model runs after it, from its plan, for the bound and any last improvement.
3. When capacity is short: priorities are served lexicographically. For each priority level,
   highest first, maximise how many of its models are served while every higher level keeps its
   count; then minimise cost with all those counts fixed as lower bounds. The rest is unplaced
   with the pools that ran out and the GPUs it needed.
4. Pack the replicas onto concrete nodes and GPU indices (`assignment`).

The solver is OR-Tools' pywraplp with SCIP (LP-based branch and bound: on these covering and
packing constraints its bounds and plans are far stronger than CP-SAT's: at 200 nodes x 50
models CP-SAT's best plan in 15 s cost a third more than SCIP's, with a bound 40% lower). SCIP runs single-threaded (the 2-core machines this runs on), with its
default fixed seed, and stops when optimality is proven (MIP_GAP 0) or at the time limit; a run
that ends proven optimal is deterministic, so the same inputs give the same plan (the
placement_plan module relies on that for idempotence). Fleets too large to prove within the time
limit get the best plan found and its gap; repeated runs of those may differ.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ortools.linear_solver import pywraplp

from llmops.catalog import ModelArchitecture

from .assignment import Assignment, PackingCost, assign_replicas
from .bounds import fractional_gpu_cost_floor, model_gpu_cost_floor, relaxation_lower_bound, solve_relaxation
from .formulation import (
    COST_UNITS_PER_DOLLAR,
    AggregateModel,
    PlacementProblem,
    add_demand_met,
    add_gpu_cost_floor,
    add_min_replicas,
    add_row,
    add_zone_and_node_survival,
    build_aggregate_model,
    build_problem,
    node_cost_term,
    node_count_variables,
    served_term,
)
from .result import Plan, PlanModel, PlanNode, PlanReplica, Unplaced
from .spec import Fleet, ModelDeployment, ModelsFile, Spread
from .traffic import annotate

logger = logging.getLogger(__name__)

# Relative gap at which a solve stops: 0 proves optimality (small fleets get there in seconds);
# the warm start only has to be good, not proven.
MIP_GAP = 0.0
WARM_START_GAP = 0.002
# Share of the remaining time the restricted warm-start model may use.
RESTRICTED_SHARE = 0.15
# Share of the time limit the per-model floors may take.
FLOOR_SHARE = 0.35
# Large neighbourhood search: fleets with at least LNS_MIN_MODELS models whose full model is not
# proven optimal within FIRST_MIP_SHARE of the time left get LNS_SHARE of the time then left;
# each round frees LNS_FREE_SHARE of the models (at least 4) for at most LNS_ROUND_S seconds.
# Measured at 200 x 50, seed 5, 60 s: 904.74 $/h without it, 852.67 with it (32 rounds).
LNS_MIN_MODELS = 10
# From this many models on, the restricted warm start is skipped as well when there is a start:
# at 2,000 x 300 it costs the build of a full model and rarely beats the heuristic's plan.
SEARCH_ONLY_MODELS = 150
FIRST_MIP_SHARE = 0.15
LNS_SHARE = 0.9
LNS_FREE_SHARE = 0.08
LNS_ROUND_S = 2.0
# A kind's neighbourhood shrinks by LNS_SHRINK when a round runs out of its time, and grows back
# by one model (up to LNS_FREE_SHARE) when a round ends within LNS_GROW_BELOW of it. Growing past
# LNS_FREE_SHARE was measured worse at 200 x 50: fewer, slower rounds.
LNS_SHRINK = 0.8
LNS_GROW_BELOW = 0.25
NEIGHBOURHOODS = ("models", "pools", "backups")
# A pool neighbourhood frees up to this many times the others' models: emptying a node needs
# every model on it moved at once.
POOL_NEIGHBOURHOOD_FACTOR = 2
# The kinds are drawn by their recent saving per second (a moving average with this weight on the
# last round), plus this share of the best kind's rate so that none is abandoned for good.
LNS_RATE_WEIGHT = 0.2
LNS_EXPLORE = 0.1


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
    mip_bound_per_hour: float | None


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
    # Per-model floors feed the bound and the first start; past FLOOR_SHARE of the time limit the
    # rest count 0 (still a valid floor) so the solve stages keep their time on large fleets.
    # The dearest models first (by the quick fractional floor), so that the floors cut off by the
    # time limit are the cheap ones; those keep the fractional floor.
    quick = {m: fractional_gpu_cost_floor(problem, m) for m in placeable}
    cheapest = {}
    for m in sorted(placeable, key=lambda m: -quick[m]):
        in_time = time.monotonic() < started + FLOOR_SHARE * time_limit_s
        cheapest[m] = model_gpu_cost_floor(problem, m) if in_time else (0, {})
    cheapest = {m: cheapest[m] for m in placeable}
    floors = {m: max(floor, quick[m]) for m, (floor, _) in cheapest.items()}
    report.lower_bounds["per_model_gpu_cost"] = sum(floors.values()) / COST_UNITS_PER_DOLLAR

    solution: Solution | None = None
    # Plans are compared by what they cost once packed onto nodes (the counted nodes plus any the
    # packing has to add for spread=node), the cost the plan will report.
    packing = PackingCost(problem)

    def packed_cost(candidate: Solution) -> float:
        return _node_cost(problem, candidate) + packing.extra_cost(candidate.node_counts, candidate.replica_counts)

    relaxation = solve_relaxation(problem, placeable, floors) if placeable else (0.0, [])
    if relaxation is not None:
        report.lower_bounds["relaxation"] = relaxation[0]
        starts = [
            start
            for start in (
                _separate_cheapest_start(problem, placeable, [mix for _, mix in cheapest.values()]),
                _heuristic_start(problem, fleet, models, placeable),
            )
            if start is not None
        ]
        start = min(starts, key=packed_cost) if starts else None
        search = len(placeable) >= LNS_MIN_MODELS
        if placeable and not (start is not None and len(placeable) >= SEARCH_ONLY_MODELS):
            restricted = _relaxation_support_start(
                problem, placeable, floors, relaxation[1], start, deadline, report, starts
            )
            if restricted is not None and (start is None or packed_cost(restricted) < packed_cost(start)):
                start = restricted
        # With a start and many models the search improves faster than the full model, which
        # stalls near its start: it goes straight to the search and runs once, for its bound, after.
        direct = search and start is not None
        if direct:
            solution = start
        else:
            solution = _serve_everything(
                problem, placeable, floors, start, deadline, report, packed_cost,
                share=FIRST_MIP_SHARE if search else 0.9,
            )  # fmt: skip
        if search and solution is not None and not solution.optimal:
            # Not proven optimal in its share: search neighbourhoods of the incumbent, then give the
            # full model the rest from the improved plan (for the bound, and any last improvement).
            better = _improve_by_neighbourhoods(problem, placeable, floors, solution, deadline, report, packed_cost)
            if direct or packed_cost(better) < packed_cost(solution) - 1e-9:
                final = _serve_everything(problem, placeable, floors, better, deadline, report, packed_cost)
                if final is not None:
                    bounds = [b for b in (solution.mip_bound_per_hour, final.mip_bound_per_hour) if b is not None]
                    final.mip_bound_per_hour = max(bounds) if bounds else None
                    solution = final
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


def _separate_cheapest_start(
    problem: PlacementProblem, placeable: Sequence[int], mixes: Sequence[dict[int, int]]
) -> Solution | None:
    """Every model on its own cheapest replica mix, with just enough nodes; None if that overflows a pool.

    A feasible start for the solver when the pools are large enough; what it misses is sharing
    nodes well between models (6% above the bound on the large benchmark).
    """
    if len(mixes) != len(placeable) or not all(mixes):
        return None  # a model without its mix (floors cut short by the time limit) would go unserved
    replica_counts = [0] * len(problem.candidates)
    for mix in mixes:
        for candidate, count in mix.items():
            replica_counts[candidate] += count
    node_counts = []
    for g, group in enumerate(problem.groups):
        members = [c for c in problem.candidates_of_group[g] if replica_counts[c]]
        needed = 0
        for size in {problem.candidates[c].tensor_parallel for c in members}:
            gpus = sum(problem.candidates[c].tensor_parallel * replica_counts[c]
                       for c in members if problem.candidates[c].tensor_parallel >= size)
            needed = max(needed, math.ceil(gpus / (size * group.groups_per_node(size))))
        spread_counts: dict[int, int] = {}
        for c in members:
            if problem.deployments[problem.candidates[c].model].spread == Spread.node:
                model = problem.candidates[c].model
                spread_counts[model] = spread_counts.get(model, 0) + replica_counts[c]
        needed = max([needed, *spread_counts.values()])
        if needed > group.max_nodes:
            return None
        node_counts.append(needed)
    return Solution(node_counts, replica_counts, list(placeable), False, None)


def _heuristic_start(
    problem: PlacementProblem, fleet: Fleet, models: ModelsFile, placeable: Sequence[int]
) -> Solution | None:
    """The careful-engineer heuristic's plan (baselines.careful_heuristic) as aggregate counts.

    A replica whose option the formulation pruned as dominated is counted as the dominating
    candidate of its pool group (no more GPUs, at least the capacity), which keeps every
    constraint. None when the heuristic leaves a placeable model out or a replica has no match.
    """
    from .baselines import careful_heuristic  # baselines imports this module

    plan = careful_heuristic(fleet, models)
    if plan.unplaced or len(placeable) != len(problem.deployments):
        return None
    group_of_pool = {pool.name: g for g, group in enumerate(problem.groups) for pool in group.pools}
    model_of = {d.name: m for m, d in enumerate(problem.deployments)}
    pool_of_node = {node.name: node.pool for node in plan.nodes}
    replica_counts = [0] * len(problem.candidates)
    nodes_of_group: dict[int, set[str]] = {}
    for replica in plan.replicas:
        m, g = model_of[replica.model], group_of_pool[pool_of_node[replica.node]]
        nodes_of_group.setdefault(g, set()).add(replica.node)
        matches = [
            c for c in problem.candidates_of_model[m]
            if problem.candidates[c].group == g
            and problem.candidates[c].tensor_parallel <= replica.tensor_parallel
            and problem.candidates[c].option.capacity_requests_per_second >= replica.capacity_requests_per_second - 1e-9
        ]
        if not matches:
            return None
        best = min(matches, key=lambda c: (problem.candidates[c].tensor_parallel, -problem.candidates[c].capacity_units))
        replica_counts[best] += 1
    if any(count > problem.replica_upper_bound(c) for c, count in enumerate(replica_counts)):
        return None
    node_counts = [len(nodes_of_group.get(g, ())) for g in range(len(problem.groups))]
    return Solution(node_counts, replica_counts, list(placeable), False, None)


def _relaxation_support_start(
    problem: PlacementProblem,
    placeable: Sequence[int],
    floors: dict[int, int],
    relaxed_replicas: Sequence[float],
    separate_start: Solution | None,
    deadline: float,
    report: SolverReport,
    other_starts: Sequence[Solution] = (),
) -> Solution | None:
    """A warm start: the integer model over only the (model, pool group) pairs the relaxation or a
    model's own cheapest mix uses.

    The relaxation's optimum uses few candidates (a basic solution has at most one nonzero per
    constraint), so this model is a fraction of the full one and the solver finds near-optimal
    plans fast. It is a restriction, so it proves nothing about the optimum; the full model follows.
    """
    used = {c for c, value in enumerate(relaxed_replicas) if value > 1e-6}
    for known in (separate_start, *other_starts):
        if known is not None:
            used |= {c for c, count in enumerate(known.replica_counts) if count}
    # Every replica option of a (model, pool group) pair in use: the integer plan often needs a
    # different tensor-parallel degree than the fractional one in the same pool.
    pairs = {(problem.candidates[c].model, problem.candidates[c].group) for c in used}
    keep = {c for c, cand in enumerate(problem.candidates) if (cand.model, cand.group) in pairs}
    model = build_aggregate_model(problem, placeable, must_serve=placeable, cost_floors=floors)
    for c, var in enumerate(model.replicas):
        if c not in keep:
            var.SetUb(0)
    model.solver.Minimize(node_cost_term(model))
    if separate_start is not None:
        model.complete_hint(separate_start.node_counts, separate_start.replica_counts)
    budget = max(0.1, (deadline - time.monotonic()) * RESTRICTED_SHARE)
    stage = run_stage(
        model.solver, "warm start on the relaxation's candidates", budget, cost_objective=True, gap=WARM_START_GAP
    )
    report.stages.append(stage)
    if stage.status not in ("optimal", "feasible"):
        return None
    start = _extract(model, placeable, stage)
    start.optimal, start.mip_bound_per_hour = False, None  # a restriction proves nothing about the optimum
    return start


def _neighbourhood_model(
    problem: PlacementProblem,
    placeable: Sequence[int],
    free: set[int],
    counts: Sequence[int],
    floors: dict[int, int],
    free_candidates: set[int] | None = None,
) -> AggregateModel:
    """The aggregate model with every model outside `free` fixed at `counts`, built incrementally:
    only the freed models' candidates are variables (the fixed ones are plain integers in
    `model.replicas`), only the freed models' own rows (demand, replicas, survivability, floor) are
    built, and a pool row whose every replica term is fixed becomes a lower bound on the group's
    node count. Same feasible set as fixing the variables of the full model; at 2,000 x 300 it is
    built in a fraction of a second instead of seconds, so the search gets many more rounds.

    `free_candidates` frees only those candidates of the freed models; their other candidates stay
    at `counts` (variables with equal bounds, so the freed models' rows are built as usual)."""
    solver = pywraplp.Solver.CreateSolver("SCIP")
    model = AggregateModel(problem=problem, solver=solver, nodes=[], replicas=[], served={})
    node_count_variables(model, True)
    replicas: list = [int(v) for v in counts]
    for m in sorted(free):
        for c in problem.candidates_of_model[m]:
            if free_candidates is None or c in free_candidates:
                replicas[c] = solver.IntVar(0, problem.replica_upper_bound(c), f"replicas[{c}]")
            else:
                replicas[c] = solver.IntVar(counts[c], counts[c], f"replicas[{c}]")
    model.replicas = replicas
    for m in placeable:
        model.served[m] = 1
    for m in sorted(free):
        add_demand_met(model, m)
        add_min_replicas(model, m)
        add_zone_and_node_survival(model, m, True)
        add_gpu_cost_floor(model, m, floors.get(m, 0))
    for m in placeable:
        _node_spread_with_fixed(model, m)
    for g in range(len(problem.groups)):
        _gpus_per_group_with_fixed(model, g)
    model.solver.Minimize(node_cost_term(model))
    return model


def _row_or_node_floor(model: AggregateModel, group_index: int, terms: list, per_node: int) -> None:
    """sum(terms) <= per_node * nodes[group], where terms' fixed parts are plain integers."""
    fixed = sum(var * coefficient for var, coefficient in terms if isinstance(var, int))
    free = [(var, coefficient) for var, coefficient in terms if not isinstance(var, int)]
    node_var = model.nodes[group_index]
    if not free:
        if fixed > 0:
            node_var.SetLb(max(node_var.lb(), math.ceil(fixed / per_node)))
        return
    add_row(model.solver, [*free, (node_var, -per_node)], upper=-fixed)


def _gpus_per_group_with_fixed(model: AggregateModel, group_index: int) -> None:
    """formulation.add_gpus_per_group with fixed replica counts folded into the bound."""
    problem = model.problem
    group = problem.groups[group_index]
    members = [c for c in problem.candidates_of_group[group_index] if not isinstance(model.replicas[c], int)
               or model.replicas[c]]
    sizes = sorted({problem.candidates[c].tensor_parallel for c in members})
    for position, size in enumerate(sizes):
        usable = size * group.groups_per_node(size)
        if position > 0 and usable == sizes[position - 1] * group.groups_per_node(sizes[position - 1]):
            continue
        terms = [(model.replicas[c], problem.candidates[c].tensor_parallel) for c in members
                 if problem.candidates[c].tensor_parallel >= size]
        _row_or_node_floor(model, group_index, terms, usable)


def _node_spread_with_fixed(model: AggregateModel, model_index: int) -> None:
    """formulation.add_node_spread with fixed replica counts folded into the bound."""
    problem = model.problem
    if problem.deployments[model_index].spread != Spread.node:
        return
    by_group: dict[int, list[int]] = {}
    for c in problem.candidates_of_model[model_index]:
        by_group.setdefault(problem.candidates[c].group, []).append(c)
    for group_index, members in by_group.items():
        group = problem.groups[group_index]
        smallest = min(problem.candidates[c].tensor_parallel for c in members)
        threshold = max(group.gpus_per_node // 2, group.gpus_per_node - smallest)
        # Blockers of fixed models are summed once per (group, threshold), then the model's own taken out.
        fixed_blocked, free_blocked = _blockers(model, group_index, threshold)
        own = problem.large_by_model(group_index, threshold).get(model_index, [])
        terms = [(model.replicas[c], 1) for c in members] + [(fixed_blocked, 1)] + [
            (model.replicas[c], 1) for m, cands in free_blocked.items() if m != model_index for c in cands]
        terms += [(model.replicas[c], -1) for c in own if isinstance(model.replicas[c], int)]
        _row_or_node_floor(model, group_index, terms, 1)


def _blockers(model: AggregateModel, group_index: int, threshold: int) -> tuple[int, dict[int, list[int]]]:
    """Large replicas of a group: the fixed models' count, and the freed models' candidates (cached)."""
    cache = model.__dict__.setdefault("_blockers", {})
    key = (group_index, threshold)
    if key not in cache:
        fixed, free = 0, {}
        for m, cands in model.problem.large_by_model(group_index, threshold).items():
            if all(isinstance(model.replicas[c], int) for c in cands):
                fixed += sum(model.replicas[c] for c in cands)
            else:
                free[m] = cands
        cache[key] = (fixed, free)
    return cache[key]


def _improve_by_neighbourhoods(
    problem: PlacementProblem,
    placeable: Sequence[int],
    floors: dict[int, int],
    incumbent: Solution,
    deadline: float,
    report: SolverReport,
    packed_cost: Callable[[Solution], float],
) -> Solution:
    """Large neighbourhood search: repeatedly free some replicas (all node counts stay free), fix
    every other replica at the incumbent, and let SCIP re-optimise that small MIP from the
    incumbent; keep any cheaper plan.

    The full model at 200 x 50 and beyond stalls near its warm start within a minute on two cores;
    these sub-problems are solved in a second or two and move replicas between pools where sharing
    nodes pays. The neighbourhoods (`_pick_neighbourhood`) are drawn by how much they have saved
    per second lately, and each kind's size adapts: it shrinks when its rounds run out of time
    and grows back, up to LNS_FREE_SHARE of the models, while they end well within it. Seeded random picks, so runs are
    repeatable up to the clock. It only ever returns a feasible plan no worse than the incumbent;
    it proves nothing (the bound comes from the full model and the relaxation).
    """
    import random

    started = time.monotonic()
    stop = started + (deadline - started) * LNS_SHARE
    rng = random.Random(len(problem.candidates))
    best, best_cost = incumbent, packed_cost(incumbent)
    structure = _SearchStructure.of(problem, placeable)
    kinds = [kind for kind in NEIGHBOURHOODS if kind != "backups" or structure.backup_models]
    initial_size = max(4, round(LNS_FREE_SHARE * len(placeable)))
    size = dict.fromkeys(kinds, initial_size)
    # Recent saving ($/h per second) of each kind, a moving average started high so every kind is
    # tried; a kind that stops paying (rounds that time out, or find nothing) fades within rounds.
    rate = dict.fromkeys(kinds, 10.0)
    rounds = improved = 0
    tally = dict.fromkeys(kinds, 0)
    while time.monotonic() < stop - 0.5:
        budget = min(LNS_ROUND_S, stop - time.monotonic())
        if budget <= 0.2:
            break
        rounds += 1
        top = max(rate.values())
        kind = rng.choices(kinds, weights=[rate[k] + LNS_EXPLORE * top for k in kinds])[0]
        round_started = time.monotonic()
        free, free_candidates = _pick_neighbourhood(kind, problem, placeable, best, structure, size[kind], rng)
        # A fresh model per round: SCIP keeps its presolved problem between solves, so bounds
        # cannot be changed on a solved one.
        model = _neighbourhood_model(problem, placeable, free, best.replica_counts, floors, free_candidates)
        model.complete_hint(best.node_counts, best.replica_counts)
        stage = run_stage(model.solver, "neighbourhood", budget, cost_objective=True, gap=1e-4)
        took = time.monotonic() - round_started
        gain = 0.0
        if took > 0.9 * budget:
            size[kind] = max(2, math.floor(size[kind] * LNS_SHRINK))
        elif took < LNS_GROW_BELOW * budget:
            size[kind] = min(initial_size, size[kind] + 1)
        if stage.status in ("optimal", "feasible") and stage.objective is not None:
            candidate = _extract(model, placeable, stage)
            # Compared in dollars: the objective is in rounded cost units.
            cost = _node_cost(problem, candidate)
            # The counted nodes are a floor of the packed cost: pack only a plan that may be cheaper.
            if cost < best_cost - 1e-6:
                cost = packed_cost(candidate)
            if cost < best_cost - 1e-6:
                candidate.optimal, candidate.mip_bound_per_hour = False, None
                gain = best_cost - cost
                tally[kind] += 1
                best, best_cost = candidate, cost
                improved += 1
        rate[kind] = (1 - LNS_RATE_WEIGHT) * rate[kind] + LNS_RATE_WEIGHT * gain / max(took, 1e-3)
    by_kind = ", ".join(f"{k} {tally[k]} (size {size[k]})" for k in kinds)
    report.stages.append(
        StageResult(
            "large neighbourhood search",
            "feasible",
            best_cost,
            None,
            time.monotonic() - started,
            f"{rounds} rounds, {improved} improvements ({by_kind}), "
            f"{packed_cost(incumbent):.2f} -> {best_cost:.2f} $/h",
        )
    )
    return best


@dataclass
class _SearchStructure:
    """What the neighbourhoods are drawn from, computed once per search."""

    groups_of_model: dict[int, list[int]]
    """Pool groups where each model has candidates."""
    home_zone: str | None
    """The zone with the cheapest GPUs (price per GPU of its cheapest group): zone-spread models
    crowd into it, and keep their survivability backups outside it."""
    backup_models: list[int]
    """Zone-spread models (options in two or more zones, one of them the home zone)."""

    @classmethod
    def of(cls, problem: PlacementProblem, placeable: Sequence[int]) -> _SearchStructure:
        groups_of_model = {m: sorted({problem.candidates[c].group for c in problem.candidates_of_model[m]})
                           for m in placeable}
        price = {}
        for group in problem.groups:
            per_gpu = group.node_hourly_cost / group.gpus_per_node
            price[group.zone] = min(price.get(group.zone, math.inf), per_gpu)
        home = min(price, key=price.get) if price else None
        backup_models = [m for m in placeable if problem.needs_zone_spread(m) and home in problem.zones_of_model(m)]
        return cls(groups_of_model, home, backup_models)


def _pick_neighbourhood(
    kind: str,
    problem: PlacementProblem,
    placeable: Sequence[int],
    best: Solution,
    structure: _SearchStructure,
    size: int,
    rng,
) -> tuple[set[int], set[int] | None]:
    """The models to free and, where only some of their candidates are freed, those candidates.

    models: a seed model, half the rest among the models that share its pool groups in the
        incumbent, half at random (every candidate of each).
    pools: every model with replicas in one or two pool groups (a random used group, and either a
        group of the same zone or one of the same GPU type), so their nodes can be emptied or
        filled together; a random subset when more than `size`.
    backups: zone-spread models' candidates outside the home zone, their replicas inside it
        held: the survivability backups, re-packed together into whole nodes of the dearer zones
        (models sharing the seed's backup groups first).
    """
    counts = best.replica_counts
    used_groups_of = {m: {problem.candidates[c].group for c in problem.candidates_of_model[m] if counts[c]}
                      for m in placeable}
    if kind == "pools":
        used = sorted({g for groups in used_groups_of.values() for g in groups})
        # Where the plan spends most is where a closed node saves most.
        first = rng.choices(used, weights=[problem.groups[g].node_hourly_cost * best.node_counts[g] + 1e-6
                                           for g in used])[0]
        group = problem.groups[first]
        partners = [g for g, other in enumerate(problem.groups) if g != first
                    and (other.zone == group.zone or other.gpu_type.name == group.gpu_type.name)]
        chosen = {first, rng.choice(partners)} if partners else {first}
        members = [m for m in placeable if used_groups_of[m] & chosen]
        rng.shuffle(members)
        return set(members[: POOL_NEIGHBOURHOOD_FACTOR * size]), None
    if kind == "backups":
        home = structure.home_zone
        seed = rng.choice(structure.backup_models)
        backup_groups = {g for g in used_groups_of[seed] if problem.groups[g].zone != home}
        related = [m for m in structure.backup_models if m != seed and used_groups_of[m] & backup_groups]
        others = [m for m in structure.backup_models if m != seed and m not in related]
        rng.shuffle(related)
        rng.shuffle(others)
        free = [seed, *related, *others][: max(size, 2)]
        free_candidates = {c for m in free for c in problem.candidates_of_model[m]
                           if problem.groups[problem.candidates[c].group].zone != home}
        return set(free), free_candidates
    seed = rng.choice(list(placeable))
    related = [m for m in placeable if m != seed and used_groups_of[m] & used_groups_of[seed]]
    rng.shuffle(related)
    free = {seed, *related[: size // 2]}
    others = [m for m in placeable if m not in free]
    rng.shuffle(others)
    free |= set(others[: size - len(free)])
    return free, None


def _serve_everything(
    problem: PlacementProblem,
    placeable: Sequence[int],
    floors: dict[int, int],
    start: Solution | None,
    deadline: float,
    report: SolverReport,
    packed_cost: Callable[[Solution], float],
    share: float = 0.9,
) -> Solution | None:
    if not placeable:
        return Solution([0] * len(problem.groups), [0] * len(problem.candidates), [], True, 0.0)
    model = build_aggregate_model(problem, placeable, must_serve=placeable, cost_floors=floors)
    model.solver.Minimize(node_cost_term(model))
    if start is not None:
        model.complete_hint(start.node_counts, start.replica_counts)
    # Keep a little time for the priority stages in case serving everything turns out impossible.
    budget = max(0.1, (deadline - time.monotonic()) * share)
    stage = run_stage(model.solver, "serve all at minimum cost", budget, cost_objective=True)
    report.stages.append(stage)
    if stage.status not in ("optimal", "feasible"):
        # The warm start is a valid plan that serves everything; keep it rather than give up.
        return start
    solution = _extract(model, placeable, stage)
    if start is not None and packed_cost(start) < packed_cost(solution) - 1e-9:
        # The solver may stop before it has even repaired the start into an incumbent.
        start.mip_bound_per_hour = solution.mip_bound_per_hour
        return start
    return solution


def _node_cost(problem: PlacementProblem, solution: Solution) -> float:
    return math.fsum(group.node_hourly_cost * n for group, n in zip(problem.groups, solution.node_counts, strict=True))


def _serve_by_priority(
    problem: PlacementProblem, placeable: Sequence[int], floors: dict[int, int], deadline: float, report: SolverReport
) -> Solution:
    model = build_aggregate_model(problem, placeable, must_serve=[], cost_floors=floors)
    levels = sorted({problem.deployments[m].priority for m in placeable}, reverse=True)
    for position, level in enumerate(levels):
        members = [m for m in placeable if problem.deployments[m].priority == level]
        model.solver.Maximize(served_term(model, members))
        budget = max(0.1, (deadline - time.monotonic()) / (len(levels) + 1 - position))
        stage = run_stage(model.solver, f"serve priority {level}", budget, cost_objective=False)
        report.stages.append(stage)
        achieved = round(stage.objective or 0)
        # Read this stage's plan before the model changes (pywraplp drops solutions on change).
        _hint(model, stage)
        # Later stages may not serve fewer models of this level than this one showed possible.
        model.solver.Add(served_term(model, members) >= achieved)
    model.solver.Minimize(node_cost_term(model))
    budget = max(0.1, deadline - time.monotonic())
    stage = run_stage(model.solver, "minimum cost for the served models", budget, cost_objective=True)
    report.stages.append(stage)
    if stage.status in ("optimal", "feasible"):
        return _extract(model, placeable, stage)
    # No time left to find any plan: serve nothing rather than guess.
    return Solution([0] * len(problem.groups), [0] * len(problem.candidates), [], False, None)


def _hint(model: AggregateModel, stage: StageResult) -> None:
    """Start the next stage from this one's plan (it stays feasible there)."""
    if stage.status not in ("optimal", "feasible"):
        return
    model.complete_hint(
        [round(v.solution_value()) for v in model.nodes], [round(v.solution_value()) for v in model.replicas]
    )


def _extract(model: AggregateModel, placeable: Sequence[int], stage: StageResult) -> Solution:
    def value(var) -> int:
        return var if isinstance(var, int) else round(var.solution_value())

    return Solution(
        node_counts=[value(v) for v in model.nodes],
        replica_counts=[value(v) for v in model.replicas],
        served=[m for m in placeable if value(model.served[m])],
        optimal=stage.status == "optimal",
        mip_bound_per_hour=stage.bound,
    )


def run_stage(
    solver: pywraplp.Solver, name: str, time_limit_s: float, cost_objective: bool, gap: float | None = None
) -> StageResult:
    """The one place the solver runs: a time limit, a gap target, every status mapped."""
    solver.SetTimeLimit(max(1, int(time_limit_s * 1000)))
    parameters = pywraplp.MPSolverParameters()
    parameters.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, MIP_GAP if gap is None else gap)
    started = time.monotonic()
    status = solver.Solve(parameters)
    seconds = time.monotonic() - started
    scale = COST_UNITS_PER_DOLLAR if cost_objective else 1
    if status in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        value = solver.Objective().Value() / scale
        bound = solver.Objective().BestBound() / scale
        if not math.isfinite(bound) or abs(bound) > 1e12:
            # Stopped before the root relaxation gave a bound.
            return StageResult(name, "feasible", value, None, seconds, "time limit hit before a bound")
        gap = abs(value - bound) / max(abs(value), 1e-9)
        if status == pywraplp.Solver.OPTIMAL and gap <= 1e-9:
            return StageResult(name, "optimal", value, bound, seconds, "proven optimal")
        why = "stopped at the gap target" if status == pywraplp.Solver.OPTIMAL else "time limit hit"
        return StageResult(name, "feasible", value, bound, seconds, f"{why}, gap {gap:.2%}")
    if status == pywraplp.Solver.INFEASIBLE:
        message = "infeasible: the fleet cannot meet every demand, min_replicas and spread rule at once"
        return StageResult(name, "infeasible", None, None, seconds, message)
    if status == pywraplp.Solver.NOT_SOLVED:
        return StageResult(name, "timeout", None, None, seconds, f"no plan found within {time_limit_s:.1f}s")
    if status == pywraplp.Solver.MODEL_INVALID:
        raise RuntimeError(f"placement model is invalid ({name}): a coefficient or bound is not a finite number")
    if status == pywraplp.Solver.UNBOUNDED:
        raise RuntimeError(f"placement model is unbounded ({name}): every variable should have finite bounds")
    raise RuntimeError(f"the solver failed abnormally ({name}, status {status})")


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
    if solution.mip_bound_per_hour is not None:
        mip_bound = max(0.0, solution.mip_bound_per_hour - problem.cost_rounding_error())
        report.lower_bounds["mip"] = mip_bound
        candidates.append(mip_bound)
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
    status = "partial" if unplaced else "optimal" if solution.optimal else "feasible"
    plan = Plan(
        status=status,
        cost_per_hour=cost,
        lower_bound_per_hour=min(lower_bound, cost),
        solve_seconds=round(time.monotonic() - started, 3),
        nodes=nodes,
        replicas=replicas,
        models=[
            model_summary(d, problem.architectures[d.name], options_of_model[m], m in served)
            for m, d in enumerate(problem.deployments)
        ],
        unplaced=unplaced,
    )
    return annotate(plan, problem.deployments)


def model_summary(
    deployment: ModelDeployment, architecture: ModelArchitecture, options: Sequence, served: bool
) -> PlanModel:
    """The plan's per-model entry; `options` holds the replica option of each placed replica."""
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
    groups = sorted({problem.candidates[c].group for c in problem.candidates_of_model[model_index]})
    free_by_group = {}
    total_gpus = used_gpus = 0
    for g in groups:
        group = problem.groups[g]
        used = sum(
            problem.candidates[c].tensor_parallel * solution.replica_counts[c] for c in problem.candidates_of_group[g]
        )
        total_gpus += group.max_nodes * group.gpus_per_node
        used_gpus += used
        free_by_group[group.name] = group.max_nodes * group.gpus_per_node - used
    fullest = sorted(free_by_group, key=lambda name: (free_by_group[name], name))[:3]
    option = cand.option
    gpu = problem.groups[cand.group].gpu_type.name
    return (
        f"capacity exhausted by models of priority >= {deployment.priority}: the {len(groups)} pools where it "
        f"has a configuration have {used_gpus} of {total_gpus} GPUs in use (fullest: "
        + ", ".join(f"{name} with {free_by_group[name]} free" for name in fullest)
        + f"); it needs at least {gpus} GPUs ({count} x TP{option.tensor_parallel} {option.precision} on {gpu})"
    )
