"""`llmops replan`: repair a running plan with the fewest moves after a loss or an input change.

Exit codes as `llmops plan`: 0 every model served; 3 written but something unplaced; 2 invalid
input (the files, a current plan that is not a plan or is for another fleet, a failed node or
zone the fleet lacks); 1 the new plan failed the independent validator (nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from llmops.planning import load_inputs, validate_plan
from llmops.planning.replan import DEFAULT_COST_TOLERANCE, replan
from llmops.planning.result import Plan
from llmops.planning.spec import InputError

from .plan import EXIT_INVALID_PLAN, EXIT_OK, EXIT_UNPLACED, positive_seconds, report_invalid_input, table
from .validate import read_plan


def tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replan",
        help="repair a running plan with the fewest moves after a node/zone loss or an input change",
        description=(
            "Keep every replica of the current plan that is still valid where it is, and start and stop "
            "as few replicas as possible while the cost stays within --cost-tolerance of the optimiser's "
            "plan on the remaining fleet. Prints the moves in the order the rollout applies them: every "
            "start, then every stop. Exit 0: every model served; 3: something unplaced; 2: invalid input; "
            "1: the new plan failed validation."
        ),
    )
    parser.add_argument("--current", required=True, type=Path, help="the running plan (JSON from llmops plan)")
    parser.add_argument("--fleet", required=True, type=Path, help="fleet file (YAML), as it is now")
    parser.add_argument("--models", required=True, type=Path, help="models file (YAML), as it is now")
    parser.add_argument("--failed-node", action="append", default=[], metavar="NODE",
                        help="a node that is lost (repeatable)")
    parser.add_argument("--failed-zone", action="append", default=[], metavar="ZONE",
                        help="a zone that is lost (repeatable)")
    parser.add_argument("--cost-tolerance", type=tolerance, default=DEFAULT_COST_TOLERANCE,
                        help=f"allowed cost above the fresh plan's, as a fraction (default {DEFAULT_COST_TOLERANCE})")
    parser.add_argument("--time-limit", type=positive_seconds, default=30.0,
                        help="solver time limit in seconds (default 30)")
    parser.add_argument("--output", type=Path, help="write the new plan as JSON to this file")
    parser.add_argument("--moves", type=Path, help="write the summary, the ordered moves and the plan as JSON")
    parser.add_argument("--json", action="store_true", help="print the summary, moves and plan as JSON")
    parser.set_defaults(handler=run)


def load_current(path: Path) -> Plan:
    document = read_plan(path)
    try:
        return Plan.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputError([f"--current: {path} is not a plan document ({where}: {first['msg']})"]) from exc


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError([f"{path}: cannot write ({exc.strerror or exc})"]) from exc


def run(args: argparse.Namespace) -> int:
    try:
        fleet, models = load_inputs(args.fleet, args.models)
        current = load_current(args.current)
        result = replan(
            current,
            fleet,
            models,
            failed_nodes=args.failed_node,
            failed_zones=args.failed_zone,
            cost_tolerance=args.cost_tolerance,
            time_limit_s=args.time_limit,
        )
    except InputError as exc:
        return report_invalid_input(exc.problems)
    # Judged against the fleet without the lost nodes: survivability is about what is left.
    violations = validate_plan(result.plan, result.fleet, models)
    if violations:
        print("the new plan failed validation; nothing written:", file=sys.stderr)
        for line in violations:
            print(f"  {line}", file=sys.stderr)
        return EXIT_INVALID_PLAN
    document = json.dumps(result.to_json_dict(), indent=2) + "\n"
    try:
        if args.output is not None:
            _write(args.output, json.dumps(result.plan.to_json_dict(), indent=2) + "\n")
        if args.moves is not None:
            _write(args.moves, document)
    except InputError as exc:
        return report_invalid_input(exc.problems)
    if args.json:
        sys.stdout.write(document)
    else:
        summary = result.summary()
        print("Moves (applied in this order: starts, then stops)")
        rows = [
            [m["action"], m["model"], m["node"], ",".join(map(str, m["gpu_indices"])), m["precision"],
             str(m["tensor_parallel"])]
            for m in result.to_json_dict()["moves"]
            if m["action"] != "keep"
        ]
        print(table(["action", "model", "node", "GPUs", "precision", "TP"], rows or [["-"] * 6]))
        print("")
        print(table(
            ["kept", "started", "stopped", "lost", "cost $/h", "fresh plan $/h", "tolerance"],
            [[str(summary["kept"]), str(summary["started"]), str(summary["stopped"]), str(summary["lost"]),
              f"{summary['cost_per_hour']:,.2f}", f"{summary['reference_cost_per_hour']:,.2f}",
              f"{summary['cost_tolerance']:.0%}"]],
            right={0, 1, 2, 3, 4, 5, 6},
        ))
        if args.output is not None:
            print(f"\nplan written to {args.output}")
    return EXIT_UNPLACED if result.plan.unplaced else EXIT_OK
