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

from llmops.planning import load_inputs, make_plan, validate_plan
from llmops.planning.explain import render_explanation
from llmops.planning.fleet import ResolvedPool, resolve_inputs
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
    parser.add_argument("--fleet", required=True, type=Path, help="fleet file (YAML, top-level key pools)")
    parser.add_argument("--models", required=True, type=Path, help="models file (YAML, top-level key models)")
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


def run(args: argparse.Namespace) -> int:
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


def model_rows(plan: Plan, models: ModelsFile) -> list[list[str]]:
    slo = {m.name: m.slo for m in models.models}
    entries = {m.name: m for m in plan.models}
    configs: dict[str, dict[tuple[str, str, int], list[float]]] = defaultdict(lambda: defaultdict(list))
    for replica in plan.replicas:
        key = (replica.gpu_type, replica.precision, replica.tensor_parallel)
        configs[replica.model][key].append(replica.capacity_requests_per_second)
    rows = []
    for deployment in models.models:
        entry = entries.get(deployment.name)
        served = entry is not None and entry.served
        groups = sorted(configs.get(deployment.name, {}).items()) or [(("-", "-", 0), [])]
        for position, ((gpu_type, precision, tp), capacities) in enumerate(groups):
            first = position == 0
            rows.append(
                [
                    deployment.name if first else "",
                    ("yes" if served else "NO") if first else "",
                    gpu_type,
                    precision,
                    str(tp) if tp else "-",
                    str(len(capacities)),
                    f"{sum(capacities):.2f}" if capacities else "-",
                    f"{deployment.traffic.requests_per_second:g}" if first else "",
                    f"{_number(entry.ttft_ms if entry else None, 0)} / {_number(slo[deployment.name].ttft_ms, 0)}"
                    if first
                    else "",
                    f"{_number(entry.tpot_ms if entry else None, 1)} / {_number(slo[deployment.name].tpot_ms, 1)}"
                    if first
                    else "",
                ]
            )
    return rows


def pool_rows(plan: Plan, pools: list[ResolvedPool]) -> list[list[str]]:
    nodes_of: dict[str, list[str]] = defaultdict(list)
    for node in plan.nodes:
        nodes_of[node.pool].append(node.name)
    node_pool = {node.name: node.pool for node in plan.nodes}
    gpus_used: dict[str, int] = defaultdict(int)
    for replica in plan.replicas:
        gpus_used[node_pool.get(replica.node, "")] += len(replica.gpu_indices)
    rows = []
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


def render_tables(plan: Plan, fleet: Fleet, models: ModelsFile, pools: list[ResolvedPool]) -> str:
    sections = [
        "Models",
        table(
            ["model", "served", "GPU type", "precision", "TP", "replicas", "capacity rps", "demand rps",
             "TTFT ms / SLO", "TPOT ms / SLO"],
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
