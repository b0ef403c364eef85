"""Valid lower bounds on the hourly cost of serving a set of models.

Three bounds, all valid for the quantised problem of `formulation` (capacities in units rounded
down, demands rounded up, prices in cost units). "Optimal plan" below means one that respects
the per-candidate replica caps of `PlacementProblem.replica_upper_bound`; such an optimal plan
always exists (see that method), so a bound on it bounds the optimum.

1. `model_gpu_cost_floor(problem, m)`: the cheapest GPU cost of model m on its own.
   Price one GPU of pool group g at  node_cost_g / gpus_per_node_g  (rounded down). In any
   feasible plan the open nodes of g carry at least the GPUs of the replicas placed there, so
       plan cost = sum_g node_cost_g * nodes_g >= sum_g (node_cost_g / gpus_g) * GPUs used in g
                 = sum_m  GPU cost of model m's replicas.
   In an optimal plan, model m's replicas form an integer replica mix within the caps meeting its
   demand, min_replicas and the survivability rows (zone or node loss, formulation.add_survival), so their GPU cost is at least the minimum over all such mixes, which a small integer
   program (CP-SAT) computes; we keep the solver's proven objective bound, valid even if it stopped early.
   Summing over models gives a valid bound that already counts whole replicas (a 1-GPU model
   needing 0.1 of a replica's capacity is charged a whole GPU, not 0.1 of one). A model whose
   floor the solver's time share cuts off keeps `fractional_gpu_cost_floor` instead (demand at the
   cheapest GPU price per unit of capacity), a weaker bound on the same quantity.

2. `relaxation_lower_bound(problem, served, floors)`: the linear relaxation of the aggregate
   model (node counts and replica counts continuous, node-loss indicators in [0, 1]; the zone-loss
   rows need no indicator) with every
   pool's size limit and per-TP GPU limit, plus the cuts  GPU cost of m >= floor_m  from (1).
   An optimal plan is a point of this polytope (the cuts hold for it by (1)), so the LP optimum
   is <= the optimum. Unlike a big-M model's LP, it keeps whole replicas
   through the cuts and couples models through the pools' size limits (cheap pools fill up).

3. SCIP's proven dual bound on the integer aggregate model (solver.py). That model is exact for
   everything but spread=node, where it asks only for at most one replica of the model per open
   node of a pool group, which every real placement satisfies: so it is a relaxation of the real
   problem and its proven bound is valid. The per-candidate replica caps
   (`PlacementProblem.replica_upper_bound`) keep at least one optimal plan, so they do not raise
   the optimum, and the warm-start restriction is never used for the bound.

The solver reports the max of these, each valid, so the max is too. Prices rounded to cost units
can shift a plan's cost by at most `PlacementProblem.cost_rounding_error`, which is subtracted.

What does not tighten it (measured at 200 x 50, see docs/planner-benchmarks.md):
- Column generation over node patterns (Gilmore-Gomory): with tensor-parallel degrees and GPUs
  per node powers of two, every TP size divides the node, so one node's integer loads have the
  same convex hull as its GPU-count knapsack; the pattern master's LP equals relaxation (2).
- Column generation over each model's whole integer replica mixes (Dantzig-Wolfe, pricing with
  `model_gpu_cost_floor`'s model at the coupling rows' prices) stays within 0.2-1% of (2): at the
  relaxation's own multipliers its Lagrangian is exactly the floor sum; seed 3 reached 423.60
  against 419.93 after 25 s, seed 6 converged at 479.82 against 479.12 in 18 s. Integer replicas alone (nodes continuous) and integer nodes
  alone (replicas continuous) each stay within 2.5% of (2); the optimum's distance from it comes
  from both at once: survivability backups in whole replicas on whole nodes of dearer zones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model

from .formulation import (
    COST_UNITS_PER_DOLLAR,
    PlacementProblem,
    build_aggregate_model,
    gpu_price_units,
    node_cost_term,
)
from .spec import Spread

FLOOR_TIME_LIMIT_MS = 1000


def model_gpu_cost_floor(problem: PlacementProblem, model_index: int) -> tuple[int, dict[int, int]]:
    """Lower bound, in cost units, on the GPU cost of any replica mix that serves the model alone.

    Also returns the cheapest mix found (replicas per candidate; empty if none), a good start
    for the full model. A small CP-SAT model (all data are integers: capacity and demand units,
    GPU prices in cost units): its start-up is milliseconds where SCIP's is a fifth of a second,
    which for 300 models was a minute of the time limit.
    """
    members = problem.candidates_of_model[model_index]
    if not members:
        return 0, {}
    deployment = problem.deployments[model_index]
    cp = cp_model.CpModel()
    replicas = {c: cp.new_int_var(0, problem.replica_upper_bound(c), f"x{c}") for c in members}
    capacity = {c: problem.candidates[c].capacity_units for c in members}
    cp.add(sum(capacity[c] * replicas[c] for c in members) >= problem.demand_units(model_index))
    cp.add(sum(replicas.values()) >= deployment.min_replicas)
    # The same survivability rows as the full model (formulation.add_survival): every plan's
    # replica mix for this model satisfies them, so the floor stays a lower bound.
    need = problem.survive_units(model_index)
    if problem.needs_zone_spread(model_index):
        for zone in problem.zones_of_model(model_index):
            outside = [c for c in members if problem.groups[problem.candidates[c].group].zone != zone]
            cp.add(sum(capacity[c] * replicas[c] for c in outside) >= need)
    elif deployment.spread == Spread.node:
        # Losing a node loses its one replica of the model, at worst the largest one in use:
        # total - capacity_c * used_c >= need for every c, written with one variable for the
        # largest capacity in use (one row per candidate, not one sum over all per candidate:
        # at 2,000 x 300 those quadratic rows made these models most of the floors' time).
        largest = cp.new_int_var(0, max(capacity.values()), "largest")
        for c in members:
            used = cp.new_bool_var(f"used{c}")
            cp.add(replicas[c] <= problem.replica_upper_bound(c) * used)
            cp.add(largest >= capacity[c] * used)
        cp.add(sum(capacity[c] * replicas[c] for c in members) - largest >= need)
    cp.minimize(sum(gpu_price_units(problem, c) * replicas[c] for c in members))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = FLOOR_TIME_LIMIT_MS / 1000
    solver.parameters.num_workers = 1
    # Presolve costs more than it saves on these small models: without it all 300 floors at
    # 2,000 x 300 take the same time or less and more of them are proven within the limit
    # (seed 5: 2,643.05 $/h summed instead of 2,598.40).
    solver.parameters.cp_model_presolve = False
    status = solver.solve(cp)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # Infeasible even alone (then no plan serves it) or no answer in time: nothing to add to a bound.
        return 0, {}
    mix = {c: solver.value(var) for c, var in replicas.items() if solver.value(var) > 0}
    # Integer prices and integer replica counts: the optimum is an integer, so round the proven bound up.
    return max(0, math.ceil(solver.best_objective_bound - 1e-6)), mix


def fractional_gpu_cost_floor(problem: PlacementProblem, model_index: int) -> int:
    """A quick lower bound, in cost units, on the GPU cost of any replica mix that serves the model.

    Any mix meeting the demand D costs  sum_c price_c * x_c >= min_c (price_c / capacity_c) * sum_c
    capacity_c * x_c >= min_c (price_c / capacity_c) * D, and at least min_replicas replicas at the
    cheapest replica price; the larger of the two, rounded down. Weaker than
    `model_gpu_cost_floor` (no whole replicas, no survivability), but it needs no solver: it stands
    in for the floors the time limit cuts off, and orders the floors so the dear ones come first.
    """
    members = problem.candidates_of_model[model_index]
    if not members:
        return 0
    demand = problem.demand_units(model_index)
    per_unit = min(gpu_price_units(problem, c) / problem.candidates[c].capacity_units for c in members)
    cheapest = min(gpu_price_units(problem, c) for c in members)
    return max(0, math.floor(max(per_unit * demand, cheapest * problem.deployments[model_index].min_replicas)
                             * (1 - 1e-9)))


def relaxation_lower_bound(problem: PlacementProblem, served: Sequence[int], floors: dict[int, int]) -> float | None:
    """LP bound in dollars per hour for serving exactly `served`; None if even the LP is infeasible."""
    relaxation = solve_relaxation(problem, served, floors)
    return None if relaxation is None else relaxation[0]


def solve_relaxation(
    problem: PlacementProblem, served: Sequence[int], floors: dict[int, int]
) -> tuple[float, list[float]] | None:
    """The LP bound and the relaxation's (fractional) replica count per candidate; None if infeasible."""
    model = build_aggregate_model(problem, served, must_serve=served, cost_floors=floors, integer=False)
    model.solver.Minimize(node_cost_term(model))
    status = model.solver.Solve()
    if status == pywraplp.Solver.INFEASIBLE:
        return None
    if status != pywraplp.Solver.OPTIMAL:
        # Without a proven LP optimum there is no bound to report.
        return 0.0, [1.0] * len(problem.candidates)
    value = model.solver.Objective().Value() / COST_UNITS_PER_DOLLAR
    # A hair of floating-point tolerance, and the price rounding to cost units.
    bound = max(0.0, value * (1 - 1e-9) - problem.cost_rounding_error())
    return bound, [var.solution_value() for var in model.replicas]
