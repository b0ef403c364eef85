"""From a placement plan to node-group sizes: a pure function, no Pulumi resources.

The plan names the nodes it uses (`<pool>-<i>` for cloud pools). A pool's node group gets:
- desired = the number of the pool's nodes that carry at least one replica (0 when none do),
- min = desired, so no autoscaler can take the plan's capacity away,
- max = the fleet's `max_nodes` for the pool, the ceiling the planner was allowed to use,
unless the stack's `poolOverrides` says otherwise for that pool.

Pools of existing machines (`nodes:` in fleet.yml) are not cloud capacity and get no node group;
cloud pools with `max_nodes: 0` get none either (EKS requires a node group maximum of at least 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from llmops.planning.fleet import resolve_pools
from llmops.planning.result import Plan
from llmops.planning.spec import Fleet, Pool

from .config import ConfigError, PoolOverride

# Bytes one weight takes on disk at each precision the planner may choose.
BYTES_PER_WEIGHT = {"bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
# Room for the OS, container images (vLLM images are ~10 GiB each) and logs.
ROOT_VOLUME_BASE_GIB = 60
# Safety margin on the cached weights: tokenizer files, partial downloads during updates.
MODEL_CACHE_HEADROOM = 1.2


@dataclass(frozen=True)
class PoolSize:
    """What one GPU node group should look like, derived from the plan and the fleet."""

    name: str
    instance_type: str
    gpu_type: str
    zone: str
    desired: int
    min: int
    max: int
    capacity_type: str
    node_names: tuple[str, ...]
    root_volume_gib: int

    def as_output(self) -> dict:
        """The per-pool stack output the inventory plugin reads."""
        return {
            "instance_type": self.instance_type,
            "gpu_type": self.gpu_type,
            "zone": self.zone,
            "capacity_type": self.capacity_type,
            "desired_size": self.desired,
            "min_size": self.min,
            "max_size": self.max,
            "node_names": list(self.node_names),
            "root_volume_gib": self.root_volume_gib,
        }


def model_cache_gib(pool_name: str, plan: Plan) -> float:
    """Disk for every distinct (model, precision) the plan places on the pool: any node may host any of them."""
    node_pool = {node.name: node.pool for node in plan.nodes}
    params_billion = {model.name: model.params_billion for model in plan.models}
    placed = {
        (replica.model, replica.precision)
        for replica in plan.replicas
        if node_pool.get(replica.node) == pool_name
    }
    total_bytes = sum(params_billion[model] * 1e9 * BYTES_PER_WEIGHT[precision] for model, precision in placed)
    return total_bytes / 2**30


def root_volume_gib(pool_name: str, plan: Plan, minimum_gib: int) -> int:
    needed = ROOT_VOLUME_BASE_GIB + MODEL_CACHE_HEADROOM * model_cache_gib(pool_name, plan)
    return max(minimum_gib, math.ceil(needed))


def _planned_node_names(pool: Pool, plan: Plan) -> list[str]:
    used = {replica.node for replica in plan.replicas}
    order = {name: index for index, name in enumerate(pool.node_names())}
    names = {node.name for node in plan.nodes if node.pool == pool.name and node.name in used}
    return sorted(names, key=lambda name: order.get(name, len(order)))


def size_pools(
    fleet: Fleet, plan: Plan, overrides: Mapping[str, PoolOverride], min_root_volume_gib: int = 200
) -> list[PoolSize]:
    """Node-group sizes for every cloud pool of the fleet, in fleet order."""
    problems: list[str] = []
    cloud_pools = [pool for pool in fleet.pools if pool.max_nodes is not None]
    known = {pool.name for pool in cloud_pools}
    for name in sorted(set(overrides) - known):
        problems.append(
            f"llmops:poolOverrides.{name}: no cloud pool of that name in the fleet; "
            f"accepted: {', '.join(sorted(known)) or '(none)'}"
        )

    # The catalog fills a pool's GPU type from its instance type, as it does for the planner.
    gpu_type_of = {resolved.name: resolved.gpu_type.name for resolved in resolve_pools(fleet)}
    sizes: list[PoolSize] = []
    for pool in cloud_pools:
        override = overrides.get(pool.name, PoolOverride())
        if pool.instance_type is None:
            problems.append(f"fleet pool {pool.name}: a cloud pool needs instance_type to become a node group")
            continue
        planned = _planned_node_names(pool, plan)
        if override.min is not None:
            minimum = override.min
        else:
            minimum = len(planned) if override.desired is None else override.desired
        # A floor above the plan (keep a pool warm) raises the node count; an explicit desired is taken as is.
        desired = max(len(planned), minimum) if override.desired is None else override.desired
        maximum = (pool.max_nodes or 0) if override.max is None else override.max
        if maximum == 0 and override.desired is None and override.min is None:
            continue
        if not minimum <= desired <= maximum:
            problems.append(
                f"llmops:poolOverrides.{pool.name}: need min <= desired <= max, "
                f"got min={minimum} desired={desired} max={maximum}"
            )
            continue
        # An override may ask for more nodes than the plan uses: name the extra ones the way the planner would.
        spare = [name for name in pool.node_names() if name not in planned]
        node_names = (planned + spare)[:desired] if desired > len(planned) else planned[:desired]
        if len(node_names) < desired:
            node_names += [f"{pool.name}-{index}" for index in range(len(node_names), desired)]
        sizes.append(
            PoolSize(
                name=pool.name,
                instance_type=pool.instance_type,
                gpu_type=gpu_type_of[pool.name],
                zone=pool.zone,
                desired=desired,
                min=minimum,
                max=maximum,
                capacity_type=override.capacity_type,
                node_names=tuple(node_names),
                root_volume_gib=root_volume_gib(pool.name, plan, min_root_volume_gib),
            )
        )
    if problems:
        raise ConfigError(problems)
    return sizes
