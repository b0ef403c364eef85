"""placement_plan: the real planner behind the module; check mode, diff, idempotence, bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.module_utils import placement
from ansible_collections.llmops.datacenter.plugins.modules import placement_plan

PROJECT_ROOT = Path(__file__).resolve().parents[8]
LAB = PROJECT_ROOT / "inventories" / "lab" / "group_vars" / "all"
EXAMPLE = PROJECT_ROOT / "inventories" / "example"
LAB_FLEET = yaml.safe_load((LAB / "fleet.yml").read_text())
# Two catalog models that fit the lab's simulated L4s with a choice of precision; written here
# rather than read from the lab, whose model must run on CPUs and so offers no such choice.
LAB_MODELS = yaml.safe_load("""
models:
  - name: qwen-7b
    architecture: qwen2.5-7b
    precisions: [int4, bf16]
    max_context_tokens: 4096
    traffic: {requests_per_second: 0.5, input_tokens: 512, output_tokens: 128}
    slo: {ttft_ms: 2000, tpot_ms: 100}
    spread: zone
    priority: 1
  - name: llama-8b
    architecture: llama-3.1-8b
    precisions: [fp8]
    max_context_tokens: 4096
    traffic: {requests_per_second: 0.5, input_tokens: 512, output_tokens: 128}
    slo: {ttft_ms: 2000, tpot_ms: 100}
    spread: zone
""")


@pytest.fixture
def run_module(run_module):
    """Run placement_plan with args; returns (result, warnings)."""

    def run(args: dict, check_mode: bool = False, diff: bool = False) -> tuple[dict, list[str]]:
        result = run_module(placement_plan, args, check_mode, diff)
        return result, result.pop("warnings")

    return run


def lab_args(dest: Path, **overrides) -> dict:
    args = {"fleet": copy.deepcopy(LAB_FLEET), "models": copy.deepcopy(LAB_MODELS), "time_limit": 10,
            "dest": str(dest)}
    args.update(overrides)
    return args


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_first_run_reports_changed_and_writes_only_outside_check_mode(run_module, tmp_path, check_mode):
    dest = tmp_path / "out" / "plan.json"
    result, warnings = run_module(lab_args(dest), check_mode=check_mode)
    assert result["changed"] is True
    assert "failed" not in result
    assert warnings == []
    assert result["plan"]["status"] == "optimal"
    assert {m["name"] for m in result["plan"]["models"] if m["served"]} == {"qwen-7b", "llama-8b"}
    assert result["summary"]["nodes_per_pool"] == {"lab-a": 1, "lab-b": 1}
    assert set(result["summary"]["models"]) == {"qwen-7b", "llama-8b"}
    assert dest.exists() is (not check_mode)
    if not check_mode:
        assert json.loads(dest.read_text()) == result["plan"]


def test_second_run_with_the_same_inputs_changes_nothing(run_module, tmp_path):
    dest = tmp_path / "plan.json"
    first, _ = run_module(lab_args(dest))
    written = dest.read_text()
    written_at = dest.stat().st_mtime_ns
    second, _ = run_module(lab_args(dest))
    assert first["changed"] is True and second["changed"] is False
    assert dest.read_text() == written and dest.stat().st_mtime_ns == written_at
    in_check_mode, _ = run_module(lab_args(dest), check_mode=True)
    assert in_check_mode["changed"] is False


def bf16_only_qwen() -> dict:
    models = copy.deepcopy(LAB_MODELS)
    models["models"][0]["precisions"] = ["bf16"]
    return models


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_changed_inputs_rewrite_the_plan_except_in_check_mode(run_module, tmp_path, check_mode):
    dest = tmp_path / "plan.json"
    run_module(lab_args(dest))
    before = dest.read_text()
    result, _ = run_module(lab_args(dest, models=bf16_only_qwen()), check_mode=check_mode)
    assert result["changed"] is True
    assert {r["precision"] for r in result["plan"]["replicas"] if r["model"] == "qwen-7b"} == {"bf16"}
    assert (dest.read_text() == before) is check_mode


def test_diff_mode_shows_the_summary_before_and_after(run_module, tmp_path):
    dest = tmp_path / "plan.json"
    result, _ = run_module(lab_args(dest), diff=True)
    assert result["diff"]["before"] == ""
    assert "status: optimal" in result["diff"]["after"]
    assert "pool lab-a: 1 nodes" in result["diff"]["after"]
    assert "model llama-8b: 2 x L4-24GB fp8 TP1" in result["diff"]["after"]
    again, _ = run_module(lab_args(dest, models=bf16_only_qwen()), diff=True)
    assert again["diff"]["before"] == result["diff"]["after"]
    assert "model qwen-7b: 2 x L4-24GB int4 TP1" in again["diff"]["before"]
    assert "model qwen-7b: 2 x L4-24GB bf16 TP1" in again["diff"]["after"]


def test_without_diff_mode_no_diff_is_returned(run_module, tmp_path):
    result, _ = run_module(lab_args(tmp_path / "plan.json"))
    assert "diff" not in result


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_bad_input_fails_naming_the_fields_and_leaves_dest_alone(run_module, tmp_path, check_mode):
    dest = tmp_path / "plan.json"
    dest.write_text('{"keep": "me"}\n')
    models = copy.deepcopy(LAB_MODELS)
    models["models"][1]["traffic"]["requests_per_second"] = 0
    fleet = copy.deepcopy(LAB_FLEET)
    fleet["pools"][0]["gpu_type"] = "RTX-4090"
    result, _ = run_module(lab_args(dest, fleet=fleet, models=models), check_mode=check_mode)
    assert result["failed"] is True
    # Both inputs' problems in one run, each naming the option it is in; the catalog check of the
    # fleet does not wait for the models document to be fixed.
    assert len(result["problems"]) == 2
    assert result["problems"][0].startswith("fleet: pools[0].gpu_type: unknown GPU type 'RTX-4090'; accepted:")
    assert "L4-24GB" in result["problems"][0]
    assert result["problems"][1] == "models: models[1].traffic.requests_per_second: must be > 0"
    assert result["msg"].startswith("invalid placement input:")
    assert dest.read_text() == '{"keep": "me"}\n'


def test_bad_input_creates_no_file(run_module, tmp_path):
    dest = tmp_path / "new" / "plan.json"
    fleet = copy.deepcopy(LAB_FLEET)
    del fleet["pools"][1]["gpu_type"]
    result, _ = run_module(lab_args(dest, fleet=fleet))
    assert result["problems"] == ["fleet: pools[1].gpu_type: required when instance_type is not given"]
    assert not dest.parent.exists()


def test_fleet_and_fleet_file_are_mutually_exclusive(run_module, tmp_path):
    result, _ = run_module(lab_args(tmp_path / "plan.json", fleet_file=str(LAB / "fleet.yml")))
    assert result["failed"] is True
    assert "mutually exclusive" in result["msg"] and "fleet" in result["msg"]


def test_time_limit_must_be_positive(run_module, tmp_path):
    result, _ = run_module(lab_args(tmp_path / "plan.json", time_limit=0))
    assert result["problems"] == ["time_limit: must be > 0, got 0.0"]


def test_files_give_the_same_plan_as_documents(run_module, tmp_path):
    from_documents, _ = run_module(lab_args(tmp_path / "a.json"))
    models_file = tmp_path / "models.yml"
    models_file.write_text(yaml.safe_dump(LAB_MODELS))
    args = {"fleet_file": str(LAB / "fleet.yml"), "models_file": str(models_file), "time_limit": 10}
    from_files, _ = run_module(args)
    assert from_files["changed"] is False  # no dest: nothing to write
    assert placement.comparable(from_files["plan"]) == placement.comparable(from_documents["plan"])


def test_relative_hf_config_resolves_against_hf_config_dir(run_module, tmp_path):
    models = {"models": [{
        "name": "nemo-12b", "hf_config": "../../models/mistral-nemo-12b/config.json", "precisions": ["fp8"],
        "max_context_tokens": 4096,
        "traffic": {"requests_per_second": 0.2, "input_tokens": 512, "output_tokens": 128},
        "slo": {"ttft_ms": 3000, "tpot_ms": 150}, "spread": "none",
    }]}
    args = lab_args(tmp_path / "plan.json", models=models, hf_config_dir=str(EXAMPLE / "group_vars" / "all"))
    result, _ = run_module(args)
    entry = result["plan"]["models"][0]
    assert entry["served"] is True and 12.0 < entry["params_billion"] < 12.5
    without_dir, _ = run_module(lab_args(tmp_path / "plan.json", models=models))
    assert without_dir["problems"][0].startswith("models: models[0].hf_config:")


def test_gpu_facts_that_disagree_with_the_fleet_warn(run_module, tmp_path):
    facts = {
        "lab-gpu-1": {"gpu_count": 1, "gpu_type": "L4-24GB"},
        "lab-gpu-2": {"gpu_count": 2, "gpu_type": "A10G-24GB"},
        "somewhere-else": {"gpu_count": 8, "gpu_type": "H100-SXM-80GB"},
    }
    result, warnings = run_module(lab_args(tmp_path / "plan.json", gpu_facts=facts))
    assert result["plan"]["status"] == "optimal"
    assert sorted(warnings) == [
        "host lab-gpu-1: pool lab-a declares 2 GPUs per node but gpu_facts reports 1",
        "host lab-gpu-2: pool lab-b declares L4-24GB but gpu_facts reports A10G-24GB",
    ]


def test_gpu_facts_that_match_the_fleet_are_silent(run_module, tmp_path):
    facts = {host: {"gpu_count": 2, "gpu_type": "L4-24GB"} for host in ("lab-gpu-1", "lab-gpu-2")}
    _, warnings = run_module(lab_args(tmp_path / "plan.json", gpu_facts=facts))
    assert warnings == []


def test_unplaced_models_are_warned_about_and_the_plan_still_written(run_module, tmp_path):
    dest = tmp_path / "plan.json"
    models = copy.deepcopy(LAB_MODELS)
    models["models"].append({
        "name": "giant-405b", "architecture": "llama-3.1-405b", "max_context_tokens": 8192,
        "traffic": {"requests_per_second": 1, "input_tokens": 1024, "output_tokens": 256},
        "slo": {"ttft_ms": 2000, "tpot_ms": 60},
    })
    result, warnings = run_module(lab_args(dest, models=models))
    assert result["plan"]["status"] == "partial"
    assert list(result["summary"]["unplaced"]) == ["giant-405b"]
    assert len(warnings) == 1 and warnings[0].startswith("model giant-405b is not placed: ")
    assert json.loads(dest.read_text())["status"] == "partial"


def test_missing_llmops_package_fails_with_the_requirement(run_module, tmp_path, monkeypatch):
    monkeypatch.setattr(placement, "HAS_LLMOPS", False)
    monkeypatch.setattr(placement, "LLMOPS_IMPORT_ERROR", "ModuleNotFoundError: No module named 'llmops'")
    result, _ = run_module(lab_args(tmp_path / "plan.json"))
    assert result["failed"] is True
    assert "llmops" in result["msg"] and not (tmp_path / "plan.json").exists()


# Replanning inputs of their own: two zones of two L4 machines each, one zone-spread model.
REPLAN_FLEET = {
    "pools": [
        {"name": f"l4-{zone}", "gpu_type": "L4-24GB", "gpus_per_node": 2, "node_hourly_cost": 1.0,
         "zone": f"z-{zone}", "nodes": [f"gpu-{zone}1", f"gpu-{zone}2"]}
        for zone in ("a", "b")
    ]
}
REPLAN_MODELS = {
    "models": [{
        "name": "llama-8b", "architecture": "llama-3.1-8b", "precisions": ["fp8"], "max_context_tokens": 4096,
        "traffic": {"requests_per_second": 0.5, "input_tokens": 512, "output_tokens": 128},
        "slo": {"ttft_ms": 2000, "tpot_ms": 100}, "spread": "zone",
    }]
}


def replan_args(dest: Path, **overrides) -> dict:
    args = {"fleet": copy.deepcopy(REPLAN_FLEET), "models": copy.deepcopy(REPLAN_MODELS), "time_limit": 4,
            "dest": str(dest)}
    args.update(overrides)
    return args


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_replan_in_place_after_a_node_loss_moves_only_what_was_lost(run_module, tmp_path, check_mode):
    dest = tmp_path / "plan.json"
    first, _ = run_module(replan_args(dest))
    before = dest.read_text()
    node = next(r["node"] for r in first["plan"]["replicas"] if r["node"].startswith("gpu-a"))
    lost = [r for r in first["plan"]["replicas"] if r["node"] == node]
    args = replan_args(dest, current_plan=str(dest), failed_nodes=[node])
    result, _ = run_module(args, check_mode=check_mode)
    assert result["changed"] is True and "failed" not in result
    assert all(r["node"] != node for r in result["plan"]["replicas"])
    # Zone a must again hold capacity, on its other machine: one start for one lost replica.
    assert result["replan"]["lost"] == len(lost) and result["replan"]["started"] == len(lost)
    assert result["replan"]["stopped"] == 0
    actions = [m["action"] for m in result["moves"]]
    assert actions.index("start") < actions.index("lost")
    if check_mode:
        assert dest.read_text() == before
        return
    assert json.loads(dest.read_text()) == result["plan"]
    again, _ = run_module(args)
    assert again["changed"] is False and again["replan"]["started"] == again["replan"]["lost"] == 0


def test_replan_rejects_unknown_failures_a_foreign_plan_and_failures_without_a_plan(run_module, tmp_path):
    dest = tmp_path / "plan.json"
    run_module(replan_args(dest))
    written = dest.read_text()
    result, _ = run_module(replan_args(dest, current_plan=str(dest), failed_nodes=["gpu-z9"], failed_zones=["mars"]))
    assert result["failed"] is True
    assert result["problems"][0].startswith("failed_nodes: 'gpu-z9' is not a node of the fleet")
    assert result["problems"][1] == "failed_zones: 'mars' is not a zone of the fleet; accepted: z-a, z-b"
    assert dest.read_text() == written
    foreign = copy.deepcopy(REPLAN_FLEET)
    for pool in foreign["pools"]:
        pool["gpu_type"] = "H100-SXM-80GB"
    result, _ = run_module(replan_args(dest, fleet=foreign, current_plan=str(dest)))
    assert result["failed"] is True and all(p.startswith("current_plan: ") for p in result["problems"])
    result, _ = run_module(replan_args(dest, failed_nodes=["gpu-a1"]))
    assert result["problems"] == ["failed_nodes/failed_zones: need current_plan, the running plan to repair"]
    result, _ = run_module(replan_args(dest, current_plan=str(tmp_path / "missing.json")))
    assert result["problems"][0].startswith("current_plan: cannot read")
    result, _ = run_module(replan_args(dest, current_plan=str(dest), cost_tolerance=1.5))
    assert result["problems"] == ["cost_tolerance: must be between 0 and 1, got 1.5"]
    assert dest.read_text() == written
