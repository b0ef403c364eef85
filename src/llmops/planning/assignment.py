"""Turn aggregate counts (nodes per pool group, replicas per candidate) into concrete nodes and GPUs.

Per pool group, replicas are packed largest tensor-parallel degree first, best fit (the open node
with the fewest free GPUs that still has a free aligned block), each TP group on a contiguous,
aligned block of GPU indices inside one node (aligned blocks are what PCIe-paired GPUs need and
cost nothing on NVLink/NVSwitch). spread=node replicas skip nodes that already hold their model.

The optimiser's per-TP GPU limits make this packing always succeed without spread=node; with it,
an unlucky mix can need one more node than the aggregate count, which is opened when the pool has
one (`extra_nodes`). What still does not fit is returned in `unpacked`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .fleet import ResolvedPool
from .formulation import PlacementProblem
from .spec import Spread


@dataclass
class OpenNode:
    pool: ResolvedPool
    name: str
    gpus_per_node: int
    free: list[bool]
    models: set[int] = field(default_factory=set)

    def free_block(self, size: int) -> int | None:
        """Start of the first free block of `size` GPUs aligned to `size`, or None."""
        for start in range(0, self.gpus_per_node - size + 1, size):
            if all(self.free[start : start + size]):
                return start
        return None

    def free_gpus(self) -> int:
        return sum(self.free)


@dataclass(frozen=True)
class Placement:
    candidate: int
    pool: ResolvedPool
    node: str
    gpu_indices: tuple[int, ...]


@dataclass
class Assignment:
    placements: list[Placement]
    extra_nodes: int
    """Nodes opened beyond the optimiser's counts to honour spread=node."""
    unpacked: list[int]
    """Candidates (one entry per replica) that found no node."""


def assign_replicas(problem: PlacementProblem, node_counts: Sequence[int], replica_counts: Sequence[int]) -> Assignment:
    placements: list[Placement] = []
    unpacked: list[int] = []
    extra_nodes = 0
    for group_index, group in enumerate(problem.groups):
        slots = group.node_slots()
        opened = [
            OpenNode(pool, name, group.gpus_per_node, [True] * group.gpus_per_node)
            for pool, name in slots[: node_counts[group_index]]
        ]
        for candidate in _replicas_in_packing_order(problem, group_index, replica_counts):
            cand = problem.candidates[candidate]
            size = cand.tensor_parallel
            spread_node = problem.deployments[cand.model].spread == Spread.node
            node, start = _best_fit(opened, size, cand.model if spread_node else None)
            if node is None and len(opened) < len(slots):
                pool, name = slots[len(opened)]
                opened.append(OpenNode(pool, name, group.gpus_per_node, [True] * group.gpus_per_node))
                extra_nodes += 1
                node, start = opened[-1], 0
            if node is None:
                unpacked.append(candidate)
                continue
            for gpu in range(start, start + size):
                node.free[gpu] = False
            node.models.add(cand.model)
            placements.append(Placement(candidate, node.pool, node.name, tuple(range(start, start + size))))
    return Assignment(placements=placements, extra_nodes=extra_nodes, unpacked=unpacked)


def _replicas_in_packing_order(
    problem: PlacementProblem, group_index: int, replica_counts: Sequence[int]
) -> list[int]:
    """One entry per replica: largest TP first; within a size, spread=node models first (most constrained)."""
    entries = []
    for candidate in problem.candidates_of_group[group_index]:
        count = replica_counts[candidate]
        if count <= 0:
            continue
        cand = problem.candidates[candidate]
        spread_node = problem.deployments[cand.model].spread == Spread.node
        key = (-cand.tensor_parallel, not spread_node, -count, problem.deployments[cand.model].name, candidate)
        entries.append((key, candidate, count))
    entries.sort()
    return [candidate for _, candidate, count in entries for _ in range(count)]


def _best_fit(opened: Sequence[OpenNode], size: int, spread_model: int | None) -> tuple[OpenNode | None, int]:
    best: tuple[int, int] | None = None
    chosen: tuple[OpenNode | None, int] = (None, 0)
    for position, node in enumerate(opened):
        if spread_model is not None and spread_model in node.models:
            continue
        start = node.free_block(size)
        if start is None:
            continue
        rank = (node.free_gpus(), position)
        if best is None or rank < best:
            best, chosen = rank, (node, start)
    return chosen
