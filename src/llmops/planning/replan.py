"""Replanning with minimal moves: `replan(current, fleet, models, failed_nodes, failed_zones) -> Replan`.

After a node or zone is lost, capacity is added or removed, or demand changes, the running plan
is repaired rather than recomputed. When the only change is lost nodes (`--failed-node`; a lost
zone is replanned in full), the incremental repair of `repair.py` runs first: every replica off
the lost nodes stays where it is, and only the models that lost replicas are re-solved on the
remaining capacity, in a fraction of the time of what follows. When it does not apply (the
models changed, a replica is no longer offered) or its cheapest repair is above the cost cap
(say, a lost rack of cheap owned nodes), the full replan runs:

1. Every replica of the current plan that is still valid stays where it is unless stopping it is
   cheaper within the tolerance: valid means its model is still in the models file, its node is
   still in the fleet and not lost, and its configuration (precision, tensor-parallel degree) is
   still an offered option of the model on that node's GPU type (fits, meets the SLO, clears the
   replica floor).
2. Reference cost: the optimiser on the remaining fleet (`solver.solve_with_report`, a share of the
   time limit), started from the kept replicas. Its cost C is the stated reference, "fresh plan".
3. Moves, lexicographically: minimise starts + stops subject to cost <= (1 + cost_tolerance) x C,
   on the aggregate model of the formulation plus, per configuration with running replicas,
   `keep_c <= running_c` and `keep_c <= replicas_c`; moves = sum(replicas_c - keep_c) (starts)
   + sum(running_c - keep_c) (stops). The stage-2 hint is the stage-1 plan, so the result is never
   worse than it in moves, and never above the cost cap.
4. Kept replicas keep their node and GPU indices; started ones are packed best fit around them,
   onto open nodes first, then onto nodes of the pool group that are neither open nor lost.

The moves list is what the serving rollout applies in order: every `start` first, then every
`stop` (replicas on lost nodes are `lost`: already gone). Starting before stopping means capacity
only grows until the stops, and the stops leave the new plan, which meets demand and
survivability; so no model drops below its survivable capacity during the move beyond what the
loss itself took.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .assignment import Assignment, OpenNode, Placement, _choose_node, assign_replicas
from .fleet import resolve_pools
from .formulation import (
    COST_UNITS_PER_DOLLAR,
    PlacementProblem,
    build_aggregate_model,
    build_problem,
    node_cost_term,
)
from .options import useful_options
from .repair import Repair, repair
from .result import Plan
from .solver import (
    Solution,
    SolverReport,
    StageResult,
    _build_plan,
    _lower_bound,
    run_stage,
    solve_with_report,
)
from .spec import Fleet, InputError, ModelsFile, Spread

DEFAULT_COST_TOLERANCE = 0.02
# Share of the time limit the reference solve may use; the move-minimising stage gets the rest.
REFERENCE_SHARE = 0.5
# Share of the time limit the incremental repair may use before the full replan takes over: most
# of it, as the repair is the path that meets the time limit (the full one builds the whole problem).
REPAIR_SHARE = 0.8


@dataclass(frozen=True)
class Move:
    action: str
    """start | stop | keep | lost"""
    model: str
    node: str
    gpu_indices: tuple[int, ...]
    precision: str
    tensor_parallel: int

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "model": self.model,
            "node": self.node,
            "gpu_indices": list(self.gpu_indices),
            "precision": self.precision,
            "tensor_parallel": self.tensor_parallel,
        }


@dataclass
class Replan:
    plan: Plan
    moves: list[Move]
    reference_cost_per_hour: float
    """The cap's base (the cap is (1 + tolerance) x this): for the incremental repair the running
    plan's cost before the loss; for the full replan the optimiser's own plan on the remaining fleet."""
    cost_tolerance: float
    fleet: Fleet
    """The fleet without the lost nodes: what the new plan is valid for (validate against it)."""
    report: SolverReport = field(default_factory=SolverReport)

    def count(self, action: str) -> int:
        return sum(1 for move in self.moves if move.action == action)

    def summary(self) -> dict:
        return {
            "cost_per_hour": self.plan.cost_per_hour,
            "reference_cost_per_hour": self.reference_cost_per_hour,
            "cost_tolerance": self.cost_tolerance,
            "kept": self.count("keep"),
            "started": self.count("start"),
            "stopped": self.count("stop"),
            "lost": self.count("lost"),
        }

    def to_json_dict(self) -> dict:
        ordered = [m for m in self.moves if m.action == "start"] + [m for m in self.moves if m.action != "start"]
        return {"summary": self.summary(), "moves": [m.to_dict() for m in ordered], "plan": self.plan.to_json_dict()}


def check_failures(fleet: Fleet, current: Plan, failed_nodes: Iterable[str], failed_zones: Iterable[str]) -> None:
    """InputError naming every failed node or zone the fleet lacks, and a current plan from another fleet."""
    pools = resolve_pools(fleet)
    by_name = {pool.name: pool for pool in pools}
    nodes = {node for pool in pools for node in pool.node_names}
    zones = {pool.zone for pool in pools}
    problems = [
        f"--failed-node: {name!r} is not a node of the fleet (nodes are the pools' machines and <pool>-<i>)"
        for name in failed_nodes
        if name not in nodes
    ]
    problems += [
        f"--failed-zone: {zone!r} is not a zone of the fleet; accepted: {', '.join(sorted(zones))}"
        for zone in failed_zones
        if zone not in zones
    ]
    matched = 0
    for node in current.nodes:
        pool = by_name.get(node.pool)
        if pool is None:
            continue
        if pool.gpu_type.name != node.gpu_type or pool.gpus_per_node != node.gpus or pool.zone != node.zone:
            problems.append(
                f"--current: node {node.name} has {node.gpus} x {node.gpu_type} in {node.zone} but pool {pool.name} "
                f"has {pool.gpus_per_node} x {pool.gpu_type.name} in {pool.zone}: the plan is for another fleet"
            )
        elif node.name in pool.node_names:
            matched += 1
    if current.nodes and not matched:
        problems.append("--current: none of the plan's nodes is in the fleet: the plan is for another fleet")
    if problems:
        raise InputError(problems)


def replan(
    current: Plan,
    fleet: Fleet,
    models: ModelsFile,
    failed_nodes: Sequence[str] = (),
    failed_zones: Sequence[str] = (),
    cost_tolerance: float = DEFAULT_COST_TOLERANCE,
    time_limit_s: float = 30.0,
) -> Replan:
    started = time.monotonic()
    deadline = started + time_limit_s
    check_failures(fleet, current, failed_nodes, failed_zones)
    pools = resolve_pools(fleet)
    lost_nodes = set(failed_nodes) | {n for pool in pools if pool.zone in set(failed_zones) for n in pool.node_names}
    if all(set(pool.node_names) <= lost_nodes for pool in pools):
        raise InputError(["--failed-node/--failed-zone: every node of the fleet is lost; there is nothing to replan onto"])
    if failed_zones:
        # Repairing around the replicas left after a zone rarely stays within the cap (the zone's
        # capacity comes back elsewhere, often at another price) and trying costs seconds.
        attempt = "a lost zone is replanned in full"
    else:
        attempt = repair(current, pools, models, lost_nodes, cost_tolerance, started + REPAIR_SHARE * time_limit_s,
                         started)
    if isinstance(attempt, Repair):
        report = SolverReport(stages=attempt.stages)
        report.objective_terms["node_cost_per_hour"] = attempt.plan.cost_per_hour
        return Replan(
            plan=attempt.plan,
            moves=_moves(current, attempt.plan, set(attempt.kept), lost_nodes),
            reference_cost_per_hour=attempt.reference_cost_per_hour,
            cost_tolerance=cost_tolerance,
            fleet=_reduced_fleet(fleet, lost_nodes),
            report=report,
        )
    declined = StageResult("incremental repair", "declined", None, None, time.monotonic() - started, attempt)
    pool_of_node = {n: pool for pool in pools for n in pool.node_names}
    deployments = {d.name: d for d in models.models}

    # Which running replicas are still valid where they are.
    valid: list[int] = []
    keep_options: set[tuple[str, str, int, str, int]] = set()
    for index, replica in enumerate(current.replicas):
        pool = pool_of_node.get(replica.node)
        deployment = deployments.get(replica.model)
        if pool is None or deployment is None or replica.node in lost_nodes:
            continue
        if pool.gpu_type.name != replica.gpu_type or max(replica.gpu_indices, default=-1) >= pool.gpus_per_node:
            continue
        offered = {(o.precision, o.tensor_parallel) for o in useful_options(deployment, pool.gpu_type, pool.gpus_per_node)}
        if (replica.precision, replica.tensor_parallel) not in offered:
            continue
        valid.append(index)
        keep_options.add(
            (replica.model, pool.gpu_type.name, pool.gpus_per_node, replica.precision, replica.tensor_parallel)
        )

    problem = build_problem(fleet, models, frozenset(lost_nodes), frozenset(keep_options))
    model_of = {d.name: m for m, d in enumerate(problem.deployments)}
    group_of_pool = {pool.name: g for g, group in enumerate(problem.groups) for pool in group.pools}
    candidate_of: dict[tuple[int, int, str, int], int] = {}
    for c, cand in enumerate(problem.candidates):
        candidate_of[(cand.model, cand.group, cand.option.precision, cand.option.tensor_parallel)] = c
    running: dict[int, list[int]] = defaultdict(list)  # candidate -> indices into current.replicas
    for index in valid:
        replica = current.replicas[index]
        key = (model_of[replica.model], group_of_pool[pool_of_node[replica.node].name], replica.precision,
               replica.tensor_parallel)
        if key in candidate_of:
            running[candidate_of[key]].append(index)

    # Stage 1: the reference, the optimiser on the remaining fleet.
    reduced = _reduced_fleet(fleet, lost_nodes)
    # The reference keeps its share of the limit even after a declined repair: a short reference
    # solve makes a dearer reference plan and more moves (measured on a lost zone at 2,000 nodes).
    reference_plan, report = solve_with_report(reduced, models, time_limit_s=time_limit_s * REFERENCE_SHARE)
    report.stages.insert(0, declined)
    reference_cost = reference_plan.cost_per_hour
    placeable = [m for m, members in problem.candidates_of_model.items() if members]
    served = [model_of[e.name] for e in reference_plan.models if e.served]
    reference_counts = _counts_of(problem, reference_plan, group_of_pool)

    # Stage 2: fewest moves within the cost cap.
    # No per-model floor cuts here: they only tighten the relaxation, and 300 of them cost more
    # than the replan's whole time budget at 2,000 nodes.
    floors: dict[int, int] = {}
    model = build_aggregate_model(problem, served, must_serve=served, cost_floors=floors)
    for m in placeable:
        if m not in served:
            for c in problem.candidates_of_model[m]:
                model.replicas[c].SetUb(0)
    solver = model.solver
    keep = {c: solver.IntVar(0, len(indices), f"keep[{c}]") for c, indices in running.items()}
    for c, var in keep.items():
        solver.Add(var <= model.replicas[c])
    starts = solver.Sum([model.replicas[c] for c in range(len(problem.candidates))]) - solver.Sum(list(keep.values()))
    stops = sum(len(v) for v in running.values()) - solver.Sum(list(keep.values()))
    cap_units = math.floor((1 + cost_tolerance) * reference_cost * COST_UNITS_PER_DOLLAR)
    solver.Add(node_cost_term(model) <= cap_units)
    solver.Minimize(starts + stops)
    solution = None
    if reference_counts is not None:
        model.complete_hint(
            reference_counts.node_counts,
            reference_counts.replica_counts,
            [(var, min(len(running[c]), reference_counts.replica_counts[c])) for c, var in keep.items()],
        )
    stage = run_stage(solver, "fewest moves within the cost cap", max(0.5, deadline - time.monotonic()),
                      cost_objective=False)
    report.stages.append(stage)
    if stage.status in ("optimal", "feasible"):
        solution = Solution(
            node_counts=[round(v.solution_value()) for v in model.nodes],
            replica_counts=[round(v.solution_value()) for v in model.replicas],
            served=served,
            optimal=False,
            mip_bound_per_hour=None,
        )
    if solution is None:
        if reference_counts is None:
            raise RuntimeError("replanning found no plan within the time limit")
        solution = reference_counts

    placements, _ = _assign(problem, solution, running, current, pool_of_node, group_of_pool, lost_nodes)
    # The plan lists nodes in placement order: sort, so replanning a plan with nothing to move
    # writes the same document (placement_plan's idempotence).
    placements.sort(key=lambda p: (group_of_pool[p.pool.name], p.node, p.gpu_indices))
    assignment = Assignment(placements=placements, extra_nodes=0, unpacked=[])
    lower = min(_lower_bound(problem, solution, placeable, floors, [], report), reference_plan.lower_bound_per_hour)
    plan = _build_plan(problem, solution, assignment, [], lower, started)
    if plan.cost_per_hour > (1 + cost_tolerance) * reference_cost + 1e-6:
        # The cap holds for the aggregate node counts; replicas kept where they run can fragment a
        # pool so that the packing opens more nodes. Then the cheaper of packing the same counts
        # afresh and the reference plan itself is taken, and the moves say what that costs.
        fresh = assign_replicas(problem, solution.node_counts, solution.replica_counts)
        repacked = None
        if not fresh.unpacked:
            repacked = _build_plan(problem, solution, fresh, [], lower, started)
        plan = min(
            [candidate for candidate in (repacked, reference_plan) if candidate is not None],
            key=lambda candidate: candidate.cost_per_hour,
        )
    if plan.status == "optimal":
        plan.status = "feasible"  # moves, not cost, were minimised
    moves = _moves(current, plan, set(valid), lost_nodes)
    return Replan(plan=plan, moves=moves, reference_cost_per_hour=reference_cost, cost_tolerance=cost_tolerance,
                  fleet=reduced, report=report)


def _reduced_fleet(fleet: Fleet, lost: set[str]) -> Fleet:
    """The fleet without the lost nodes: a cloud pool losing node <pool>-<i> becomes a list of its
    remaining node names, so the names of every other node stay as they are."""
    pools = []
    for spec, resolved in zip(fleet.pools, resolve_pools(fleet), strict=True):
        names = [n for n in resolved.node_names if n not in lost]
        if len(names) == len(resolved.node_names):
            pools.append(spec)
            continue
        data = spec.model_dump(exclude_none=True)
        data.pop("max_nodes", None)
        data.update(
            nodes=names or [],
            gpu_type=resolved.gpu_type.name,
            gpus_per_node=resolved.gpus_per_node,
            node_hourly_cost=resolved.node_hourly_cost,
        )
        data.pop("instance_type", None)
        if names:
            pools.append(type(spec).model_validate(data))
    return type(fleet).model_validate({"pools": [p.model_dump(exclude_none=True) for p in pools]})


def _counts_of(problem: PlacementProblem, plan: Plan, group_of_pool: dict[str, int]) -> Solution | None:
    """A plan's replicas and nodes as aggregate counts; None if a replica has no candidate."""
    model_of = {d.name: m for m, d in enumerate(problem.deployments)}
    pool_of = {node.name: node.pool for node in plan.nodes}
    counts = [0] * len(problem.candidates)
    nodes: dict[int, set[str]] = defaultdict(set)
    index = {
        (cand.model, cand.group, cand.option.precision, cand.option.tensor_parallel): c
        for c, cand in enumerate(problem.candidates)
    }
    for replica in plan.replicas:
        g = group_of_pool.get(pool_of[replica.node])
        c = index.get((model_of[replica.model], g, replica.precision, replica.tensor_parallel))
        if g is None or c is None:
            return None
        counts[c] += 1
        nodes[g].add(replica.node)
    served = [model_of[e.name] for e in plan.models if e.served]
    return Solution([len(nodes.get(g, ())) for g in range(len(problem.groups))], counts, served, False, None)


def _assign(problem, solution, running, current, pool_of_node, group_of_pool, lost_nodes):
    """Kept replicas where they are (on the nodes holding the most kept replicas first), the rest best fit."""
    placements: list[Placement] = []
    kept_indices: set[int] = set()
    opened: dict[int, dict[str, OpenNode]] = defaultdict(dict)
    kept_per_node: dict[str, int] = defaultdict(int)
    for indices in running.values():
        for i in indices:
            kept_per_node[current.replicas[i].node] += 1
    for c, indices in running.items():
        keep = min(len(indices), solution.replica_counts[c])
        # Keep the replicas on the busiest nodes, so stops empty whole nodes where they can.
        chosen = sorted(indices, key=lambda i: (-kept_per_node[current.replicas[i].node], current.replicas[i].node))[:keep]
        for i in chosen:
            replica = current.replicas[i]
            pool = pool_of_node[replica.node]
            g = group_of_pool[pool.name]
            node = opened[g].get(replica.node)
            if node is None:
                node = OpenNode(pool, replica.node, pool.gpus_per_node, [True] * pool.gpus_per_node)
                opened[g][replica.node] = node
            for gpu in replica.gpu_indices:
                node.free[gpu] = False
            node.models.add(problem.candidates[c].model)
            placements.append(Placement(c, pool, replica.node, tuple(replica.gpu_indices)))
            kept_indices.add(i)
    placed = defaultdict(int)
    for p in placements:
        placed[p.candidate] += 1
    index_of = {(current.replicas[i].node, tuple(current.replicas[i].gpu_indices)): i for i in kept_indices}
    fresh = None
    for g, group in enumerate(problem.groups):
        todo = []
        for c in problem.candidates_of_group[g]:
            todo += [c] * max(0, solution.replica_counts[c] - placed[c])
        todo.sort(key=lambda c: (-problem.candidates[c].tensor_parallel, c))
        nodes = list(opened[g].values())
        slots = [(pool, name) for pool, name in group.node_slots() if name not in opened[g] and name not in lost_nodes]
        added = []
        for c in todo:
            cand = problem.candidates[c]
            spread = problem.deployments[cand.model].spread == Spread.node
            node, start = _choose_node(nodes, cand.tensor_parallel, cand.model if spread else None, balance=False)
            if node is None and slots:
                pool, name = slots.pop(0)
                node = OpenNode(pool, name, group.gpus_per_node, [True] * group.gpus_per_node)
                nodes.append(node)
                start = 0
            if node is None:
                break
            for gpu in range(start, start + cand.tensor_parallel):
                node.free[gpu] = False
            node.models.add(cand.model)
            added.append(Placement(c, node.pool, node.name, tuple(range(start, start + cand.tensor_parallel))))
        if len(added) == len(todo):
            placements += added
            continue
        # The kept replicas leave no room in the right shape (fragmented GPUs, spread=node): pack
        # this group afresh, so its kept replicas move too.
        if fresh is None:
            fresh = assign_replicas(problem, solution.node_counts, solution.replica_counts)
            if fresh.unpacked:
                raise RuntimeError(f"replanning found no packing for pool group {group.name}")
        in_group = {c for c in problem.candidates_of_group[g]}
        dropped = [p for p in placements if p.candidate in in_group]
        placements = [p for p in placements if p.candidate not in in_group]
        kept_indices -= {index_of[(p.node, p.gpu_indices)] for p in dropped}
        placements += [p for p in fresh.placements if p.candidate in in_group]
    return placements, kept_indices


def _moves(current: Plan, plan: Plan, valid: set[int], lost_nodes: set[str]) -> list[Move]:
    """keep: a replica of the new plan exactly where a still-valid running one is (same model,
    node, GPUs and configuration); start: every other one; stop or lost: running ones not kept."""
    unmatched: dict[tuple, list[int]] = {}
    for i in sorted(valid):
        r = current.replicas[i]
        unmatched.setdefault((r.model, r.node, tuple(r.gpu_indices), r.precision, r.tensor_parallel), []).append(i)
    kept: set[int] = set()
    moves = []
    for replica in plan.replicas:
        key = (replica.model, replica.node, tuple(replica.gpu_indices), replica.precision, replica.tensor_parallel)
        action = "start"
        if unmatched.get(key):
            kept.add(unmatched[key].pop())
            action = "keep"
        moves.append(Move(action, replica.model, replica.node, tuple(replica.gpu_indices), replica.precision,
                          replica.tensor_parallel))
    for i, replica in enumerate(current.replicas):
        if i in kept:
            continue
        action = "lost" if replica.node in lost_nodes else "stop"
        moves.append(Move(action, replica.model, replica.node, tuple(replica.gpu_indices), replica.precision,
                          replica.tensor_parallel))
    return moves
