"""Stack settings: everything `Pulumi.<stack>.yaml` may set, read once into a typed dataclass.

Problems are collected and raised together as a ConfigError whose lines name the config key
(`llmops:natMode: must be one of single, per-zone`), so a user fixes a stack file in one pass.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

NAT_MODES = ("single", "per-zone")
CAPACITY_TYPES = ("ON_DEMAND", "SPOT")
WORLD_OPEN_CIDRS = ("0.0.0.0/0", "::/0")
MANAGED_BY_TAG = "llmops.io/managed-by"
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
DEFAULT_DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"


class ConfigError(ValueError):
    """Invalid stack settings; `problems` holds one '<key>: <message>' line each."""

    def __init__(self, problems: list[str]):
        super().__init__("invalid stack configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PoolOverride:
    """Explicit node counts or capacity type for one fleet pool, taking precedence over the plan."""

    desired: int | None = None
    min: int | None = None
    max: int | None = None
    capacity_type: str = "ON_DEMAND"


@dataclass(frozen=True)
class Tenant:
    """A team that gets a namespace whose quota caps the GPUs, CPU and memory it may request."""

    name: str
    gpus: int
    cpu: str = "64"
    memory: str = "512Gi"


@dataclass(frozen=True)
class StackSettings:
    project: str
    stack: str
    region: str
    zones: list[str]
    vpc_cidr: str
    nat_mode: str
    flow_logs: bool
    cluster_version: str
    public_access_cidrs: list[str]
    private_access_cidrs: list[str]
    fleet_file: Path
    models_file: Path
    plan_time_limit_s: float
    pool_overrides: dict[str, PoolOverride]
    min_root_volume_gib: int
    tenants: list[Tenant]
    device_plugin_image: str
    model_noncurrent_version_days: int
    huggingface_token: pulumi.Output[str]
    tags: dict[str, str] = field(default_factory=dict)


def _int(value: Any, key: str, problems: list[str], minimum: int = 0) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.append(f"{key}: must be an integer >= {minimum}, got {value!r}")
        return None
    return value


def parse_pool_overrides(raw: Any, problems: list[str]) -> dict[str, PoolOverride]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append("llmops:poolOverrides: must be a mapping of pool name to {desired, min, max, capacityType}")
        return {}
    overrides: dict[str, PoolOverride] = {}
    for pool_name, entry in raw.items():
        key = f"llmops:poolOverrides.{pool_name}"
        if not isinstance(entry, dict):
            problems.append(f"{key}: must be a mapping with desired, min, max or capacityType")
            continue
        unknown = sorted(set(entry) - {"desired", "min", "max", "capacityType"})
        if unknown:
            problems.append(f"{key}: unknown field(s) {', '.join(unknown)}; accepted: desired, min, max, capacityType")
        capacity_type = entry.get("capacityType", "ON_DEMAND")
        if capacity_type not in CAPACITY_TYPES:
            problems.append(f"{key}.capacityType: must be one of {', '.join(CAPACITY_TYPES)}, got {capacity_type!r}")
        override = PoolOverride(
            desired=_int(entry.get("desired"), f"{key}.desired", problems),
            min=_int(entry.get("min"), f"{key}.min", problems),
            max=_int(entry.get("max"), f"{key}.max", problems, minimum=1),
            capacity_type=capacity_type,
        )
        overrides[str(pool_name)] = override
    return overrides


def parse_tenants(raw: Any, problems: list[str]) -> list[Tenant]:
    tenants: list[Tenant] = []
    for index, entry in enumerate(raw or []):
        key = f"llmops:tenants[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            problems.append(f"{key}: must be a mapping with at least name and gpus")
            continue
        gpus = _int(entry.get("gpus"), f"{key}.gpus", problems)
        if gpus is None:
            if "gpus" not in entry:
                problems.append(f"{key}.gpus: required field is missing")
            continue
        tenants.append(
            Tenant(name=entry["name"], gpus=gpus, cpu=str(entry.get("cpu", "64")), memory=str(entry.get("memory", "512Gi")))
        )
    return tenants


def check_api_access_cidrs(key: str, cidrs: list[str], problems: list[str]) -> None:
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            problems.append(f"llmops:{key}: {cidr!r} is not a CIDR block")
            continue
        if network.prefixlen == 0:
            problems.append(
                f"llmops:{key}: {cidr} opens the Kubernetes API to the whole internet; "
                "list the networks that need it"
            )


def load_settings(project_dir: Path) -> StackSettings:
    """Read the current stack's config; relative file paths resolve against the project folder."""
    config = pulumi.Config()
    aws_config = pulumi.Config("aws")
    problems: list[str] = []

    zones = config.get_object("zones") or []
    if len(zones) < 2 or len(set(zones)) != len(zones):
        problems.append(f"llmops:zones: give at least two distinct availability zones, got {zones!r}")
    nat_mode = config.get("natMode") or "single"
    if nat_mode not in NAT_MODES:
        problems.append(f"llmops:natMode: must be one of {', '.join(NAT_MODES)}, got {nat_mode!r}")
    vpc_cidr = config.get("vpcCidr") or "10.40.0.0/16"
    try:
        if ipaddress.ip_network(vpc_cidr).prefixlen > 20:
            problems.append(f"llmops:vpcCidr: {vpc_cidr} is too small; use a /20 or larger")
    except ValueError:
        problems.append(f"llmops:vpcCidr: {vpc_cidr!r} is not a CIDR block")
    public_access_cidrs = config.get_object("publicAccessCidrs") or []
    check_api_access_cidrs("publicAccessCidrs", public_access_cidrs, problems)
    private_access_cidrs = config.get_object("privateApiAccessCidrs")
    private_access_cidrs = [vpc_cidr] if private_access_cidrs is None else private_access_cidrs
    check_api_access_cidrs("privateApiAccessCidrs", private_access_cidrs, problems)
    overrides = parse_pool_overrides(config.get_object("poolOverrides"), problems)
    tenants = parse_tenants(config.get_object("tenants"), problems)
    min_root_volume_gib = config.get_int("minRootVolumeGib") or 200
    if min_root_volume_gib < 20:
        problems.append(f"llmops:minRootVolumeGib: must be >= 20, got {min_root_volume_gib}")
    extra_tags = config.get_object("tags") or {}
    if problems:
        raise ConfigError(problems)

    stack = pulumi.get_stack()
    project = pulumi.get_project()
    tags = {
        **{str(k): str(v) for k, v in extra_tags.items()},
        MANAGED_BY_TAG: "pulumi",
        "llmops.io/project": project,
        "llmops.io/stack": stack,
    }
    return StackSettings(
        project=project,
        stack=stack,
        region=aws_config.require("region"),
        zones=list(zones),
        vpc_cidr=vpc_cidr,
        nat_mode=nat_mode,
        flow_logs=config.get_bool("flowLogs") or False,
        cluster_version=config.get("clusterVersion") or "1.33",
        public_access_cidrs=list(public_access_cidrs),
        private_access_cidrs=list(private_access_cidrs),
        fleet_file=(project_dir / config.require("fleetFile")).resolve(),
        models_file=(project_dir / config.require("modelsFile")).resolve(),
        plan_time_limit_s=config.get_float("planTimeLimitSeconds") or 30.0,
        pool_overrides=overrides,
        min_root_volume_gib=min_root_volume_gib,
        tenants=tenants,
        device_plugin_image=config.get("devicePluginImage") or DEFAULT_DEVICE_PLUGIN_IMAGE,
        model_noncurrent_version_days=config.get_int("modelNoncurrentVersionDays") or 30,
        huggingface_token=config.require_secret("huggingFaceToken"),
        tags=tags,
    )
