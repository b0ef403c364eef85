"""The run_report callback in real `ansible-playbook` runs on the controller (connection local)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO = Path(__file__).resolve().parent / "demo"
INVENTORY = DEMO / "inventories" / "demo"
PLAYBOOK = DEMO / "report_demo.yml"


@pytest.fixture(scope="module")
def ansible_playbook() -> str:
    path = shutil.which("ansible-playbook")
    if path is None:
        pytest.fail("ansible-playbook is not installed: run scripts/setup.sh")
    return path


def run_playbook(ansible_playbook, work: Path, *extra: str, config: Path | None = None, report_dir: Path | None = None):
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(config or PROJECT_ROOT / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(PROJECT_ROOT / "collections")
    env["ANSIBLE_HOME"] = str(PROJECT_ROOT / ".ansible")
    env.pop("LLMOPS_RUN_REPORT_DIR", None)
    if report_dir is not None:
        env["LLMOPS_RUN_REPORT_DIR"] = str(report_dir)
    return subprocess.run(
        [ansible_playbook, "-i", str(INVENTORY), str(PLAYBOOK), "-e", f"report_demo_dir={work}", *extra],
        capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=300, check=False,
    )


@pytest.fixture(scope="module")
def two_runs(ansible_playbook, tmp_path_factory):
    """The demo playbook twice: the second run finds nothing to change.

    The first run writes where LLMOPS_RUN_REPORT_DIR says; the second runs with a copy of the project's
    ansible.cfg and no variable, so its report lands in out/ beside that copy.
    """
    work = tmp_path_factory.mktemp("demo")
    reports = tmp_path_factory.mktemp("reports")
    first = run_playbook(ansible_playbook, work, report_dir=reports / "first")
    assert first.returncode == 0, first.stdout + first.stderr
    config_dir = tmp_path_factory.mktemp("config")
    text = (PROJECT_ROOT / "ansible.cfg").read_text()
    assert "callbacks_enabled = llmops.datacenter.run_report" in text
    collections = f"collections_path = {PROJECT_ROOT / 'collections'}"
    (config_dir / "ansible.cfg").write_text(text.replace("collections_path = ./collections", collections))
    second = run_playbook(ansible_playbook, work, config=config_dir / "ansible.cfg")
    assert second.returncode == 0, second.stdout + second.stderr
    return {
        "work": work,
        "first": (first, reports / "first" / "demo"),
        "second": (second, config_dir / "out" / "demo"),
    }


@pytest.mark.slow
def test_a_run_writes_three_reports_named_after_the_inventory(two_runs):
    process, folder = two_runs["first"]
    assert sorted(path.name for path in folder.iterdir()) == ["report.html", "report.json", "report.md"]
    assert f"Run report: {folder / 'report.html'}" in process.stdout


@pytest.mark.slow
def test_report_json_matches_the_play_recap(two_runs):
    _, folder = two_runs["first"]
    work = two_runs["work"]
    report = json.loads((folder / "report.json").read_text())
    assert report["schema"] == "llmops.run_report/1"
    assert report["result"] == "ok" and report["check_mode"] is False
    assert report["inventory"] == "demo"
    assert report["inventory_sources"] == [str(INVENTORY)]
    assert [os.path.basename(p) for p in report["playbooks"]] == ["report_demo.yml"]
    # The recap of the demo: stat, copy, loop, ignored fail, rescue, handler, placement_plan,
    # two set_facts, module = 10 ok; copy, loop and plan changed; one debug and one fail skipped;
    # one failure ignored, one rescued.
    assert report["hosts"] == {
        "demo-host": {"ok": 10, "changed": 3, "failed": 0, "skipped": 2, "unreachable": 0, "ignored": 1, "rescued": 1}
    }
    phases = report["phases"]
    assert [phase["name"] for phase in phases] == ["Prepare the demo host", "Plan and publish endpoints"]
    assert [phase["totals"]["changed"] for phase in phases] == [2, 1]
    assert [phase["totals"]["skipped"] for phase in phases] == [2, 0]
    summed = {field: sum(phase["totals"][field] for phase in phases) for field in report["totals"]}
    assert summed == report["totals"], "the phases' counts add up to the play recap"
    for phase in phases:
        assert phase["duration_seconds"] > 0
        assert phase["started"] <= phase["ended"]
    assert phases[0]["ended"] == phases[1]["started"]
    assert report["duration_seconds"] >= sum(phase["duration_seconds"] for phase in phases) - 0.01

    assert [(t["host"], t["task"]) for t in report["changed_tasks"]] == [
        ("demo-host", "Write the marker file"),
        ("demo-host", "Write two files in a loop"),
        ("demo-host", "Plan two models on one small pool"),
    ]
    assert report["changed_tasks"][0]["message"] == f"dest: {work / 'marker.txt'}"
    assert report["changed_tasks"][1]["message"] == "2 of 2 items changed"
    assert report["failed_tasks"] == [
        {
            "phase": "Prepare the demo host", "host": "demo-host", "task": "Fail on purpose, ignored",
            "outcome": "failed (ignored)", "message": "this failure is ignored on purpose",
        },
        {
            "phase": "Prepare the demo host", "host": "demo-host", "task": "Fail inside a block",
            "outcome": "failed (rescued)", "message": "this failure is rescued",
        },
    ]
    summary = report["plan"]["summary"]
    assert report["plan"]["task"] == "Plan two models on one small pool"
    assert summary["status"] == "partial"
    assert summary["cost_per_hour"] == 1.0 and summary["lower_bound_per_hour"] == 1.0 and summary["gap_percent"] == 0
    assert list(summary["models"]) == ["small-chat"]
    assert list(summary["unplaced"]) == ["giant-chat"]
    assert [(e["name"], e["url"]) for e in report["endpoints"]] == [
        ("demo-ui", "http://127.0.0.1:3000/"),
        ("demo-metrics", "http://127.0.0.1:9090/"),
        ("demo-api", "http://127.0.0.1:8000/v1"),
    ]


@pytest.mark.slow
def test_report_md_has_the_summary_and_the_tables(two_runs):
    _, folder = two_runs["first"]
    lines = (folder / "report.md").read_text().splitlines()
    assert lines[0] == "# Run report: report_demo.yml on demo"
    assert lines[3].startswith("Run OK: report_demo.yml on inventory demo, 2 phases on 1 host in ")
    assert lines[4] == "Changed: changed=3 on 1 of 1 host (3 changed tasks listed in the report)."
    assert lines[5] == "Failed: none (failed=0, unreachable=0; 1 failure ignored)."
    assert lines[6] == "Plan: partial, cost 1.00/h, lower bound 1.00/h, gap 0.00%, 1 model placed, 1 unplaced."
    assert lines[7] == (
        "Endpoints: demo-ui http://127.0.0.1:3000/, demo-metrics http://127.0.0.1:9090/, demo-api http://127.0.0.1:8000/v1"
    )
    assert lines[8] == f"Report: {folder / 'report.html'} (also report.md, report.json)"
    assert "| demo-host | 10 | 3 | 0 | 2 | 0 | 1 | 1 |" in lines
    assert any(line.startswith("| 1 | Prepare the demo host | report_demo.yml |") for line in lines)
    assert "| Prepare the demo host | demo-host | Fail on purpose, ignored | failed (ignored) | this failure is ignored on purpose |" in lines
    assert any(line.startswith("| giant-chat | no replica configuration fits") for line in lines)


@pytest.mark.slow
def test_report_html_holds_the_matplotlib_timeline(two_runs):
    _, folder = two_runs["first"]
    page = (folder / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1 and "</svg>" in page
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert "Matplotlib" in svg
    assert "1. Prepare the demo host" in svg and "2. Plan and publish endpoints" in svg
    assert '<a href="http://127.0.0.1:8000/v1">' in page


@pytest.mark.slow
def test_second_run_reports_no_changes_plainly(two_runs):
    _, folder = two_runs["second"]
    report = json.loads((folder / "report.json").read_text())
    assert report["totals"]["changed"] == 0 and report["changed_tasks"] == []
    assert report["summary"][1] == "No changes (changed=0): every host was already in the desired state."
    markdown = (folder / "report.md").read_text()
    assert "No changes (changed=0): every host was already in the desired state." in markdown
    assert "None: no task changed anything (changed=0)." in markdown.splitlines()


@pytest.mark.slow
def test_a_failed_check_run_still_writes_its_report(ansible_playbook, tmp_path):
    process = run_playbook(
        ansible_playbook, tmp_path / "work", "--check", "-e", "report_demo_fail=true", report_dir=tmp_path
    )
    assert process.returncode == 2, process.stdout + process.stderr
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["result"] == "failed" and report["check_mode"] is True
    assert report["hosts"]["demo-host"]["failed"] == 1
    # The host stopped in the first play; the second play found no host left.
    assert report["plan"] is None
    assert report["failed_tasks"][-1]["task"] == "Fail on purpose, for real"
    assert report["failed_tasks"][-1]["outcome"] == "failed"
    assert report["summary"][0].startswith("Check run FAILED: report_demo.yml on inventory demo")
    assert report["summary"][2] == (
        "Failed: failed=1, unreachable=0 on 1 host; 1 failure ignored. "
        "First: demo-host: Fail on purpose, for real: this failure stops the run"
    )


@pytest.mark.slow
def test_ansible_doc_renders_the_callback_documentation():
    name = "llmops.datacenter.run_report"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(PROJECT_ROOT / "collections"))
    shown = subprocess.run(
        ["ansible-doc", "-t", "callback", "--json", name], capture_output=True, text=True, env=env, check=False
    )
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)[name]["doc"]
    assert doc["type"] == "aggregate"
    assert doc["options"]["output_dir"]["env"] == [{"name": "LLMOPS_RUN_REPORT_DIR"}]


def shadow_packages(folder: Path, *names: str) -> str:
    """A PYTHONPATH entry on which importing each of names fails, as if it were not installed."""
    for name in names:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f'raise ImportError("No module named {name}")\n')
    return str(folder)


@pytest.mark.slow
def test_without_matplotlib_the_report_is_written_without_its_chart(ansible_playbook, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", shadow_packages(tmp_path / "shadow", "matplotlib"))
    process = run_playbook(ansible_playbook, tmp_path / "work", "--tags", "never", report_dir=tmp_path)
    assert process.returncode == 0, process.stdout + process.stderr
    assert "run report written without its timeline: the phase timeline needs matplotlib" in process.stderr
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "<svg" not in page and "Timeline not drawn" in page
    assert json.loads((tmp_path / "demo" / "report.json").read_text())["result"] == "ok"


@pytest.mark.slow
def test_without_llmops_the_run_says_so_and_writes_nothing(ansible_playbook, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", shadow_packages(tmp_path / "shadow", "llmops"))
    process = run_playbook(ansible_playbook, tmp_path / "work", "--tags", "never", report_dir=tmp_path / "reports")
    assert process.returncode == 0, process.stdout + process.stderr
    assert "the llmops Python package is not importable" in process.stderr
    assert not (tmp_path / "reports").exists()
