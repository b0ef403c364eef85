"""The baselines the benchmarks compare against, and the small benchmark end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llmops.planning import validate_plan
from llmops.planning.assignment import _pack_group_exactly, assign_replicas
from llmops.planning.baselines import best_single_gpu_type, first_fit_decreasing
from llmops.planning.formulation import build_problem
from llmops.planning.solver import solve
from llmops.planning.spec import parse_fleet, parse_models

from .test_solver import model, pool

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from generator import SIZES, generate  # noqa: E402
from run_planner import run_size  # noqa: E402


def inputs(pools, models):
    return parse_fleet({"pools": pools}), parse_models({"models": models})


def test_ffd_uses_the_first_listed_precision_and_smallest_tensor_parallel_that_fits():
    fleet, models = inputs(
        [pool("h100", max_nodes=2)],
        [model("big", architecture="llama-3.1-70b", precisions=["bf16", "fp8"], rps=1)],
    )
    plan = first_fit_decreasing(fleet, models)
    assert validate_plan(plan, fleet, models) == []
    assert {(r.precision, r.tensor_parallel) for r in plan.replicas} == {("bf16", 2)}
    assert plan.lower_bound_per_hour == 0.0 and plan.status == "feasible"


def test_ffd_opens_the_cheapest_node_that_holds_the_replica_and_fills_it_first():
    fleet, models = inputs(
        [
            pool("l4", gpu="L4-24GB", gpus=4, cost=4.6, max_nodes=4),
            pool("h100", cost=55.04, max_nodes=4),
        ],
        [model("a", precisions=["bf16"], rps=0.2), model("b", precisions=["bf16"], rps=0.2)],
    )
    plan = first_fit_decreasing(fleet, models)
    assert validate_plan(plan, fleet, models) == []
    assert [n.pool for n in plan.nodes] == ["l4"]  # both replicas first-fit onto one open node
    assert plan.cost_per_hour == pytest.approx(sum(n.hourly_cost for n in plan.nodes))


def test_ffd_reports_what_it_cannot_place():
    fleet, models = inputs([pool("l4", gpu="L4-24GB", gpus=1, cost=0.8, max_nodes=1)], [model("a"), model("b")])
    plan = first_fit_decreasing(fleet, models)
    assert plan.status == "partial" and [u.model for u in plan.unplaced] == ["b"]
    assert "first-fit found no" in plan.unplaced[0].reason


def test_optimiser_is_never_worse_than_ffd_and_beats_it_when_precision_order_is_naive():
    fleet, models = inputs(
        [pool("h100", max_nodes=4), pool("l40s", gpu="L40S-48GB", gpus=8, cost=30.131, max_nodes=4, zone="z-b")],
        [
            model("chat", precisions=["bf16", "fp8"], rps=60),
            model("big", architecture="llama-3.1-70b", precisions=["bf16", "fp8"], rps=8),
        ],
    )
    ffd = first_fit_decreasing(fleet, models)
    ours = solve(fleet, models, time_limit_s=10)
    assert validate_plan(ffd, fleet, models) == [] and validate_plan(ours, fleet, models) == []
    assert not ffd.unplaced and not ours.unplaced
    assert ours.cost_per_hour < ffd.cost_per_hour


def test_best_single_gpu_type_uses_one_type_and_costs_no_less_than_the_mix():
    fleet, models = inputs(
        [pool("h100", max_nodes=4), pool("l4", gpu="L4-24GB", gpus=4, cost=4.6016, max_nodes=4, zone="z-b")],
        [model("chat", rps=10), model("big", architecture="llama-3.1-70b", rps=2)],
    )
    single = best_single_gpu_type(fleet, models, time_limit_s=10)
    mixed = solve(fleet, models, time_limit_s=10)
    assert validate_plan(single, fleet, models) == []
    assert len({n.gpu_type for n in single.nodes}) == 1 and not single.unplaced
    assert single.cost_per_hour >= mixed.cost_per_hour - 1e-9


def test_spread_node_packing_finds_room_without_extra_nodes():
    # Two 4-GPU nodes: a TP2 pair and two spread=node TP1 replicas plus two more TP1 replicas fill
    # them exactly; naive best fit would stack both TP2 replicas on one node and strand the spread.
    fleet, models = inputs(
        [pool("h100", gpus=4, max_nodes=3)],
        [model("anti", min_replicas=2, spread="node", rps=0.1)],
    )
    problem = build_problem(fleet, models)
    tp1 = next(c for c in problem.candidates_of_model[0] if problem.candidates[c].tensor_parallel == 1)
    counts = [0] * len(problem.candidates)
    counts[tp1] = 2
    assignment = assign_replicas(problem, [2], counts)
    assert assignment.extra_nodes == 0 and not assignment.unpacked
    assert len({p.node for p in assignment.placements}) == 2


def test_exact_packer_honours_spread_within_the_node_count_or_says_it_cannot():
    fleet, models = inputs([pool("h100", gpus=4, max_nodes=3)], [model("anti", min_replicas=3, spread="node", rps=0.1)])
    problem = build_problem(fleet, models)
    tp1 = next(c for c in problem.candidates_of_model[0] if problem.candidates[c].tensor_parallel == 1)
    counts = [0] * len(problem.candidates)
    counts[tp1] = 3
    packed = _pack_group_exactly(problem, 0, 3, counts)
    assert packed is not None and sorted(p.node for p in packed.placements) == ["h100-0", "h100-1", "h100-2"]
    assert all(p.gpu_indices == (0,) for p in packed.placements)
    assert _pack_group_exactly(problem, 0, 2, counts) is None  # three replicas, two nodes: impossible


def test_small_benchmark_runs_end_to_end_with_valid_plans():
    row = run_size("small", seed=1, time_limit_s=10)
    assert SIZES["small"] == (20, 5) and row["size"].startswith("20x5")
    for column in ("our $/h", "FFD $/h", "single-type $/h"):
        assert row[column] != "INVALID", column
    assert row["status"] in ("optimal", "feasible")
    assert float(row["gap"].rstrip("%")) <= 2.0
    assert float(row["our $/h"].replace(",", "")) <= float(row["FFD $/h"].split()[0].replace(",", ""))


def test_generator_is_seeded_and_sized():
    first_fleet, first_models = generate("small", 7)
    again_fleet, again_models = generate("small", 7)
    assert first_fleet == again_fleet and first_models == again_models
    assert sum(len(p.node_names()) for p in first_fleet.pools) == 20 and len(first_models.models) == 5
    assert len({p.zone for p in first_fleet.pools}) >= 2 and any(p.nodes for p in first_fleet.pools)
