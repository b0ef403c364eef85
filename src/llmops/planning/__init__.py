"""The placement planner: sizing, performance model, solver, lower bound and validator.

Public entry points (imported by the CLI, the placement_plan module and pulumi/):
    load_inputs(fleet_path, models_path) -> (Fleet, ModelsFile)
    make_plan(fleet, models, time_limit_s=...) -> Plan
    validate_plan(plan, fleet, models) -> list[str]   (empty when the plan is valid)
"""

from __future__ import annotations

from pathlib import Path

from .result import Plan
from .spec import Fleet, InputError, ModelsFile, load_fleet, load_models


def load_inputs(fleet_path: str | Path, models_path: str | Path) -> tuple[Fleet, ModelsFile]:
    """Read and validate both files; raises InputError listing every problem of both."""
    problems: list[str] = []
    fleet = models = None
    try:
        fleet = load_fleet(fleet_path)
    except InputError as exc:
        problems += exc.problems
    try:
        models = load_models(models_path)
    except InputError as exc:
        problems += exc.problems
    if problems:
        raise InputError(problems)
    return fleet, models


def make_plan(fleet: Fleet, models: ModelsFile, time_limit_s: float = 30.0) -> Plan:
    from .solver import solve

    return solve(fleet, models, time_limit_s=time_limit_s)


def validate_plan(plan: Plan | dict, fleet: Fleet, models: ModelsFile) -> list[str]:
    from .validator import validate

    return validate(plan, fleet, models)


__all__ = ["Fleet", "InputError", "ModelsFile", "Plan", "load_inputs", "make_plan", "validate_plan"]
