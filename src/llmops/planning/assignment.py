"""Turn aggregate counts (nodes per pool group, replicas per candidate) into concrete nodes and GPUs.

Per pool group, replicas are packed largest tensor-parallel degree first, best fit (the open node
with the fewest free GPUs that still has a free aligned block), each TP group on a contiguous,
aligned block of GPU indices inside one node (aligned blocks are what PCIe-paired GPUs need and
cost nothing on NVLink/NVSwitch). spread=node replicas skip nodes that already hold their model.

The optimiser's per-TP GPU limits make this packing always succeed without spread=node. With it,
an unlucky mix can defeat the heuristics; then a small CP-SAT model searches for an exact
replica-to-node assignment within the optimiser's node count. Only if that fails too is one more
node opened where the pool has one (`extra_nodes`); what still does not fit is in `unpacked`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

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


# Packing heuristics tried in turn; the first that needs no extra node wins. Largest-TP-first
# best fit keeps nodes whole for big replicas; spreading first or balancing nodes rescues mixes
# where spread=node replicas would otherwise find every node already holding their model or full.
STRATEGIES: tuple[tuple[str, bool, bool], ...] = (
    # (name, spread=node replicas first regardless of size, balance: most free GPUs first)
    ("largest first, best fit", False, False),
    ("largest first, balanced", False, True),
    ("spread=node first, best fit", True, False),
    ("spread=node first, balanced", True, True),
)


EXACT_PACKING_TIME_LIMIT_S = 5.0


def assign_replicas(problem: PlacementProblem, node_counts: Sequence[int], replica_counts: Sequence[int]) -> Assignment:
    """Pack every group; a group the heuristics cannot pack in its node count gets the exact packer."""
    assignment = Assignment(placements=[], extra_nodes=0, unpacked=[])
    for group_index in range(len(problem.groups)):
        packed = assign_group(problem, group_index, node_counts[group_index], replica_counts)
        assignment.placements += packed.placements
        assignment.extra_nodes += packed.extra_nodes
        assignment.unpacked += packed.unpacked
    return assignment


class PackingCost:
    """What packing adds to a plan's cost: the nodes opened beyond the optimiser's counts.

    The aggregate model counts GPUs per pool group and, for spread=node, replicas per node count;
    some spread=node mixes still do not pack into the counted nodes, and the packing then opens
    one more. A search comparing plans by their counted nodes alone can keep such a plan over a
    cheaper one that packs. Memoised per group content: a search changes few groups per step.
    A group the heuristics cannot pack gets the exact packer for `exact_time_limit_s` only, so a
    packable mix it misses counts as dearer than it is, never cheaper.
    """

    def __init__(self, problem: PlacementProblem, exact_time_limit_s: float = 1.0):
        self.problem = problem
        self.exact_time_limit_s = exact_time_limit_s
        self._extra: dict[tuple, float] = {}

    def extra_cost(self, node_counts: Sequence[int], replica_counts: Sequence[int]) -> float:
        """Hourly cost of the extra nodes; infinite if some replica finds no node at all."""
        total = 0.0
        for group_index, group in enumerate(self.problem.groups):
            if not needs_packing_check(self.problem, group_index, replica_counts):
                continue
            members = self.problem.candidates_of_group[group_index]
            key = (group_index, node_counts[group_index], tuple(replica_counts[c] for c in members))
            if key not in self._extra:
                packed = assign_group(
                    self.problem, group_index, node_counts[group_index], replica_counts, self.exact_time_limit_s
                )
                self._extra[key] = math.inf if packed.unpacked else packed.extra_nodes * group.node_hourly_cost
            total += self._extra[key]
        return total


def needs_packing_check(problem: PlacementProblem, group_index: int, replica_counts: Sequence[int]) -> bool:
    """Whether the group's packing can need more nodes than the optimiser counted (only spread=node can)."""
    return any(
        replica_counts[c] and problem.deployments[problem.candidates[c].model].spread == Spread.node
        for c in problem.candidates_of_group[group_index]
    )


def assign_group(
    problem: PlacementProblem,
    group_index: int,
    node_count: int,
    replica_counts: Sequence[int],
    exact_time_limit_s: float = EXACT_PACKING_TIME_LIMIT_S,
) -> Assignment:
    """One group's packing: the heuristics in turn, then the exact packer if none fits the node count."""
    best: Assignment | None = None
    for _, spread_first, balance in STRATEGIES:
        attempt = _pack_group(problem, group_index, node_count, replica_counts, spread_first, balance)
        if best is None or (len(attempt.unpacked), attempt.extra_nodes) < (len(best.unpacked), best.extra_nodes):
            best = attempt
        if not attempt.extra_nodes and not attempt.unpacked:
            return attempt
    exact = _pack_group_exactly(problem, group_index, node_count, replica_counts, exact_time_limit_s)
    return exact if exact is not None else best


def _pack_group(
    problem: PlacementProblem,
    group_index: int,
    node_count: int,
    replica_counts: Sequence[int],
    spread_first: bool,
    balance: bool,
) -> Assignment:
    placements: list[Placement] = []
    unpacked: list[int] = []
    extra_nodes = 0
    group = problem.groups[group_index]
    slots = group.node_slots()
    opened = [
        OpenNode(pool, name, group.gpus_per_node, [True] * group.gpus_per_node)
        for pool, name in slots[:node_count]
    ]
    for candidate in _replicas_in_packing_order(problem, group_index, replica_counts, spread_first):
        cand = problem.candidates[candidate]
        size = cand.tensor_parallel
        spread_node = problem.deployments[cand.model].spread == Spread.node
        node, start = _choose_node(opened, size, cand.model if spread_node else None, balance)
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


def _pack_group_exactly(
    problem: PlacementProblem, group_index: int, node_count: int, replica_counts: Sequence[int],
    time_limit_s: float = EXACT_PACKING_TIME_LIMIT_S,
) -> Assignment | None:
    """Replica-to-node assignment by CP-SAT within the group's node count; None if none is found in time.

    Per node, the per-TP limits of `formulation.add_gpus_per_group` hold, so the node's replicas
    fit on aligned GPU blocks when placed largest first; spread=node models take one slot per node.
    """
    group = problem.groups[group_index]
    replicas = _replicas_in_packing_order(problem, group_index, replica_counts, spread_first=False)
    if node_count == 0 or not replicas:
        return None
    cp = cp_model.CpModel()
    on = [[cp.new_bool_var(f"r{i}n{n}") for n in range(node_count)] for i in range(len(replicas))]
    for row in on:
        cp.add_exactly_one(row)
    sizes = sorted({problem.candidates[c].tensor_parallel for c in replicas})
    for n in range(node_count):
        for size in sizes:
            cp.add(
                sum(problem.candidates[c].tensor_parallel * on[i][n] for i, c in enumerate(replicas)
                    if problem.candidates[c].tensor_parallel >= size)
                <= size * group.groups_per_node(size)
            )
    by_model: dict[int, list[int]] = {}
    for i, c in enumerate(replicas):
        if problem.deployments[problem.candidates[c].model].spread == Spread.node:
            by_model.setdefault(problem.candidates[c].model, []).append(i)
    for members in by_model.values():
        for n in range(node_count):
            cp.add_at_most_one(on[i][n] for i in members)
    # Identical replicas are interchangeable: order their nodes to cut symmetric search.
    for i in range(1, len(replicas)):
        if replicas[i] == replicas[i - 1]:
            cp.add(sum(n * on[i][n] for n in range(node_count)) >= sum(n * on[i - 1][n] for n in range(node_count)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    if solver.solve(cp) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    slots = group.node_slots()
    opened = [OpenNode(pool, name, group.gpus_per_node, [True] * group.gpus_per_node) for pool, name in slots[:node_count]]
    placements = []
    for i, c in enumerate(replicas):  # largest TP first, so aligned blocks are always free
        node = opened[next(n for n in range(node_count) if solver.value(on[i][n]))]
        size = problem.candidates[c].tensor_parallel
        start = node.free_block(size)
        for gpu in range(start, start + size):
            node.free[gpu] = False
        placements.append(Placement(c, node.pool, node.name, tuple(range(start, start + size))))
    return Assignment(placements=placements, extra_nodes=0, unpacked=[])


def _replicas_in_packing_order(
    problem: PlacementProblem, group_index: int, replica_counts: Sequence[int], spread_first: bool
) -> list[int]:
    """One entry per replica: largest TP first; within a size, spread=node models first (most constrained)."""
    entries = []
    for candidate in problem.candidates_of_group[group_index]:
        count = replica_counts[candidate]
        if count <= 0:
            continue
        cand = problem.candidates[candidate]
        spread_node = problem.deployments[cand.model].spread == Spread.node
        size_key = (not spread_node, -cand.tensor_parallel) if spread_first else (-cand.tensor_parallel, not spread_node)
        key = (*size_key, -count, problem.deployments[cand.model].name, candidate)
        entries.append((key, candidate, count))
    entries.sort()
    return [candidate for _, candidate, count in entries for _ in range(count)]


def _choose_node(
    opened: Sequence[OpenNode], size: int, spread_model: int | None, balance: bool
) -> tuple[OpenNode | None, int]:
    best: tuple[int, int] | None = None
    chosen: tuple[OpenNode | None, int] = (None, 0)
    for position, node in enumerate(opened):
        if spread_model is not None and spread_model in node.models:
            continue
        start = node.free_block(size)
        if start is None:
            continue
        free = node.free_gpus()
        rank = (-free if balance else free, position)
        if best is None or rank < best:
            best, chosen = rank, (node, start)
    return chosen
