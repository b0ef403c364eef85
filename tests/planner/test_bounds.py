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
