"""The serving spec: what every replica of a plan runs, where, and how traffic reaches it.

One pure function, `serving_spec`, turns plan.json, the models file and the inventory's host
names into per-replica runtime specs. Every renderer (systemd units, the gateway's upstreams and
tenant keys, Prometheus scrape jobs, Kubernetes objects) reads this and nothing else, so no
renderer re-derives a decision the planner made:

* artifact and version come from the models file; the node cache path is fixed by convention
  (`<model_cache_root>/<artifact>/<version>`, where model_fetch delivers it);
* the engine arguments come from the plan's precision and tensor-parallel degree and from the
  planner's own sizing (`llmops.planning.sizing`): `--max-num-seqs` is the number of full-length
  requests the sized KV cache holds, `--gpu-memory-utilization` the fraction the sizing assumed;
* the traffic weight is the plan's `traffic_weight`, or capacity-proportional for plans that
  predate it;
* the device switch (`cuda` in production, `cpu` in the lab) is the only difference between
  the two renderings: it changes the dtype/quantization arguments and the environment.

Bad input raises ServingSpecError listing every problem, each naming the field and the value.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmops.catalog import UnknownCatalogKey, gpu_type
from llmops.planning.options import resolve_architecture
from llmops.planning.result import Plan
from llmops.planning.sizing import DEFAULT_MEMORY_UTILIZATION, kv_bytes_per_element, memory_plan
from llmops.planning.spec import InputError, ModelsFile, format_validation_error, load_models, parse_models

DEVICES = ("cuda", "cpu")
DEFAULT_BASE_PORT = 8000
DEFAULT_MODEL_CACHE_ROOT = "/var/lib/llmops/models"
DEFAULT_STATE_ROOT = "/var/lib/llmops/serving"
DEFAULT_BIND_HOST = "0.0.0.0"
# Ports the collection's own services take on a host: node_exporter, Prometheus, Alertmanager, Grafana.
DEFAULT_RESERVED_PORTS = (3000, 9090, 9093, 9100)
# vLLM's CPU backend sizes its KV cache from this (GiB) instead of a GPU memory fraction.
DEFAULT_CPU_KVCACHE_GIB = 1
VLLM_ENTRYPOINT = "vllm.entrypoints.openai.api_server"
WEIGHT_TOLERANCE = 1e-6
_LABEL_UNSAFE = re.compile(r"[^a-z0-9-]+")


class ServingSpecError(ValueError):
    """Invalid serving input; `problems` holds one 'field: message' line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Artifact:
    name: str
    version: str
    cache_path: str = field(metadata={"doc": "Where model_fetch puts it on the node; vLLM's --model."})


@dataclass(frozen=True)
class ReplicaSpec:
    """Everything one replica needs on its node, and how the gateway and Prometheus reach it."""

    id: str
    model: str
    tenant: str | None
    artifact: Artifact
    node: str
    address: str
    port: int
    pool: str
    zone: str
    gpu_type: str
    gpu_indices: list[int]
    precision: str
    tensor_parallel: int
    traffic_weight: float
    capacity_requests_per_second: float
    max_model_len: int
    max_num_seqs: int
    gpu_memory_utilization: float | None
    state_dir: str
    labels: dict[str, str]
    engine_args: list[str]
    environment: dict[str, str]
    node_gpus: int = field(default=0, metadata={"doc": "GPUs on the replica's node (the plan's node.gpus)."})

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def command(self, python: str) -> list[str]:
        """The server's argv with the virtualenv's python (the `vllm` script does not work on CPU builds)."""
        return [python, "-m", VLLM_ENTRYPOINT, *self.engine_args]


@dataclass(frozen=True)
class RouteTarget:
    replica: str
    address: str
    port: int
    weight: float


@dataclass(frozen=True)
class ScalingRange:
    """The plan's autoscaling range for one model (llmops.planning.result.Autoscaling)."""

    min_replicas: int
    max_replicas: int
    target_requests_per_second: float
    target_requests_in_flight: float


@dataclass(frozen=True)
class ModelRoute:
    """What the gateway needs for one model: its owner and its replicas with traffic weights."""

    model: str
    tenant: str | None
    served: bool
    targets: list[RouteTarget]
    # For the Kubernetes renderer: scheduling priority, the demand the plan serves and its autoscaling range
    # (None for plans that predate it).
    priority: int = 0
    demand_requests_per_second: float = 0.0
    autoscaling: ScalingRange | None = None


@dataclass(frozen=True)
class TenantAccess:
    tenant: str
    models: list[str]
    gpu_quota: int | None = None


@dataclass(frozen=True)
class ServingSpec:
    device: str
    replicas: list[ReplicaSpec]
    models: dict[str, ModelRoute]
    tenants: dict[str, TenantAccess]

    def replicas_on(self, node: str) -> list[ReplicaSpec]:
        return [replica for replica in self.replicas if replica.node == node]

    @property
    def nodes(self) -> list[str]:
        return sorted({replica.node for replica in self.replicas})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for replica, source in zip(data["replicas"], self.replicas, strict=True):
            replica["base_url"] = source.base_url
        data["nodes"] = {node: [r.id for r in self.replicas_on(node)] for node in self.nodes}
        return data


def dns_label(text: str) -> str:
    """`text` as a DNS label: lowercase, [a-z0-9-], at most 63 characters (hash-suffixed if cut)."""
    label = _LABEL_UNSAFE.sub("-", text.lower()).strip("-") or "x"
    if len(label) > 63:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        label = f"{label[:54].rstrip('-')}-{digest}"
    return label


def replica_id(model: str, node: str, gpu_indices: Iterable[int]) -> str:
    """Stable across replans that keep the placement: model, node and first GPU of the replica."""
    return dns_label(f"{model}-{node}-{min(gpu_indices)}")


def _precision_args(precision: str, device: str, kv_fp8: bool) -> list[str]:
    if device == "cpu":
        # The CPU build runs bf16 only; quantized kernels and fp8 KV caches are GPU features.
        return ["--dtype", "bfloat16"]
    if precision == "bf16":
        return ["--dtype", "bfloat16"]
    if precision == "fp8":
        # Online fp8 quantization of a bf16 artifact; the sizing assumed an fp8 KV cache where the GPU has fp8.
        args = ["--dtype", "bfloat16", "--quantization", "fp8"]
        return [*args, "--kv-cache-dtype", "fp8"] if kv_fp8 else args
    # int8 (W8A8) and int4 (GPTQ/AWQ) artifacts carry their quantization_config; vLLM picks the kernels.
    return ["--dtype", "auto"]


def _load_models(models: ModelsFile | Mapping[str, Any] | str | Path, hf_config_dir: str | None) -> ModelsFile:
    if isinstance(models, ModelsFile):
        return models
    if isinstance(models, str | Path):
        return load_models(models)
    data = dict(models)
    if hf_config_dir and isinstance(data.get("models"), list):
        data["models"] = [
            dict(entry, hf_config=str(Path(hf_config_dir) / entry["hf_config"]))
            if isinstance(entry, Mapping) and isinstance(entry.get("hf_config"), str)
            else entry
            for entry in data["models"]
        ]
    return parse_models(data)


def _load_plan(plan: Plan | Mapping[str, Any]) -> Plan:
    if isinstance(plan, Plan):
        return plan
    try:
        return Plan.model_validate(plan)
    except ValidationError as exc:
        raise ServingSpecError([f"plan: {line}" for line in format_validation_error(exc, Plan)]) from exc


def _weights(replicas: list[tuple[int, Any]]) -> dict[int, float]:
    """Plan weights where every replica of the model has one, else capacity-proportional; sum 1."""
    given = [r.traffic_weight for _, r in replicas]
    if all(w is not None for w in given) and sum(given) > 0:
        raw = given
    else:
        raw = [r.capacity_requests_per_second for _, r in replicas]
        if sum(raw) <= 0:
            raw = [1.0] * len(replicas)
    total = math.fsum(raw)
    return {index: value / total for (index, _), value in zip(replicas, raw, strict=True)}


def _scaling_range(entry: Any) -> ScalingRange | None:
    scaling = getattr(entry, "autoscaling", None)
    if scaling is None:
        return None
    return ScalingRange(
        min_replicas=scaling.min_replicas,
        max_replicas=scaling.max_replicas,
        target_requests_per_second=scaling.target_requests_per_second,
        target_requests_in_flight=scaling.target_requests_in_flight,
    )


def serving_spec(
    plan: Plan | Mapping[str, Any],
    models: ModelsFile | Mapping[str, Any] | str | Path,
    inventory_hosts: Mapping[str, str] | Iterable[str] | None = None,
    device: str = "cuda",
    base_port: int = DEFAULT_BASE_PORT,
    *,
    port_overrides: Mapping[str, int] | None = None,
    reserved_ports: Iterable[int] = DEFAULT_RESERVED_PORTS,
    model_cache_root: str = DEFAULT_MODEL_CACHE_ROOT,
    state_root: str = DEFAULT_STATE_ROOT,
    bind_host: str = DEFAULT_BIND_HOST,
    cpu_kvcache_gib: int = DEFAULT_CPU_KVCACHE_GIB,
    hf_config_dir: str | None = None,
) -> ServingSpec:
    """Per-replica runtime specs for every replica of `plan`.

    inventory_hosts: the hosts replicas may run on, as names (reached by name) or a mapping
    name -> address; None skips the check (rendering without an inventory).
    Ports: `base_port + first GPU index` on each node (stable while the placement is), unless
    `port_overrides` (replica id -> port) says otherwise; a port taken twice on a node or listed
    in `reserved_ports` is an error.
    Raises ServingSpecError with every problem found.
    """
    problems: list[str] = []
    if device not in DEVICES:
        raise ServingSpecError([f"device: {device!r} is not accepted; accepted: {', '.join(DEVICES)}"])
    if not 1 <= base_port <= 65535:
        raise ServingSpecError([f"base_port: {base_port} is not a TCP port (1-65535)"])
    try:
        models_file = _load_models(models, hf_config_dir)
    except InputError as exc:
        raise ServingSpecError(exc.problems) from exc
    the_plan = _load_plan(plan)

    hosts: dict[str, str] | None
    if inventory_hosts is None:
        hosts = None
    elif isinstance(inventory_hosts, Mapping):
        hosts = {str(name): str(address or name) for name, address in inventory_hosts.items()}
    else:
        hosts = {str(name): str(name) for name in inventory_hosts}

    deployments = {m.name: (i, m) for i, m in enumerate(models_file.models)}
    tenant_names = [t.name for t in models_file.tenants]
    nodes = {n.name: n for n in the_plan.nodes}
    overrides = dict(port_overrides or {})
    reserved = set(reserved_ports)

    by_model: dict[str, list[tuple[int, Any]]] = {}
    for index, replica in enumerate(the_plan.replicas):
        by_model.setdefault(replica.model, []).append((index, replica))

    # Model-level problems first: each reported once, not once per replica.
    for model, placed in by_model.items():
        if model not in deployments:
            problems.append(
                f"plan.replicas[{placed[0][0]}].model: {model!r} is not in the models file; "
                f"accepted: {', '.join(deployments) or '(none)'}"
            )
            continue
        position, deployment = deployments[model]
        if deployment.artifact is None:
            problems.append(
                f"models[{position}].artifact: model {model!r} is placed by the plan but names no artifact "
                "(name, version) in the object store"
            )
        if deployment.tenant is not None and deployment.tenant not in tenant_names:
            problems.append(
                f"models[{position}].tenant: unknown tenant {deployment.tenant!r}; "
                f"accepted: {', '.join(tenant_names) or '(none declared under tenants)'}"
            )

    weights: dict[int, float] = {}
    for placed in by_model.values():
        bad = [(i, r.traffic_weight) for i, r in placed if r.traffic_weight is not None and r.traffic_weight < 0]
        problems += [f"plan.replicas[{i}].traffic_weight: {w} must be >= 0" for i, w in bad]
        weights.update(_weights(placed))

    replicas: list[ReplicaSpec] = []
    ports_on_node: dict[tuple[str, int], str] = {}
    seen_ids: dict[str, int] = {}
    for index, replica in enumerate(the_plan.replicas):
        where = f"plan.replicas[{index}]"
        node = nodes.get(replica.node)
        if node is None:
            problems.append(f"{where}.node: {replica.node!r} is not among the plan's nodes")
            continue
        if hosts is not None and replica.node not in hosts:
            problems.append(
                f"{where}.node: {replica.node!r} is not in the inventory; "
                f"accepted: {', '.join(sorted(hosts)) or '(no hosts)'}"
            )
            continue
        if not replica.gpu_indices or len(replica.gpu_indices) != replica.tensor_parallel:
            problems.append(
                f"{where}.gpu_indices: {replica.gpu_indices} does not hold tensor_parallel="
                f"{replica.tensor_parallel} GPUs"
            )
            continue
        if replica.model not in deployments:
            continue
        position, deployment = deployments[replica.model]
        if deployment.artifact is None:
            continue

        rid = replica_id(replica.model, replica.node, replica.gpu_indices)
        if rid in seen_ids:
            problems.append(f"{where}: replica id {rid!r} repeats plan.replicas[{seen_ids[rid]}] (same node and GPU)")
            continue
        seen_ids[rid] = index

        port = overrides.pop(rid, base_port + min(replica.gpu_indices))
        if not 1 <= port <= 65535:
            problems.append(f"{where}: port {port} of replica {rid!r} is not a TCP port (1-65535)")
            continue
        if port in reserved:
            problems.append(
                f"{where}: port clash on node {replica.node!r}: replica {rid!r} would take port {port}, "
                f"reserved for another service ({', '.join(map(str, sorted(reserved)))})"
            )
            continue
        holder = ports_on_node.get((replica.node, port))
        if holder is not None:
            problems.append(
                f"{where}: port clash on node {replica.node!r}: replicas {holder!r} and {rid!r} both take port {port}"
            )
            continue
        ports_on_node[(replica.node, port)] = rid

        try:
            arch = resolve_architecture(deployment)
            gpu = gpu_type(replica.gpu_type)
        except (UnknownCatalogKey, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        sizing = memory_plan(arch, gpu, replica.precision, replica.tensor_parallel, DEFAULT_MEMORY_UTILIZATION)
        request_tokens = deployment.traffic.input_tokens + deployment.traffic.output_tokens
        max_num_seqs = sizing.max_concurrent_sequences(request_tokens)
        if max_num_seqs < 1:
            problems.append(
                f"{where}: {replica.model} at {replica.precision} TP{replica.tensor_parallel} on "
                f"{replica.gpu_type} holds no {request_tokens}-token request in its KV cache"
            )
            continue

        artifact = Artifact(
            name=deployment.artifact.name,
            version=deployment.artifact.version,
            cache_path=f"{model_cache_root.rstrip('/')}/{deployment.artifact.name}/{deployment.artifact.version}",
        )
        state_dir = f"{state_root.rstrip('/')}/{rid}"
        memory_fraction = None if device == "cpu" else DEFAULT_MEMORY_UTILIZATION
        args = [
            "--model", artifact.cache_path,
            "--served-model-name", replica.model,
            "--host", bind_host,
            "--port", str(port),
            "--tensor-parallel-size", str(replica.tensor_parallel),
            *_precision_args(replica.precision, device, kv_bytes_per_element(replica.precision, gpu) == 1),
            "--max-model-len", str(deployment.max_context_tokens),
            "--max-num-seqs", str(max_num_seqs),
        ]  # fmt: skip
        environment = {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "VLLM_CACHE_ROOT": f"{state_dir}/cache",
            "HOME": state_dir,
        }
        if device == "cpu":
            # Compiling graphs takes minutes on the CPU build and its cache failed to reload.
            args.append("--enforce-eager")
            environment["VLLM_CPU_KVCACHE_SPACE"] = str(cpu_kvcache_gib)
        else:
            args += ["--gpu-memory-utilization", f"{memory_fraction:.2f}"]
            environment["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in replica.gpu_indices)

        tenant = deployment.tenant
        replicas.append(
            ReplicaSpec(
                id=rid,
                model=replica.model,
                tenant=tenant,
                artifact=artifact,
                node=replica.node,
                address=hosts[replica.node] if hosts is not None else replica.node,
                port=port,
                pool=node.pool,
                zone=node.zone,
                gpu_type=replica.gpu_type,
                gpu_indices=list(replica.gpu_indices),
                precision=replica.precision,
                tensor_parallel=replica.tensor_parallel,
                traffic_weight=weights[index],
                capacity_requests_per_second=replica.capacity_requests_per_second,
                max_model_len=deployment.max_context_tokens,
                max_num_seqs=max_num_seqs,
                gpu_memory_utilization=memory_fraction,
                state_dir=state_dir,
                labels={
                    "replica": rid,
                    "model": replica.model,
                    "tenant": tenant or "",
                    "gpu_type": replica.gpu_type,
                    "zone": node.zone,
                    "pool": node.pool,
                    "node": replica.node,
                },
                engine_args=args,
                environment=environment,
                node_gpus=node.gpus,
            )
        )

    if overrides:
        problems += [f"port_overrides.{rid}: no replica has this id" for rid in sorted(overrides)]
    if problems:
        raise ServingSpecError(problems)

    planned = {entry.name: entry for entry in the_plan.models}
    routes = {
        deployment.name: ModelRoute(
            model=deployment.name,
            tenant=deployment.tenant,
            served=any(r.model == deployment.name for r in replicas),
            targets=[
                RouteTarget(replica=r.id, address=r.address, port=r.port, weight=r.traffic_weight)
                for r in replicas
                if r.model == deployment.name
            ],
            priority=deployment.priority,
            demand_requests_per_second=deployment.traffic.requests_per_second,
            autoscaling=_scaling_range(planned.get(deployment.name)),
        )
        for deployment in models_file.models
    }
    tenants = {
        tenant.name: TenantAccess(
            tenant=tenant.name,
            models=[m.name for m in models_file.models if m.tenant == tenant.name]
            + [name for name in tenant.shared_models if deployments[name][1].tenant != tenant.name],
            gpu_quota=tenant.gpu_quota,
        )
        for tenant in models_file.tenants
    }
    return ServingSpec(device=device, replicas=replicas, models=routes, tenants=tenants)
