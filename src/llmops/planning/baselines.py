"""The baselines the benchmarks compare the optimiser against, all held to the same rules.

Every baseline offers only the options the optimiser offers (`options.useful_options`: fit,
meet the SLO, clear the replica floor) and meets the same spread rule: spread=zone survives the
loss of any one zone, spread=node the loss of any one node (anti-affinity), each at the model's
survive_fraction. Their plans go through the same independent validator.

first_fit_decreasing: a sensible Kubernetes scheduler plus Karpenter setup. Each model gets one
  pod spec, the (GPU type, precision, tensor-parallel degree) with the lowest GPU cost per
  request/s of capacity, preferring a GPU type offered in two or more zones for spread=zone, and
  is pinned to that GPU type (a node selector). Replicas are added one at a time, as a horizontal
  autoscaler grows a Deployment, to the zone holding the fewest of them (topology spread, maxSkew
  1) until demand, min_replicas and survivability hold. Largest replicas first, each is bound
  first-fit to an open node of its type and zone, else Karpenter launches the cheapest node of a
  pool of that type in that zone.

careful_heuristic: what a careful engineer does by hand. Per model and zone the option with the
  lowest GPU cost per request/s of capacity in that zone (any GPU type); replicas added to the
  zone with the least capacity so far until demand, min_replicas and survivability hold; packed
  best fit (the open node with the fewest free GPUs that still takes it; else a node from the pool
  with the cheapest GPU); then a local search closes nodes: the emptiest node first, its replicas
  moved best fit to other open nodes of the same GPU type and zone, kept when all fit.

best_single_gpu_type: the optimiser itself, restricted to the pools of one GPU type at a time;
  the cheapest plan among the types (fewest unplaced models first).

None computes a lower bound; their plans report lower_bound_per_hour 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .assignment import OpenNode
from .fleet import ResolvedPool, resolve_inputs, resolve_pools
from .options import ReplicaOption, explain_no_option, useful_options
from .result import Plan, PlanNode, PlanReplica, Unplaced
from .solver import model_summary, solve
from .spec import Fleet, ModelDeployment, ModelsFile, Spread
from .traffic import annotate


def _gpu_price(pool: ResolvedPool) -> float:
    return pool.node_hourly_cost / pool.gpus_per_node


def _by_node_cost(pool: ResolvedPool) -> tuple:
    return (pool.node_hourly_cost, pool.name)


def _by_gpu_price(pool: ResolvedPool) -> tuple:
    return (_gpu_price(pool), pool.name)


def _cost_per_rps(pool: ResolvedPool, option: ReplicaOption) -> float:
    """Hourly GPU cost of one replica per request/s it sustains: the figure of merit of both heuristics."""
    return _gpu_price(pool) * option.tensor_parallel / option.capacity_requests_per_second


@dataclass
class _Choice:
    """The option a replica uses in one zone and the pools it may land on there."""

    option: ReplicaOption
    pools: list[ResolvedPool]
    fallbacks: list[tuple[ReplicaOption, list[ResolvedPool]]] = field(default_factory=list)
    """Other options in the zone, cheapest first, for when the chosen pools run out of nodes."""


class _Options:
    """useful_options per (model, pool), computed once."""

    def __init__(self, deployments: list[ModelDeployment], pools: list[ResolvedPool]):
        self.deployments = deployments
        self.pools = [pool for pool in pools if pool.node_names]
        self._cache: dict[tuple[int, str], list[ReplicaOption]] = {}

    def of(self, model: int, pool: ResolvedPool) -> list[ReplicaOption]:
        key = (model, pool.name)
        if key not in self._cache:
            self._cache[key] = useful_options(self.deployments[model], pool.gpu_type, pool.gpus_per_node)
        return self._cache[key]

    def feasible_zones(self, model: int) -> set[str]:
        return {pool.zone for pool in self.pools if self.of(model, pool)}


def _survives(deployment: ModelDeployment, placed: list[tuple[str, str, float]], zone_rule: bool) -> bool:
    """Demand, min_replicas and the spread rule for replicas given as (zone, key, capacity).

    key is the node for spread=node (one replica per node), unused otherwise.
    """
    demand = deployment.traffic.requests_per_second
    total = math.fsum(c for _, _, c in placed)
    if total < demand or len(placed) < max(1, deployment.min_replicas):
        return False
    need = deployment.survive_fraction * demand
    if zone_rule:
        by_zone: dict[str, float] = {}
        for zone, _, capacity in placed:
            by_zone[zone] = by_zone.get(zone, 0.0) + capacity
        return len(by_zone) >= 2 and all(total - lost >= need for lost in by_zone.values())
    if deployment.spread == Spread.node:
        return len(placed) >= 2 and all(total - capacity >= need for _, _, capacity in placed)
    return True


@dataclass
class _Cluster:
    """Open nodes in launch order, the nodes each pool can still launch, replicas bound so far."""

    unopened: dict[str, list[str]]
    opened: list[OpenNode] = field(default_factory=list)
    bound: list[tuple[int, ReplicaOption, OpenNode, int]] = field(default_factory=list)

    def bind(self, model: int, option: ReplicaOption, node: OpenNode, start: int) -> None:
        for gpu in range(start, start + option.tensor_parallel):
            node.free[gpu] = False
        node.models.add(model)
        self.bound.append((model, option, node, start))

    def launch(self, pool: ResolvedPool) -> OpenNode | None:
        if not self.unopened.get(pool.name):
            return None
        node = OpenNode(pool, self.unopened[pool.name].pop(0), pool.gpus_per_node, [True] * pool.gpus_per_node)
        self.opened.append(node)
        return node

    def place(
        self, model: int, option: ReplicaOption, pools: list[ResolvedPool], anti_affinity: bool, best_fit: bool,
        launch_key: Callable[[ResolvedPool], tuple],
    ) -> OpenNode | None:
        """Bind one replica on an open node of `pools` (first or best fit), else on a newly launched one."""
        names = {pool.name for pool in pools}
        size = option.tensor_parallel
        chosen: tuple[tuple, OpenNode, int] | None = None
        for position, node in enumerate(self.opened):
            if node.pool.name not in names or (anti_affinity and model in node.models):
                continue
            start = node.free_block(size)
            if start is None:
                continue
            rank = (node.free_gpus(), position) if best_fit else (position,)
            if chosen is None or rank < chosen[0]:
                chosen = (rank, node, start)
            if not best_fit:
                break
        if chosen is None:
            for pool in sorted((p for p in pools if p.gpus_per_node >= size), key=launch_key):
                node = self.launch(pool)
                if node is not None:
                    chosen = ((), node, 0)
                    break
        if chosen is None:
            return None
        _, node, start = chosen
        self.bind(model, option, node, start)
        return node


def _plan(
    models: ModelsFile, architectures, cluster: _Cluster, unplaced: dict[int, str], started: float
) -> Plan:
    kept = [b for b in cluster.bound if b[0] not in unplaced]
    used_names = {node.name for _, _, node, _ in kept}
    nodes = [
        PlanNode(
            name=node.name,
            pool=node.pool.name,
            zone=node.pool.zone,
            gpu_type=node.pool.gpu_type.name,
            gpus=node.gpus_per_node,
            hourly_cost=node.pool.node_hourly_cost,
        )
        for node in cluster.opened
        if node.name in used_names
    ]
    replicas = [
        PlanReplica(
            model=models.models[m].name,
            node=node.name,
            gpu_indices=list(range(start, start + option.tensor_parallel)),
            gpu_type=node.pool.gpu_type.name,
            precision=option.precision,
            tensor_parallel=option.tensor_parallel,
            memory_per_gpu_gib=option.memory_per_gpu_gib,
            capacity_requests_per_second=option.capacity_requests_per_second,
        )
        for m, option, node, start in sorted(kept, key=lambda b: (b[0], b[2].name, b[3]))
    ]
    summaries = []
    for index, deployment in enumerate(models.models):
        options = [option for m, option, _, _ in kept if m == index]
        summaries.append(model_summary(deployment, architectures[deployment.name], options, index not in unplaced))
    plan = Plan(
        status="partial" if unplaced else "feasible",
        cost_per_hour=math.fsum(node.hourly_cost for node in nodes),
        lower_bound_per_hour=0.0,
        solve_seconds=round(time.monotonic() - started, 3),
        nodes=nodes,
        replicas=replicas,
        models=summaries,
        unplaced=[Unplaced(model=models.models[m].name, reason=reason) for m, reason in sorted(unplaced.items())],
    )
    return annotate(plan, models.models)


def _no_option(deployment: ModelDeployment, pools: list[ResolvedPool]) -> str:
    if not pools:
        return "the fleet has no nodes to open"
    closest = max(pools, key=lambda p: (p.gpu_type.memory_gib * p.gpus_per_node, p.gpu_type.memory_gib))
    return f"no replica configuration fits: {explain_no_option(deployment, closest.gpu_type, closest.gpus_per_node)}"


def _release(cluster: _Cluster, model: int) -> None:
    """Unbind a model that could not be completed, so its partial replicas hold no GPUs."""
    for _, option, node, start in [b for b in cluster.bound if b[0] == model]:
        for gpu in range(start, start + option.tensor_parallel):
            node.free[gpu] = True
        node.models.discard(model)
    cluster.bound = [b for b in cluster.bound if b[0] != model]


def _grow(
    deployment: ModelDeployment,
    choices: dict[str, _Choice],
    zone_rule: bool,
    place: Callable[[str, _Choice], tuple[OpenNode, float] | None],
    balance_by_capacity: bool,
) -> bool:
    """Add replicas, each to the zone with the fewest replicas (or least capacity), until the rules hold."""
    placed: list[tuple[str, str, float]] = []
    count = {zone: 0 for zone in choices}
    capacity = {zone: 0.0 for zone in choices}
    # A model never needs more than this many replicas; it stops a full fleet from looping.
    limit = 4 * (deployment.min_replicas + 2) + sum(
        math.ceil(deployment.traffic.requests_per_second / c.option.capacity_requests_per_second) for c in choices.values()
    )
    while not _survives(deployment, placed, zone_rule):
        if len(placed) >= limit:
            return False
        order = sorted(
            choices,
            key=lambda z: (capacity[z], count[z], z) if balance_by_capacity else (count[z], capacity[z], z),
        )
        for zone in order:
            result = place(zone, choices[zone])
            if result is not None:
                node, gained = result
                count[zone] += 1
                capacity[zone] += gained
                placed.append((node.pool.zone, node.name, gained))
                break
        else:
            return False
    return True


# -- first-fit decreasing, Karpenter-like ------------------------------------------------------


def _pod_specs(model: int, options: _Options) -> list[tuple[str, ReplicaOption]]:
    """(GPU type, option) by GPU cost per request/s, one per GPU type, cheapest first; spread=zone
    ranks GPU types offered in two or more zones first."""
    deployment = options.deployments[model]
    zones_of_type: dict[str, set[str]] = {}
    for pool in options.pools:
        if options.of(model, pool):
            zones_of_type.setdefault(pool.gpu_type.name, set()).add(pool.zone)
    ranked = []
    for pool in options.pools:
        for option in options.of(model, pool):
            multi = len(zones_of_type[pool.gpu_type.name]) >= 2
            prefer = 0 if deployment.spread != Spread.zone or multi else 1
            share = deployment.traffic.requests_per_second
            ranked.append((prefer, _cost_for(share, max(1, deployment.min_replicas), pool, option),
                           pool.gpu_type.name, option.precision, option.tensor_parallel, option))
    ranked.sort(key=lambda r: r[:5])
    specs: dict[str, ReplicaOption] = {}
    for _, _, gpu_type, _, _, option in ranked:
        specs.setdefault(gpu_type, option)
    return list(specs.items())


def first_fit_decreasing(fleet: Fleet, models: ModelsFile) -> Plan:
    started = time.monotonic()
    pools, architectures = resolve_inputs(fleet, models)
    options = _Options(list(models.models), pools)
    cluster = _Cluster(unopened={pool.name: list(pool.node_names) for pool in options.pools})
    unplaced: dict[int, str] = {}
    specs: dict[int, dict[str, _Choice]] = {}
    for index, deployment in enumerate(models.models):
        ranked = _pod_specs(index, options)
        if not ranked:
            unplaced[index] = _no_option(deployment, options.pools)
            continue
        specs[index] = [_pinned(index, gpu_type, chosen, options) for gpu_type, chosen in ranked]
    for index in sorted(specs, key=lambda m: (-next(iter(specs[m][0].values())).option.tensor_parallel, m)):
        deployment = models.models[index]
        zone_rule = deployment.spread == Spread.zone and len(options.feasible_zones(index)) >= 2
        anti = deployment.spread == Spread.node

        def place(zone: str, choice: _Choice, index=index, anti=anti) -> tuple[OpenNode, float] | None:
            node = cluster.place(index, choice.option, choice.pools, anti, best_fit=False,
                                 launch_key=_by_node_cost)
            return None if node is None else (node, choice.option.capacity_requests_per_second)

        # The cheapest spec first; the next one only when the fleet has no room for it (a team
        # edits the node selector after a pending pod).
        for choices in specs[index]:
            if _grow(deployment, choices, zone_rule, place, balance_by_capacity=False):
                break
            _release(cluster, index)
        else:
            unplaced[index] = "first-fit found no room for any pod spec's replicas in the zones its spread rule needs"
    return _plan(models, architectures, cluster, unplaced, started)


def _pinned(index: int, gpu_type: str, chosen: ReplicaOption, options: _Options) -> dict[str, _Choice]:
    """Pinned to the GPU type: every pool of that type where the same precision and TP is offered."""
    choices: dict[str, _Choice] = {}
    for pool in options.pools:
        if pool.gpu_type.name != gpu_type:
            continue
        same = [o for o in options.of(index, pool)
                if (o.precision, o.tensor_parallel) == (chosen.precision, chosen.tensor_parallel)]
        if same:
            choices.setdefault(pool.zone, _Choice(same[0], [])).pools.append(pool)
    return choices


# -- careful engineer: cost per unit of demand, best fit, close nodes ---------------------------


def _zone_options(model: int, options: _Options) -> dict[str, list[tuple[ResolvedPool, ReplicaOption]]]:
    """Per zone, every (pool, option) of the model there."""
    found: dict[str, list[tuple[ResolvedPool, ReplicaOption]]] = {}
    for pool in options.pools:
        for option in options.of(model, pool):
            found.setdefault(pool.zone, []).append((pool, option))
    return found


def _cost_for(share_rps: float, replicas_at_least: int, pool: ResolvedPool, option: ReplicaOption) -> float:
    """GPU cost of the replicas of one option that carry `share_rps` (cost per unit of demand, not of capacity)."""
    count = max(replicas_at_least, math.ceil(share_rps / option.capacity_requests_per_second - 1e-9))
    return count * option.tensor_parallel * _gpu_price(pool)


def _choice(model: int, zone: str, pool: ResolvedPool, option: ReplicaOption, options: _Options) -> _Choice:
    pools = [
        p for p in options.pools
        if p.zone == zone and p.gpu_type.name == pool.gpu_type.name
        and any((o.precision, o.tensor_parallel) == (option.precision, option.tensor_parallel)
                for o in options.of(model, p))
    ]
    return _Choice(option, sorted(pools, key=_by_gpu_price))


def _zone_plan(model: int, options: _Options, zone_rule: bool) -> dict[str, _Choice]:
    """The zones to use and the option in each, by estimated GPU cost of meeting the rules.

    Without zone spread: the one zone and option that carry the demand cheapest. With it: for
    k = 2..zones, each zone carries survive_fraction x demand / (k - 1) (what survives one loss);
    per zone the option that carries that share cheapest, the k cheapest zones, the cheapest k.
    """
    deployment = options.deployments[model]
    by_zone = _zone_options(model, options)
    demand = deployment.traffic.requests_per_second
    if not by_zone:
        return {}
    if not zone_rule:
        spread_node = deployment.spread == Spread.node
        least = max(deployment.min_replicas, 2 if spread_node else 1)
        best = None
        for zone, pairs in by_zone.items():
            for pool, option in pairs:
                share = demand + (option.capacity_requests_per_second if spread_node else 0.0)
                key = (_cost_for(share, least, pool, option), zone, pool.name)
                if best is None or key < best[0]:
                    best = (key, zone, pool, option)
        _, zone, pool, option = best
        choice = _choice(model, zone, pool, option, options)
        choice.fallbacks = sorted(
            ((o, [p]) for pairs in by_zone.values() for p, o in pairs),
            key=lambda t: (_cost_for(demand, least, t[1][0], t[0]), t[1][0].name),
        )
        return {zone: choice}
    best_plan = None
    for k in range(2, len(by_zone) + 1):
        share = max(deployment.survive_fraction * demand / (k - 1), demand / k)
        least = math.ceil(deployment.min_replicas / k)
        per_zone = []
        for zone, pairs in by_zone.items():
            ranked = sorted(((_cost_for(share, least, p, o), p.name, p, o) for p, o in pairs), key=lambda t: t[:2])
            per_zone.append((ranked[0][0], zone, ranked))
        per_zone.sort(key=lambda t: (t[0], t[1]))
        total = sum(t[0] for t in per_zone[:k])
        if best_plan is None or total < best_plan[0]:
            best_plan = (total, per_zone[:k])
    plan = {}
    for _, zone, ranked in best_plan[1]:
        choice = _choice(model, zone, ranked[0][2], ranked[0][3], options)
        choice.fallbacks = [(o, [p]) for _, _, p, o in ranked[1:]]
        plan[zone] = choice
    return plan


def _move_off(
    cluster: _Cluster, node: OpenNode, targets: list[OpenNode], options: _Options, zone_rules: dict[int, bool]
) -> bool:
    """Move every replica of `node` best fit onto `targets` (any option of the model the target's pool
    offers); kept only when every moved model still meets demand, min_replicas and its spread rule."""
    moving = sorted((b for b in cluster.bound if b[2] is node), key=lambda b: -b[1].tensor_parallel)
    saved = {id(n): (list(n.free), set(n.models)) for n in targets}
    moves = []
    for model, _, _, _ in moving:
        anti = options.deployments[model].spread == Spread.node
        fits = []
        for position, target in enumerate(targets):
            if anti and model in target.models:
                continue
            for option in options.of(model, target.pool):
                start = target.free_block(option.tensor_parallel)
                if start is not None:
                    fits.append((target.free_gpus() - option.tensor_parallel, -option.capacity_requests_per_second,
                                 position, target, option, start))
        if not fits:
            break
        _, _, _, target, option, start = min(fits, key=lambda f: f[:3])
        for gpu in range(start, start + option.tensor_parallel):
            target.free[gpu] = False
        target.models.add(model)
        moves.append((model, option, target, start))
    trial = [b for b in cluster.bound if b[2] is not node] + moves
    ok = len(moves) == len(moving) and all(
        _survives(
            options.deployments[m],
            [(n.pool.zone, n.name, o.capacity_requests_per_second) for mm, o, n, _ in trial if mm == m],
            zone_rules[m],
        )
        for m in {m for m, _, _, _ in moving}
    )
    if not ok:
        for n in targets:
            n.free, n.models = saved[id(n)]
        return False
    cluster.bound = trial
    node.free = [True] * node.gpus_per_node
    node.models = set()
    return True


def _close_nodes(cluster: _Cluster, options: _Options, zone_rules: dict[int, bool]) -> None:
    """Local search, two moves, until neither helps:
    close: empty a node (most expensive per GPU used first) into the other open nodes of its zone,
      else of any zone (the spread rule is rechecked);
    swap: empty a node into the other open nodes of its zone plus one new node of a cheaper pool there.
    """
    improved = True
    while improved:
        improved = False
        used = list({id(node): node for _, _, node, _ in cluster.bound}.values())
        used.sort(key=lambda n: -n.pool.node_hourly_cost / max(1, n.gpus_per_node - n.free_gpus()))
        for node in used:
            others = [n for n in used if n is not node and n.pool.zone == node.pool.zone]
            if _move_off(cluster, node, others, options, zone_rules) or _move_off(
                cluster, node, [n for n in used if n is not node], options, zone_rules
            ):
                improved = True
                break
            cheaper = sorted(
                (p for p in options.pools
                 if p.zone == node.pool.zone and p.node_hourly_cost < node.pool.node_hourly_cost
                 and cluster.unopened.get(p.name)),
                key=lambda p: p.node_hourly_cost,
            )
            for pool in cheaper:
                fresh = cluster.launch(pool)
                if _move_off(cluster, node, [*others, fresh], options, zone_rules):
                    improved = True
                    break
                cluster.opened.remove(fresh)
                cluster.unopened[pool.name].insert(0, fresh.name)
            if improved:
                break


def careful_heuristic(fleet: Fleet, models: ModelsFile) -> Plan:
    started = time.monotonic()
    pools, architectures = resolve_inputs(fleet, models)
    options = _Options(list(models.models), pools)
    cluster = _Cluster(unopened={pool.name: list(pool.node_names) for pool in options.pools})
    unplaced: dict[int, str] = {}
    choices: dict[int, dict[str, _Choice]] = {}
    for index, deployment in enumerate(models.models):
        zone_rule = deployment.spread == Spread.zone and len(options.feasible_zones(index)) >= 2
        choices[index] = _zone_plan(index, options, zone_rule)
        if not choices[index]:
            unplaced[index] = _no_option(deployment, options.pools)
            del choices[index]
    for index in sorted(choices, key=lambda m: (-max(c.option.tensor_parallel for c in choices[m].values()), m)):
        deployment = models.models[index]
        zone_rule = deployment.spread == Spread.zone and len(options.feasible_zones(index)) >= 2
        anti = deployment.spread == Spread.node

        def place(zone: str, choice: _Choice, index=index, anti=anti) -> tuple[OpenNode, float] | None:
            for option, pools in [(choice.option, choice.pools), *choice.fallbacks]:
                node = cluster.place(index, option, pools, anti, best_fit=True, launch_key=_by_gpu_price)
                if node is not None:
                    return node, option.capacity_requests_per_second
            return None

        if not _grow(deployment, choices[index], zone_rule, place, balance_by_capacity=True):
            _release(cluster, index)
            unplaced[index] = "no room left in the chosen pools for the replicas its demand and spread rule need"
    zone_rules = {
        m: models.models[m].spread == Spread.zone and len(options.feasible_zones(m)) >= 2 for m in choices
    }
    _close_nodes(cluster, options, zone_rules)
    return _plan(models, architectures, cluster, unplaced, started)


def best_single_gpu_type(fleet: Fleet, models: ModelsFile, time_limit_s: float = 30.0) -> Plan:
    """The optimiser on one GPU type's pools at a time; the cheapest plan (fewest unplaced first)."""
    started = time.monotonic()
    pools = resolve_pools(fleet)
    types = sorted({pool.gpu_type.name for pool in pools})
    best: Plan | None = None
    for position, gpu_type in enumerate(types):
        subset = Fleet(pools=[spec for spec, pool in zip(fleet.pools, pools, strict=True) if pool.gpu_type.name == gpu_type])
        budget = max(1.0, (started + time_limit_s - time.monotonic()) / (len(types) - position))
        plan = solve(subset, models, time_limit_s=budget)
        if best is None or (len(plan.unplaced), plan.cost_per_hour) < (len(best.unplaced), best.cost_per_hour):
            best = plan
    best.solve_seconds = round(time.monotonic() - started, 3)
    return best
