"""`llmops plan` and `llmops validate` as a user runs them: exit codes, tables, plan.json."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from llmops.cli import main
from llmops.planning.result import Plan
from llmops.planning.validator import validate

from .plan_fixtures import fleet_of, models_of

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAB = PROJECT_ROOT / "inventories" / "lab" / "group_vars" / "all"
LAB_FLEET = yaml.safe_load((LAB / "fleet.yml").read_text())
# Two 7-8B models on the lab's fleet: one replica per zone each, fp8 and int4/bf16 choices. (The lab
# itself plans one small model its CPUs can serve; this mix exercises the planner's tables.)
LAB_MODELS = {"models": [
    {"name": "qwen-7b", "architecture": "qwen2.5-7b", "precisions": ["int4", "bf16"], "max_context_tokens": 4096,
     "traffic": {"requests_per_second": 0.5, "input_tokens": 512, "output_tokens": 128},
     "slo": {"ttft_ms": 2000, "tpot_ms": 100}, "spread": "zone", "priority": 1},
    {"name": "llama-8b", "architecture": "llama-3.1-8b", "precisions": ["fp8"], "max_context_tokens": 4096,
     "traffic": {"requests_per_second": 0.5, "input_tokens": 512, "output_tokens": 128},
     "slo": {"ttft_ms": 2000, "tpot_ms": 100}, "spread": "zone"},
]}

PLAN_KEYS = {"status", "cost_per_hour", "lower_bound_per_hour", "solve_seconds", "nodes", "replicas", "models", "unplaced"}
NODE_KEYS = {"name", "pool", "zone", "gpu_type", "gpus", "hourly_cost"}
REPLICA_KEYS = {"model", "node", "gpu_indices", "gpu_type", "precision", "tensor_parallel", "memory_per_gpu_gib",
                "capacity_requests_per_second", "traffic_weight"}
MODEL_KEYS = {"name", "params_billion", "kv_bytes_per_token_bf16", "demand_requests_per_second",
              "capacity_requests_per_second", "ttft_ms", "tpot_ms", "replicas", "served", "autoscaling",
              "ttft_at_demand_ms"}


def write_inputs(folder: Path, fleet: dict, models: dict) -> tuple[Path, Path]:
    fleet_path, models_path = folder / "fleet.yml", folder / "models.yml"
    fleet_path.write_text(yaml.safe_dump(fleet))
    models_path.write_text(yaml.safe_dump(models))
    return fleet_path, models_path


def run_plan(folder: Path, fleet: dict, models: dict, *extra: str) -> tuple[int, Path]:
    fleet_path, models_path = write_inputs(folder, fleet, models)
    output = folder / "out" / "plan.json"
    code = main(["plan", "--fleet", str(fleet_path), "--models", str(models_path), "--time-limit", "10",
                 "--output", str(output), *extra])
    return code, output


def test_plan_serves_everything_exits_0_prints_tables_and_writes_a_valid_plan(tmp_path, capsys):
    code, output = run_plan(tmp_path, LAB_FLEET, LAB_MODELS)
    printed = capsys.readouterr().out
    assert code == 0
    for heading in ("Models", "Pools", "Totals"):
        assert heading in printed.splitlines()
    assert "Unplaced" not in printed
    for column in ("GPU type", "precision", "TP", "replicas", "capacity rps", "demand rps", "TTFT ms at demand / SLO",
                   "TPOT ms / SLO", "nodes used", "GPUs used", "lower bound $/h", "gap", "status", "solve s"):
        assert column in printed
    model_lines = {line.split()[0]: line for line in printed.splitlines() if line.startswith(("qwen-7b", "llama-8b"))}
    assert set(model_lines) == {"qwen-7b", "llama-8b"}
    assert "L4-24GB" in model_lines["llama-8b"] and " fp8 " in model_lines["llama-8b"]
    assert " / 2,000 " in model_lines["llama-8b"]  # predicted TTFT at the demand beside the 2000 ms SLO
    pool_lines = [line for line in printed.splitlines() if line.startswith(("lab-a ", "lab-b "))]
    assert len(pool_lines) == 2 and all("1/1" in line and "2/2" in line for line in pool_lines)
    assert f"plan written to {output}" in printed

    plan = json.loads(output.read_text())
    assert validate(plan, fleet_of(LAB_FLEET), models_of(LAB_MODELS)) == []
    assert plan["status"] in {"optimal", "feasible"} and plan["unplaced"] == []
    assert f"{plan['cost_per_hour']:,.2f}" in printed.split("Totals")[1]


def test_output_json_matches_the_published_schema(tmp_path, capsys):
    code, output = run_plan(tmp_path, LAB_FLEET, LAB_MODELS, "--json")
    assert code == 0
    written = json.loads(output.read_text())
    printed = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in printed.items() if k != "solve_seconds"} == {
        k: v for k, v in written.items() if k != "solve_seconds"
    }
    jsonschema.validate(written, Plan.model_json_schema())
    assert set(written) == PLAN_KEYS
    assert all(set(node) == NODE_KEYS for node in written["nodes"])
    assert all(set(replica) == REPLICA_KEYS for replica in written["replicas"])
    assert all(set(model) == MODEL_KEYS for model in written["models"])
    assert all(isinstance(i, int) for replica in written["replicas"] for i in replica["gpu_indices"])


def test_unplaced_model_exits_3_with_the_reason_and_still_writes_the_plan(tmp_path, capsys):
    models = copy.deepcopy(LAB_MODELS)
    models["models"].append({
        "name": "giant-405b", "architecture": "llama-3.1-405b", "precisions": ["bf16"], "max_context_tokens": 8192,
        "traffic": {"requests_per_second": 1, "input_tokens": 1024, "output_tokens": 256},
        "slo": {"ttft_ms": 2000, "tpot_ms": 60},
    })
    code, output = run_plan(tmp_path, LAB_FLEET, models)
    printed = capsys.readouterr().out
    assert code == 3
    unplaced_section = printed.split("Unplaced")[1]
    assert "giant-405b" in unplaced_section
    plan = json.loads(output.read_text())
    assert plan["status"] == "partial"
    assert [u["model"] for u in plan["unplaced"]] == ["giant-405b"]
    assert plan["unplaced"][0]["reason"] in unplaced_section
    assert validate(plan, fleet_of(LAB_FLEET), models_of(models)) == []


def broken(fleet_change=None, models_change=None):
    fleet, models = copy.deepcopy(LAB_FLEET), copy.deepcopy(LAB_MODELS)
    if fleet_change:
        fleet_change(fleet)
    if models_change:
        models_change(models)
    return fleet, models


INVALID_INPUTS = {
    "rate not positive": (
        broken(models_change=lambda m: m["models"][1]["traffic"].update(requests_per_second=0)),
        ["models[1].traffic.requests_per_second: must be > 0"],
    ),
    "unknown architecture": (
        broken(models_change=lambda m: m["models"][0].update(architecture="llama-9-1t")),
        ["models[0].architecture:", "llama-9-1t", "llama-3.1-8b", "qwen2.5-72b"],
    ),
    "unknown gpu type": (
        broken(fleet_change=lambda f: f["pools"][1].update(gpu_type="RTX-4090")),
        ["pools[1].gpu_type: unknown GPU type 'RTX-4090'; accepted:", "H100-SXM-80GB", "L4-24GB"],
    ),
    "unknown instance type": (
        broken(fleet_change=lambda f: f["pools"][0].update(instance_type="p9.mega")),
        ["pools[0].instance_type: unknown instance type 'p9.mega'; accepted:", "p5.48xlarge", "g6.12xlarge"],
    ),
    "no gpu type and no instance type": (
        broken(fleet_change=lambda f: f["pools"][0].pop("gpu_type")),
        ["pools[0].gpu_type: required when instance_type is not given"],
    ),
    "unreadable hf_config": (
        broken(models_change=lambda m: (m["models"][0].pop("architecture"),
                                        m["models"][0].update(hf_config="missing/config.json"))),
        ["models[0].hf_config:", "missing/config.json"],
    ),
    "bad precision and spread at once": (
        broken(models_change=lambda m: m["models"][0].update(precisions=["fp4"], spread="rack")),
        ["models[0].precisions[0]: must be one of bf16, fp8, int8, int4", "models[0].spread: must be one of"],
    ),
    "both max_nodes and nodes": (
        broken(fleet_change=lambda f: f["pools"][0].update(max_nodes=2)),
        ["pools[0]:", "exactly one of max_nodes"],
    ),
}


@pytest.mark.parametrize(("inputs", "expected"), INVALID_INPUTS.values(), ids=INVALID_INPUTS.keys())
def test_invalid_input_exits_2_naming_the_field_and_writes_nothing(tmp_path, capsys, inputs, expected):
    code, output = run_plan(tmp_path, *inputs)
    captured = capsys.readouterr()
    assert code == 2
    assert not output.exists()
    assert "Traceback" not in captured.err
    for fragment in expected:
        assert fragment in captured.err, captured.err


def test_missing_file_exits_2(tmp_path, capsys):
    fleet_path, _ = write_inputs(tmp_path, LAB_FLEET, LAB_MODELS)
    code = main(["plan", "--fleet", str(fleet_path), "--models", str(tmp_path / "nope.yml")])
    assert code == 2
    assert f"{tmp_path / 'nope.yml'}: cannot read" in capsys.readouterr().err


def test_the_installed_command_reports_bad_input_without_a_traceback(tmp_path):
    fleet, models = INVALID_INPUTS["rate not positive"][0]
    fleet_path, models_path = write_inputs(tmp_path, fleet, models)
    llmops = shutil.which("llmops")
    assert llmops, "the llmops console script is not installed"
    result = subprocess.run([llmops, "plan", "--fleet", str(fleet_path), "--models", str(models_path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "invalid input:", f"  {models_path}: models[1].traffic.requests_per_second: must be > 0"
    ]


def test_time_limit_must_be_positive(tmp_path, capsys):
    fleet_path, models_path = write_inputs(tmp_path, LAB_FLEET, LAB_MODELS)
    with pytest.raises(SystemExit) as raised:
        main(["plan", "--fleet", str(fleet_path), "--models", str(models_path), "--time-limit", "0"])
    assert raised.value.code == 2
    assert "--time-limit: must be > 0" in capsys.readouterr().err


@pytest.fixture
def lab_plan(tmp_path) -> tuple[Path, Path, Path]:
    code, output = run_plan(tmp_path, LAB_FLEET, LAB_MODELS)
    assert code == 0
    return tmp_path / "fleet.yml", tmp_path / "models.yml", output


def test_validate_accepts_the_plan_it_was_given(lab_plan, capsys):
    fleet_path, models_path, plan_path = lab_plan
    capsys.readouterr()
    assert main(["validate", "--fleet", str(fleet_path), "--models", str(models_path), "--plan", str(plan_path)]) == 0
    assert capsys.readouterr().out.strip() == f"{plan_path}: valid"


def test_validate_lists_violations_of_a_tampered_plan_and_exits_1(lab_plan, capsys):
    fleet_path, models_path, plan_path = lab_plan
    plan = json.loads(plan_path.read_text())
    plan["replicas"][1]["gpu_indices"] = plan["replicas"][0]["gpu_indices"]
    plan["replicas"][1]["node"] = plan["replicas"][0]["node"]
    plan["cost_per_hour"] = 0.5
    plan_path.write_text(json.dumps(plan))
    capsys.readouterr()
    assert main(["validate", "--fleet", str(fleet_path), "--models", str(models_path), "--plan", str(plan_path)]) == 1
    err = capsys.readouterr().err
    assert "is already used by replicas[0]" in err
    assert "cost_per_hour 0.5 is not the sum" in err


def test_validate_exits_2_on_a_plan_that_is_not_json(lab_plan, capsys):
    fleet_path, models_path, plan_path = lab_plan
    plan_path.write_text("status: optimal\n")
    assert main(["validate", "--fleet", str(fleet_path), "--models", str(models_path), "--plan", str(plan_path)]) == 2
    assert f"{plan_path}: not valid JSON" in capsys.readouterr().err


def test_validate_exits_2_on_invalid_inputs(lab_plan, capsys):
    _, models_path, plan_path = lab_plan
    fleet_path = plan_path.parent / "bad-fleet.yml"
    fleet_path.write_text(yaml.safe_dump({"pools": [{"name": "Bad_Name", "zone": "z", "max_nodes": 1}]}))
    assert main(["validate", "--fleet", str(fleet_path), "--models", str(models_path), "--plan", str(plan_path)]) == 2
    assert "pools[0].name: must be a DNS label" in capsys.readouterr().err


def test_explain_lists_every_option_and_why_it_is_dropped(tmp_path, capsys):
    models = copy.deepcopy(LAB_MODELS)
    name = models["models"][0]["name"]
    models["models"][0]["replica_floor"] = {"latency_headroom": 0.99}
    fleet_path, models_path = write_inputs(tmp_path, LAB_FLEET, models)
    code = main(["plan", "--fleet", str(fleet_path), "--models", str(models_path), "--explain", name])
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.startswith(f"Replica options of {name}:")
    option_lines = [line for line in printed.splitlines() if line.startswith("  ")]
    assert option_lines and all(" dropped " in line or " offered " in line for line in option_lines)
    # 99% headroom leaves no option: each that fits and meets the SLO is dropped for headroom.
    assert any("leaves less than 99% headroom under the SLO" in line for line in option_lines)
    assert not any(" offered " in line for line in option_lines)


def test_explain_names_the_accepted_models_when_the_model_is_unknown(tmp_path, capsys):
    fleet_path, models_path = write_inputs(tmp_path, LAB_FLEET, LAB_MODELS)
    code = main(["plan", "--fleet", str(fleet_path), "--models", str(models_path), "--explain", "no-such-model"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--explain: unknown model 'no-such-model'; accepted:" in err
