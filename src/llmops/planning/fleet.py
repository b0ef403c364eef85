"""Resolve the inputs' catalog references: pools to concrete GPU nodes, models to architectures.

One place for the rules every consumer (solver, validator, CLI, placement_plan module) must
agree on:
- a pool with `instance_type` takes gpu_type, gpus_per_node and node_hourly_cost from the
  instance catalog; values written explicitly in the pool win;
- a pool without `instance_type` must give all three itself;
- GPU types, instance types and architecture keys must exist in the catalog, and hf_config
  files must be readable.
Every problem is reported as one `field.path: message` line naming the accepted values, and all
problems are raised together as one InputError.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from llmops.catalog import GpuType, ModelArchitecture, gpu_types, instance_types

from .spec import Fleet, InputError, ModelDeployment, ModelsFile, Pool


@dataclass(frozen=True)
class ResolvedPool:
    """A pool with every size and price filled in and its GPU type looked up in the catalog."""

    name: str
    zone: str
    gpu_type: GpuType
    gpus_per_node: int
    node_hourly_cost: float
    node_names: tuple[str, ...]
    fixed: bool
    """True for existing machines (`nodes:`), False for a cloud pool (`max_nodes:`)."""


def _accepted(names: list[str] | set[str] | dict) -> str:
    return ", ".join(sorted(names))


def resolve_pools(fleet: Fleet) -> list[ResolvedPool]:
    """Every pool of the fleet resolved against the catalog, in the fleet's order."""
    resolved, problems = _resolve_indexed_pools(list(enumerate(fleet.pools)))
    if problems:
        raise InputError(problems)
    return resolved


def pool_catalog_problems(pools: list[tuple[int, Pool | dict]]) -> list[str]:
    """Catalog problems of (index, pool) pairs, so they are reported in the same run as schema
    problems: a validated Pool, or the raw mapping of a pool that failed validation (then only
    what its raw values allow to judge is checked)."""
    return _resolve_indexed_pools(pools)[1]


# A raw field that is present but not of its type: the schema reported it; it still counts as given.
_GIVEN_BUT_INVALID = "<given but invalid>"


def _lenient_pool(raw: dict) -> SimpleNamespace | None:
    def given(key: str, kind: type | tuple[type, ...]) -> Any:
        value = raw.get(key)
        return value if value is None or isinstance(value, kind) else _GIVEN_BUT_INVALID

    if given("instance_type", str) == _GIVEN_BUT_INVALID:
        return None  # what it would fill in is unknown
    return SimpleNamespace(
        instance_type=raw.get("instance_type"),
        gpu_type=given("gpu_type", str),
        gpus_per_node=given("gpus_per_node", int),
        node_hourly_cost=given("node_hourly_cost", (int, float)),
    )


def _resolve_indexed_pools(pools: list[tuple[int, Pool | dict]]) -> tuple[list[ResolvedPool], list[str]]:
    known_gpus = gpu_types()
    known_instances = instance_types()
    problems: list[str] = []
    resolved: list[ResolvedPool] = []
    for index, item in pools:
        pool = _lenient_pool(item) if isinstance(item, dict) else item
        if pool is None:
            continue
        where = f"pools[{index}]"
        instance = None
        if pool.instance_type is not None:
            instance = known_instances.get(pool.instance_type)
            if instance is None:
                problems.append(
                    f"{where}.instance_type: unknown instance type {pool.instance_type!r}; "
                    f"accepted: {_accepted(known_instances)}"
                )
                continue
        gpu_name = pool.gpu_type if pool.gpu_type is not None else (instance.gpu_type if instance else None)
        gpus = pool.gpus_per_node if pool.gpus_per_node is not None else (instance.gpus if instance else None)
        cost = (
            pool.node_hourly_cost
            if pool.node_hourly_cost is not None
            else (instance.hourly_usd if instance else None)
        )
        missing = False
        for field, value in (("gpu_type", gpu_name), ("gpus_per_node", gpus), ("node_hourly_cost", cost)):
            if value is None:
                problems.append(f"{where}.{field}: required when instance_type is not given")
                missing = True
        if missing:
            continue
        gpu = known_gpus.get(gpu_name)
        if gpu is None and gpu_name != _GIVEN_BUT_INVALID:
            problems.append(f"{where}.gpu_type: unknown GPU type {gpu_name!r}; accepted: {_accepted(known_gpus)}")
        if gpu is None or not isinstance(pool, Pool):
            continue
        resolved.append(
            ResolvedPool(
                name=pool.name,
                zone=pool.zone,
                gpu_type=gpu,
                gpus_per_node=int(gpus),
                node_hourly_cost=float(cost),
                node_names=tuple(pool.node_names()),
                fixed=pool.nodes is not None,
            )
        )
    return resolved, problems


def resolve_architectures(models: ModelsFile) -> dict[str, ModelArchitecture]:
    """Each model's architecture by model name; unknown keys and unreadable hf_config files are errors."""
    resolved, problems = _resolve_indexed_models(list(enumerate(models.models)))
    if problems:
        raise InputError(problems)
    return resolved


def model_catalog_problems(models: list[tuple[int, ModelDeployment | dict]]) -> list[str]:
    """Architecture problems of (index, model) pairs: a validated model, or the raw mapping of one
    that failed validation but names exactly one architecture source as text."""
    return _resolve_indexed_models(models)[1]


def _lenient_model(raw: dict) -> SimpleNamespace | None:
    architecture, hf_config = raw.get("architecture"), raw.get("hf_config")
    sources = [value for value in (architecture, hf_config) if value is not None]
    if len(sources) != 1 or not isinstance(sources[0], str):
        return None
    return SimpleNamespace(name=raw.get("name"), architecture=architecture, hf_config=hf_config)


def _resolve_indexed_models(
    models: list[tuple[int, ModelDeployment | dict]],
) -> tuple[dict[str, ModelArchitecture], list[str]]:
    # Imported here: options pulls in the performance model, which the fleet half does not need.
    from .options import resolve_architecture

    problems: list[str] = []
    resolved: dict[str, ModelArchitecture] = {}
    for index, item in models:
        deployment = _lenient_model(item) if isinstance(item, dict) else item
        if deployment is None:
            continue
        try:
            architecture = resolve_architecture(deployment)
        except (KeyError, OSError, ValueError, TypeError) as exc:
            problems.append(_architecture_problem(index, deployment, exc))
            continue
        if isinstance(deployment, ModelDeployment):
            resolved[deployment.name] = architecture
    return resolved, problems


def _architecture_problem(index: int, deployment: ModelDeployment, exc: Exception) -> str:
    if deployment.architecture is not None:
        # KeyError's str() wraps the message in quotes; the catalog's message already lists the keys.
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return f"models[{index}].architecture: {detail}"
    if isinstance(exc, OSError):
        return f"models[{index}].hf_config: cannot read {deployment.hf_config} ({exc.strerror or exc})"
    detail = str(exc)
    if str(deployment.hf_config) in detail:
        return f"models[{index}].hf_config: {detail}"
    return f"models[{index}].hf_config: {deployment.hf_config} is not a usable Hugging Face config.json ({detail})"


def resolve_inputs(fleet: Fleet, models: ModelsFile) -> tuple[list[ResolvedPool], dict[str, ModelArchitecture]]:
    """Both resolutions at once, so one InputError lists the problems of both files."""
    problems: list[str] = []
    pools: list[ResolvedPool] = []
    architectures: dict[str, ModelArchitecture] = {}
    try:
        pools = resolve_pools(fleet)
    except InputError as exc:
        problems += exc.problems
    try:
        architectures = resolve_architectures(models)
    except InputError as exc:
        problems += exc.problems
    if problems:
        raise InputError(problems)
    return pools, architectures
