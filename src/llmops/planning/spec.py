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


class Fleet(Strict):
    pools: list[Pool] = Field(min_length=1, description="GPU pools available to the plan.")

    @field_validator("pools")
    @classmethod
    def _unique(cls, pools: list[Pool]) -> list[Pool]:
        names = [p.name for p in pools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(duplicates)}")
        node_names = [n for p in pools for n in p.node_names()]
        repeated = sorted({n for n in node_names if node_names.count(n) > 1})
        if repeated:
            raise ValueError(f"node names must be unique across pools; repeated: {', '.join(repeated)}")
        return pools


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
    def _tenants_known(self) -> ModelsFile:
        declared = [t.name for t in self.tenants]
        repeated = sorted({n for n in declared if declared.count(n) > 1})
        if repeated:
            raise ValueError(f"tenant names must be unique; repeated: {', '.join(repeated)}")
        accepted = ", ".join(declared) or "(none declared under tenants)"
        model_names = {m.name for m in self.models}
        problems = [
            f"models[{i}].tenant: unknown tenant {m.tenant!r}; accepted: {accepted}"
            for i, m in enumerate(self.models)
            if m.tenant is not None and m.tenant not in declared
        ]
        problems += [
            f"tenants[{i}].shared_models: unknown model {name!r}"
            for i, t in enumerate(self.tenants)
            for name in t.shared_models
            if name not in model_names
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("models")
    @classmethod
    def _unique(cls, models: list[ModelDeployment]) -> list[ModelDeployment]:
        names = [m.name for m in models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        return models


class InputError(ValueError):
    """Invalid planner input; `problems` holds one 'field.path: message' line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _path(root: str, loc: tuple[Any, ...]) -> str:
    text = root
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(err: dict[str, Any]) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "greater_than":
        return f"must be > {ctx['gt']:g}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']:g}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']:g}"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch" and "bf16" in str(ctx.get("pattern", "")):
        return f"must be one of {', '.join(PRECISIONS)}"
    if kind == "enum":
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def format_validation_error(exc: ValidationError, root: str = "") -> list[str]:
    return [f"{_path(root, err['loc']) or root or '<file>'}: {_message(err)}" for err in exc.errors()]


def _read_yaml(path: str | Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise InputError([f"{path}: cannot read ({exc.strerror})"]) from exc
    except yaml.YAMLError as exc:
        raise InputError([f"{path}: not valid YAML ({exc})"]) from exc


def parse_fleet(data: Any) -> Fleet:
    try:
        return Fleet.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc)) from exc


def parse_models(data: Any) -> ModelsFile:
    try:
        return ModelsFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc)) from exc


def load_fleet(path: str | Path) -> Fleet:
    return parse_fleet(_read_yaml(path))


def load_models(path: str | Path) -> ModelsFile:
    """Load a models file; relative hf_config paths are resolved against the file's folder."""
    data = _read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("models"), list):
        base = Path(path).resolve().parent
        for entry in data["models"]:
            if isinstance(entry, dict) and isinstance(entry.get("hf_config"), str):
                entry["hf_config"] = str(base / entry["hf_config"])
    return parse_models(data)
