"""The lower bounds: never above the optimum, and tight where the optimum is known."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import pytest

from llmops.catalog import gpu_types
from llmops.planning.bounds import model_gpu_cost_floor, relaxation_lower_bound
from llmops.planning.formulation import COST_UNITS_PER_DOLLAR, build_problem
from llmops.planning.options import replica_options
from llmops.planning.solver import solve_with_report
from llmops.planning.spec import parse_fleet, parse_models

from .test_solver import model, pool

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from generator import generate


def inputs(pools, models):
    return parse_fleet({"pools": pools}), parse_models({"models": models})


def brute_force_cost(gpu: str, gpus_per_node: int, node_cost: float, max_nodes: int, deployment) -> float:
    """Cheapest cost of one model on one pool, by enumerating every replica mix (no solver involved)."""
    options = replica_options(deployment, gpu_types()[gpu], gpus_per_node)
    demand = deployment.traffic.requests_per_second
    best = math.inf
    ranges = [range(0, max_nodes * gpus_per_node // o.tensor_parallel + 1) for o in options]
    for counts in itertools.product(*ranges):
        capacity = sum(n * o.capacity_requests_per_second for n, o in zip(counts, options, strict=True))
        if capacity < demand or sum(counts) < max(1, deployment.min_replicas):
            continue
        # Power-of-two TP groups in power-of-two nodes pack perfectly: nodes = ceil(GPUs / gpus_per_node).
        nodes = math.ceil(sum(n * o.tensor_parallel for n, o in zip(counts, options, strict=True)) / gpus_per_node)
        if nodes <= max_nodes:
            best = min(best, nodes * node_cost)
    return best


@pytest.mark.parametrize(
    ("gpu", "gpus_per_node", "cost", "architecture", "rps"),
    [
        ("L4-24GB", 4, 4.6016, "llama-3.1-8b", 30.0),
        ("H100-SXM-80GB", 8, 55.04, "llama-3.1-70b", 70.0),
        ("A100-SXM-80GB", 8, 27.447, "llama-3.1-70b", 12.0),
    ],
)
def test_solver_matches_brute_force_and_bound_is_below_it(gpu, gpus_per_node, cost, architecture, rps):
    fleet, models = inputs(
        [pool("p", gpu=gpu, gpus=gpus_per_node, cost=cost, max_nodes=3)],
        [model("m", architecture=architecture, rps=rps, precisions=["bf16"])],
    )
    optimum = brute_force_cost(gpu, gpus_per_node, cost, 3, models.models[0])
    plan, report = solve_with_report(fleet, models, time_limit_s=10)
    assert plan.cost_per_hour == pytest.approx(optimum)
    assert plan.lower_bound_per_hour <= optimum + 1e-9
    assert all(bound <= optimum + 1e-9 for bound in report.lower_bounds.values())


def test_bound_is_the_optimum_on_single_gpu_nodes():
    # One replica on one 1-GPU node: every bound sees the whole node, so bound == cost exactly.
    fleet, models = inputs([pool("l4", gpu="L4-24GB", gpus=1, cost=0.8048, max_nodes=3)], [model("chat", rps=0.5)])
    plan, report = solve_with_report(fleet, models, time_limit_s=10)
    assert plan.cost_per_hour == pytest.approx(0.8048)
    assert report.lower_bounds["per_model_gpu_cost"] == pytest.approx(0.8048)
    assert plan.lower_bound_per_hour == pytest.approx(0.8048) and plan.gap == pytest.approx(0.0, abs=1e-9)


def test_per_model_floor_charges_whole_gpus_and_the_integer_bound_whole_nodes():
    fleet, models = inputs([pool("h100", cost=55.04, max_nodes=2)], [model("chat", rps=0.1)])
    problem = build_problem(fleet, models)
    floor, mix = model_gpu_cost_floor(problem, 0)
    assert floor / COST_UNITS_PER_DOLLAR == pytest.approx(55.04 / 8)  # one GPU, not 0.1 of a replica
    assert sum(mix.values()) == 1
    relaxation = relaxation_lower_bound(problem, [0], {0: floor})
    assert relaxation == pytest.approx(55.04 / 8, rel=1e-6)  # the relaxation opens 1/8 of a node
    plan, _ = solve_with_report(fleet, models, time_limit_s=10)
    assert plan.cost_per_hour == 55.04 and plan.lower_bound_per_hour == pytest.approx(55.04)


def test_relaxation_reports_impossible_demand_as_none():
    fleet, models = inputs([pool("l4", gpu="L4-24GB", gpus=1, cost=0.8, max_nodes=1)], [model("chat", rps=500)])
    problem = build_problem(fleet, models)
    assert relaxation_lower_bound(problem, [0], {}) is None


def test_price_rounding_is_taken_off_the_bound():
    # 0.80485 is not a whole number of cost units; the bound must still not exceed the real cost.
    fleet, models = inputs([pool("l4", gpu="L4-24GB", gpus=1, cost=0.80485, max_nodes=3)], [model("chat")])
    plan, _ = solve_with_report(fleet, models, time_limit_s=10)
    assert plan.cost_per_hour == pytest.approx(0.80485)
    # Rounded to 0.8048 (one unit below) and then up to 3 nodes x half a unit taken off for safety.
    assert plan.cost_per_hour - 4 * 0.00005 - 1e-9 <= plan.lower_bound_per_hour < plan.cost_per_hour


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bounds_never_exceed_an_optimal_plan_on_generated_fleets(seed):
    fleet, models = generate("small", seed)
    plan, report = solve_with_report(fleet, models, time_limit_s=20)
    assert plan.status in ("optimal", "feasible") and not plan.unplaced
    for name, bound in report.lower_bounds.items():
        assert bound <= plan.cost_per_hour + 1e-6, name
    assert plan.lower_bound_per_hour <= plan.cost_per_hour
    if plan.status == "optimal":
        # Zero but for the price rounding taken off the bound (catalog prices have up to 6 decimals).
        assert plan.gap < 1e-5


# --- The node-loss rows in linear size, and the bounds against every validated plan -----------------


def _quadratic_add_survival(solver, problem, model_index, replicas, served, integer):
    """The node-loss rows as first written (one full capacity sum per candidate): the reference the
    linear rows of formulation.add_survival must match."""
    from llmops.planning.formulation import add_row
    from llmops.planning.spec import Spread

    members = problem.candidates_of_model[model_index]
    need = problem.survive_units(model_index)
    used = {}
    if problem.needs_zone_spread(model_index):
        for zone in problem.zones_of_model(model_index):
            terms = [(replicas[c], problem.candidates[c].capacity_units) for c in members
                     if problem.groups[problem.candidates[c].group].zone != zone]
            add_row(solver, terms, lower=0, served=served, served_coefficient=-need)
    elif problem.deployments[model_index].spread == Spread.node:
        total = [(replicas[c], problem.candidates[c].capacity_units) for c in members]
        for c in members:
            used[c] = solver.Var(0, 1, integer, f"replica_used[{c}]")
            add_row(solver, [(replicas[c], 1), (used[c], -problem.replica_upper_bound(c))], upper=0)
            add_row(solver, [*total, (used[c], -problem.candidates[c].capacity_units)], lower=0, served=served,
                    served_coefficient=-need)
    return used, None


def _quadratic_node_floor(problem, m):
    """model_gpu_cost_floor's node-loss model as first written, solved to optimality (None if not proven)."""
    from ortools.sat.python import cp_model

    from llmops.planning.formulation import gpu_price_units

    members = problem.candidates_of_model[m]
    cp = cp_model.CpModel()
    x = {c: cp.new_int_var(0, problem.replica_upper_bound(c), f"x{c}") for c in members}
    capacity = {c: problem.candidates[c].capacity_units for c in members}
    total = sum(capacity[c] * x[c] for c in members)
    cp.add(total >= problem.demand_units(m))
    cp.add(sum(x.values()) >= problem.deployments[m].min_replicas)
    for c in members:
        used = cp.new_bool_var(f"used{c}")
        cp.add(x[c] <= problem.replica_upper_bound(c) * used)
        cp.add(total - capacity[c] * used >= problem.survive_units(m))
    cp.minimize(sum(gpu_price_units(problem, c) * x[c] for c in members))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 20
    return round(solver.objective_value) if solver.solve(cp) == cp_model.OPTIMAL else None


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6, 7])
def test_linear_node_loss_rows_give_the_same_floors_and_relaxation(seed, monkeypatch):
    # The rewrite must be exact: the same per-model floors (the proven minima) and the same LP value.
    from llmops.planning import formulation
    from llmops.planning.spec import Spread

    fleet, models = generate("small", seed)
    problem = build_problem(fleet, models)
    placeable = [m for m, members in problem.candidates_of_model.items() if members]
    floors = {m: model_gpu_cost_floor(problem, m)[0] for m in placeable}
    node_models = [m for m in placeable if problem.deployments[m].spread == Spread.node]
    for m in node_models:
        reference = _quadratic_node_floor(problem, m)
        assert reference is not None and floors[m] == reference, problem.deployments[m].name
    # Without the floor cuts too: those often dominate the node-loss rows in the relaxation.
    linear = [relaxation_lower_bound(problem, placeable, cuts) for cuts in (floors, {})]
    monkeypatch.setattr(formulation, "add_survival", _quadratic_add_survival)
    quadratic = [relaxation_lower_bound(problem, placeable, cuts) for cuts in (floors, {})]
    assert linear == pytest.approx(quadratic, rel=1e-9)


def test_linear_node_loss_rows_keep_the_node_loss_rule():
    # Two spread=node replicas are needed where one would carry the demand: losing either node must
    # leave the demand, so the plan keeps two whole replicas (and two nodes), and the floor says so.
    fleet, models = inputs(
        [pool("l4", gpu="L4-24GB", gpus=1, cost=0.8048, max_nodes=4)],
        [model("chat", rps=0.2, spread="node")],
    )
    problem = build_problem(fleet, models)
    floor, mix = model_gpu_cost_floor(problem, 0)
    assert sum(mix.values()) == 2 and floor / COST_UNITS_PER_DOLLAR == pytest.approx(2 * 0.8048)
    plan, _ = solve_with_report(fleet, models, time_limit_s=10)
    assert len({r.node for r in plan.replicas}) == 2 and plan.cost_per_hour == pytest.approx(2 * 0.8048)


def _bounds_hold_against_every_valid_plan(fleet_data, models_data):
    from llmops.planning.baselines import careful_heuristic, first_fit_decreasing
    from llmops.planning.validator import validate

    fleet, models = parse_fleet(fleet_data), parse_models(models_data)
    plan, report = solve_with_report(fleet, models, time_limit_s=2)
    if plan.unplaced:
        return  # the bounds are for serving every model; a partial plan has its own
    plans = [plan, careful_heuristic(fleet, models), first_fit_decreasing(fleet, models)]
    for other in plans:
        if other.unplaced or validate(other, fleet, models):
            continue
        for name, bound in report.lower_bounds.items():
            assert bound <= other.cost_per_hour + 1e-6, (name, bound, other.cost_per_hour)
        assert plan.lower_bound_per_hour <= other.cost_per_hour + 1e-6


from hypothesis import HealthCheck, given, settings  # noqa: E402

from .test_properties import fleets, model_sets  # noqa: E402


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_data=fleets(), models_data=model_sets())
def test_no_bound_exceeds_any_validated_plan(fleet_data, models_data):
    # Ours, the careful engineer's and FFD's plans, wherever they serve everything and validate.
    _bounds_hold_against_every_valid_plan(fleet_data, models_data)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6, 7])
def test_fractional_floor_is_below_every_proven_floor_and_the_optimum(seed):
    # The quick floor stands in for floors the time limit cuts off: it must never exceed the exact
    # per-model minimum (CP-SAT proven), nor, summed, the cost of an optimal plan.
    from llmops.planning.bounds import fractional_gpu_cost_floor

    fleet, models = generate("small", seed)
    problem = build_problem(fleet, models)
    quick_sum = 0
    for m, members in problem.candidates_of_model.items():
        if not members:
            continue
        exact, mix = model_gpu_cost_floor(problem, m)
        quick = fractional_gpu_cost_floor(problem, m)
        assert mix, "the small floors are proven within their limit"
        assert 0 < quick <= exact, problem.deployments[m].name
        quick_sum += quick
    plan, _ = solve_with_report(fleet, models, time_limit_s=20)
    assert plan.status == "optimal"
    assert quick_sum / COST_UNITS_PER_DOLLAR <= plan.cost_per_hour + 1e-6
