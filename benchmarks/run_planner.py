"""Planner benchmark: our plan, its lower bound and gap, against first-fit-decreasing and best single GPU type.

    python benchmarks/run_planner.py --sizes small,medium,large --seed 1 --time-limit 60

Every plan is checked by the independent validator before its cost is printed; a plan that
fails validation is reported as such, never counted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generator import SIZES, generate

from llmops.planning import validate_plan
from llmops.planning.baselines import best_single_gpu_type, first_fit_decreasing
from llmops.planning.result import Plan
from llmops.planning.solver import solve_with_report

COLUMNS = (
    ("size", 18),
    ("our $/h", 10),
    ("bound $/h", 10),
    ("gap", 7),
    ("solve s", 8),
    ("status", 8),
    ("FFD $/h", 10),
    ("single-type $/h", 16),
    ("saving vs FFD", 14),
)


def _cost(plan: Plan, problems: list[str]) -> str:
    if problems:
        return "INVALID"
    text = f"{plan.cost_per_hour:,.2f}"
    return text + (f" ({len(plan.unplaced)} unpl.)" if plan.unplaced else "")


def run_size(size: str, seed: int, time_limit_s: float) -> dict[str, str]:
    fleet, models = generate(size, seed)
    nodes = sum(len(pool.node_names()) for pool in fleet.pools)
    started = time.monotonic()
    plan, report = solve_with_report(fleet, models, time_limit_s=time_limit_s)
    elapsed = time.monotonic() - started
    ours = validate_plan(plan, fleet, models)
    ffd = first_fit_decreasing(fleet, models)
    ffd_problems = validate_plan(ffd, fleet, models)
    single = best_single_gpu_type(fleet, models, time_limit_s=time_limit_s)
    single_problems = validate_plan(single, fleet, models)
    saving = "n/a"
    if not ours and not ffd_problems and not plan.unplaced and not ffd.unplaced and ffd.cost_per_hour > 0:
        saving = f"{1 - plan.cost_per_hour / ffd.cost_per_hour:.1%}"
    for label, problems in (("ours", ours), ("FFD", ffd_problems), ("single-type", single_problems)):
        for problem in problems[:5]:
            print(f"  {size} {label} plan invalid: {problem}", file=sys.stderr)
    print(f"  {size}: {report.summary()}", file=sys.stderr)
    return {
        "size": f"{nodes}x{len(models.models)} ({size})",
        "our $/h": _cost(plan, ours),
        "bound $/h": f"{plan.lower_bound_per_hour:,.2f}",
        "gap": f"{plan.gap:.2%}",
        "solve s": f"{elapsed:.1f}",
        "status": plan.status,
        "FFD $/h": _cost(ffd, ffd_problems),
        "single-type $/h": _cost(single, single_problems),
        "saving vs FFD": saving,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,medium,large", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per solve (default 60)")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size {', '.join(unknown)}; accepted: {', '.join(SIZES)}")
    header = " | ".join(name.ljust(width) for name, width in COLUMNS)
    print(f"| {header} |")
    print("|" + "|".join("-" * (width + 2) for _, width in COLUMNS) + "|")
    for size in sizes:
        row = run_size(size, args.seed, args.time_limit)
        print("| " + " | ".join(row[name].ljust(width) for name, width in COLUMNS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
