"""The placement problem in aggregate form: pool groups, candidate replica configurations, the MIP.

Nothing here is per node. The optimiser decides
- for every pool group an integer number of open nodes, and
- for every (model, pool group, replica option) an integer number of replicas;
the per-node and per-GPU assignment is done afterwards by `assignment.assign_replicas`.

Quantisation (the problem the planner solves exactly): capacities are counted in units of
1/CAPACITY_UNITS_PER_RPS requests/s rounded DOWN and demands rounded UP, so a plan that meets
demand in units also meets it in requests/s; node prices are counted in 1/COST_UNITS_PER_DOLLAR
dollars. `cost_rounding_error` bounds what the price rounding can change in the objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ortools.linear_solver import pywraplp

from llmops.catalog import GpuType, ModelArchitecture

from .fleet import ResolvedPool, resolve_inputs
from .spec import Fleet, ModelDeployment, ModelsFile, Spread

CAPACITY_UNITS_PER_RPS = 10_000
COST_UNITS_PER_DOLLAR = 10_000


@dataclass(frozen=True)
class PoolGroup:
    """Pools whose nodes are interchangeable for the plan: same GPU type, GPUs per node, zone and price.

    Merging them keeps the optimisation small (one node-count variable per group) and loses
    nothing: any node of the group can stand in for any other.
    """

    gpu_type: GpuType
    gpus_per_node: int
    zone: str
    node_hourly_cost: float
    pools: tuple[ResolvedPool, ...]

    @property
    def name(self) -> str:
        return "+".join(pool.name for pool in self.pools)

    @property
    def max_nodes(self) -> int:
        return sum(len(pool.node_names) for pool in self.pools)

    @property
    def cost_units(self) -> int:
        return round(self.node_hourly_cost * COST_UNITS_PER_DOLLAR)

    def node_slots(self) -> list[tuple[ResolvedPool, str]]:
        """Every node the group may open, in the order the plan opens them."""
        return [(pool, node) for pool in self.pools for node in pool.node_names]

    def groups_per_node(self, tensor_parallel: int) -> int:
        return self.gpus_per_node // tensor_parallel


@dataclass(frozen=True)
class Candidate:
    """One way to run replicas of one model: a replica option on the nodes of one pool group."""

    model: int
    group: int
    option: object  # llmops.planning.options.ReplicaOption
    capacity_units: int

    @property
    def tensor_parallel(self) -> int:
        return self.option.tensor_parallel


@dataclass
class PlacementProblem:
    deployments: list[ModelDeployment]
    architectures: dict[str, ModelArchitecture]
    groups: list[PoolGroup]
    candidates: list[Candidate]
    candidates_of_model: dict[int, list[int]]
    no_option_reason: dict[int, str] = field(default_factory=dict)
    candidates_of_group: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.candidates_of_group = {g: [] for g in range(len(self.groups))}
        for index, cand in enumerate(self.candidates):
            self.candidates_of_group[cand.group].append(index)

    def large_candidates(self, group: int, threshold: int) -> list[int]:
        """Candidates of a pool group with a tensor-parallel degree above `threshold` (cached)."""
        cache = self.__dict__.setdefault("_large", {})
        key = (group, threshold)
        if key not in cache:
            cache[key] = [c for c in self.candidates_of_group[group] if self.candidates[c].tensor_parallel > threshold]
        return cache[key]

    def demand_units(self, model: int) -> int:
        return math.ceil(self.deployments[model].traffic.requests_per_second * CAPACITY_UNITS_PER_RPS)

    def survive_units(self, model: int) -> int:
        """Capacity units the replicas left after one zone/node loss must still hold (rounded up)."""
        deployment = self.deployments[model]
        return math.ceil(deployment.survive_fraction * deployment.traffic.requests_per_second * CAPACITY_UNITS_PER_RPS)

    def zones_of_model(self, model: int) -> list[str]:
        return sorted({self.groups[self.candidates[c].group].zone for c in self.candidates_of_model[model]})

    def needs_zone_spread(self, model: int) -> bool:
        """spread=zone binds only where the model has a feasible option in at least two zones.

        With one zone no plan can survive that zone's loss; the plan then does not claim it.
        """
        return self.deployments[model].spread == Spread.zone and len(self.zones_of_model(model)) >= 2

    def replica_upper_bound(self, candidate: int) -> int:
        """`_replica_upper_bound`, computed once per candidate (the models ask for it per build)."""
        cache = self.__dict__.setdefault("_upper", {})
        if candidate not in cache:
            cache[candidate] = self._replica_upper_bound(candidate)
        return cache[candidate]

    def large_by_model(self, group: int, threshold: int) -> dict[int, list[int]]:
        """`large_candidates` grouped by their model (cached)."""
        cache = self.__dict__.setdefault("_large_by_model", {})
        key = (group, threshold)
        if key not in cache:
            grouped: dict[int, list[int]] = {}
            for c in self.large_candidates(group, threshold):
                grouped.setdefault(self.candidates[c].model, []).append(c)
            cache[key] = grouped
        return cache[key]

    def _replica_upper_bound(self, candidate: int) -> int:
        """Most replicas of one candidate some optimal plan uses.

        More than max(min_replicas, ceil(demand / capacity)) replicas of a single option are never
        needed: dropping one keeps demand (that option alone covers it), min_replicas, and zone
        survivability: losing the option's own zone loses none of what is counted after the loss,
        losing any other zone keeps all its replicas, which alone cover the demand. Under
        spread=node one more is kept: losing the node of one of its replicas must leave the demand.
        """
        cand = self.candidates[candidate]
        group = self.groups[cand.group]
        deployment = self.deployments[cand.model]
        by_nodes = group.max_nodes * group.groups_per_node(cand.tensor_parallel)
        if deployment.spread == Spread.node:
            by_nodes = min(by_nodes, group.max_nodes)
        by_demand = max(deployment.min_replicas, math.ceil(self.demand_units(cand.model) / cand.capacity_units), 1)
        if deployment.spread == Spread.node:
            by_demand = max(by_demand, math.ceil(self.survive_units(cand.model) / cand.capacity_units) + 1)
        return min(by_nodes, by_demand)

    def cost_rounding_error(self) -> float:
        """Largest change the price rounding to cost units can make to any plan's objective."""
        return sum(
            group.max_nodes * abs(group.cost_units / COST_UNITS_PER_DOLLAR - group.node_hourly_cost)
            for group in self.groups
        )


def group_pools(pools: Sequence[ResolvedPool]) -> list[PoolGroup]:
    """Merge interchangeable pools, keeping the fleet's order; pools without nodes are left out."""
    members: dict[tuple, list[ResolvedPool]] = {}
    for pool in pools:
        if not pool.node_names:
            continue
        key = (pool.gpu_type.name, pool.gpus_per_node, pool.zone, pool.node_hourly_cost)
        members.setdefault(key, []).append(pool)
    return [
        PoolGroup(
            gpu_type=grouped[0].gpu_type,
            gpus_per_node=grouped[0].gpus_per_node,
            zone=grouped[0].zone,
            node_hourly_cost=grouped[0].node_hourly_cost,
            pools=tuple(grouped),
        )
        for grouped in members.values()
    ]


def prune_dominated(options: Sequence, precision_order: Sequence[str]) -> list:
    """Drop options another option beats: no more GPUs and at least the same capacity.

    Exact: swapping a dominated replica for its dominator keeps the replica count, zone and node,
    meets the same demand, and needs no more GPUs (powers of two pack at least as well).
    Ties keep the precision the user listed first.
    """
    ranked = sorted(
        options,
        key=lambda o: (o.tensor_parallel, -o.capacity_requests_per_second, precision_order.index(o.precision)),
    )
    kept: list = []
    for option in ranked:
        if any(
            k.tensor_parallel <= option.tensor_parallel
            and k.capacity_requests_per_second >= option.capacity_requests_per_second
            for k in kept
        ):
            continue
        kept.append(option)
    return kept


def build_problem(
    fleet: Fleet,
    models: ModelsFile,
    unavailable_nodes: frozenset[str] = frozenset(),
    keep_options: frozenset[tuple[str, str, int, str, int]] = frozenset(),
) -> PlacementProblem:
    """Resolve the inputs and list every non-dominated candidate for every model.

    Replanning passes the nodes that are lost (`unavailable_nodes`: left out of their pools) and the
    options running replicas use (`keep_options`: (model, GPU type, GPUs per node, precision, TP)),
    which stay candidates even when dominated, so a running replica can be kept where it is.
    """
    from .options import explain_no_option, useful_options

    pools, architectures = resolve_inputs(fleet, models)
    if unavailable_nodes:
        pools = [
            replace(pool, node_names=tuple(n for n in pool.node_names if n not in unavailable_nodes)) for pool in pools
        ]
    groups = group_pools(pools)
    candidates: list[Candidate] = []
    candidates_of_model: dict[int, list[int]] = {}
    no_option_reason: dict[int, str] = {}
    for model_index, deployment in enumerate(models.models):
        candidates_of_model[model_index] = []
        options_by_shape: dict[tuple[str, int], list] = {}
        for group_index, group in enumerate(groups):
            shape = (group.gpu_type.name, group.gpus_per_node)
            if shape not in options_by_shape:
                # Options below the model's replica floor are never offered (options.floor_reason).
                options = useful_options(deployment, group.gpu_type, group.gpus_per_node)
                kept = prune_dominated(options, deployment.precisions)
                kept += [
                    o for o in options
                    if o not in kept and (deployment.name, *shape, o.precision, o.tensor_parallel) in keep_options
                ]
                options_by_shape[shape] = kept
            for option in options_by_shape[shape]:
                units = math.floor(option.capacity_requests_per_second * CAPACITY_UNITS_PER_RPS)
                if units <= 0:
                    continue
                candidates_of_model[model_index].append(len(candidates))
                candidates.append(Candidate(model_index, group_index, option, units))
        if not candidates_of_model[model_index]:
            no_option_reason[model_index] = _no_option_reason(deployment, pools, explain_no_option)
    return PlacementProblem(
        deployments=list(models.models),
        architectures=architectures,
        groups=groups,
        candidates=candidates,
        candidates_of_model=candidates_of_model,
        no_option_reason=no_option_reason,
    )


def _no_option_reason(deployment: ModelDeployment, pools: Sequence[ResolvedPool], explain: Callable) -> str:
    """Why nothing fits, told for the pool that comes closest: the most GPU memory per node."""
    usable = [pool for pool in pools if pool.node_names]
    if not usable:
        return "the fleet has no nodes to open (every pool has max_nodes 0 or an empty node list)"
    closest = max(usable, key=lambda p: (p.gpu_type.memory_gib * p.gpus_per_node, p.gpu_type.memory_gib))
    return explain(deployment, closest.gpu_type, closest.gpus_per_node)


# --------------------------------------------------------------------------------------------
# The mixed-integer model: one function per variable family, constraint family and objective term.
# --------------------------------------------------------------------------------------------


@dataclass
class AggregateModel:
    """The aggregate model on a pywraplp solver: SCIP with integer variables, or GLOP for its relaxation."""

    problem: PlacementProblem
    solver: pywraplp.Solver
    nodes: list[pywraplp.Variable]
    replicas: list[pywraplp.Variable]
    served: dict[int, pywraplp.Variable | int]
    """Per placeable model: 1 (must be served) or a 0/1 variable (served when capacity allows)."""
    replica_used: dict[int, pywraplp.Variable] = field(default_factory=dict)
    """Per candidate of a spread=node model: 1 when it has a replica (the node-loss rule needs it)."""
    blocked: dict[tuple[int, int], pywraplp.Variable] = field(default_factory=dict)
    """Per (pool group, threshold): replicas larger than the threshold there (add_node_spread)."""
    largest_used: dict[int, pywraplp.Variable] = field(default_factory=dict)
    """Per spread=node model: the largest capacity among its candidates in use (add_survival)."""

    def complete_hint(
        self, node_counts: Sequence[int], replica_counts: Sequence[int], extra: Sequence[tuple] = ()
    ) -> None:
        """Give the solver a whole starting plan (every variable), so it can use it without repair.

        `extra` holds (variable, value) pairs of variables a caller added to the model.
        """
        # Replica counts held fixed as plain integers (a neighbourhood model) are not variables.
        pairs = [(var, value) for var, value in zip(list(self.nodes) + list(self.replicas),
                                                    list(node_counts) + list(replica_counts), strict=True)
                 if not isinstance(var, int)]
        variables = [var for var, _ in pairs] + [var for var, _ in extra]
        values = [float(v) for _, v in pairs] + [float(v) for _, v in extra]
        for c, var in self.replica_used.items():
            variables.append(var)
            values.append(1.0 if replica_counts[c] else 0.0)
        for m, var in self.largest_used.items():
            variables.append(var)
            values.append(float(max((self.problem.candidates[c].capacity_units
                                     for c in self.problem.candidates_of_model[m] if replica_counts[c]), default=0)))
        for (group, threshold), var in self.blocked.items():
            variables.append(var)
            values.append(float(sum(replica_counts[c] for c in self.problem.large_candidates(group, threshold))))
        for m, var in self.served.items():
            if not isinstance(var, int):
                variables.append(var)
                values.append(1.0 if any(replica_counts[c] for c in self.problem.candidates_of_model[m]) else 0.0)
        self.solver.SetHint(variables, values)


def node_count_variables(model: AggregateModel, integer: bool) -> None:
    """Pool size limits: a cloud pool opens 0..max_nodes nodes, a fixed pool any number of its machines."""
    model.nodes = [
        model.solver.Var(0, group.max_nodes, integer, f"nodes[{group.name}]") for group in model.problem.groups
    ]


def replica_variables(model: AggregateModel, integer: bool) -> None:
    model.replicas = [
        model.solver.Var(0, model.problem.replica_upper_bound(c), integer, f"replicas[{c}]")
        for c in range(len(model.problem.candidates))
    ]


def add_row(solver: pywraplp.Solver, terms, lower: float = -math.inf, upper: float = math.inf, served=None,
            served_coefficient: float = 0.0):
    """One linear row, lower <= sum(coefficient * variable) + served_coefficient * served <= upper.

    Rows are built with the solver's coefficient API: the expression API costs seconds per
    thousand rows, which at 2,000 nodes x 300 models took most of the time limit. `served` is a
    model's served indicator: the constant 1 (folded into the bounds) or a variable.
    """
    if isinstance(served, int | float):
        shift = served_coefficient * served
        lower, upper = lower - shift, upper - shift
        served = None
    row = solver.Constraint(lower, upper)
    # Summed here, then one call per variable: each call into the solver costs more than the sum.
    summed: dict = {}
    for variable, coefficient in terms:
        summed[variable] = summed.get(variable, 0) + coefficient
    if served is not None and served_coefficient:
        summed[served] = summed.get(served, 0) + served_coefficient
    for variable, coefficient in summed.items():
        row.SetCoefficient(variable, coefficient)
    return row


def add_demand_met(model: AggregateModel, model_index: int) -> None:
    """Served models get at least their demand in sustainable capacity (within SLO by construction)."""
    problem = model.problem
    terms = [(model.replicas[c], problem.candidates[c].capacity_units) for c in problem.candidates_of_model[model_index]]
    add_row(model.solver, terms, lower=0, served=model.served[model_index],
            served_coefficient=-problem.demand_units(model_index))


def add_min_replicas(model: AggregateModel, model_index: int) -> None:
    """Served models run at least min_replicas replicas; unserved models run none."""
    problem = model.problem
    members = problem.candidates_of_model[model_index]
    terms = [(model.replicas[c], 1) for c in members]
    served = model.served[model_index]
    add_row(model.solver, terms, lower=0, served=served,
            served_coefficient=-problem.deployments[model_index].min_replicas)
    upper = sum(problem.replica_upper_bound(c) for c in members)
    add_row(model.solver, terms, upper=0, served=served, served_coefficient=-upper)


def add_gpus_per_group(model: AggregateModel, group_index: int) -> None:
    """Tensor-parallel groups fit in the open nodes, each inside one node.

    For every TP size t used in the group: the GPUs of replicas with TP >= t fit in
    t * floor(gpus_per_node / t) GPUs per node. These are exactly the conditions under which
    first-fit by decreasing TP packs every replica (all sizes >= t are multiples of t, so each
    node's used GPUs are a multiple of t when size t is placed); with gpus_per_node a power of
    two they collapse into the plain GPU count.
    """
    problem = model.problem
    group = problem.groups[group_index]
    members = problem.candidates_of_group[group_index]
    sizes = sorted({problem.candidates[c].tensor_parallel for c in members})
    for position, size in enumerate(sizes):
        usable = size * group.groups_per_node(size)
        if position > 0 and usable == sizes[position - 1] * group.groups_per_node(sizes[position - 1]):
            # Implied by the limit on the next smaller size, which covers more replicas with the same room.
            continue
        terms = [(model.replicas[c], problem.candidates[c].tensor_parallel) for c in members
                 if problem.candidates[c].tensor_parallel >= size]
        add_row(model.solver, [*terms, (model.nodes[group_index], -usable)], upper=0)


def add_survival(
    solver: pywraplp.Solver,
    problem: PlacementProblem,
    model_index: int,
    replicas: dict[int, pywraplp.Variable],
    served,
    integer: bool,
) -> dict[int, pywraplp.Variable]:
    """Survivability as capacity, on any solver holding the model's replica-count variables.

    spread=zone (options in two or more zones): for every zone z where the model has options,
        sum over candidates outside z of capacity * replicas >= survive units * served.
    spread=node (at most one replica per node, add_node_spread): losing a node loses one replica,
    of the largest capacity among the candidates in use, so with used_c = 1 when replicas_c > 0:
        total capacity - capacity_c * used_c >= survive units * served   for every candidate c,
    written as  largest >= capacity_c * used_c  for every c  and  total capacity - largest >=
    survive units * served: the same set, and the same linear relaxation (its projection is the max
    over c), with 3n nonzeros instead of n^2 (at 2,000 x 300 those quadratic rows were most of the
    model, slowing its build, every relaxation and every neighbourhood round).
    Both are exact for the aggregate counts; in the relaxation used_c may be fractional, which only
    weakens the rows, so the relaxation stays a relaxation. Returns the used_c variables and
    `largest` (None unless spread=node).
    """
    deployment = problem.deployments[model_index]
    members = problem.candidates_of_model[model_index]
    need = problem.survive_units(model_index)
    used: dict[int, pywraplp.Variable] = {}
    largest = None
    if problem.needs_zone_spread(model_index):
        for zone in problem.zones_of_model(model_index):
            terms = [(replicas[c], problem.candidates[c].capacity_units) for c in members
                     if problem.groups[problem.candidates[c].group].zone != zone]
            add_row(solver, terms, lower=0, served=served, served_coefficient=-need)
    elif deployment.spread == Spread.node:
        capacity = {c: problem.candidates[c].capacity_units for c in members}
        # Continuous: any value >= the largest capacity in use satisfies the rows equally.
        largest = solver.NumVar(0, max(capacity.values()), f"largest_used[{model_index}]")
        for c in members:
            flag = solver.Var(0, 1, integer, f"replica_used[{c}]")
            used[c] = flag
            add_row(solver, [(replicas[c], 1), (flag, -problem.replica_upper_bound(c))], upper=0)
            add_row(solver, [(largest, 1), (flag, -capacity[c])], lower=0)
        add_row(solver, [*[(replicas[c], capacity[c]) for c in members], (largest, -1)], lower=0, served=served,
                served_coefficient=-need)
    return used, largest


def add_zone_and_node_survival(model: AggregateModel, model_index: int, integer: bool) -> None:
    """Constraint family: the model survives the loss of any one zone (spread=zone) or node (spread=node)."""
    members = model.problem.candidates_of_model[model_index]
    used, largest = add_survival(
        model.solver,
        model.problem,
        model_index,
        {c: model.replicas[c] for c in members},
        model.served[model_index],
        integer,
    )
    model.replica_used.update(used)
    if largest is not None:
        model.largest_used[model_index] = largest


def add_node_spread(model: AggregateModel, model_index: int) -> None:
    """spread=node: no two replicas of the model on one node, so at most one per open node."""
    problem = model.problem
    if problem.deployments[model_index].spread != Spread.node:
        return
    by_group: dict[int, list[int]] = {}
    for c in problem.candidates_of_model[model_index]:
        by_group.setdefault(problem.candidates[c].group, []).append(c)
    for group_index, members in by_group.items():
        # A replica of another model with more than half the node's GPUs and more than the node's
        # GPUs minus this model's degree holds its node alone (for this model): it sits on a node
        # of its own that this model's replicas cannot use. Valid for every real placement, and it
        # closes the commonest way the aggregate count over-promises distinct nodes.
        group = problem.groups[group_index]
        smallest = min(problem.candidates[c].tensor_parallel for c in members)
        threshold = max(group.gpus_per_node // 2, group.gpus_per_node - smallest)
        # Every model's row counts the same blockers: one variable holds their sum (defined once per
        # group and threshold), and the model's own large replicas are taken back out of it.
        blocked = blocked_replicas(model, group_index, threshold)
        own = problem.large_by_model(group_index, threshold).get(model_index, [])
        terms = [(model.replicas[c], 1) for c in members] + [(model.replicas[c], -1) for c in own]
        if blocked is not None:
            terms.append((blocked, 1))
        add_row(model.solver, [*terms, (model.nodes[group_index], -1)], upper=0)


def blocked_replicas(model: AggregateModel, group_index: int, threshold: int):
    """The variable `blocked = sum of replicas above threshold in the group` (None when there are none)."""
    key = (group_index, threshold)
    if key not in model.blocked:
        large = model.problem.large_candidates(group_index, threshold)
        if not large:
            return None
        upper = sum(model.problem.replica_upper_bound(c) for c in large)
        integer = model.solver.IsMip()
        var = model.solver.Var(0, upper, integer, f"blocked[{group_index},{threshold}]")
        add_row(model.solver, [*[(model.replicas[c], 1) for c in large], (var, -1)], lower=0, upper=0)
        model.blocked[key] = var
    return model.blocked[key]


def gpu_price_units(problem: PlacementProblem, candidate: int) -> int:
    """Cost units of the GPUs one replica of a candidate occupies, rounded down (keeps bounds valid)."""
    cand = problem.candidates[candidate]
    group = problem.groups[cand.group]
    return math.floor(group.cost_units * cand.tensor_parallel / group.gpus_per_node)


def add_gpu_cost_floor(model: AggregateModel, model_index: int, floor_cost_units: int) -> None:
    """Valid cut: a served model's replicas cost at least its own cheapest stand-alone GPU cost.

    `floor_cost_units` comes from `bounds.model_gpu_cost_floor` (a lower bound on that cost over
    all integer replica mixes), so every feasible plan satisfies it; it only tightens the relaxation.
    """
    if floor_cost_units <= 0:
        return
    problem = model.problem
    members = problem.candidates_of_model[model_index]
    terms = [(model.replicas[c], gpu_price_units(problem, c)) for c in members]
    add_row(model.solver, terms, lower=0, served=model.served[model_index], served_coefficient=-floor_cost_units)


def node_cost_term(model: AggregateModel):
    """Objective term: hourly price of the open nodes, in cost units."""
    return model.solver.Sum([group.cost_units * model.nodes[g] for g, group in enumerate(model.problem.groups)])


def served_term(model: AggregateModel, model_indices: Sequence[int]):
    """Objective term for the priority stages: how many of these models are served."""
    return model.solver.Sum([model.served[m] for m in model_indices])


def build_aggregate_model(
    problem: PlacementProblem,
    placeable: Sequence[int],
    must_serve: Sequence[int],
    cost_floors: dict[int, int],
    integer: bool = True,
) -> AggregateModel:
    """All constraint families for the placeable models; `must_serve` ones are served for sure.

    integer=False gives the linear relaxation (GLOP) used for the lower bound.
    """
    solver = pywraplp.Solver.CreateSolver("SCIP" if integer else "GLOP")
    model = AggregateModel(problem=problem, solver=solver, nodes=[], replicas=[], served={})
    node_count_variables(model, integer)
    replica_variables(model, integer)
    must = set(must_serve)
    for m in placeable:
        model.served[m] = 1 if m in must else solver.Var(0, 1, integer, f"served[{m}]")
    placeable_set = set(placeable)
    for m, members in problem.candidates_of_model.items():
        if m not in placeable_set:
            for c in members:
                model.replicas[c].SetUb(0)
    for m in placeable:
        add_demand_met(model, m)
        add_min_replicas(model, m)
        add_zone_and_node_survival(model, m, integer)
        add_node_spread(model, m)
        add_gpu_cost_floor(model, m, cost_floors.get(m, 0))
    for g in range(len(problem.groups)):
        add_gpus_per_group(model, g)
    return model
