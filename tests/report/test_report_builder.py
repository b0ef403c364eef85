"""The run report builder without Ansible: events in, report.json / .md / .html and the summary out."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from llmops.report import RunRecorder, render_html, render_markdown, summary_lines, write_report
from llmops.report.recorder import MESSAGE_LIMIT, result_message
from llmops.report.timeline import timeline_svg

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)

PLAN_SUMMARY = {
    "status": "feasible",
    "cost_per_hour": 152.53,
    "lower_bound_per_hour": 150.1,
    "gap_percent": 1.59,
    "nodes_per_pool": {"h100-use1a": 2},
    "models": {"chat-70b": "2 x H100-SXM-80GB fp8 TP4 (19.60 rps for 4 rps demand)"},
    "unplaced": {"giant-405b": "no pool holds llama-3.1-405b within its SLO"},
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def site_run(*, changed: bool = True, check_mode: bool = False) -> RunRecorder:
    """Two phases on two hosts, the shape of a site.yml run."""
    run = RunRecorder(inventory="lab", inventory_sources=["/x/inventories/lab"], check_mode=check_mode)
    run.start_playbook("playbooks/site.yml", at=at(0))
    run.start_phase("GPU host layer", at=at(1))
    for host in ("gpu-1", "gpu-2"):
        run.task_result(host=host, task="gpu_facts", status="ok", result={"changed": False})
        run.task_result(
            host=host, task="nvidia_driver : Install", status="ok", result={"changed": changed, "msg": "installed 550"}
        )
    run.task_result(host="gpu-2", task="Optional step", status="skipped", result={"skipped": True})
    run.start_phase("Plan model placement", at=at(31))
    run.task_result(
        host="localhost",
        task="Plan | compute and write the placement plan",
        status="ok",
        result={"changed": changed, "summary": PLAN_SUMMARY},
        action="llmops.datacenter.placement_plan",
    )
    run.start_phase("Prometheus", at=at(40))
    run.task_result(
        host="control",
        task="prometheus : Publish the endpoint",
        status="ok",
        result={"changed": False, "ansible_facts": {"llmops_endpoints": {"prometheus": "http://control:9090"}}},
    )
    run.finish(at=at(100))
    return run


def test_phases_have_start_end_duration_and_per_host_counts():
    report = site_run().report()
    assert [phase["name"] for phase in report["phases"]] == ["GPU host layer", "Plan model placement", "Prometheus"]
    first = report["phases"][0]
    assert first["started"] == "2026-12-01T12:00:01Z" and first["ended"] == "2026-12-01T12:00:31Z"
    assert first["duration_seconds"] == 30 and first["offset_seconds"] == 1
    assert report["phases"][2]["duration_seconds"] == 60
    assert first["hosts"]["gpu-2"] == {
        "ok": 2, "changed": 1, "failed": 0, "skipped": 1, "unreachable": 0, "ignored": 0, "rescued": 0,
    }
    assert first["totals"]["ok"] == 4 and first["totals"]["changed"] == 2
    assert report["duration_seconds"] == 100
    assert report["result"] == "ok"


def test_recap_is_authoritative_for_host_totals():
    run = site_run()
    run.finish(recap={"gpu-1": {"ok": 9, "changed": 1, "failures": 0, "dark": 0, "skipped": 3}}, at=at(100))
    assert run.report()["hosts"] == {
        "gpu-1": {"ok": 9, "changed": 1, "failed": 0, "skipped": 3, "unreachable": 0, "ignored": 0, "rescued": 0}
    }
    assert run.report()["totals"]["ok"] == 9


def test_failures_ignored_rescued_and_unreachable_count_like_the_play_recap():
    run = RunRecorder(inventory="lab")
    run.start_phase("p", at=at(0))
    run.task_result(host="a", task="t1", status="failed", result={"msg": "boom", "changed": True}, ignored=True)
    run.task_result(host="a", task="t2", status="failed", result={"msg": "caught"}, rescued=True)
    run.task_result(host="b", task="t3", status="unreachable", result={"msg": "ssh: no route"})
    run.task_result(host="c", task="t4", status="failed", result={"stderr": "E: no such package\n"})
    run.finish(at=at(5))
    report = run.report()
    assert report["hosts"]["a"] == {
        "ok": 1, "changed": 1, "failed": 0, "skipped": 0, "unreachable": 0, "ignored": 1, "rescued": 1,
    }
    assert report["hosts"]["b"]["unreachable"] == 1
    assert report["hosts"]["c"]["failed"] == 1
    assert report["result"] == "failed"
    assert [(t["host"], t["outcome"], t["message"]) for t in report["failed_tasks"]] == [
        ("a", "failed (ignored)", "boom"),
        ("a", "failed (rescued)", "caught"),
        ("b", "unreachable", "ssh: no route"),
        ("c", "failed", "E: no such package"),
    ]


def test_includes_are_not_counted_but_their_changes_would_be_listed():
    run = RunRecorder(inventory="lab")
    run.start_phase("p", at=at(0))
    run.task_result(host="a", task="include_tasks", status="ok", result={}, counted=False)
    run.finish(at=at(1))
    assert run.report()["hosts"]["a"]["ok"] == 0


def test_unknown_status_is_refused():
    run = RunRecorder(inventory="lab")
    with pytest.raises(ValueError, match="status: must be one of ok, failed, skipped, unreachable"):
        run.task_result(host="a", task="t", status="changed", result={})


def test_changed_tasks_name_what_changed():
    run = RunRecorder(inventory="lab")
    run.start_phase("p", at=at(0))
    run.task_result(host="a", task="copy", status="ok", result={"changed": True, "dest": "/etc/x.conf"})
    loop = {"changed": True, "results": [{"changed": True}, {"changed": False}, {"changed": True}]}
    run.task_result(host="a", task="apt loop", status="ok", result=loop)
    run.task_result(host="a", task="unchanged", status="ok", result={"changed": False, "msg": "fine"})
    run.finish(at=at(1))
    assert [(t["task"], t["message"]) for t in run.report()["changed_tasks"]] == [
        ("copy", "dest: /etc/x.conf"),
        ("apt loop", "2 of 3 items changed"),
    ]
    assert run.report()["hosts"]["a"]["changed"] == 2


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"msg": "the message", "stderr": "noise"}, "the message"),
        ({"stderr": "  only stderr \n"}, "only stderr"),
        ({"results": [{"failed": False, "msg": "ok item"}, {"failed": True, "msg": "item 2 broke"}]}, "item 2 broke"),
        ({"censored": "the output has been hidden due to the fact that 'no_log: true' was specified"},
         "the output has been hidden due to the fact that 'no_log: true' was specified"),
        ({}, ""),
    ],
)
def test_result_message(result, message):
    assert result_message(result) == message


def test_long_messages_are_cut():
    message = result_message({"msg": "x" * (MESSAGE_LIMIT * 3)})
    assert len(message) == MESSAGE_LIMIT and message.endswith("…")


def test_plan_summary_only_from_the_placement_plan_module():
    run = RunRecorder(inventory="lab")
    run.start_phase("p", at=at(0))
    run.task_result(host="h", task="other", status="ok", result={"summary": {"status": "whatever"}}, action="x.y.z")
    assert run.plan is None
    run.task_result(host="h", task="plan", status="ok", result={"summary": PLAN_SUMMARY}, action="placement_plan")
    assert run.plan == {"host": "h", "task": "plan", "summary": PLAN_SUMMARY}


def test_endpoints_from_results_facts_role_facts_and_loop_items_deduplicated():
    run = RunRecorder(inventory="lab")
    run.start_phase("p", at=at(0))
    run.task_result(host="gw", task="gateway", status="ok", result={"llmops_endpoints": {"gateway": "https://gw/v1"}})
    run.task_result(host="gw", task="again", status="ok", result={"llmops_endpoints": {"gateway": "https://gw/v1"}})
    loop = {"results": [{"ansible_facts": {"llmops_endpoints": {"chat": "http://n1:8000"}}}]}
    run.task_result(host="n1", task="serve", status="ok", result=loop)
    role_fact = {"ansible_facts": {"gateway_llmops_endpoints": {"gateway-admin": "http://gw:9000"}}}
    run.task_result(host="gw", task="gateway : publish", status="ok", result=role_fact)
    unrelated = {"ansible_facts": {"llmops_endpoints_backup": {"x": "http://x"}, "endpoints": {"y": "http://y"}}}
    run.task_result(host="gw", task="unrelated", status="ok", result=unrelated)
    run.task_result(host="n2", task="bad", status="ok", result={"llmops_endpoints": ["http://n2"]})
    run.task_result(host="n3", task="failed one", status="failed", result={"llmops_endpoints": {"x": "http://x"}})
    assert run.endpoints == [
        {"name": "gateway", "url": "https://gw/v1", "host": "gw", "task": "gateway"},
        {"name": "chat", "url": "http://n1:8000", "host": "n1", "task": "serve"},
        {"name": "gateway-admin", "url": "http://gw:9000", "host": "gw", "task": "gateway : publish"},
    ]
    assert run.notes == ["bad on n2: llmops_endpoints must map endpoint names to URL strings; ignored"]


def test_summary_of_a_run_with_changes():
    report = site_run().report()
    lines = summary_lines(report)
    assert lines[0] == "Run OK: site.yml on inventory lab, 3 phases on 4 hosts in 1 min 40 s"
    assert lines[1] == "Changed: changed=3 on 3 of 4 hosts (3 changed tasks listed in the report)."
    assert lines[2] == "Failed: none (failed=0, unreachable=0)."
    assert lines[3] == "Plan: feasible, cost 152.53/h, lower bound 150.10/h, gap 1.59%, 1 model placed, 1 unplaced."
    assert lines[4] == "Endpoints: prometheus http://control:9090"


def test_summary_says_plainly_when_nothing_changed():
    lines = summary_lines(site_run(changed=False).report())
    assert "No changes (changed=0): every host was already in the desired state." in lines
    check = summary_lines(site_run(changed=False, check_mode=True).report())
    assert check[0].startswith("Check run OK")
    assert "No changes would be made (changed=0): every host is in the desired state." in check


def test_summary_names_the_first_real_failure():
    run = RunRecorder(inventory="example")
    run.start_playbook("site.yml", at=at(0))
    run.start_phase("p", at=at(0))
    run.task_result(host="a", task="ignored one", status="failed", result={"msg": "meh"}, ignored=True)
    run.task_result(host="b", task="apt", status="failed", result={"msg": "E: Unable to locate package x\nmore"})
    run.finish(at=at(3))
    lines = summary_lines(run.report())
    assert lines[0].startswith("Run FAILED: site.yml on inventory example")
    assert lines[2] == (
        "Failed: failed=1, unreachable=0 on 1 host; 1 failure ignored. First: b: apt: E: Unable to locate package x"
    )
    assert lines[3] == "Plan: none computed in this run."


def test_markdown_tables_and_escaping():
    run = site_run()
    run.start_phase("Weird | name", at=at(100))
    run.task_result(host="a", task="t", status="failed", result={"msg": "a|b\nc"})
    run.finish(at=at(101))
    text = render_markdown(run.report())
    lines = text.splitlines()
    assert lines[0] == "# Run report: site.yml on lab"
    assert "| 1 | GPU host layer | site.yml | 2026-12-01T12:00:01Z | 2026-12-01T12:00:31Z | 30 s | 4 | 2 | 0 | 1 | 0 |" in lines
    assert "| Weird \\| name | a | t | failed | a\\|b c |" in lines
    assert "| chat-70b | 2 x H100-SXM-80GB fp8 TP4 (19.60 rps for 4 rps demand) |" in lines
    assert "| prometheus | http://control:9090 | control | prometheus : Publish the endpoint |" in lines


def test_markdown_without_changes_says_so():
    text = render_markdown(site_run(changed=False).report())
    assert "None: no task changed anything (changed=0)." in text.splitlines()


def test_html_escapes_and_links_only_web_addresses():
    run = RunRecorder(inventory="lab")
    run.start_playbook("x.yml", at=at(0))
    run.start_phase("<script>alert(1)</script>", at=at(0))
    run.task_result(
        host="h", task="t", status="ok",
        result={"llmops_endpoints": {"evil": "javascript:alert(1)", "good": "https://ok.example/"}},
    )
    run.finish(at=at(1))
    page = render_html(run.report(), svg="<svg></svg>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '<a href="https://ok.example/">' in page
    assert 'href="javascript' not in page
    assert "<figure><svg></svg>" in page


def test_timeline_svg_is_drawn_by_matplotlib_with_every_phase():
    report = site_run().report()
    svg = timeline_svg(report)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "Matplotlib" in svg  # matplotlib signs its SVG output
    for index, phase in enumerate(report["phases"], start=1):
        assert f"{index}. {phase['name']}" in svg
    assert timeline_svg(report) == svg  # stable ids: the same run draws the same file


def test_write_report_writes_three_files_with_the_summary(tmp_path):
    written, warnings = write_report(site_run().report(), tmp_path / "out" / "lab")
    assert warnings == []
    folder = tmp_path / "out" / "lab"
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.json", "report.md"]
    document = json.loads((folder / "report.json").read_text())
    assert document == written
    assert document["schema"] == "llmops.run_report/1"
    assert document["files"]["html"] == str(folder / "report.html")
    assert document["summary"][-1] == f"Report: {folder / 'report.html'} (also report.md, report.json)"
    assert "<svg" in (folder / "report.html").read_text()
    assert (folder / "report.md").read_text().startswith("# Run report: site.yml on lab\n\n```text\nRun OK")


def test_summary_command_prints_the_summary_and_reports_the_result(tmp_path):
    write_report(site_run().report(), tmp_path)
    shown = subprocess.run([sys.executable, "-m", "llmops.report", str(tmp_path)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].startswith("Run OK: site.yml on inventory lab")

    failed = RunRecorder(inventory="lab")
    failed.start_phase("p", at=at(0))
    failed.task_result(host="a", task="t", status="failed", result={"msg": "x"})
    failed.finish(at=at(1))
    write_report(failed.report(), tmp_path / "failed")
    shown = subprocess.run(
        [sys.executable, "-m", "llmops.report", str(tmp_path / "failed" / "report.json")], capture_output=True, text=True
    )
    assert shown.returncode == 1 and shown.stdout.startswith("Run FAILED")

    (tmp_path / "other.json").write_text("{}")
    shown = subprocess.run([sys.executable, "-m", "llmops.report", str(tmp_path / "other.json")], capture_output=True, text=True)
    assert shown.returncode == 2 and "is not a run report" in shown.stderr
