"""Planner benchmark: our plan, its lower bound and gap, against the two baselines (and optionally the
best single GPU type), with the worst-case share of demand served after one zone/node loss.

    python benchmarks/run_planner.py --sizes small,medium,large --seeds 1-7 --time-limit 60

Every plan is checked by the independent validator (survivability and traffic weights included)
before its cost is printed; a plan that fails validation is reported as INVALID, never counted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generator import SIZES, generate

from llmops.planning import validate_plan
from llmops.planning.baselines import best_single_gpu_type, careful_heuristic, first_fit_decreasing
from llmops.planning.result import Plan
from llmops.planning.solver import solve_with_report
from llmops.planning.spec import ModelsFile, Spread

COLUMNS = (
    ("size", 18),
    ("seed", 4),
    ("our $/h", 10),
    ("bound $/h", 10),
    ("gap", 7),
    ("solve s", 7),
    ("FFD $/h", 10),
    ("heuristic $/h", 13),
    ("vs FFD", 7),
    ("vs heur.", 8),
    ("after loss: ours/FFD/heur.", 26),
)


def _cost(plan: Plan, problems: list[str]) -> str:
    if problems:
        return "INVALID"
    text = f"{plan.cost_per_hour:,.2f}"
    return text + (f" ({len(plan.unplaced)} unpl.)" if plan.unplaced else "")


def worst_served_after_loss(plan: Plan, models: ModelsFile) -> float:
    """Least share of demand any spread=zone (spread=node) model still serves after losing one of its
    zones (nodes): 1.0 means every spread model survives any single loss in full."""
    zone_of = {node.name: node.zone for node in plan.nodes}
    capacity: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    worst = 1.0
    deployments = {d.name: d for d in models.models}
    for replica in plan.replicas:
        deployment = deployments[replica.model]
        key = zone_of[replica.node] if deployment.spread == Spread.zone else replica.node
        capacity[replica.model][key] += replica.capacity_requests_per_second
    for name, by_place in capacity.items():
        deployment = deployments[name]
        if deployment.spread == Spread.none:
            continue
        total = sum(by_place.values())
        for lost in by_place.values():
            worst = min(worst, (total - lost) / deployment.traffic.requests_per_second)
    return min(worst, 1.0)


def _saving(ours: Plan, ours_ok: bool, other: Plan, other_ok: bool) -> str:
    if not (ours_ok and other_ok) or ours.unplaced or other.unplaced or other.cost_per_hour <= 0:
        return "n/a"
    return f"{1 - ours.cost_per_hour / other.cost_per_hour:.1%}"


def run_size(size: str, seed: int, time_limit_s: float, single_type: bool = False) -> dict[str, str]:
    fleet, models = generate(size, seed)
    nodes = sum(len(pool.node_names()) for pool in fleet.pools)
    started = time.monotonic()
    plan, report = solve_with_report(fleet, models, time_limit_s=time_limit_s)
    elapsed = time.monotonic() - started
    ours = validate_plan(plan, fleet, models)
    ffd = first_fit_decreasing(fleet, models)
    ffd_problems = validate_plan(ffd, fleet, models)
    heuristic = careful_heuristic(fleet, models)
    heuristic_problems = validate_plan(heuristic, fleet, models)
    checked = [("ours", ours), ("FFD", ffd_problems), ("heuristic", heuristic_problems)]
    row = {
        "size": f"{nodes}x{len(models.models)} ({size})",
        "seed": str(seed),
        "our $/h": _cost(plan, ours),
        "bound $/h": f"{plan.lower_bound_per_hour:,.2f}",
        "gap": f"{plan.gap:.2%}",
        "solve s": f"{elapsed:.1f}",
        "FFD $/h": _cost(ffd, ffd_problems),
        "heuristic $/h": _cost(heuristic, heuristic_problems),
        "vs FFD": _saving(plan, not ours, ffd, not ffd_problems),
        "vs heur.": _saving(plan, not ours, heuristic, not heuristic_problems),
        "after loss: ours/FFD/heur.": " / ".join(
            f"{worst_served_after_loss(p, models):.0%}" for p in (plan, ffd, heuristic)
        ),
    }
    if single_type:
        single = best_single_gpu_type(fleet, models, time_limit_s=time_limit_s)
        single_problems = validate_plan(single, fleet, models)
        checked.append(("single-type", single_problems))
        row["single-type $/h"] = _cost(single, single_problems)
    for label, problems in checked:
        for problem in problems[:5]:
            print(f"  {size} seed {seed} {label} plan invalid: {problem}", file=sys.stderr)
    # The 1-minute load average: the solves stop at the clock, so their plans depend on the load.
    print(f"  {size} seed {seed} (load {os.getloadavg()[0]:.1f}): {report.summary()}", file=sys.stderr)
    return row


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,medium,large", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--seeds", default="1", help="seeds, e.g. 1-7 or 1,5 (default 1)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per solve (default 60)")
    parser.add_argument("--single-type", action="store_true", help="also run the best-single-GPU-type optimiser")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size {', '.join(unknown)}; accepted: {', '.join(SIZES)}")
    columns = [*COLUMNS, *((("single-type $/h", 16),) if args.single_type else ())]
    print("| " + " | ".join(name.ljust(width) for name, width in columns) + " |")
    print("|" + "|".join("-" * (width + 2) for _, width in columns) + "|")
    for size in sizes:
        for seed in parse_seeds(args.seeds):
            row = run_size(size, seed, args.time_limit, args.single_type)
            print("| " + " | ".join(row[name].ljust(width) for name, width in columns) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
