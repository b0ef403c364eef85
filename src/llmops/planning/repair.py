"""Incremental replanning after lost nodes: keep every still-valid replica, solve only for the rest.

`replan` tries this first. It applies when the only change is lost nodes: the models file still
describes the running plan (same models, same demand, every replica off the lost nodes still an
offered option with the capacity the plan records). Then

1. every replica off the lost nodes stays exactly where it is (never moved, never stopped);
2. the affected models are those that lost a replica, or whose kept replicas no longer meet their
   demand, min_replicas or survivability on their own; every other model is left alone;
3. a small integer model holds only the affected models' candidates: new replicas per candidate,
   new nodes per pool group, the GPUs left free on open nodes (counted per tensor-parallel size in
   aligned blocks, which is what the packer uses), and each model's demand, min_replicas and
   survivability rows with the kept replicas as constants. Stage 1 finds its cheapest repair;
   when that starts more replicas than were lost, stage 2 finds the fewest starts within the cap;
4. the new replicas are packed best fit onto the open nodes, then onto unopened ones.

Reference cost (the cap's base): the running plan's cost before the loss. Fewer nodes never make
the cheapest plan cheaper (every plan on the remaining fleet is a plan on the whole fleet, as long
as no pool is gone entirely), so a fresh plan costs at least the optimum the running plan
approximates: a lower-side reference, as close to the fresh plan as the running plan was to the
optimum (its gap), not a proven bound; the benchmark measures the real distance. Nothing is
stopped, so the repair costs the kept nodes plus the new ones. When the cheapest repair exceeds
(1 + tolerance) x the reference (e.g. a lost rack of cheap owned nodes has to be replaced in the
cloud), the repair is declined and `replan` runs the full optimisation, which may stop and move
replicas to stay cheap.

Cost: the options of the affected models only (plus a cached look-up per running replica to check
it is still offered) instead of every model on every pool group, and two models of a few hundred
variables instead of the full aggregate model and a reference solve.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ortools.linear_solver import pywraplp

from .assignment import OpenNode, _choose_node
from .fleet import ResolvedPool
from .formulation import CAPACITY_UNITS_PER_RPS, COST_UNITS_PER_DOLLAR, PlacementProblem, add_row, group_pools
from .options import offered_option, useful_options
from .result import Plan, PlanNode, PlanReplica
from .solver import StageResult, model_summary, run_stage
from .spec import ModelsFile, Spread
from .traffic import annotate

# Relative tolerance for "the plan records the capacity the option has now".
CAPACITY_REL_TOL = 1e-6


@dataclass
class Repair:
    plan: Plan
    kept: list[int]
    """Indices into the current plan's replicas that stay where they are."""
    reference_cost_per_hour: float
    stages: list[StageResult]


def repair(
    current: Plan,
    pools: Sequence[ResolvedPool],
    models: ModelsFile,
    lost_nodes: set[str],
    cost_tolerance: float,
    deadline: float,
    started: float,
) -> Repair | str:
    """The incremental repair, or a one-line reason why it does not apply (then replan in full)."""
    deployments = {d.name: d for d in models.models}
    order = {d.name: i for i, d in enumerate(models.models)}
    entries = {e.name: e for e in current.models}
    if set(entries) != set(deployments):
        return "the models file lists other models than the running plan"
    for name, entry in entries.items():
        if not entry.served or not math.isclose(
            entry.demand_requests_per_second, deployments[name].traffic.requests_per_second, rel_tol=1e-9
        ):
            return f"model {name} is unserved or its demand changed"
    pool_of_node = {n: pool for pool in pools for n in pool.node_names}
    kept: list[int] = []
    lost_models: set[str] = set()
    for index, replica in enumerate(current.replicas):
        if replica.node in lost_nodes:
            lost_models.add(replica.model)
            continue
        pool = pool_of_node.get(replica.node)
        if pool is None or pool.gpu_type.name != replica.gpu_type or max(replica.gpu_indices, default=-1) >= pool.gpus_per_node:
            return f"replica of {replica.model} on {replica.node} no longer matches the fleet"
        option = offered_option(deployments[replica.model], pool.gpu_type, pool.gpus_per_node, replica.precision,
                                replica.tensor_parallel)
        if option is None or not math.isclose(
            option.capacity_requests_per_second, replica.capacity_requests_per_second, rel_tol=CAPACITY_REL_TOL
        ):
            return f"replica of {replica.model} on {replica.node} is no longer an offered option as planned"
        kept.append(index)

    kept_of: dict[str, list[PlanReplica]] = defaultdict(list)
    for index in kept:
        kept_of[current.replicas[index].model].append(current.replicas[index])
    zone_of_node = {n: pool.zone for n, pool in pool_of_node.items()}
    affected = sorted(
        (name for name in deployments if name in lost_models or not _still_met(deployments[name], kept_of[name], zone_of_node)),
        key=order.get,
    )
    reduced_pools = [replace(pool, node_names=tuple(n for n in pool.node_names if n not in lost_nodes)) for pool in pools]
    groups = group_pools(reduced_pools)
    group_of_pool = {pool.name: g for g, group in enumerate(groups) for pool in group.pools}
    reference = current.cost_per_hour
    kept_cost = current.cost_per_hour - math.fsum(node.hourly_cost for node in current.nodes if node.name in lost_nodes)
    stages: list[StageResult] = []

    # Open nodes as the kept replicas leave them.
    opened: dict[int, dict[str, OpenNode]] = defaultdict(dict)
    for index in kept:
        replica = current.replicas[index]
        pool = pool_of_node[replica.node]
        g = group_of_pool[pool.name]
        node = opened[g].get(replica.node)
        if node is None:
            node = opened[g][replica.node] = OpenNode(pool, replica.node, pool.gpus_per_node, [True] * pool.gpus_per_node)
        for gpu in replica.gpu_indices:
            node.free[gpu] = False
        node.models.add(replica.model)

    new: list[tuple[PlacementProblem, int, OpenNode, int]] = []
    problem: PlacementProblem | None = None
    if affected:
        keep_options = frozenset(
            (r.model, r.gpu_type, pool_of_node[r.node].gpus_per_node, r.precision, r.tensor_parallel)
            for name in affected for r in kept_of[name]
        )
        sub_models = models.model_copy(update={"models": [deployments[name] for name in affected]})
        problem = _problem_for(reduced_pools, sub_models, keep_options)
        allowance = (1 + cost_tolerance) * reference - kept_cost
        lost_replicas = sum(1 for r in current.replicas if r.node in lost_nodes)
        counts = _solve_sub_problem(problem, kept_of, opened, group_of_pool, pool_of_node, allowance, lost_replicas,
                                    deadline, stages)
        if isinstance(counts, str):
            return counts
        packed = _pack(problem, counts, opened, lost_nodes)
        if isinstance(packed, str):
            return packed
        new = [(problem, c, node, start) for c, node, start in packed]

    plan = _build(current, kept, new, problem, deployments, order, groups, group_of_pool, affected, lost_nodes, pools,
                  started)
    if plan.cost_per_hour > (1 + cost_tolerance) * reference + 1e-6:
        return f"the repair costs {plan.cost_per_hour:.2f} $/h, above the cap on {reference:.2f} $/h"
    return Repair(plan=plan, kept=kept, reference_cost_per_hour=reference, stages=stages)


def _problem_for(pools: Sequence[ResolvedPool], models: ModelsFile, keep_options: frozenset) -> PlacementProblem:
    """build_problem's candidates for a few models on already resolved pools (no fleet re-resolution)."""
    from .fleet import resolve_architectures
    from .formulation import Candidate, prune_dominated

    groups = group_pools(pools)
    candidates: list[Candidate] = []
    candidates_of_model: dict[int, list[int]] = {}
    for m, deployment in enumerate(models.models):
        candidates_of_model[m] = []
        by_shape: dict[tuple[str, int], list] = {}
        for g, group in enumerate(groups):
            shape = (group.gpu_type.name, group.gpus_per_node)
            if shape not in by_shape:
                options = useful_options(deployment, group.gpu_type, group.gpus_per_node)
                kept = prune_dominated(options, deployment.precisions)
                kept += [o for o in options if o not in kept
                         and (deployment.name, *shape, o.precision, o.tensor_parallel) in keep_options]
                by_shape[shape] = kept
            for option in by_shape[shape]:
                units = math.floor(option.capacity_requests_per_second * CAPACITY_UNITS_PER_RPS)
                if units > 0:
                    candidates_of_model[m].append(len(candidates))
                    candidates.append(Candidate(m, g, option, units))
    return PlacementProblem(
        deployments=list(models.models),
        architectures=resolve_architectures(models),
        groups=groups,
        candidates=candidates,
        candidates_of_model=candidates_of_model,
    )


def _still_met(deployment, replicas: list[PlanReplica], zone_of_node: dict[str, str]) -> bool:
    """The validator's per-model rules on the kept replicas alone (zone spread judged on the zones
    the replicas use, which is at least as strict)."""
    demand = deployment.traffic.requests_per_second
    total = math.fsum(r.capacity_requests_per_second for r in replicas)
    if total < demand or len(replicas) < deployment.min_replicas or not replicas:
        return False
    need = deployment.survive_fraction * demand
    if deployment.spread == Spread.zone:
        by_zone: dict[str, float] = defaultdict(float)
        for r in replicas:
            by_zone[zone_of_node[r.node]] += r.capacity_requests_per_second
        return len(by_zone) >= 2 and all(total - lost >= need for lost in by_zone.values())
    if deployment.spread == Spread.node:
        nodes = [r.node for r in replicas]
        if len(set(nodes)) != len(nodes):
            return False
        return all(total - r.capacity_requests_per_second >= need for r in replicas)
    return True


def _aligned_free_gpus(node: OpenNode, size: int) -> int:
    """GPUs in the node's free blocks of `size` GPUs aligned to `size` (how the packer places them)."""
    return size * sum(
        1 for start in range(0, node.gpus_per_node - size + 1, size) if all(node.free[start : start + size])
    )


def _solve_sub_problem(problem, kept_of, opened, group_of_pool, pool_of_node, allowance, lost_replicas, deadline,
                       stages) -> list[int] | str:
    """New replicas per candidate: cheapest repair first, then the fewest starts whose new nodes cost
    at most `allowance` $/h (the cap minus what the kept nodes cost)."""
    solver = pywraplp.Solver.CreateSolver("SCIP")
    groups = problem.groups
    used_slots = {g: set(nodes) for g, nodes in opened.items()}
    new_nodes = [solver.IntVar(0, group.max_nodes - len(used_slots.get(g, ())), f"new_nodes[{g}]")
                 for g, group in enumerate(groups)]
    replicas = [solver.IntVar(0, problem.replica_upper_bound(c), f"new[{c}]") for c in range(len(problem.candidates))]
    # GPUs: for every tensor-parallel size t, replicas of size >= t fit in the free aligned t-blocks of
    # open nodes plus t * floor(gpus / t) per new node (sizes are powers of two, so this is exact for
    # largest-first aligned packing, as in formulation.add_gpus_per_group).
    for g, group in enumerate(groups):
        members = problem.candidates_of_group[g]
        for size in sorted({problem.candidates[c].tensor_parallel for c in members}):
            free = sum(_aligned_free_gpus(node, size) for node in opened.get(g, {}).values())
            terms = [(replicas[c], problem.candidates[c].tensor_parallel) for c in members
                     if problem.candidates[c].tensor_parallel >= size]
            add_row(solver, [*terms, (new_nodes[g], -size * group.groups_per_node(size))], upper=free)
    candidate_of = {}
    for c, cand in enumerate(problem.candidates):
        candidate_of[(cand.model, cand.group, cand.option.precision, cand.option.tensor_parallel)] = c
    used_flags = {}
    for m, deployment in enumerate(problem.deployments):
        members = problem.candidates_of_model[m]
        kept_units: list[tuple[int, str]] = []  # (capacity units, zone) per kept replica
        for r in kept_of[deployment.name]:
            pool = pool_of_node[r.node]
            c = candidate_of.get((m, group_of_pool[pool.name], r.precision, r.tensor_parallel))
            if c is None:
                return f"the running configuration of {deployment.name} on {r.node} has no candidate"
            kept_units.append((problem.candidates[c].capacity_units, pool.zone))
        kept_total = sum(u for u, _ in kept_units)
        capacity = [(replicas[c], problem.candidates[c].capacity_units) for c in members]
        add_row(solver, capacity, lower=problem.demand_units(m) - kept_total)
        add_row(solver, [(replicas[c], 1) for c in members], lower=deployment.min_replicas - len(kept_units))
        need = problem.survive_units(m)
        if problem.needs_zone_spread(m):
            for zone in sorted(set(problem.zones_of_model(m)) | {z for _, z in kept_units}):
                outside = [(replicas[c], problem.candidates[c].capacity_units) for c in members
                           if groups[problem.candidates[c].group].zone != zone]
                kept_outside = sum(u for u, z in kept_units if z != zone)
                add_row(solver, outside, lower=need - kept_outside)
        elif deployment.spread == Spread.node:
            add_row(solver, capacity, lower=need - kept_total + max((u for u, _ in kept_units), default=0))
            for c in members:
                flag = used_flags[c] = solver.BoolVar(f"used[{c}]")
                add_row(solver, [(replicas[c], 1), (flag, -problem.replica_upper_bound(c))], upper=0)
                add_row(solver, [*capacity, (flag, -problem.candidates[c].capacity_units)], lower=need - kept_total)
            # At most one replica per node: new ones go to open nodes without the model or to new nodes.
            by_group: dict[int, list[int]] = defaultdict(list)
            for c in members:
                by_group[problem.candidates[c].group].append(c)
            for g, cands in by_group.items():
                smallest = min(problem.candidates[c].tensor_parallel for c in cands)
                room = sum(1 for node in opened.get(g, {}).values()
                           if deployment.name not in node.models and node.free_block(smallest) is not None)
                add_row(solver, [*[(replicas[c], 1) for c in cands], (new_nodes[g], -1)], upper=room)
    cost = solver.Sum([group.cost_units * new_nodes[g] for g, group in enumerate(groups)])
    solver.Minimize(cost)
    first = run_stage(solver, "incremental repair: cheapest", max(0.5, (deadline - time.monotonic()) * 0.7),
                      cost_objective=True)
    stages.append(first)
    if first.status not in ("optimal", "feasible"):
        return f"the affected models do not fit the remaining capacity around the kept replicas ({first.message})"
    cap_units = math.floor(allowance * COST_UNITS_PER_DOLLAR)
    if first.objective is not None and first.objective > cap_units / COST_UNITS_PER_DOLLAR + 1e-9:
        return f"the cheapest repair needs {first.objective:.2f} $/h of new nodes, above the cap's {allowance:.2f}"
    hint = [round(v.solution_value()) for v in new_nodes], [round(v.solution_value()) for v in replicas]
    if sum(hint[1]) <= lost_replicas:
        # No more starts than replicas lost: the second stage could only trade cost for fewer
        # starts, and at 2,000 nodes it costs as much time again; skipped.
        return hint[1]
    flags_hint = [(flag, 1.0 if hint[1][c] else 0.0) for c, flag in used_flags.items()]
    solver.Add(cost <= cap_units)
    solver.Minimize(solver.Sum(replicas))
    solver.SetHint(new_nodes + replicas + [f for f, _ in flags_hint],
                   [float(v) for v in hint[0] + hint[1]] + [v for _, v in flags_hint])
    second = run_stage(solver, "incremental repair: fewest starts within the cap",
                       max(0.2, deadline - time.monotonic()), cost_objective=False)
    stages.append(second)
    if second.status in ("optimal", "feasible"):
        return [round(v.solution_value()) for v in replicas]
    return hint[1]


def _pack(problem: PlacementProblem, counts: Sequence[int], opened, lost_nodes) -> list[tuple[int, OpenNode, int]] | str:
    """New replicas best fit, largest first: open nodes, then unopened nodes of the group in order."""
    placed = []
    for g, group in enumerate(problem.groups):
        todo = [c for c in problem.candidates_of_group[g] for _ in range(counts[c])]
        if not todo:
            continue
        todo.sort(key=lambda c: (-problem.candidates[c].tensor_parallel, c))
        nodes = list(opened[g].values())
        slots = [(pool, name) for pool, name in group.node_slots() if name not in opened[g] and name not in lost_nodes]
        for c in todo:
            cand = problem.candidates[c]
            name = problem.deployments[cand.model].name
            spread = problem.deployments[cand.model].spread == Spread.node
            node, start = _choose_node(nodes, cand.tensor_parallel, name if spread else None, balance=False)
            if node is None and slots:
                pool, slot = slots.pop(0)
                node = opened[g][slot] = OpenNode(pool, slot, group.gpus_per_node, [True] * group.gpus_per_node)
                nodes.append(node)
                start = 0
            if node is None:
                return f"no room left in pool group {group.name} for the new replicas"
            for gpu in range(start, start + cand.tensor_parallel):
                node.free[gpu] = False
            node.models.add(name)
            placed.append((c, node, start))
    return placed


def _build(current, kept, new, problem, deployments, order, groups, group_of_pool, affected, lost_nodes, pools,
           started) -> Plan:
    """The kept replicas as they run plus the new ones; per-model entries recomputed for the affected models."""
    pool_by_name = {pool.name: pool for pool in pools}
    nodes: dict[str, PlanNode] = {}
    plan_nodes = {node.name: node for node in current.nodes}
    replicas: list[PlanReplica] = []
    affected_set = set(affected)
    options_of: dict[str, list] = defaultdict(list)
    option_of_kept = {}
    if problem is not None:
        for cand in problem.candidates:
            group = problem.groups[cand.group]
            option_of_kept[(problem.deployments[cand.model].name, group.gpu_type.name, group.gpus_per_node,
                            cand.option.precision, cand.option.tensor_parallel)] = cand.option
    for index in kept:
        replica = current.replicas[index]
        nodes[replica.node] = plan_nodes[replica.node].model_copy()
        replicas.append(replica.model_copy(deep=True))
        if replica.model in affected_set:
            options_of[replica.model].append(option_of_kept[(replica.model, replica.gpu_type, nodes[replica.node].gpus,
                                                             replica.precision, replica.tensor_parallel)])
    for sub, c, node, start in new:
        cand = sub.candidates[c]
        group = sub.groups[cand.group]
        option = cand.option
        name = sub.deployments[cand.model].name
        options_of[name].append(option)
        if node.name not in nodes:
            pool = pool_by_name[node.pool.name]
            nodes[node.name] = PlanNode(name=node.name, pool=pool.name, zone=pool.zone, gpu_type=group.gpu_type.name,
                                        gpus=group.gpus_per_node, hourly_cost=pool.node_hourly_cost)
        replicas.append(PlanReplica(
            model=name, node=node.name, gpu_indices=list(range(start, start + cand.tensor_parallel)),
            gpu_type=group.gpu_type.name, precision=option.precision, tensor_parallel=option.tensor_parallel,
            memory_per_gpu_gib=option.memory_per_gpu_gib, capacity_requests_per_second=option.capacity_requests_per_second,
        ))
    replicas.sort(key=lambda r: (order[r.model], r.node, r.gpu_indices))
    ordered_nodes = sorted(nodes.values(), key=lambda n: (group_of_pool[n.pool], n.name))
    cost = math.fsum(node.hourly_cost for node in ordered_nodes)
    # The running plan's bound is a bound on the smaller fleet too (fewer nodes only remove plans),
    # as long as no pool is gone entirely (a model could then lose a zone, and spread=zone its force).
    every_pool_left = all(any(n not in lost_nodes for n in pool.node_names) for pool in pools if pool.node_names)
    lower = min(current.lower_bound_per_hour, cost) if every_pool_left else 0.0
    entries = []
    for entry in current.models:
        if entry.name in affected_set:
            deployment = deployments[entry.name]
            entries.append(model_summary(deployment, problem.architectures[entry.name], options_of[entry.name], True))
        else:
            entries.append(entry.model_copy(deep=True))
    entries.sort(key=lambda e: order[e.name])
    plan = Plan(status="feasible", cost_per_hour=cost, lower_bound_per_hour=lower,
                solve_seconds=round(time.monotonic() - started, 3), nodes=ordered_nodes, replicas=replicas,
                models=entries, unplaced=[])
    if affected_set:
        # Weights, autoscaling and latency only change for the models whose replicas changed.
        part = Plan(status="feasible", cost_per_hour=cost, lower_bound_per_hour=lower, solve_seconds=0.0, nodes=[],
                    replicas=[r for r in replicas if r.model in affected_set],
                    models=[e for e in entries if e.name in affected_set], unplaced=[])
        annotate(part, [deployments[name] for name in affected])
    return plan
