"""Replica options: every (precision, tensor-parallel degree) of a model on a GPU type that fits
in memory and meets the model's SLO, with its sustainable request rate.

The solver asks for these for every model x pool, so results are cached on the inputs that
matter (the architecture, the allowed precisions, the context, the traffic shape and the SLO;
not the request rate, which only decides how many replicas are needed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from llmops.catalog import (
    GpuType,
    ModelArchitecture,
    UnknownCatalogKey,
    architecture,
    architecture_from_hf_config,
)

from .performance import ReplicaPerformance, sustainable_operating_point
from .sizing import DEFAULT_MEMORY_UTILIZATION, MemoryPlan, memory_plan, valid_tensor_parallel_degrees
from .spec import ModelDeployment, ModelsFile


@dataclass(frozen=True)
class ReplicaOption:
    """One way to run one replica of a model on GPUs of one type, at its sustainable rate."""

    precision: str
    tensor_parallel: int
    weights_gib: float
    memory_per_gpu_gib: float
    max_concurrent_sequences: int
    capacity_requests_per_second: float
    ttft_ms: float
    tpot_ms: float
    unloaded_ttft_ms: float = 0.0
    """TTFT of a lone request (no queue, batch of one): what the latency headroom is measured on."""
    unloaded_tpot_ms: float = 0.0


def _hf_config_stamp(path: str | None) -> float:
    # A config.json edited between two calls in one process must not hit a stale cache entry.
    if path is None:
        return 0.0
    try:
        return os.stat(path).st_mtime
    except OSError:
        return -1.0


@lru_cache(maxsize=1024)
def _resolve(architecture_key: str | None, hf_config: str | None, _stamp: float) -> ModelArchitecture:
    if architecture_key is not None:
        return architecture(architecture_key)
    return architecture_from_hf_config(hf_config or "")


def resolve_architecture(deployment: ModelDeployment) -> ModelArchitecture:
    """The deployment's architecture, from the catalog key or the config.json path.

    Raises UnknownCatalogKey (a KeyError listing the accepted keys) or ValueError (unreadable or
    unusable config.json, message names the path).
    """
    return _resolve(deployment.architecture, deployment.hf_config, _hf_config_stamp(deployment.hf_config))


def architecture_problems(models: ModelsFile) -> list[str]:
    """One 'models[i].field: problem' line per deployment whose architecture cannot be resolved."""
    problems = []
    for index, deployment in enumerate(models.models):
        field = "architecture" if deployment.architecture is not None else "hf_config"
        try:
            resolve_architecture(deployment)
        except (UnknownCatalogKey, ValueError) as exc:
            problems.append(f"models[{index}].{field}: {exc}")
    return problems


def _supported_precisions(deployment: ModelDeployment, gpu: GpuType) -> list[str]:
    return [precision for precision in deployment.precisions if gpu.supports(precision)]


def _fits_positions(arch: ModelArchitecture, deployment: ModelDeployment) -> bool:
    return not arch.max_position_embeddings or deployment.max_context_tokens <= arch.max_position_embeddings


@lru_cache(maxsize=65536)
def _options(
    arch: ModelArchitecture,
    precisions: tuple[str, ...],
    max_context_tokens: int,
    input_tokens: int,
    output_tokens: int,
    ttft_ms: float,
    tpot_ms: float,
    gpu: GpuType,
    gpus_per_node: int,
) -> tuple[ReplicaOption, ...]:
    if max_context_tokens > arch.max_position_embeddings > 0:
        return ()
    options = []
    for precision in precisions:
        if not gpu.supports(precision):
            continue
        for tensor_parallel in valid_tensor_parallel_degrees(arch, gpus_per_node):
            option = _option(arch, precision, tensor_parallel, max_context_tokens, input_tokens, output_tokens,
                             ttft_ms, tpot_ms, gpu)
            if option is not None:
                options.append(option)
    return tuple(options)


@lru_cache(maxsize=65536)
def _option(
    arch: ModelArchitecture,
    precision: str,
    tensor_parallel: int,
    max_context_tokens: int,
    input_tokens: int,
    output_tokens: int,
    ttft_ms: float,
    tpot_ms: float,
    gpu: GpuType,
) -> ReplicaOption | None:
    """One (precision, degree) on one GPU type, or None when it does not fit or cannot meet the SLO.
    Cached on its own, so checking one running replica does not derive every option of its pool."""
    request_tokens = input_tokens + output_tokens
    plan = memory_plan(arch, gpu, precision, tensor_parallel, DEFAULT_MEMORY_UTILIZATION)
    if not plan.fits_context(max_context_tokens):
        return None
    max_sequences = plan.max_concurrent_sequences(request_tokens)
    if max_sequences < 1:
        return None
    perf = ReplicaPerformance.for_plan(arch, gpu, plan)
    point = sustainable_operating_point(perf, max_sequences, input_tokens, output_tokens, ttft_ms, tpot_ms)
    if point is None or point.capacity_requests_per_second <= 0:
        return None
    return ReplicaOption(
        precision=precision,
        tensor_parallel=tensor_parallel,
        weights_gib=round(plan.weights_gib, 3),
        memory_per_gpu_gib=round(plan.memory_per_gpu_gib(point.concurrency, request_tokens, max_context_tokens), 3),
        max_concurrent_sequences=max_sequences,
        capacity_requests_per_second=point.capacity_requests_per_second,
        ttft_ms=point.ttft_s * 1e3,
        tpot_ms=point.tpot_s * 1e3,
        unloaded_ttft_ms=perf.unloaded_ttft_s(1, input_tokens, output_tokens) * 1e3,
        unloaded_tpot_ms=perf.tpot_s(1, input_tokens, output_tokens) * 1e3,
    )


def offered_option(
    deployment: ModelDeployment, gpu: GpuType, gpus_per_node: int, precision: str, tensor_parallel: int
) -> ReplicaOption | None:
    """The option `useful_options` would offer for this (precision, degree), or None: the same rules,
    derived for one configuration only (what replanning needs for each running replica)."""
    arch = resolve_architecture(deployment)
    if precision not in deployment.precisions or not gpu.supports(precision):
        return None
    if deployment.max_context_tokens > arch.max_position_embeddings > 0:
        return None
    if tensor_parallel not in valid_tensor_parallel_degrees(arch, gpus_per_node):
        return None
    option = _option(arch, precision, tensor_parallel, deployment.max_context_tokens, deployment.traffic.input_tokens,
                     deployment.traffic.output_tokens, deployment.slo.ttft_ms, deployment.slo.tpot_ms, gpu)
    if option is None or floor_reason(deployment, option) is not None:
        return None
    return option


def replica_options(deployment: ModelDeployment, gpu: GpuType, gpus_per_node: int) -> list[ReplicaOption]:
    """Every (allowed precision the GPU supports) x (valid tensor-parallel degree within one node)
    that fits in memory at the deployment's max context and meets its TTFT and TPOT SLO with a
    positive sustainable rate; in the order of deployment.precisions, then ascending degree.
    Empty when there is none (explain_no_option says why).
    """
    arch = resolve_architecture(deployment)
    return list(
        _options(
            arch,
            tuple(dict.fromkeys(deployment.precisions)),
            deployment.max_context_tokens,
            deployment.traffic.input_tokens,
            deployment.traffic.output_tokens,
            deployment.slo.ttft_ms,
            deployment.slo.tpot_ms,
            gpu,
            gpus_per_node,
        )
    )


def _fitting_plans(arch: ModelArchitecture, deployment: ModelDeployment, gpu: GpuType,
                   degrees: list[int]) -> list[MemoryPlan]:
    request_tokens = deployment.traffic.input_tokens + deployment.traffic.output_tokens
    plans = []
    for precision in _supported_precisions(deployment, gpu):
        for tensor_parallel in degrees:
            plan = memory_plan(arch, gpu, precision, tensor_parallel, DEFAULT_MEMORY_UTILIZATION)
            if plan.fits_context(deployment.max_context_tokens) and plan.max_concurrent_sequences(request_tokens) >= 1:
                plans.append(plan)
    return plans


def explain_no_option(deployment: ModelDeployment, gpu: GpuType, gpus_per_node: int) -> str:
    """One sentence saying why replica_options(deployment, gpu, gpus_per_node) is empty."""
    try:
        arch = resolve_architecture(deployment)
    except (UnknownCatalogKey, ValueError) as exc:
        return str(exc)
    name = arch.key
    if not _fits_positions(arch, deployment):
        return (
            f"max_context_tokens {deployment.max_context_tokens} exceeds {name}'s "
            f"max_position_embeddings {arch.max_position_embeddings}"
        )
    precisions = _supported_precisions(deployment, gpu)
    if not precisions:
        return f"{gpu.name} supports none of the allowed precisions {', '.join(deployment.precisions)}"
    degrees = valid_tensor_parallel_degrees(arch, gpus_per_node)
    if not degrees:
        return (
            f"no power-of-two tensor-parallel degree up to {gpus_per_node} divides {name}'s "
            f"{arch.num_attention_heads} attention heads and {arch.num_kv_heads} KV heads"
        )
    plans = _fitting_plans(arch, deployment, gpu, degrees)
    if not plans:
        widest = max(degrees)
        context = deployment.max_context_tokens
        needs = {
            precision: memory_plan(arch, gpu, precision, widest).required_gib_for_context(context) * widest
            for precision in precisions
        }
        precision = min(needs, key=needs.get)
        usable = DEFAULT_MEMORY_UTILIZATION * gpu.memory_gib * widest
        return (
            f"{name} needs {needs[precision]:.1f} GiB at {precision} (weights, runtime overhead and one "
            f"{context}-token sequence) but {widest} x {gpu.name} hold {usable:.1f} GiB at utilisation "
            f"{DEFAULT_MEMORY_UTILIZATION:.2f}"
        )
    traffic, slo = deployment.traffic, deployment.slo
    timings = []
    for plan in plans:
        perf = ReplicaPerformance.for_plan(arch, gpu, plan)
        tpot = perf.tpot_s(1, traffic.input_tokens, traffic.output_tokens) * 1e3
        ttft = perf.unloaded_ttft_s(1, traffic.input_tokens, traffic.output_tokens) * 1e3
        timings.append((tpot, ttft, plan))
    best_tpot, _, tpot_plan = min(timings, key=lambda item: item[0])
    if best_tpot > slo.tpot_ms:
        return (
            f"best TPOT of {name} on {gpu.name} is {best_tpot:.0f} ms ({tpot_plan.precision}, "
            f"tensor parallel {tpot_plan.tensor_parallel}, one request) and exceeds the SLO of {slo.tpot_ms:g} ms"
        )
    _, best_ttft, ttft_plan = min(timings, key=lambda item: item[1])
    if best_ttft > slo.ttft_ms:
        return (
            f"best TTFT of {name} on {gpu.name} for {traffic.input_tokens}-token prompts is {best_ttft:.0f} ms "
            f"({ttft_plan.precision}, tensor parallel {ttft_plan.tensor_parallel}, no queueing) and exceeds "
            f"the SLO of {slo.ttft_ms:g} ms"
        )
    return (
        f"no configuration of {name} on {gpu.name} meets TTFT {slo.ttft_ms:g} ms and TPOT {slo.tpot_ms:g} ms "
        "together at a positive request rate"
    )


# -- useful replicas -------------------------------------------------------------------------


def capacity_floor_rps(deployment: ModelDeployment) -> float:
    """Least capacity at the SLO a replica option needs to be offered: the larger of the share of
    demand and the absolute floor, but never more than the demand itself (a model whose whole
    demand is 0.01 requests/s may still run on a replica that serves 0.02)."""
    floor = deployment.replica_floor
    demand = deployment.traffic.requests_per_second
    return min(demand, max(floor.requests_per_second, floor.share_of_demand * demand))


def floor_reason(deployment: ModelDeployment, option: ReplicaOption) -> str | None:
    """Why a replica option that fits and meets the SLO is still not offered; None when it is useful."""
    floor = capacity_floor_rps(deployment)
    if option.capacity_requests_per_second < floor:
        return (
            f"capacity {option.capacity_requests_per_second:.3g} req/s at the SLO is below the floor "
            f"{floor:.3g} req/s (replica_floor: {deployment.replica_floor.share_of_demand:g} of demand "
            f"{deployment.traffic.requests_per_second:g}, at least {deployment.replica_floor.requests_per_second:g})"
        )
    headroom = deployment.replica_floor.latency_headroom
    for label, value, slo in (
        ("TTFT", option.unloaded_ttft_ms, deployment.slo.ttft_ms),
        ("TPOT", option.unloaded_tpot_ms, deployment.slo.tpot_ms),
    ):
        if value > (1 - headroom) * slo:
            return (
                f"unloaded {label} {value:.1f} ms leaves less than {headroom:.0%} headroom under the SLO "
                f"{slo:g} ms (limit {(1 - headroom) * slo:.1f} ms)"
            )
    return None


def useful_options(deployment: ModelDeployment, gpu: GpuType, gpus_per_node: int) -> list[ReplicaOption]:
    """replica_options without the options the model's replica_floor rules out: what the planner offers."""
    return [o for o in replica_options(deployment, gpu, gpus_per_node) if floor_reason(deployment, o) is None]


@dataclass(frozen=True)
class OptionVerdict:
    """One (precision, tensor-parallel degree) on one GPU shape and why it is or is not offered."""

    precision: str
    tensor_parallel: int
    offered: bool
    reason: str
    option: ReplicaOption | None = None


def explain_options(deployment: ModelDeployment, gpu: GpuType, gpus_per_node: int) -> list[OptionVerdict]:
    """Every allowed precision x power-of-two degree up to the node size, each with its verdict.

    Dominance (another offered option with no more GPUs and at least the capacity) is decided by
    the formulation and marked by the caller; this says whether the option exists at all.
    """
    arch = resolve_architecture(deployment)
    found = {(o.precision, o.tensor_parallel): o for o in replica_options(deployment, gpu, gpus_per_node)}
    degrees = set(valid_tensor_parallel_degrees(arch, gpus_per_node))
    verdicts = []
    request_tokens = deployment.traffic.input_tokens + deployment.traffic.output_tokens
    for precision in dict.fromkeys(deployment.precisions):
        size = 1
        while size <= gpus_per_node:
            key = (precision, size)
            option = found.get(key)
            if option is not None:
                reason = floor_reason(deployment, option)
                verdicts.append(
                    OptionVerdict(
                        precision,
                        size,
                        reason is None,
                        reason
                        or f"{option.capacity_requests_per_second:.3g} req/s at TTFT {option.ttft_ms:.0f} ms, "
                        f"TPOT {option.tpot_ms:.1f} ms",
                        option,
                    )
                )
            elif not gpu.supports(precision):
                verdicts.append(OptionVerdict(precision, size, False, f"{gpu.name} does not support {precision}"))
            elif size not in degrees:
                verdicts.append(
                    OptionVerdict(precision, size, False, "degree does not divide the attention and KV heads")
                )
            elif not _fits_positions(arch, deployment):
                verdicts.append(OptionVerdict(precision, size, False, "max_context_tokens exceeds the architecture's"))
            else:
                plan = memory_plan(arch, gpu, precision, size, DEFAULT_MEMORY_UTILIZATION)
                if not plan.fits_context(deployment.max_context_tokens) or plan.max_concurrent_sequences(
                    request_tokens
                ) < 1:
                    why = "does not fit in memory with one max-context sequence"
                else:
                    why = "meets the TTFT and TPOT SLO at no positive request rate"
                verdicts.append(OptionVerdict(precision, size, False, why))
            size *= 2
    return verdicts
