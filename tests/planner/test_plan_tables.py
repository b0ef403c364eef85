"""`llmops plan` tables as a user reads them: TTFT predicted at the planned demand next to the SLO
(not the SLO twice), which replica runs on which GPU of which node, and `--show` re-rendering a
saved plan without solving."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from llmops.cli import main
from llmops.planning import load_inputs, make_plan
from llmops.planning.latency import ttft_at_rate_ms
from llmops.planning.options import resolve_architecture

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAB = PROJECT_ROOT / "inventories" / "lab" / "group_vars" / "all"
EXAMPLE = PROJECT_ROOT / "inventories" / "example" / "group_vars" / "all"


def section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(title) + 3  # title, header, rule
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[Path, str, dict]:
    output = tmp_path_factory.mktemp("plan") / "out" / "plan.json"
    args = ["plan", "--fleet", str(EXAMPLE / "fleet.yml"), "--models", str(EXAMPLE / "models.yml"),
            "--time-limit", "20", "--output", str(output)]
    result = subprocess.run(["llmops", *args], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    return output, result.stdout, json.loads(output.read_text())


def test_ttft_column_shows_the_prediction_at_demand_beside_the_slo(example):
    _, printed, plan = example
    slos = {m["name"]: m["slo"] for m in yaml.safe_load((EXAMPLE / "models.yml").read_text())["models"]}
    rows = {line.split()[0]: line for line in section(printed, "Models") if not line.startswith(" ")}
    assert set(rows) == set(slos)
    for entry in plan["models"]:
        predicted, slo = entry["ttft_at_demand_ms"], slos[entry["name"]]["ttft_ms"]
        assert 0 < predicted < slo, entry
        # At full capacity the TTFT meets the SLO by construction; the demand is below capacity.
        assert predicted <= entry["ttft_ms"] <= slo * 1.0001
        assert f" {predicted:,.0f} / {slo:,.0f} " in rows[entry["name"]]
        assert f" {slo:,.0f} / {slo:,.0f} " not in rows[entry["name"]]


def test_the_prediction_is_the_slowest_replica_at_its_share_of_the_demand():
    fleet, models = load_inputs(LAB / "fleet.yml", LAB / "models.yml")
    plan = make_plan(fleet, models, time_limit_s=10)
    deployments = {m.name: m for m in models.models}
    for entry in plan.models:
        deployment = deployments[entry.name]
        replicas = [r for r in plan.replicas if r.model == entry.name]
        expected = max(
            ttft_at_rate_ms(deployment, resolve_architecture(deployment), r.gpu_type, r.precision, r.tensor_parallel,
                            deployment.traffic.requests_per_second * r.traffic_weight)
            for r in replicas
        )
        assert entry.ttft_at_demand_ms == pytest.approx(expected, abs=0.05)
        # More traffic on the same replicas waits longer; at full capacity it reaches ttft_ms.
        r = replicas[0]
        arch = resolve_architecture(deployment)
        at = [ttft_at_rate_ms(deployment, arch, r.gpu_type, r.precision, r.tensor_parallel,
                              share * r.capacity_requests_per_second) for share in (0.1, 0.5, 0.9, 1.0)]
        assert at == sorted(at) and at[0] < at[-1]
        assert at[-1] == pytest.approx(deployment.slo.ttft_ms, rel=1e-3)


def test_the_nodes_table_names_every_gpu_and_the_replica_on_it(example):
    _, printed, plan = example
    rows = section(printed, "Nodes")
    holder: dict[tuple[str, int], str] = {}
    node = None
    for row in rows:
        cells = re.split(r"\s{2,}", row.strip())
        if not row.startswith(" "):
            node = cells[0]
        gpus, replica = cells[-3:-1] if cells[-1] != "(free)" else (cells[-2], cells[-1])
        low, _, high = gpus.partition("-")
        for gpu in range(int(low), int(high or low) + 1):
            holder[(node, gpu)] = replica
    numbers: dict[str, int] = {}
    for replica in plan["replicas"]:
        numbers[replica["model"]] = numbers.get(replica["model"], 0) + 1
        for gpu in replica["gpu_indices"]:
            assert holder.pop((replica["node"], gpu)) == f"{replica['model']}#{numbers[replica['model']]}"
    assert set(holder.values()) <= {"(free)"}
    assert {n for n, _ in holder} <= {n["name"] for n in plan["nodes"]}
    assert len(holder) == sum(n["gpus"] for n in plan["nodes"]) - sum(len(r["gpu_indices"]) for r in plan["replicas"])


def test_show_re_renders_a_saved_plan_without_solving(example, capsys, monkeypatch):
    output, printed, _ = example
    import llmops.commands.plan as plan_command

    monkeypatch.setattr(plan_command, "make_plan", lambda *a, **k: pytest.fail("--show must not solve"))
    assert main(["plan", "--show", str(output), "--fleet", str(EXAMPLE / "fleet.yml"),
                 "--models", str(EXAMPLE / "models.yml")]) == 0
    shown = capsys.readouterr().out
    assert shown.strip() == printed.split("\nplan written to")[0].strip()
    # Alone, the plan still gives every table; SLOs and pool sizes are not in it.
    assert main(["plan", "--show", str(output)]) == 0
    alone = capsys.readouterr().out
    assert section(alone, "Nodes") == section(printed, "Nodes")
    assert section(alone, "Totals") == section(printed, "Totals")
    assert all(" / -" in line for line in section(alone, "Models") if not line.startswith(" "))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output", "x.json"], "--show: only --fleet and --models go with it (it does not solve)"),
        (["--models", str(LAB / "models.yml")], "--show: give both --fleet and --models, or neither"),
    ],
)
def test_show_refuses_options_that_need_a_solve(example, capsys, extra, message):
    output, _, _ = example
    assert main(["plan", "--show", str(output), *extra]) == 2
    assert message in capsys.readouterr().err


def test_show_names_a_file_that_is_not_a_plan(tmp_path, capsys):
    not_plan = tmp_path / "fleet.json"
    not_plan.write_text(json.dumps(copy.deepcopy({"pools": []})))
    assert main(["plan", "--show", str(not_plan)]) == 2
    err = capsys.readouterr().err
    assert f"{not_plan}: not a plan written by llmops plan: status: required field is missing" in err


def test_plan_without_inputs_says_what_is_missing(capsys):
    assert main(["plan"]) == 2
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  --fleet: required (or --show PLAN to print a saved plan)",
        "  --models: required (or --show PLAN to print a saved plan)",
    ]


def test_the_readme_writes_the_plan_under_the_ignored_out_folder():
    readme = (PROJECT_ROOT / "README.md").read_text()
    command = re.search(r"llmops plan --fleet .*?--output (\S+)", readme, re.S)
    assert command is not None
    assert command.group(1).startswith("out/")
    ignored = subprocess.run(["git", "check-ignore", "-q", command.group(1)], cwd=PROJECT_ROOT, check=False)
    assert ignored.returncode == 0
    assert "llmops plan --show out/plan.json" in readme
