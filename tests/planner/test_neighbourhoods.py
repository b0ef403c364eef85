"""The large neighbourhood search: every kind of neighbourhood keeps plans valid, and the backups
neighbourhood moves only the survivability backups outside the home zone."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from llmops.planning import solver, validate_plan
from llmops.planning.bounds import model_gpu_cost_floor
from llmops.planning.formulation import build_problem

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from generator import generate


def _incumbent(seed):
    fleet, models = generate("small", seed)
    problem = build_problem(fleet, models)
    placeable = [m for m, members in problem.candidates_of_model.items() if members]
    floors = {m: model_gpu_cost_floor(problem, m)[0] for m in placeable}
    start = solver._heuristic_start(problem, fleet, models, placeable)
    assert start is not None
    return problem, placeable, floors, start


@pytest.mark.parametrize("seed", [1, 4, 5])
def test_backups_neighbourhood_moves_only_backups_outside_the_home_zone(seed):
    problem, placeable, floors, start = _incumbent(seed)
    structure = solver._SearchStructure.of(problem, placeable)
    assert structure.backup_models, "the small fleets have zone-spread models in the owned zone"
    home_groups = [g for g, group in enumerate(problem.groups) if group.zone == structure.home_zone]
    # The home zone holds the cheapest GPUs of the fleet (the owned racks).
    assert min(problem.groups[g].node_hourly_cost / problem.groups[g].gpus_per_node for g in home_groups) == min(
        group.node_hourly_cost / group.gpus_per_node for group in problem.groups)
    free, free_candidates = solver._pick_neighbourhood(
        "backups", problem, placeable, start, structure, len(placeable), random.Random(seed))
    assert free <= set(structure.backup_models)
    assert free_candidates and all(problem.groups[problem.candidates[c].group].zone != structure.home_zone
                                   for c in free_candidates)
    model = solver._neighbourhood_model(problem, placeable, free, start.replica_counts, floors, free_candidates)
    model.complete_hint(start.node_counts, start.replica_counts)
    stage = solver.run_stage(model.solver, "neighbourhood", 10, cost_objective=True)
    assert stage.status in ("optimal", "feasible")
    moved = solver._extract(model, placeable, stage)
    for c in range(len(problem.candidates)):
        if c not in free_candidates:
            assert moved.replica_counts[c] == start.replica_counts[c], "only the freed backups may change"
    # The incumbent is a point of the neighbourhood, so its optimum is no dearer.
    assert solver._node_cost(problem, moved) <= solver._node_cost(problem, start) + 1e-6


@pytest.mark.parametrize("kind", solver.NEIGHBOURHOODS)
@pytest.mark.parametrize("seed", [2, 5])
def test_every_neighbourhood_kind_alone_gives_valid_plans(kind, seed, monkeypatch):
    # Small fleets have 5 models: let them search, with one kind only.
    monkeypatch.setattr(solver, "LNS_MIN_MODELS", 2)
    monkeypatch.setattr(solver, "NEIGHBOURHOODS", (kind,))
    fleet, models = generate("small", seed)
    plan, report = solver.solve_with_report(fleet, models, time_limit_s=4)
    assert validate_plan(plan, fleet, models) == []
    assert not plan.unplaced
    searches = [s for s in report.stages if s.name == "large neighbourhood search"]
    if plan.status != "optimal" or searches:
        assert searches and f"{kind} " in searches[0].message
    assert plan.lower_bound_per_hour <= plan.cost_per_hour
