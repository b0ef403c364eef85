"""Why each replica option of a model is or is not offered to the optimiser (`llmops plan --explain`).

For every GPU shape of the fleet (GPU type x GPUs per node, with its pools and zones) and every
allowed precision x power-of-two tensor-parallel degree up to the node size: offered, or the first
rule that drops it: the GPU lacks the precision, the degree does not divide the heads, it does
not fit in memory, it meets the SLO at no rate, it is below the model's replica floor (capacity
or latency headroom), or another offered option dominates it (no more GPUs, at least the capacity).
"""

from __future__ import annotations

from dataclasses import dataclass

from .fleet import resolve_pools
from .formulation import prune_dominated
from .options import OptionVerdict, capacity_floor_rps, explain_options
from .spec import Fleet, InputError, ModelsFile


@dataclass(frozen=True)
class ShapeExplanation:
    gpu_type: str
    gpus_per_node: int
    pools: tuple[str, ...]
    zones: tuple[str, ...]
    verdicts: tuple[OptionVerdict, ...]


def explain_model(fleet: Fleet, models: ModelsFile, name: str) -> list[ShapeExplanation]:
    """The verdicts for model `name` on every GPU shape of the fleet; InputError if no such model."""
    deployment = next((d for d in models.models if d.name == name), None)
    if deployment is None:
        accepted = ", ".join(d.name for d in models.models)
        raise InputError([f"--explain: unknown model {name!r}; accepted: {accepted}"])
    shapes: dict[tuple[str, int], list] = {}
    for pool in resolve_pools(fleet):
        if pool.node_names:
            shapes.setdefault((pool.gpu_type.name, pool.gpus_per_node), []).append(pool)
    explained = []
    for (gpu_name, gpus), pools in shapes.items():
        verdicts = explain_options(deployment, pools[0].gpu_type, gpus)
        offered = [v.option for v in verdicts if v.offered]
        kept = {(o.precision, o.tensor_parallel) for o in prune_dominated(offered, deployment.precisions)}
        final = []
        for verdict in verdicts:
            if verdict.offered and (verdict.precision, verdict.tensor_parallel) not in kept:
                option = verdict.option
                better = next(
                    o for o in offered
                    if (o.precision, o.tensor_parallel) in kept
                    and o.tensor_parallel <= option.tensor_parallel
                    and o.capacity_requests_per_second >= option.capacity_requests_per_second
                )
                verdict = OptionVerdict(
                    verdict.precision,
                    verdict.tensor_parallel,
                    False,
                    f"dominated by {better.precision} TP{better.tensor_parallel} "
                    f"({better.capacity_requests_per_second:.3g} req/s on no more GPUs)",
                    option,
                )
            final.append(verdict)
        explained.append(
            ShapeExplanation(
                gpu_type=gpu_name,
                gpus_per_node=gpus,
                pools=tuple(p.name for p in pools),
                zones=tuple(sorted({p.zone for p in pools})),
                verdicts=tuple(final),
            )
        )
    return explained


def render_explanation(fleet: Fleet, models: ModelsFile, name: str) -> str:
    shapes = explain_model(fleet, models, name)
    deployment = next(d for d in models.models if d.name == name)
    lines = [
        f"Replica options of {name}: demand {deployment.traffic.requests_per_second:g} req/s, SLO TTFT "
        f"{deployment.slo.ttft_ms:g} ms / TPOT {deployment.slo.tpot_ms:g} ms, capacity floor "
        f"{capacity_floor_rps(deployment):.3g} req/s, latency headroom {deployment.replica_floor.latency_headroom:.0%}"
    ]
    for shape in shapes:
        lines.append("")
        lines.append(
            f"{shape.gpu_type} x{shape.gpus_per_node} (pools {', '.join(shape.pools)}; zones {', '.join(shape.zones)})"
        )
        for verdict in shape.verdicts:
            state = "offered" if verdict.offered else "dropped"
            lines.append(f"  {verdict.precision:<5} TP{verdict.tensor_parallel:<2} {state:<8} {verdict.reason}")
    return "\n".join(lines)
