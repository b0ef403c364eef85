"""Replanning with minimal moves: `llmops.planning.replan` and `llmops replan`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from llmops.cli import main
from llmops.planning import validate_plan
from llmops.planning.replan import replan
from llmops.planning.result import Plan
from llmops.planning.solver import solve
from llmops.planning.spec import InputError, parse_fleet, parse_models

EXAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "example" / "group_vars" / "all"
FLEET_DATA = yaml.safe_load((EXAMPLE / "fleet.yml").read_text())
MODELS_DATA = yaml.safe_load((EXAMPLE / "models.yml").read_text())
for _entry in MODELS_DATA["models"]:  # relative to the models file, as load_models resolves them
    if "hf_config" in _entry:
        _entry["hf_config"] = str((EXAMPLE / _entry["hf_config"]).resolve())
FLEET, MODELS = parse_fleet(copy.deepcopy(FLEET_DATA)), parse_models(copy.deepcopy(MODELS_DATA))


@pytest.fixture(scope="module")
def current() -> Plan:
    return solve(FLEET, MODELS, time_limit_s=4)


def busiest_node(plan: Plan) -> str:
    counts: dict[str, int] = {}
    for replica in plan.replicas:
        counts[replica.node] = counts.get(replica.node, 0) + 1
    return max(sorted(counts), key=counts.get)


def placed(plan: Plan) -> set[tuple[str, str, tuple[int, ...]]]:
    return {(r.model, r.node, tuple(r.gpu_indices)) for r in plan.replicas}


def test_losing_a_node_keeps_every_other_replica_and_replaces_only_the_lost(current):
    node = busiest_node(current)
    lost = [r for r in current.replicas if r.node == node]
    # A generous tolerance: the fixture plan may be above the optimum on a loaded machine, and a
    # tight cap would then rightly stop running replicas to save money.
    result = replan(current, FLEET, MODELS, failed_nodes=[node], time_limit_s=4, cost_tolerance=1.0)
    assert validate_plan(result.plan, result.fleet, MODELS) == []
    assert node not in {r.node for r in result.plan.replicas}
    # Every replica that did not sit on the lost node is still where it was.
    survivors = {(r.model, r.node, tuple(r.gpu_indices)) for r in current.replicas if r.node != node}
    assert survivors <= placed(result.plan)
    assert result.count("lost") == len(lost) and result.count("stop") == 0
    assert result.count("start") <= len(lost) + max(1, len(lost) // 10)
    assert result.plan.cost_per_hour <= (1 + result.cost_tolerance) * result.reference_cost_per_hour + 1e-6


def test_losing_a_zone_leaves_a_valid_survivable_plan_outside_it(current):
    result = replan(current, FLEET, MODELS, failed_zones=["us-east-1b"], time_limit_s=4)
    assert validate_plan(result.plan, result.fleet, MODELS) == []
    # A lost zone is not repaired around the kept replicas: the full replan may move them.
    assert result.report.stages[0].status == "declined"
    assert result.report.stages[0].message == "a lost zone is replanned in full"
    assert all(n.zone != "us-east-1b" for n in result.plan.nodes)
    assert result.count("lost") == sum(1 for r in current.replicas if r.node.startswith(("h100-use1b", "h200-use1b",
                                                                                         "l40s-use1b", "l4-use1b",
                                                                                         "a10g-use1b")))


def test_nothing_changed_means_no_moves(current):
    result = replan(current, FLEET, MODELS, time_limit_s=4)
    assert result.count("start") == result.count("stop") == result.count("lost") == 0
    assert placed(result.plan) == placed(current)


def test_higher_demand_starts_replicas_and_keeps_the_running_ones(current):
    models = copy.deepcopy(MODELS_DATA)
    target = models["models"][0]
    target["traffic"]["requests_per_second"] *= 3
    models_file = parse_models(models)
    result = replan(current, FLEET, models_file, time_limit_s=4)
    assert validate_plan(result.plan, result.fleet, models_file) == []
    assert result.count("start") >= 1 and result.count("keep") >= 1
    assert result.plan.cost_per_hour <= (1 + result.cost_tolerance) * result.reference_cost_per_hour + 1e-6


def test_moves_start_before_they_stop(current):
    document = replan(current, FLEET, MODELS, failed_nodes=[busiest_node(current)], time_limit_s=4).to_json_dict()
    actions = [m["action"] for m in document["moves"]]
    assert "start" in actions
    assert actions.index("start") < min(i for i, a in enumerate(actions) if a != "start")
    assert set(document["summary"]) >= {"kept", "started", "stopped", "lost", "cost_per_hour", "reference_cost_per_hour"}


def test_a_failed_node_or_zone_the_fleet_lacks_is_rejected(current):
    with pytest.raises(InputError) as raised:
        replan(current, FLEET, MODELS, failed_nodes=["no-such-node"], failed_zones=["mars-1"])
    problems = raised.value.problems
    assert any(p.startswith("--failed-node: 'no-such-node' is not a node of the fleet") for p in problems)
    assert any(p.startswith("--failed-zone: 'mars-1' is not a zone of the fleet; accepted: dc1-row2") for p in problems)


def test_a_plan_for_another_fleet_is_rejected(current):
    other = copy.deepcopy(FLEET_DATA)
    for pool in other["pools"]:
        if pool["name"] == "dgx-rack1":
            pool["gpu_type"] = "H100-SXM-80GB"
    with pytest.raises(InputError) as raised:
        replan(current, parse_fleet(other), MODELS)
    assert any("the plan is for another fleet" in p for p in raised.value.problems)


def test_cli_replan_writes_the_plan_and_the_moves_and_rejects_bad_input(tmp_path, current, capsys):
    fleet_path, models_path = tmp_path / "fleet.yml", tmp_path / "models.yml"
    fleet_path.write_text(yaml.safe_dump(FLEET_DATA))
    models_path.write_text(yaml.safe_dump(MODELS_DATA))
    current_path = tmp_path / "plan.json"
    current_path.write_text(json.dumps(current.to_json_dict()))
    base = ["replan", "--current", str(current_path), "--fleet", str(fleet_path), "--models", str(models_path),
            "--time-limit", "4"]
    code = main([*base, "--failed-node", busiest_node(current), "--output", str(tmp_path / "new.json"),
                 "--moves", str(tmp_path / "moves.json")])
    printed = capsys.readouterr().out
    assert code == 0 and "Moves (applied in this order: starts, then stops)" in printed
    assert json.loads((tmp_path / "new.json").read_text())["status"] in ("feasible", "partial")
    assert json.loads((tmp_path / "moves.json").read_text())["summary"]["lost"] >= 1

    assert main([*base, "--failed-node", "ghost-7"]) == 2
    assert "--failed-node: 'ghost-7' is not a node of the fleet" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text('{"status": "optimal"}')
    broken = [*base[:2], str(tmp_path / "broken.json"), *base[3:]]
    assert main(broken) == 2
    assert "is not a plan document" in capsys.readouterr().err


# -- the incremental repair (one or a few nodes lost, nothing else changed) --------------------


def test_a_lost_node_is_repaired_incrementally_and_no_surviving_replica_moves(current):
    node = busiest_node(current)
    lost = [r for r in current.replicas if r.node == node]
    # On this small fleet a lost node costs a new node of another price: more than 2% of the plan.
    result = replan(current, FLEET, MODELS, failed_nodes=[node], time_limit_s=4, cost_tolerance=0.5)
    assert result.report.stages[0].name.startswith("incremental repair:"), result.report.summary()
    assert validate_plan(result.plan, result.fleet, MODELS) == []
    survivors = [r for r in current.replicas if r.node != node]
    # Exactly where they ran: same node, GPUs, precision and degree, and nothing stopped.
    running = {(r.model, r.node, tuple(r.gpu_indices), r.precision, r.tensor_parallel) for r in survivors}
    new = {(r.model, r.node, tuple(r.gpu_indices), r.precision, r.tensor_parallel) for r in result.plan.replicas}
    assert running <= new
    assert result.count("keep") == len(survivors) and result.count("stop") == 0
    assert result.count("lost") == len(lost) >= 1
    # Only models that lost a replica get new ones.
    assert {m.model for m in result.moves if m.action == "start"} <= {r.model for r in lost}
    # The cap's base is the running plan's cost before the loss.
    assert result.reference_cost_per_hour == pytest.approx(current.cost_per_hour)
    assert result.plan.cost_per_hour <= (1 + result.cost_tolerance) * result.reference_cost_per_hour + 1e-6


def test_losing_two_nodes_of_one_model_still_keeps_every_other_replica(current):
    by_model: dict[str, list[str]] = {}
    for r in current.replicas:
        by_model.setdefault(r.model, []).append(r.node)
    _, nodes = max(sorted(by_model.items()), key=lambda item: len(set(item[1])))
    failed = sorted(set(nodes))[:2]
    result = replan(current, FLEET, MODELS, failed_nodes=failed, time_limit_s=4, cost_tolerance=1.0)
    assert validate_plan(result.plan, result.fleet, MODELS) == []
    survivors = {(r.model, r.node, tuple(r.gpu_indices)) for r in current.replicas if r.node not in failed}
    assert survivors <= placed(result.plan)
    assert not set(failed) & {r.node for r in result.plan.replicas}


def test_a_changed_models_file_takes_the_full_replan(current):
    models = copy.deepcopy(MODELS_DATA)
    models["models"][0]["traffic"]["requests_per_second"] *= 3
    result = replan(current, FLEET, parse_models(models), failed_nodes=[busiest_node(current)], time_limit_s=4)
    assert result.report.stages[0].status == "declined"
    assert "demand changed" in result.report.stages[0].message


def test_a_repair_above_the_cost_cap_is_declined(current):
    # Zero tolerance: a repair dearer than the running plan is declined and the full replan
    # decides (it may move replicas); either way the plan is valid.
    node = busiest_node(current)
    result = replan(current, FLEET, MODELS, failed_nodes=[node], time_limit_s=4, cost_tolerance=0.0)
    first = result.report.stages[0]
    assert first.name.startswith("incremental repair")
    if first.status == "declined":
        assert "cap" in first.message
    assert validate_plan(result.plan, result.fleet, MODELS) == []


def test_bad_input_is_rejected_before_the_incremental_repair(current):
    with pytest.raises(InputError) as raised:
        replan(current, FLEET, MODELS, failed_nodes=[busiest_node(current), "ghost-node-9"])
    assert any("'ghost-node-9' is not a node of the fleet" in p for p in raised.value.problems)
    other = copy.deepcopy(FLEET_DATA)
    for pool in other["pools"]:
        pool["gpus_per_node"] = 3 if pool.get("gpus_per_node") != 3 else 5
    with pytest.raises(InputError) as raised:
        replan(current, parse_fleet(other), MODELS, failed_nodes=[busiest_node(current)])
    assert any("the plan is for another fleet" in p for p in raised.value.problems)
