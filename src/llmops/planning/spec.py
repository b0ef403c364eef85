"""Planner inputs: the fleet file and the models file, as validated pydantic models.

These are the user-facing contract (docs/planner.md). Every field carries a description, and
`load_inputs` turns validation errors into one line per problem naming the field path
(`models[2].traffic.requests_per_second: must be > 0`).
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .problems import (
    document_problems,
    field_of,
    ordered,
    repeated,
    validation_problems,
)
from .problems import (
    format_validation_error as format_validation_error,  # validator.py reports plan documents with it
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
Precision = Annotated[str, Field(pattern=r"^(bf16|fp8|int8|int4)$")]
PRECISIONS = ("bf16", "fp8", "int8", "int4")


def _dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError("must be a DNS label: lowercase letters, digits and '-', at most 63 characters")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pool(Strict):
    """A group of identical GPU nodes in one zone: a cloud pool (max_nodes) or fixed machines (nodes)."""

    name: str = Field(description="Unique pool name (DNS label); cloud nodes are named <pool>-<i>.")
    instance_type: str | None = Field(
        default=None, description="AWS instance type; fills gpu_type, gpus_per_node and node_hourly_cost."
    )
    gpu_type: str | None = Field(default=None, description="GPU catalog key, e.g. H100-SXM-80GB.")
    gpus_per_node: int | None = Field(default=None, gt=0, le=16, description="GPUs in each node.")
    node_hourly_cost: float | None = Field(default=None, ge=0, description="Cost of one node per hour.")
    zone: str = Field(min_length=1, description="Availability zone or data-center row.")
    max_nodes: int | None = Field(default=None, ge=0, description="Cloud pool: the plan picks 0..max_nodes.")
    nodes: list[str] | None = Field(default=None, description="Existing machines the plan may use.")

    _check_name = field_validator("name")(_dns_label)

    @field_validator("nodes")
    @classmethod
    def _unique_nodes(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("node names must be unique")
        return value

    @model_validator(mode="after")
    def _one_size_source(self) -> Pool:
        if (self.max_nodes is None) == (self.nodes is None):
            raise ValueError("give exactly one of max_nodes (cloud pool) or nodes (existing machines)")
        return self

    def node_names(self) -> list[str]:
        """Every node this pool may contribute, in order."""
        if self.nodes is not None:
            return list(self.nodes)
        return [f"{self.name}-{i}" for i in range(self.max_nodes or 0)]


def _raw_node_names(pool: Any) -> list[str]:
    nodes, name, count = field_of(pool, "nodes"), field_of(pool, "name"), field_of(pool, "max_nodes")
    if isinstance(nodes, list):
        return [n for n in nodes if isinstance(n, str)]
    if isinstance(name, str) and isinstance(count, int) and not isinstance(count, bool):
        return [f"{name}-{i}" for i in range(max(count, 0))]
    return []


def fleet_rules(pools: list[Any]) -> list[str]:
    """Rules across pools, on validated pools or raw mappings alike (so they run when one pool fails)."""
    problems = []
    duplicates = repeated([field_of(p, "name") for p in pools])
    if duplicates:
        problems.append(f"pools: pool names must be unique; repeated: {', '.join(duplicates)}")
    nodes = repeated([n for p in pools for n in _raw_node_names(p)])
    if nodes:
        problems.append(f"pools: node names must be unique across pools; repeated: {', '.join(nodes)}")
    return problems


class Fleet(Strict):
    pools: list[Pool] = Field(min_length=1, description="GPU pools available to the plan.")

    @model_validator(mode="after")
    def _across_pools(self) -> Fleet:
        problems = fleet_rules(self.pools)
        if problems:
            raise ValueError("\n".join(problems))
        return self


class Traffic(Strict):
    requests_per_second: float = Field(gt=0, description="Mean arrival rate to serve.")
    input_tokens: int = Field(gt=0, description="Mean prompt length in tokens.")
    output_tokens: int = Field(gt=0, description="Mean generated length in tokens.")
    peak_requests_per_second: float | None = Field(
        default=None,
        gt=0,
        description="Peak arrival rate the autoscaling range must reach; default requests_per_second "
        "times the planner's peak factor (1.5).",
    )

    @model_validator(mode="after")
    def _peak_not_below_mean(self) -> Traffic:
        if self.peak_requests_per_second is not None and self.peak_requests_per_second < self.requests_per_second:
            raise ValueError("peak_requests_per_second must be >= requests_per_second")
        return self


class Slo(Strict):
    ttft_ms: float = Field(gt=0, description="Time-to-first-token target, milliseconds.")
    tpot_ms: float = Field(gt=0, description="Time-per-output-token target, milliseconds.")


class Spread(StrEnum):
    zone = "zone"
    node = "node"
    none = "none"


class ReplicaFloor(Strict):
    """When a replica option is worth offering: enough capacity and some latency headroom."""

    share_of_demand: float = Field(
        default=0.02, ge=0, le=1, description="Least capacity at the SLO, as a share of the model's demand."
    )
    requests_per_second: float = Field(
        default=0.05, ge=0, description="Least capacity at the SLO in requests/s (capped at the demand)."
    )
    latency_headroom: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Unloaded TTFT and TPOT (one request, no queue) must stay below (1 - headroom) x SLO.",
    )


class ModelArtifact(Strict):
    """Where the serving layer gets the weights: a manifest pushed with `llmops model push`."""

    name: str = Field(description="Artifact name in the object store (DNS label).")
    version: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", description="Artifact version, e.g. 2024-11-01 or v1."
    )

    _check_name = field_validator("name")(_dns_label)


class Tenant(Strict):
    """A team or customer: owns models, gets its own bucket, gateway API key and quotas."""

    name: str = Field(description="Unique tenant name (DNS label).")
    shared_models: list[str] = Field(
        default_factory=list, description="Models owned by other tenants that this tenant may also call."
    )
    gpu_quota: int | None = Field(default=None, ge=0, description="Most GPUs this tenant's replicas may hold.")

    _check_name = field_validator("name")(_dns_label)


class ModelDeployment(Strict):
    name: str = Field(description="Unique deployment name (DNS label).")
    tenant: str | None = Field(default=None, description="Owning tenant; must be declared under `tenants`.")
    artifact: ModelArtifact | None = Field(
        default=None, description="Model artifact (name, version) in the object store that replicas serve."
    )
    architecture: str | None = Field(default=None, description="Model catalog key, e.g. llama-3.1-70b.")
    hf_config: str | None = Field(default=None, description="Path to a Hugging Face config.json.")
    precisions: list[Precision] = Field(
        default_factory=lambda: ["bf16"], min_length=1, description="Allowed weight precisions."
    )
    max_context_tokens: int = Field(gt=0, description="Longest prompt+output a request may have.")
    traffic: Traffic
    slo: Slo
    min_replicas: int = Field(default=1, ge=0, description="Replicas to run even when demand needs fewer.")
    spread: Spread = Field(
        default=Spread.zone,
        description="zone | node | none: after losing any one zone (node), the remaining replicas still "
        "serve survive_fraction of the demand within the SLO.",
    )
    survive_fraction: float = Field(
        default=1.0, gt=0, le=1, description="Share of the demand the replicas left after one zone/node loss serve."
    )
    replica_floor: ReplicaFloor = Field(
        default_factory=ReplicaFloor, description="Replica options below this are not offered."
    )
    priority: int = Field(default=0, description="Higher is served first when capacity is short.")

    _check_name = field_validator("name")(_dns_label)

    @model_validator(mode="after")
    def _one_architecture_source(self) -> ModelDeployment:
        if (self.architecture is None) == (self.hf_config is None):
            raise ValueError("give exactly one of architecture (catalog key) or hf_config (config.json path)")
        return self


class ModelsFile(Strict):
    models: list[ModelDeployment] = Field(min_length=1, description="Models to serve.")
    tenants: list[Tenant] = Field(default_factory=list, description="Tenants that own and call the models.")

    @model_validator(mode="after")
    def _across_models_and_tenants(self) -> ModelsFile:
        problems = models_file_rules(self.models, self.tenants)
        if problems:
            raise ValueError("\n".join(problems))
        return self


def models_file_rules(models: list[Any], tenants: list[Any]) -> list[str]:
    """Rules across models and tenants, on validated entries or raw mappings alike."""
    problems = []
    duplicates = repeated([field_of(m, "name") for m in models])
    if duplicates:
        problems.append(f"models: model names must be unique; repeated: {', '.join(duplicates)}")
    declared = [field_of(t, "name") for t in tenants]
    duplicates = repeated(declared)
    if duplicates:
        problems.append(f"tenants: tenant names must be unique; repeated: {', '.join(duplicates)}")
    names = [n for n in declared if isinstance(n, str)]
    accepted = ", ".join(names) or "(none declared under tenants)"
    problems += [
        f"models[{i}].tenant: unknown tenant {field_of(m, 'tenant')!r}; accepted: {accepted}"
        for i, m in enumerate(models)
        if isinstance(field_of(m, "tenant"), str) and field_of(m, "tenant") not in names
    ]
    model_names = {field_of(m, "name") for m in models}
    for i, tenant in enumerate(tenants):
        shared = field_of(tenant, "shared_models")
        problems += [
            f"tenants[{i}].shared_models: unknown model {name!r}"
            for name in (shared if isinstance(shared, list) else [])
            if isinstance(name, str) and name not in model_names
        ]
    return problems


class InputError(ValueError):
    """Invalid planner input; `problems` holds one 'file: field.path: message' line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _read_yaml(path: str | Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise InputError([f"{path}: cannot read ({exc.strerror})"]) from exc
    except yaml.YAMLError as exc:
        # One line: PyYAML's own text spans several and repeats the path.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        detail = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError([f"{path}: not valid YAML: {detail}{where}"]) from exc


def _entries(item_model: type[BaseModel], items: Any) -> list[tuple[int, Any]]:
    """(index, entry) for each mapping in a list: validated when valid on its own, else the raw
    mapping, so catalog references are checked in the same run as the schema."""
    entries = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        try:
            entries.append((index, item_model.model_validate(item)))
        except ValidationError:
            entries.append((index, item))
    return entries


def check_fleet(data: Any) -> tuple[Fleet | None, list[str], list[tuple[int, Pool | dict]]]:
    """The fleet, or None with every problem (unprefixed lines); and each pool, validated or raw."""
    problems = document_problems(data, "pools", "models", "fleet", "models")
    if problems:
        return None, problems, []
    try:
        fleet = Fleet.model_validate(data)
        return fleet, [], list(enumerate(fleet.pools))
    except ValidationError as exc:
        problems, root_ran = validation_problems(Fleet, data, exc)
    if not root_ran and isinstance(data.get("pools"), list):
        problems += fleet_rules([p for p in data["pools"] if isinstance(p, dict)])
    return None, ordered(problems), _entries(Pool, data.get("pools"))


def check_models(data: Any) -> tuple[ModelsFile | None, list[str], list[tuple[int, ModelDeployment | dict]]]:
    """The models file, or None with every problem (unprefixed lines); and each model, validated or raw."""
    problems = document_problems(data, "models", "pools", "models", "fleet")
    if problems:
        return None, problems, []
    try:
        models = ModelsFile.model_validate(data)
        return models, [], list(enumerate(models.models))
    except ValidationError as exc:
        problems, root_ran = validation_problems(ModelsFile, data, exc)
    raw_models, raw_tenants = data.get("models"), data.get("tenants")
    if not root_ran and isinstance(raw_models, list):
        problems += models_file_rules(
            [m if isinstance(m, dict) else {} for m in raw_models],
            [t for t in raw_tenants if isinstance(t, dict)] if isinstance(raw_tenants, list) else [],
        )
    return None, ordered(problems), _entries(ModelDeployment, raw_models)


def _prefixed(source: str, problems: list[str]) -> list[str]:
    return [f"{source}: {line}" for line in problems]


def parse_fleet(data: Any, source: str = "fleet") -> Fleet:
    """Validate fleet data; InputError lists every problem as `<source>: field.path: message`."""
    fleet, problems, _ = check_fleet(data)
    if fleet is None:
        raise InputError(_prefixed(source, problems))
    return fleet


def parse_models(data: Any, source: str = "models") -> ModelsFile:
    """Validate models data; InputError lists every problem as `<source>: field.path: message`."""
    models, problems, _ = check_models(data)
    if models is None:
        raise InputError(_prefixed(source, problems))
    return models


def read_fleet(path: str | Path) -> Any:
    return _read_yaml(path)


def read_models(path: str | Path) -> Any:
    """A models file's data; relative hf_config paths are resolved against the file's folder."""
    data = _read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("models"), list):
        base = Path(path).resolve().parent
        for entry in data["models"]:
            if isinstance(entry, dict) and isinstance(entry.get("hf_config"), str):
                entry["hf_config"] = str(base / entry["hf_config"])
    return data


def load_fleet(path: str | Path) -> Fleet:
    return parse_fleet(read_fleet(path), str(path))


def load_models(path: str | Path) -> ModelsFile:
    """Load a models file; relative hf_config paths are resolved against the file's folder."""
    return parse_models(read_models(path), str(path))
