"""Replanning benchmark: from a plan, lose one node (and separately one zone), replan with minimal moves.

    python benchmarks/replan.py --size large --seed 5 --plan-time-limit 60 --replan-time-limit 5

For each loss: replan wall-clock seconds (in this process, right after planning, so the replica
options are cached; and "cold s": the same replan in a fresh process, options derived from
scratch, imports and input generation not counted), which path ran (the incremental repair, or
the full replan and why the repair declined), replicas lost, started and stopped (moves), the
repaired plan's cost, the cost of a fresh plan on the remaining fleet (the optimiser with the plan
time limit) and the difference. The lost node is the plan's busiest node; the lost zone the one
whose nodes hold the most replicas. Every repaired plan is checked by the validator against the
fleet without the lost nodes before it is counted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generator import SIZES, generate

from llmops.planning import validate_plan
from llmops.planning.replan import DEFAULT_COST_TOLERANCE, replan
from llmops.planning.result import Plan
from llmops.planning.solver import solve

COLUMNS = (
    ("size", 18),
    ("seed", 4),
    ("loss", 22),
    ("replan s", 8),
    ("cold s", 6),
    ("path", 11),
    ("lost", 5),
    ("started", 7),
    ("stopped", 7),
    ("moves/lost", 10),
    ("replan $/h", 11),
    ("fresh $/h", 10),
    ("vs fresh", 8),
    ("valid", 5),
)


def run(size: str, seed: int, plan_time_limit: float, replan_time_limit: float, tolerance: float) -> list[dict]:
    fleet, models = generate(size, seed)
    nodes = sum(len(pool.node_names()) for pool in fleet.pools)
    current = solve(fleet, models, time_limit_s=plan_time_limit)
    replicas_per_node = Counter(r.node for r in current.replicas)
    zone_of = {n.name: n.zone for n in current.nodes}
    replicas_per_zone = Counter(zone_of[r.node] for r in current.replicas)
    node = max(sorted(replicas_per_node), key=replicas_per_node.get)
    zone = max(sorted(replicas_per_zone), key=replicas_per_zone.get)
    rows = []
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as plan_file:
        plan_file.write(json.dumps(current.to_json_dict()))
    for label, failed_nodes, failed_zones in ((f"node {node}", [node], []), (f"zone {zone}", [], [zone])):
        started = time.monotonic()
        result = replan(current, fleet, models, failed_nodes=failed_nodes, failed_zones=failed_zones,
                        cost_tolerance=tolerance, time_limit_s=replan_time_limit)
        seconds = time.monotonic() - started
        first = result.report.stages[0] if result.report.stages else None
        path = "incremental" if first is not None and first.name.startswith("incremental repair:") else "full"
        if path == "full" and first is not None:
            print(f"  {size} seed {seed} {label}: full replan because {first.message}", file=sys.stderr)
        cold = subprocess.run(
            [sys.executable, __file__, "--cold", plan_file.name, "--size", size, "--seed", str(seed),
             "--replan-time-limit", str(replan_time_limit), "--cost-tolerance", str(tolerance),
             *[f"--failed-node={n}" for n in failed_nodes], *[f"--failed-zone={z}" for z in failed_zones]],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        problems = validate_plan(result.plan, result.fleet, models)
        for problem in problems[:5]:
            print(f"  {size} seed {seed} {label}: invalid: {problem}", file=sys.stderr)
        fresh = solve(result.fleet, models, time_limit_s=plan_time_limit)
        lost = result.count("lost")
        moves = result.count("start") + result.count("stop")
        rows.append({
            "size": f"{nodes}x{len(models.models)} ({size})",
            "seed": str(seed),
            "loss": label[:22],
            "replan s": f"{seconds:.1f}",
            "cold s": f"{float(cold):.1f}",
            "path": path,
            "lost": str(lost),
            "started": str(result.count("start")),
            "stopped": str(result.count("stop")),
            "moves/lost": f"{moves / lost:.2f}" if lost else "-",
            "replan $/h": f"{result.plan.cost_per_hour:,.2f}",
            "fresh $/h": f"{fresh.cost_per_hour:,.2f}",
            "vs fresh": f"{result.plan.cost_per_hour / fresh.cost_per_hour - 1:+.1%}" if fresh.cost_per_hour else "-",
            "valid": "yes" if not problems else "NO",
        })
    Path(plan_file.name).unlink()
    return rows


def cold_replan(args: argparse.Namespace) -> int:
    """One replan in this fresh process; prints its seconds (inputs generated before the clock starts)."""
    fleet, models = generate(args.size, args.seed)
    current = Plan.model_validate(json.loads(Path(args.cold).read_text()))
    started = time.monotonic()
    replan(current, fleet, models, failed_nodes=args.failed_node, failed_zones=args.failed_zone,
           cost_tolerance=args.cost_tolerance, time_limit_s=args.replan_time_limit)
    print(f"{time.monotonic() - started:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=sorted(SIZES))
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--plan-time-limit", type=float, default=60.0, help="seconds for the plan and the fresh plan")
    parser.add_argument("--replan-time-limit", type=float, default=5.0, help="seconds for the replan (default 5)")
    parser.add_argument("--cost-tolerance", type=float, default=DEFAULT_COST_TOLERANCE)
    parser.add_argument("--cold", metavar="PLAN", help=argparse.SUPPRESS)
    parser.add_argument("--failed-node", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--failed-zone", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold:
        return cold_replan(args)
    print("| " + " | ".join(name.ljust(width) for name, width in COLUMNS) + " |")
    print("|" + "|".join("-" * (width + 2) for _, width in COLUMNS) + "|")
    for row in run(args.size, args.seed, args.plan_time_limit, args.replan_time_limit, args.cost_tolerance):
        print("| " + " | ".join(row[name].ljust(width) for name, width in COLUMNS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
