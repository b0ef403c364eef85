"""`llmops validate`: check a plan.json against its fleet and models files.

Exit codes: 0 the plan is valid; 1 violations (one line each); 2 invalid input (the fleet or
models file, or a plan file that cannot be read as JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llmops.planning import load_inputs, validate_plan
from llmops.planning.spec import InputError

from .plan import EXIT_INVALID_PLAN, EXIT_OK, report_invalid_input


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a plan against its fleet and models files",
        description=(
            "Check every constraint of a plan (nodes, cost, GPUs, memory, capacity, SLOs, spread, "
            "unplaced models) against the inputs, independently of how the plan was made. "
            "Exit 0: valid; 1: violations listed; 2: invalid input."
        ),
    )
    parser.add_argument("--fleet", required=True, type=Path, help="fleet file (YAML, top-level key pools)")
    parser.add_argument("--models", required=True, type=Path, help="models file (YAML, top-level key models)")
    parser.add_argument("--plan", required=True, type=Path, help="plan JSON written by `llmops plan --output`")
    parser.set_defaults(handler=run)


def read_plan(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError([f"{path}: cannot read ({exc.strerror or exc})"]) from exc
    except json.JSONDecodeError as exc:
        raise InputError([f"{path}: not valid JSON ({exc})"]) from exc


def run(args: argparse.Namespace) -> int:
    try:
        fleet, models = load_inputs(args.fleet, args.models)
        plan = read_plan(args.plan)
        violations = validate_plan(plan, fleet, models)
    except InputError as exc:
        return report_invalid_input(exc.problems)
    if violations:
        print(f"{args.plan}: {len(violations)} violations", file=sys.stderr)
        for line in violations:
            print(f"  {line}", file=sys.stderr)
        return EXIT_INVALID_PLAN
    print(f"{args.plan}: valid")
    return EXIT_OK
