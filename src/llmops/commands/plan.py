"""`llmops plan`: compute a placement plan for a fleet and a set of models.

Exit codes: 0 every model served; 3 plan written but something unplaced; 2 invalid input (one
line per problem naming the field path); 1 the computed plan failed the independent validator
(nothing is written, the violations are printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from pydantic import ValidationError

from llmops.planning import load_inputs, make_plan, validate_plan
from llmops.planning.explain import render_explanation
from llmops.planning.fleet import ResolvedPool, resolve_inputs
from llmops.planning.problems import format_validation_error
from llmops.planning.result import Plan
from llmops.planning.spec import Fleet, InputError, ModelsFile

EXIT_OK = 0
EXIT_INVALID_PLAN = 1
EXIT_INVALID_INPUT = 2
EXIT_UNPLACED = 3


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="compute a cost-optimal placement of models on a GPU fleet",
        description=(
            "Compute a placement plan: per model the GPU type, precision, tensor-parallel degree, "
            "replicas and their nodes and GPUs; per pool the nodes to run; the cost and a lower bound. "
            "Exit 0: every model served; 3: plan written but something unplaced; 2: invalid input; "
            "1: the plan failed validation."
        ),
    )
    parser.add_argument("--fleet", type=Path, help="fleet file (YAML, top-level key pools); required unless --show")
    parser.add_argument(
        "--models", type=Path, help="models file (YAML, top-level key models); required unless --show"
    )
    parser.add_argument(
        "--show",
        metavar="PLAN",
        type=Path,
        help="print the tables of a plan written by --output, without solving; with --fleet and --models "
        "also the SLOs and pool sizes",
    )
    parser.add_argument(
        "--time-limit", type=positive_seconds, default=30.0, help="solver time limit in seconds (default 30)"
    )
    parser.add_argument("--output", type=Path, help="write the plan as JSON to this file")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON instead of tables")
    parser.add_argument(
        "--explain",
        metavar="MODEL",
        help="print every replica option of MODEL on every GPU shape of the fleet, offered or why it was "
        "dropped (memory, SLO, replica floor, dominated), and exit without planning",
    )
    parser.set_defaults(handler=run)


def report_invalid_input(problems: list[str]) -> int:
    print("invalid input:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_INVALID_INPUT


def show(args: argparse.Namespace) -> int:
    """Render a saved plan again: exit 0, or 3 when it lists unplaced models, or 2 when unreadable."""
    from .validate import read_plan

    try:
        fleet = models = pools = None
        if args.fleet is not None and args.models is not None:
            fleet, models = load_inputs(args.fleet, args.models)
            pools, _ = resolve_inputs(fleet, models)
        document = read_plan(args.show)
        try:
            plan = Plan.model_validate(document)
        except ValidationError as exc:
            raise InputError(
                [f"{args.show}: not a plan written by llmops plan: {line}" for line in format_validation_error(exc)]
            ) from exc
    except InputError as exc:
        return report_invalid_input(exc.problems)
    print(render_tables(plan, fleet, models, pools))
    return EXIT_UNPLACED if plan.unplaced else EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.show is not None:
        if (args.fleet is None) != (args.models is None):
            return report_invalid_input(["--show: give both --fleet and --models, or neither"])
        if args.output is not None or args.json or getattr(args, "explain", None):
            return report_invalid_input(["--show: only --fleet and --models go with it (it does not solve)"])
        return show(args)
    missing = [option for option, value in (("--fleet", args.fleet), ("--models", args.models)) if value is None]
    if missing:
        return report_invalid_input([f"{option}: required (or --show PLAN to print a saved plan)" for option in missing])
    try:
        fleet, models = load_inputs(args.fleet, args.models)
        pools, _ = resolve_inputs(fleet, models)
        if getattr(args, "explain", None):
            print(render_explanation(fleet, models, args.explain))
            return EXIT_OK
        plan = make_plan(fleet, models, time_limit_s=args.time_limit)
    except InputError as exc:
        return report_invalid_input(exc.problems)
    violations = validate_plan(plan, fleet, models)
    if violations:
        print("the computed plan failed validation; nothing written:", file=sys.stderr)
        for line in violations:
            print(f"  {line}", file=sys.stderr)
        return EXIT_INVALID_PLAN
    document = json.dumps(plan.to_json_dict(), indent=2) + "\n"
    if args.output is not None:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(document, encoding="utf-8")
        except OSError as exc:
            return report_invalid_input([f"--output: cannot write {args.output} ({exc.strerror or exc})"])
    if args.json:
        sys.stdout.write(document)
    else:
        print(render_tables(plan, fleet, models, pools))
        if args.output is not None:
            print(f"\nplan written to {args.output}")
    return EXIT_UNPLACED if plan.unplaced else EXIT_OK


# -- tables ---------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]], right: frozenset[int] | set[int] = frozenset()) -> str:
    """A plain-text table; columns in `right` are right-aligned (numbers)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]

    def line(cells: list[str]) -> str:
        parts = [
            str(cell).rjust(width) if i in right else str(cell).ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _slo_text(value: float | None, slo: float | None, digits: int) -> str:
    return f"{_number(value, digits)} / {_number(slo, digits)}"


def model_rows(plan: Plan, models: ModelsFile | None) -> list[list[str]]:
    """One row per model and replica configuration. TTFT is predicted at the planned demand (each
    replica at its traffic weight's share): at full capacity it equals the SLO by construction."""
    slo = {m.name: m.slo for m in models.models} if models is not None else {}
    configs: dict[str, dict[tuple[str, str, int], list[float]]] = defaultdict(lambda: defaultdict(list))
    for replica in plan.replicas:
        key = (replica.gpu_type, replica.precision, replica.tensor_parallel)
        configs[replica.model][key].append(replica.capacity_requests_per_second)
    rows = []
    for entry in plan.models:
        target = slo.get(entry.name)
        groups = sorted(configs.get(entry.name, {}).items()) or [(("-", "-", 0), [])]
        for position, ((gpu_type, precision, tp), capacities) in enumerate(groups):
            first = position == 0
            rows.append(
                [
                    entry.name if first else "",
                    ("yes" if entry.served else "NO") if first else "",
                    gpu_type,
                    precision,
                    str(tp) if tp else "-",
                    str(len(capacities)),
                    f"{sum(capacities):.2f}" if capacities else "-",
                    f"{entry.demand_requests_per_second:g}" if first else "",
                    _slo_text(entry.ttft_at_demand_ms, target.ttft_ms if target else None, 0) if first else "",
                    _slo_text(entry.tpot_ms, target.tpot_ms if target else None, 1) if first else "",
                ]
            )
    return rows


def pool_rows(plan: Plan, pools: list[ResolvedPool] | None) -> list[list[str]]:
    """One row per pool; without the fleet (a saved plan shown alone) only the pools the plan uses,
    and nodes used without the pool's size."""
    nodes_of: dict[str, list] = defaultdict(list)
    for node in plan.nodes:
        nodes_of[node.pool].append(node)
    node_pool = {node.name: node.pool for node in plan.nodes}
    gpus_used: dict[str, int] = defaultdict(int)
    for replica in plan.replicas:
        gpus_used[node_pool.get(replica.node, "")] += len(replica.gpu_indices)
    rows = []
    if pools is None:
        for name, nodes in nodes_of.items():
            rows.append(
                [
                    name,
                    nodes[0].zone,
                    nodes[0].gpu_type,
                    "-",
                    str(len(nodes)),
                    f"{gpus_used.get(name, 0)}/{sum(node.gpus for node in nodes)}",
                    f"{sum(node.hourly_cost for node in nodes):,.2f}",
                ]
            )
        return rows
    for pool in pools:
        used = len(nodes_of.get(pool.name, []))
        rows.append(
            [
                pool.name,
                pool.zone,
                pool.gpu_type.name,
                "fixed" if pool.fixed else "cloud",
                f"{used}/{len(pool.node_names)}",
                f"{gpus_used.get(pool.name, 0)}/{used * pool.gpus_per_node}",
                f"{used * pool.node_hourly_cost:,.2f}",
            ]
        )
    return rows


def node_rows(plan: Plan) -> list[list[str]]:
    """Every node the plan runs, GPU index by GPU index: which replica holds it. Replicas are
    numbered per model in the plan's order (`llama-8b#2` is its second replica); a TP>1 replica
    holds several GPUs of one node, shown as one row with the index range."""
    label: dict[tuple[str, int], str] = {}
    config: dict[tuple[str, int], str] = {}
    count: dict[str, int] = defaultdict(int)
    for replica in plan.replicas:
        count[replica.model] += 1
        for gpu in replica.gpu_indices:
            label[(replica.node, gpu)] = f"{replica.model}#{count[replica.model]}"
            config[(replica.node, gpu)] = f"{replica.precision} TP{replica.tensor_parallel}"
    rows = []
    for node in sorted(plan.nodes, key=lambda n: (n.pool, n.name)):
        # Consecutive GPUs of one replica (or free ones) share a row: "0-7  chat-70b#1".
        runs: list[list] = []
        for gpu in range(node.gpus):
            holder = label.get((node.name, gpu), "(free)")
            if runs and runs[-1][2] == holder and runs[-1][1] == gpu - 1:
                runs[-1][1] = gpu
            else:
                runs.append([gpu, gpu, holder, config.get((node.name, gpu), "")])
        for position, (low, high, holder, settings) in enumerate(runs):
            first = position == 0
            rows.append(
                [
                    node.name if first else "",
                    node.pool if first else "",
                    node.zone if first else "",
                    node.gpu_type if first else "",
                    str(low) if low == high else f"{low}-{high}",
                    holder,
                    settings,
                ]
            )
    return rows


def render_tables(
    plan: Plan, fleet: Fleet | None, models: ModelsFile | None, pools: list[ResolvedPool] | None
) -> str:
    """The plan as tables; `fleet`, `models` and `pools` are None when a saved plan is shown alone
    (then SLOs and pool sizes are not known and print as '-')."""
    sections = [
        "Models",
        table(
            ["model", "served", "GPU type", "precision", "TP", "replicas", "capacity rps", "demand rps",
             "TTFT ms at demand / SLO", "TPOT ms / SLO"],
            model_rows(plan, models),
            right={4, 5, 6, 7, 8, 9},
        ),
        "",
        "Pools",
        table(
            ["pool", "zone", "GPU type", "kind", "nodes used", "GPUs used", "cost $/h"],
            pool_rows(plan, pools),
            right={4, 5, 6},
        ),
        "",
        "Nodes",
        table(["node", "pool", "zone", "GPU type", "GPU", "replica", "precision, TP"], node_rows(plan), right={4}),
        "",
        "Totals",
        table(
            ["cost $/h", "lower bound $/h", "gap", "status", "solve s"],
            [[
                f"{plan.cost_per_hour:,.2f}",
                f"{plan.lower_bound_per_hour:,.2f}",
                f"{plan.gap * 100:.2f}%",
                plan.status,
                f"{plan.solve_seconds:.2f}",
            ]],
            right={0, 1, 2, 4},
        ),
    ]
    if plan.unplaced:
        sections += ["", "Unplaced", table(["model", "reason"], [[u.model, u.reason] for u in plan.unplaced])]
    return "\n".join(sections)
