"""Input errors as a new user meets them: every problem of both files in one run, each line naming
its file, the field path and what is accepted; never a Python class name or a placeholder."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from llmops.cli import main
from llmops.planning import load_inputs
from llmops.planning.spec import InputError, parse_fleet, parse_models

# Self-contained inputs (the lab's inventory changes with the lab): two fixed single-node pools
# in two zones, two catalog models.
LAB_FLEET = {"pools": [
    {"name": "lab-a", "gpu_type": "L4-24GB", "gpus_per_node": 2, "node_hourly_cost": 1.0, "zone": "lab-a",
     "nodes": ["lab-gpu-1"]},
    {"name": "lab-b", "gpu_type": "L4-24GB", "gpus_per_node": 2, "node_hourly_cost": 1.0, "zone": "lab-b",
     "nodes": ["lab-gpu-2"]},
]}
LAB_MODELS = {"models": [
    {"name": "qwen-7b", "architecture": "qwen2.5-7b", "precisions": ["int4", "bf16"], "max_context_tokens": 4096,
     "traffic": {"requests_per_second": 0.5, "input_tokens": 512, "output_tokens": 128},
     "slo": {"ttft_ms": 2000, "tpot_ms": 100}, "spread": "zone", "priority": 1},
    {"name": "llama-8b", "architecture": "llama-3.1-8b", "precisions": ["fp8"], "max_context_tokens": 4096,
     "traffic": {"requests_per_second": 0.5, "input_tokens": 512, "output_tokens": 128},
     "slo": {"ttft_ms": 2000, "tpot_ms": 100}, "spread": "zone"},
]}

CLASS_NAMES = re.compile(
    r"\b(Pool|Fleet|ModelDeployment|ModelsFile|Traffic|Slo|Tenant|ModelArtifact|ReplicaFloor|Spread|dict|NoneType)\b"
    r"|Input should be|instance of|<file>"
)


def write(folder: Path, name: str, document: object) -> Path:
    path = folder / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def plan_problems(tmp_path: Path, capsys, fleet: object, models: object) -> tuple[int, list[str], Path, Path]:
    fleet_path, models_path = write(tmp_path, "fleet.yml", fleet), write(tmp_path, "models.yml", models)
    code = main(["plan", "--fleet", str(fleet_path), "--models", str(models_path), "--time-limit", "5"])
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "invalid input:"
    return code, [line.strip() for line in err[1:]], fleet_path, models_path


def assert_readable(lines: list[str], *files: Path) -> None:
    for line in lines:
        assert line.startswith(tuple(f"{f}: " for f in files)), line
        assert not CLASS_NAMES.search(line), line


def four_mistakes() -> tuple[dict, dict]:
    fleet, models = copy.deepcopy(LAB_FLEET), copy.deepcopy(LAB_MODELS)
    fleet["pools"][0]["name"] = "Lab_A"  # not a DNS label
    fleet["pools"][1]["max_nodes"] = 2  # lab-b already lists its nodes
    fleet["pools"].append({"name": "lab-c", "max_nodes": 1})  # no zone, no GPU type, size or price
    models["models"][0]["traffic"]["requests_per_second"] = -1
    return fleet, models


def test_four_mistakes_in_two_files_are_all_reported_in_one_run(tmp_path, capsys):
    code, lines, fleet_path, models_path = plan_problems(tmp_path, capsys, *four_mistakes())
    assert code == 2
    assert lines == [
        f"{fleet_path}: pools[0].name: must be a DNS label: lowercase letters, digits and '-', at most 63 characters",
        f"{fleet_path}: pools[1]: give exactly one of max_nodes (cloud pool) or nodes (existing machines)",
        f"{fleet_path}: pools[2].zone: required field is missing",
        f"{fleet_path}: pools[2].gpu_type: required when instance_type is not given",
        f"{fleet_path}: pools[2].gpus_per_node: required when instance_type is not given",
        f"{fleet_path}: pools[2].node_hourly_cost: required when instance_type is not given",
        f"{models_path}: models[0].traffic.requests_per_second: must be > 0",
    ]


def test_validate_reports_the_same_problems(tmp_path, capsys):
    fleet, models = four_mistakes()
    fleet_path, models_path = write(tmp_path, "fleet.yml", fleet), write(tmp_path, "models.yml", models)
    plan_path = write(tmp_path, "plan.json", "{}")
    assert main(["validate", "--fleet", str(fleet_path), "--models", str(models_path), "--plan", str(plan_path)]) == 2
    lines = [line.strip() for line in capsys.readouterr().err.splitlines()[1:]]
    assert len(lines) == 7
    assert_readable(lines, fleet_path, models_path)


def test_a_models_field_in_a_pool_is_unknown_and_the_accepted_fields_are_listed(tmp_path, capsys):
    fleet = copy.deepcopy(LAB_FLEET)
    fleet["pools"][0]["precisions"] = ["fp8"]
    code, lines, fleet_path, _ = plan_problems(tmp_path, capsys, fleet, LAB_MODELS)
    assert code == 2
    assert lines == [
        f"{fleet_path}: pools[0].precisions: unknown field; accepted: name, instance_type, gpu_type, gpus_per_node, "
        "node_hourly_cost, zone, max_nodes, nodes"
    ]


def test_a_rule_of_a_model_is_not_skipped_when_another_of_its_fields_fails(tmp_path, capsys):
    models = copy.deepcopy(LAB_MODELS)
    models["models"][0]["hf_config"] = "config.json"  # and it has an architecture
    models["models"][0]["max_context_tokens"] = 0
    code, lines, _, models_path = plan_problems(tmp_path, capsys, LAB_FLEET, models)
    assert code == 2
    assert lines == [
        f"{models_path}: models[0].max_context_tokens: must be > 0",
        f"{models_path}: models[0]: give exactly one of architecture (catalog key) or hf_config (config.json path)",
    ]


def test_rules_across_entries_run_although_an_entry_is_invalid(tmp_path, capsys):
    fleet, models = copy.deepcopy(LAB_FLEET), copy.deepcopy(LAB_MODELS)
    fleet["pools"].append(dict(fleet["pools"][0], gpus_per_node="two"))  # repeats lab-a's name and nodes
    models["models"][1]["name"] = models["models"][0]["name"]
    models["models"][1]["slo"]["tpot_ms"] = "fast"
    models["models"][0]["tenant"] = "research"
    models["tenants"] = [{"name": "Prod"}]
    code, lines, fleet_path, models_path = plan_problems(tmp_path, capsys, fleet, models)
    assert code == 2
    name = models["models"][0]["name"]
    assert lines == [
        f"{fleet_path}: pools: pool names must be unique; repeated: lab-a",
        f"{fleet_path}: pools: node names must be unique across pools; repeated: "
        + ", ".join(fleet["pools"][0]["nodes"]),
        f"{fleet_path}: pools[2].gpus_per_node: must be a whole number, got 'two'",
        f"{models_path}: models: model names must be unique; repeated: {name}",
        f"{models_path}: models[0].tenant: unknown tenant 'research'; accepted: Prod",
        f"{models_path}: models[1].slo.tpot_ms: must be a number, got 'fast'",
        f"{models_path}: tenants[0].name: must be a DNS label: lowercase letters, digits and '-', at most 63 characters",
    ]


def test_the_catalog_is_checked_in_the_same_run_as_the_schema(tmp_path, capsys):
    fleet, models = copy.deepcopy(LAB_FLEET), copy.deepcopy(LAB_MODELS)
    fleet["pools"][0]["gpu_type"] = "RTX-4090"
    fleet["pools"][1]["zone"] = ""
    models["models"][0]["architecture"] = "llama-9-1t"
    models["models"][0]["min_replicas"] = -1
    code, lines, fleet_path, models_path = plan_problems(tmp_path, capsys, fleet, models)
    assert code == 2
    assert [line.split(";")[0] for line in lines] == [
        f"{fleet_path}: pools[0].gpu_type: unknown GPU type 'RTX-4090'",
        f"{fleet_path}: pools[1].zone: must not be empty",
        f"{models_path}: models[0].min_replicas: must be >= 0",
        f"{models_path}: models[0].architecture: unknown model architecture 'llama-9-1t'",
    ]


@pytest.mark.parametrize(
    ("fleet_text", "expected"),
    [
        ("", "the file is empty; expected a fleet file: a mapping with the top-level key pools"),
        ("# nothing yet\n", "the file is empty; expected a fleet file"),
        ("- name: lab-a\n", "the file holds a list; expected a fleet file: a mapping with the top-level key pools"),
        ("pools\n", "the file holds text; expected a fleet file"),
        ("pools: [\n", "not valid YAML"),
    ],
    ids=["empty", "comment only", "list", "scalar", "broken yaml"],
)
def test_a_fleet_file_that_is_not_a_mapping_is_named(tmp_path, capsys, fleet_text, expected):
    code, lines, fleet_path, _ = plan_problems(tmp_path, capsys, fleet_text, LAB_MODELS)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"{fleet_path}: {expected}"), lines


def test_swapped_files_are_recognised(tmp_path, capsys):
    code, lines, fleet_path, models_path = plan_problems(tmp_path, capsys, LAB_MODELS, LAB_FLEET)
    assert code == 2
    assert lines == [
        f"{fleet_path}: this looks like a models file (top-level key models), expected a fleet file "
        "(top-level key pools); were the two files swapped?",
        f"{models_path}: this looks like a fleet file (top-level key pools), expected a models file "
        "(top-level key models); were the two files swapped?",
    ]


BROKEN_DOCUMENTS = [
    {"pools": None},
    {"pools": []},
    {"pools": "lab-a"},
    {"pools": [None, "x", 3]},
    {"pools": [{"name": 5, "zone": ["a"], "max_nodes": "many", "nodes": "n1"}]},
    {"pools": [{"name": "a", "zone": "z", "max_nodes": 1.5, "gpus_per_node": True}], "extra": 1},
]
BROKEN_MODELS = [
    {"models": None},
    {"models": [{"name": "m", "traffic": "lots", "slo": [], "spread": "rack", "precisions": "fp8"}]},
    {"models": [{"name": "m", "architecture": 7, "artifact": "x", "max_context_tokens": "1k",
                 "traffic": {"requests_per_second": 1, "input_tokens": 1.5, "output_tokens": None},
                 "slo": {"ttft_ms": True, "tpot_ms": 1}}], "tenants": {"a": 1}},
]


@pytest.mark.parametrize("fleet", BROKEN_DOCUMENTS)
@pytest.mark.parametrize("models", BROKEN_MODELS)
def test_no_line_shows_a_class_name_or_a_placeholder(tmp_path, fleet, models):
    fleet_path, models_path = write(tmp_path, "f.yml", fleet), write(tmp_path, "m.yml", models)
    with pytest.raises(InputError) as raised:
        load_inputs(fleet_path, models_path)
    lines = raised.value.problems
    assert any(line.startswith(f"{fleet_path}: ") for line in lines)
    assert any(line.startswith(f"{models_path}: ") for line in lines)
    assert_readable(lines, fleet_path, models_path)


def test_inline_documents_are_named_by_their_role():
    with pytest.raises(InputError) as raised:
        parse_fleet({"pools": [{"name": "a", "zone": "z"}]})
    assert raised.value.problems == [
        "fleet: pools[0]: give exactly one of max_nodes (cloud pool) or nodes (existing machines)"
    ]
    with pytest.raises(InputError) as raised:
        parse_models([])
    assert raised.value.problems == [
        "models: the file holds a list; expected a models file: a mapping with the top-level key models "
        "(see docs/planner.md)"
    ]
