"""Valid lower bounds on the hourly cost of serving a set of models.

Two bounds, both valid for the quantised problem of `formulation` (capacities in units rounded
down, demands rounded up, prices in cost units):

1. `model_gpu_cost_floor(problem, m)`: the cheapest GPU cost of model m on its own.
   Price one GPU of pool group g at  node_cost_g / gpus_per_node_g  (rounded down). In any
   feasible plan the open nodes of g carry at least the GPUs of the replicas placed there, so
       plan cost = sum_g node_cost_g * nodes_g >= sum_g (node_cost_g / gpus_g) * GPUs used in g
                 = sum_m  GPU cost of model m's replicas.
   Model m's replicas form an integer replica mix meeting its demand, min_replicas and zone
   spread, so their GPU cost is at least the minimum over all such mixes, which a small CP-SAT
   model computes; we keep the solver's proven objective bound, valid even if it stopped early.
   Summing over models gives a valid bound that already counts whole replicas (a 1-GPU model
   needing 0.1 of a replica's capacity is charged a whole GPU, not 0.1 of one).

2. `relaxation_lower_bound(problem, served, floors)`: the linear relaxation of the aggregate
   model (node counts and replica counts continuous, zone indicators in [0, 1]) with every
   pool's size limit and per-TP GPU limit, plus the cuts  GPU cost of m >= floor_m  from (1).
   Every integer feasible plan is a point of this polytope (the cuts hold for it by (1)), so the
   LP optimum is <= the cost of every plan. Unlike a big-M model's LP, it keeps whole replicas
   through the cuts and couples models through the pools' size limits (cheap pools fill up).

The solver reports max(these, CP-SAT's proven bound), each of which is valid, so the max is too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from .formulation import COST_UNITS_PER_DOLLAR, PlacementProblem

FLOOR_TIME_LIMIT_S = 1.0


def gpu_price_units(problem: PlacementProblem, candidate: int) -> int:
    """Cost units of the GPUs one replica of a candidate occupies, rounded down (keeps bounds valid)."""
    cand = problem.candidates[candidate]
    group = problem.groups[cand.group]
    return math.floor(group.cost_units * cand.tensor_parallel / group.gpus_per_node)


def model_gpu_cost_floor(problem: PlacementProblem, model_index: int) -> int:
    """Lower bound, in cost units, on the GPU cost of any replica mix that serves the model alone."""
    members = problem.candidates_of_model[model_index]
    if not members:
        return 0
    deployment = problem.deployments[model_index]
    cp = cp_model.CpModel()
    replicas = {c: cp.new_int_var(0, problem.replica_upper_bound(c), f"x{c}") for c in members}
    cp.add(sum(problem.candidates[c].capacity_units * replicas[c] for c in members) >= problem.demand_units(model_index))
    cp.add(sum(replicas.values()) >= deployment.min_replicas)
    if problem.needs_zone_spread(model_index):
        present = []
        for zone in problem.zones_of_model(model_index):
            used = cp.new_bool_var(f"zone[{zone}]")
            in_zone = [c for c in members if problem.groups[problem.candidates[c].group].zone == zone]
            cp.add(sum(replicas[c] for c in in_zone) >= used)
            present.append(used)
        cp.add(sum(present) >= 2)
    cp.minimize(sum(gpu_price_units(problem, c) * replicas[c] for c in members))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    solver.parameters.max_time_in_seconds = FLOOR_TIME_LIMIT_S
    status = solver.solve(cp)
    if status == cp_model.INFEASIBLE:
        # The model cannot be served even alone; no plan serves it, so it contributes nothing.
        return 0
    if status == cp_model.MODEL_INVALID:
        raise RuntimeError(f"per-model bound model is invalid: {cp.validate()}")
    return max(0, math.ceil(solver.best_objective_bound - 1e-6))


def relaxation_lower_bound(problem: PlacementProblem, served: Sequence[int], floors: dict[int, int]) -> float | None:
    """LP bound in dollars per hour for serving exactly `served`; None if even the LP is infeasible."""
    solver = pywraplp.Solver.CreateSolver("GLOP")
    served_set = set(served)
    nodes = [solver.NumVar(0, group.max_nodes, f"n{g}") for g, group in enumerate(problem.groups)]
    replicas: dict[int, pywraplp.Variable] = {}
    for m in served:
        for c in problem.candidates_of_model[m]:
            replicas[c] = solver.NumVar(0, problem.replica_upper_bound(c), f"x{c}")
    for m in served:
        members = problem.candidates_of_model[m]
        deployment = problem.deployments[m]
        solver.Add(
            solver.Sum([problem.candidates[c].capacity_units * replicas[c] for c in members])
            >= problem.demand_units(m)
        )
        solver.Add(solver.Sum([replicas[c] for c in members]) >= deployment.min_replicas)
        if floors.get(m, 0) > 0:
            solver.Add(solver.Sum([gpu_price_units(problem, c) * replicas[c] for c in members]) >= floors[m])
        if problem.needs_zone_spread(m):
            present = []
            for zone in problem.zones_of_model(m):
                used = solver.NumVar(0, 1, f"z{m}{zone}")
                in_zone = [c for c in members if problem.groups[problem.candidates[c].group].zone == zone]
                solver.Add(solver.Sum([replicas[c] for c in in_zone]) >= used)
                present.append(used)
            solver.Add(solver.Sum(present) >= 2)
        if deployment.spread.value == "node":
            by_group: dict[int, list[int]] = {}
            for c in members:
                by_group.setdefault(problem.candidates[c].group, []).append(c)
            for g, grouped in by_group.items():
                solver.Add(solver.Sum([replicas[c] for c in grouped]) <= nodes[g])
    for g, group in enumerate(problem.groups):
        members = [c for c in problem.candidates_of_group[g] if problem.candidates[c].model in served_set]
        for size in sorted({problem.candidates[c].tensor_parallel for c in members}):
            larger = [c for c in members if problem.candidates[c].tensor_parallel >= size]
            usable = size * group.groups_per_node(size)
            solver.Add(
                solver.Sum([problem.candidates[c].tensor_parallel * replicas[c] for c in larger])
                <= usable * nodes[g]
            )
    solver.Minimize(solver.Sum([group.cost_units * nodes[g] for g, group in enumerate(problem.groups)]))
    status = solver.Solve()
    if status == pywraplp.Solver.INFEASIBLE:
        return None
    if status != pywraplp.Solver.OPTIMAL:
        # Without a proven LP optimum the dual value is not a bound; report none rather than a guess.
        return 0.0
    # LP optimum in cost units, less a hair of floating-point tolerance, less the price rounding.
    value = solver.Objective().Value() / COST_UNITS_PER_DOLLAR
    return max(0.0, value * (1 - 1e-9) - problem.cost_rounding_error())
