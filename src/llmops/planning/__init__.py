"""The placement planner: sizing, performance model, solver, lower bound and validator.

Public entry points (imported by the CLI, the placement_plan module and pulumi/):
    load_inputs(fleet_path, models_path) -> (Fleet, ModelsFile)   (InputError: every problem of both)
    check_inputs(read_fleet, fleet_source, read_models, models_source) -> (Fleet, ModelsFile)
    make_plan(fleet, models, time_limit_s=...) -> Plan
    validate_plan(plan, fleet, models) -> list[str]   (empty when the plan is valid)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .problems import ordered
from .result import Plan
from .spec import Fleet, InputError, ModelsFile, check_fleet, check_models, read_fleet, read_models


def load_inputs(fleet_path: str | Path, models_path: str | Path) -> tuple[Fleet, ModelsFile]:
    """Read and validate both files; raises InputError listing every problem of both, each line
    starting with the file it is in."""
    return check_inputs(
        lambda: read_fleet(fleet_path), str(fleet_path), lambda: read_models(models_path), str(models_path)
    )


def check_inputs(
    fleet_data: Callable[[], Any], fleet_source: str, models_data: Callable[[], Any], models_source: str
) -> tuple[Fleet, ModelsFile]:
    """Validate both inputs in one pass: schema, rules across entries, and catalog references of
    every pool and model that is valid on its own. `*_data` return the document (or raise
    InputError when it cannot be read); every problem line starts with its `*_source`.
    """
    from .fleet import model_catalog_problems, pool_catalog_problems

    problems: list[str] = []
    fleet = models = None
    try:
        fleet, found, pools = check_fleet(fleet_data())
        problems += [f"{fleet_source}: {line}" for line in ordered(found + pool_catalog_problems(pools))]
    except InputError as exc:
        problems += exc.problems
    try:
        models, found, deployments = check_models(models_data())
        problems += [f"{models_source}: {line}" for line in ordered(found + model_catalog_problems(deployments))]
    except InputError as exc:
        problems += exc.problems
    if problems or fleet is None or models is None:
        raise InputError(problems)
    return fleet, models


def make_plan(fleet: Fleet, models: ModelsFile, time_limit_s: float = 30.0) -> Plan:
    from .solver import solve

    return solve(fleet, models, time_limit_s=time_limit_s)


def validate_plan(plan: Plan | dict, fleet: Fleet, models: ModelsFile) -> list[str]:
    from .validator import validate

    return validate(plan, fleet, models)


__all__ = ["Fleet", "InputError", "ModelsFile", "Plan", "check_inputs", "load_inputs", "make_plan", "validate_plan"]
