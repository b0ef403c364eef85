"""grafana_dashboard: files really written to a temporary directory; check mode, diff, idempotence, bad input."""

from __future__ import annotations

import functools
import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.modules import grafana_dashboard

ROLE_DASHBOARDS = Path(__file__).resolve().parents[4] / "roles" / "grafana" / "files" / "dashboards"
SERVING_SPEC = yaml.safe_load((ROLE_DASHBOARDS / "model_serving.yml").read_text(encoding="utf-8"))


@pytest.fixture
def run_module(run_module):
    """Run grafana_dashboard with args; returns the result dict (failed=True on fail_json)."""
    return functools.partial(run_module, grafana_dashboard)


def serving_args(dest_dir: Path, **overrides) -> dict:
    args = {"dest_dir": str(dest_dir), **SERVING_SPEC}
    args.update(overrides)
    return args


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_first_run_reports_change_and_writes_only_outside_check_mode(run_module, tmp_path, check_mode):
    result = run_module(serving_args(tmp_path), check_mode=check_mode, diff=True)
    target = tmp_path / "llmops-model-serving.json"
    assert result["changed"] is True
    assert result["path"] == str(target)
    assert result["diff"]["before"] == ""
    assert json.loads(result["diff"]["after"])["uid"] == "llmops-model-serving"
    if check_mode:
        assert list(tmp_path.iterdir()) == []
    else:
        assert target.read_text(encoding="utf-8") == result["diff"]["after"]
        assert result["panel_count"] == sum(1 for panel in SERVING_SPEC["panels"] if panel.get("kind") != "row")


def test_second_run_is_unchanged_and_byte_identical(run_module, tmp_path):
    run_module(serving_args(tmp_path))
    first = (tmp_path / "llmops-model-serving.json").read_bytes()
    first_inode = os.stat(tmp_path / "llmops-model-serving.json").st_ino
    result = run_module(serving_args(tmp_path), diff=True)
    assert result["changed"] is False
    assert (tmp_path / "llmops-model-serving.json").read_bytes() == first
    # Unchanged content is not even rewritten, so Grafana's provider sees no new modification.
    assert os.stat(tmp_path / "llmops-model-serving.json").st_ino == first_inode
    assert result["diff"]["before"] == result["diff"]["after"]


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_changed_panel_shows_in_diff(run_module, tmp_path, check_mode):
    run_module(serving_args(tmp_path))
    before = (tmp_path / "llmops-model-serving.json").read_text(encoding="utf-8")
    panels = [dict(panel) for panel in SERVING_SPEC["panels"]]
    panels[1]["thresholds"] = [{"value": 0.8, "color": "red"}]
    result = run_module(serving_args(tmp_path, panels=panels), check_mode=check_mode, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"] == before
    assert '"value": 0.8' in result["diff"]["after"] and '"value": 0.8' not in before
    written = (tmp_path / "llmops-model-serving.json").read_text(encoding="utf-8")
    assert written == (before if check_mode else result["diff"]["after"])


def test_mode_is_applied_and_idempotent(run_module, tmp_path):
    result = run_module(serving_args(tmp_path, mode="0640"))
    assert stat.S_IMODE(os.stat(result["path"]).st_mode) == 0o640
    assert run_module(serving_args(tmp_path, mode="0640"))["changed"] is False
    assert run_module(serving_args(tmp_path, mode="0644"))["changed"] is True


@pytest.mark.parametrize(
    ("panel", "field", "accepted"),
    [
        ({"title": "x", "kind": "graph", "expr": "up"}, "panels[0].kind", "timeseries, stat, gauge, row"),
        ({"title": "x", "expr": "  "}, "panels[0].expr", "non-empty"),
        ({"title": "x", "expr": "up", "unit": "furlongs"}, "panels[0].unit", "percent"),
        ({"title": "x", "targets": [{"expr": ""}]}, "panels[0].targets[0].expr", "non-empty"),
        ({"title": "x", "expr": "up{a=\"$nope\"}"}, "panels[0].expr", "__rate_interval"),
        ({"title": "x", "expr": "up", "width": 30}, "panels[0].width", "1 to 24"),
    ],
    ids=["kind", "empty-expr", "unit", "empty-target", "undefined-variable", "width"],
)
@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_bad_panel_fails_naming_the_field_and_writes_nothing(run_module, tmp_path, panel, field, accepted, check_mode):
    result = run_module({"dest_dir": str(tmp_path), "title": "Broken", "panels": [panel]}, check_mode=check_mode)
    assert result["failed"] is True
    assert result["field"] == field
    assert result["msg"].startswith(f"{field}:") and accepted in result["msg"]
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_fails_naming_dest_dir(run_module, tmp_path):
    result = run_module(serving_args(tmp_path / "missing"))
    assert result["failed"] is True and result["field"] == "dest"
    assert not (tmp_path / "missing").exists()


def test_check_mode_before_the_directory_exists_reports_a_change(run_module, tmp_path):
    # A check run on a fresh host: the task creating the directory only reported it would.
    result = run_module(serving_args(tmp_path / "missing"), check_mode=True)
    assert result["changed"] is True and "failed" not in result
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_absent_removes_the_file(run_module, tmp_path, check_mode):
    run_module(serving_args(tmp_path))
    result = run_module(serving_args(tmp_path, state="absent"), check_mode=check_mode)
    assert result["changed"] is True
    assert (tmp_path / "llmops-model-serving.json").exists() is check_mode
    if not check_mode:
        assert run_module(serving_args(tmp_path, state="absent"))["changed"] is False
