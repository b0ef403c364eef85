# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Logic of the placement_plan module: inputs, planning, idempotent plan.json, summary.

Runs on the controller and imports the `llmops` package. Nothing here imports Ansible: the
module hands in plain parameters and gets back a result dict, so this file is tested directly.
"""

from __future__ import annotations

import json
import os
import tempfile
import traceback

try:
    from llmops.planning import check_inputs, make_plan, validate_plan
    from llmops.planning.fleet import resolve_inputs
    from llmops.planning.replan import replan
    from llmops.planning.result import Plan
    from llmops.planning.spec import InputError, read_fleet, read_models

    HAS_LLMOPS = True
    LLMOPS_IMPORT_ERROR = None
except ImportError:
    HAS_LLMOPS = False
    LLMOPS_IMPORT_ERROR = traceback.format_exc()


# Fields that change from run to run without the plan itself changing.
VOLATILE_FIELDS = ("solve_seconds",)


class PlanValidationError(Exception):
    """The computed plan broke a constraint: a planner defect, never written to dest."""

    def __init__(self, violations):
        super().__init__("\n".join(violations))
        self.violations = violations


def _with_base_dir(models: dict, base_dir: str | None) -> dict:
    """Resolve relative hf_config paths the way the CLI does for a models file's folder."""
    if not base_dir or not isinstance(models, dict) or not isinstance(models.get("models"), list):
        return models
    entries = []
    for entry in models["models"]:
        if isinstance(entry, dict) and isinstance(entry.get("hf_config"), str):
            entry = dict(entry, hf_config=os.path.join(base_dir, entry["hf_config"]))
        entries.append(entry)
    return dict(models, models=entries)


def load_placement_inputs(params: dict):
    """(Fleet, ModelsFile) from the module's fleet/fleet_file and models/models_file options.

    Raises InputError with every problem of both inputs, one `<file or option>: field.path: message`
    line each (the option name, fleet or models, when the data was given inline).
    """
    fleet_file, models_file = params.get("fleet_file"), params.get("models_file")
    return check_inputs(
        (lambda: read_fleet(fleet_file)) if fleet_file else (lambda: params["fleet"]),
        fleet_file or "fleet",
        (lambda: read_models(models_file))
        if models_file
        else (lambda: _with_base_dir(params["models"], params.get("hf_config_dir"))),
        models_file or "models",
    )


def fleet_reality_warnings(pools, gpu_facts: dict | None) -> list[str]:
    """Where hosts' gpu_facts disagree with what the fleet declares for them."""
    warnings: list[str] = []
    for pool in pools:
        for node in pool.node_names:
            facts = (gpu_facts or {}).get(node)
            if not isinstance(facts, dict):
                continue
            count = facts.get("gpu_count")
            if count is not None and int(count) != pool.gpus_per_node:
                warnings.append(
                    f"host {node}: pool {pool.name} declares {pool.gpus_per_node} GPUs per node "
                    f"but gpu_facts reports {count}"
                )
            gpu_type = facts.get("gpu_type")
            if "gpu_type" in facts and count != 0 and gpu_type != pool.gpu_type.name:
                warnings.append(
                    f"host {node}: pool {pool.name} declares {pool.gpu_type.name} "
                    f"but gpu_facts reports {gpu_type or 'an unrecognised GPU'}"
                )
    return warnings


def comparable(plan: dict) -> dict:
    return {key: value for key, value in plan.items() if key not in VOLATILE_FIELDS}


def read_existing_plan(dest: str) -> dict | None:
    try:
        with open(dest, encoding="utf-8") as handle:
            existing = json.load(handle)
    except (OSError, ValueError):
        return None
    return existing if isinstance(existing, dict) else None


def plan_summary(plan: dict) -> dict:
    """What a run log should show: status, cost, bound, nodes per pool, each model's configuration."""
    nodes_per_pool: dict[str, int] = {}
    for node in plan["nodes"]:
        nodes_per_pool[node["pool"]] = nodes_per_pool.get(node["pool"], 0) + 1
    configs: dict[str, dict[str, int]] = {}
    for replica in plan["replicas"]:
        label = f"{replica['gpu_type']} {replica['precision']} TP{replica['tensor_parallel']}"
        per_model = configs.setdefault(replica["model"], {})
        per_model[label] = per_model.get(label, 0) + 1
    models = {}
    for entry in plan["models"]:
        if not entry["served"]:
            continue
        mix = " + ".join(f"{count} x {label}" for label, count in sorted(configs.get(entry["name"], {}).items()))
        models[entry["name"]] = (
            f"{mix} ({entry['capacity_requests_per_second']:.2f} rps for "
            f"{entry['demand_requests_per_second']:g} rps demand)"
        )
    cost = plan["cost_per_hour"]
    gap = 0.0 if cost <= 0 else max(0.0, (cost - plan["lower_bound_per_hour"]) / cost)
    return {
        "status": plan["status"],
        "cost_per_hour": round(cost, 2),
        "lower_bound_per_hour": round(plan["lower_bound_per_hour"], 2),
        "gap_percent": round(gap * 100, 2),
        "nodes_per_pool": nodes_per_pool,
        "models": models,
        "unplaced": {item["model"]: item["reason"] for item in plan["unplaced"]},
    }


def summary_text(plan: dict | None) -> str:
    if plan is None:
        return ""
    summary = plan_summary(plan)
    lines = [
        f"status: {summary['status']}",
        f"cost_per_hour: {summary['cost_per_hour']}",
        f"lower_bound_per_hour: {summary['lower_bound_per_hour']}",
    ]
    lines += [f"pool {pool}: {count} nodes" for pool, count in sorted(summary["nodes_per_pool"].items())]
    lines += [f"model {name}: {text}" for name, text in sorted(summary["models"].items())]
    lines += [f"unplaced {name}: {reason}" for name, reason in sorted(summary["unplaced"].items())]
    return "\n".join(lines) + "\n"


def write_plan(dest: str, plan: dict) -> None:
    """Write atomically so a reader never sees half a plan."""
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".plan-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(plan, out, indent=2)
            out.write("\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, dest)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# The replanner names its inputs as the command line does; the module names its options.
_OPTION_NAMES = (("--failed-node:", "failed_nodes:"), ("--failed-zone:", "failed_zones:"), ("--current:", "current_plan:"))


def replan_from(params: dict, fleet, models):
    """Replan from the running plan in current_plan after failed_nodes/failed_zones or input changes."""
    path = params["current_plan"]
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise InputError([f"current_plan: cannot read {path} ({exc.strerror or exc})"]) from exc
    except ValueError as exc:
        raise InputError([f"current_plan: {path} is not valid JSON ({exc})"]) from exc
    try:
        current = Plan.model_validate(document)
    except ValueError as exc:
        raise InputError([f"current_plan: {path} is not a plan document"]) from exc
    try:
        return replan(
            current,
            fleet,
            models,
            failed_nodes=params.get("failed_nodes") or [],
            failed_zones=params.get("failed_zones") or [],
            cost_tolerance=params.get("cost_tolerance", 0.02),
            time_limit_s=params["time_limit"],
        )
    except InputError as exc:
        problems = []
        for line in exc.problems:
            for cli, option in _OPTION_NAMES:
                line = line.replace(cli, option, 1) if line.startswith(cli) else line
            problems.append(line)
        raise InputError(problems) from exc


def run_placement(params: dict, check_mode: bool) -> dict:
    """Plan, validate and (unless in check mode) write dest when the plan changed.

    Returns changed, plan, summary, diff and warnings. Raises InputError for bad input and
    PlanValidationError if the planner produced a plan that breaks its inputs; nothing is
    written in either case.
    """
    fleet, models = load_placement_inputs(params)
    pools, _ = resolve_inputs(fleet, models)
    warnings = fleet_reality_warnings(pools, params.get("gpu_facts"))

    replanned = None
    if params.get("current_plan"):
        replanned = replan_from(params, fleet, models)
        plan_model = replanned.plan
    else:
        plan_model = make_plan(fleet, models, time_limit_s=params["time_limit"])
    # A replanned plan is judged against the fleet without the lost nodes.
    violations = validate_plan(plan_model, replanned.fleet if replanned else fleet, models)
    if violations:
        raise PlanValidationError(violations)
    plan = plan_model.to_json_dict()
    warnings += [f"model {u['model']} is not placed: {u['reason']}" for u in plan["unplaced"]]

    dest = params.get("dest")
    existing = read_existing_plan(dest) if dest else None
    changed = bool(dest) and (existing is None or comparable(existing) != comparable(plan))
    if changed and not check_mode:
        write_plan(dest, plan)
    extra = {}
    if replanned is not None:
        document = replanned.to_json_dict()
        extra = {"moves": document["moves"], "replan": document["summary"]}
    return {
        **extra,
        "changed": changed,
        "plan": plan,
        "summary": plan_summary(plan),
        "diff": {
            "before": summary_text(existing),
            "after": summary_text(plan),
            "before_header": dest or "plan",
            "after_header": dest or "plan",
        },
        "warnings": warnings,
    }
