"""module_utils.managed_file on real files: compare, validate, atomic replace, diff."""

from __future__ import annotations

import os

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import managed_file


def test_atomic_write_keeps_the_existing_mode_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "d.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    managed_file.write_atomically(str(target), "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [path.name for path in tmp_path.iterdir()] == ["d.json"]


def test_a_new_file_gets_the_mode_asked_for(tmp_path):
    target = tmp_path / "datasource.yaml"
    result = managed_file.ensure_file(str(target), "a: 1\n", check_mode=False, new_file_mode=0o640)
    assert result["changed"] is True and result["diff"]["before_header"] == "(absent)"
    assert target.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("check_mode", [False, True])
def test_changed_content_is_written_only_outside_check_mode(tmp_path, check_mode):
    target = tmp_path / "prometheus.yml"
    target.write_text("old\n")
    result = managed_file.ensure_file(str(target), "new\n", check_mode)
    assert result == {
        "changed": True,
        "diff": {"before": "old\n", "after": "new\n", "before_header": str(target), "after_header": str(target)},
    }
    assert target.read_text() == ("old\n" if check_mode else "new\n")
    assert os.listdir(tmp_path) == ["prometheus.yml"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_absent_removes_the_file_only_outside_check_mode(tmp_path, check_mode):
    target = tmp_path / "dashboard.json"
    target.write_text("{}\n")
    result = managed_file.ensure_file(str(target), None, check_mode)
    assert result["changed"] is True and result["diff"]["after_header"] == "(absent)"
    assert target.exists() is check_mode
    assert managed_file.ensure_file(str(tmp_path / "never.json"), None, check_mode)["changed"] is False


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_rejected_candidate_leaves_the_live_file(tmp_path, check_mode):
    target = tmp_path / "llmops.rules.yml"
    target.write_text("working\n")
    seen = []

    def reject(candidate):
        with open(candidate, encoding="utf-8") as handle:
            seen.append((os.path.dirname(candidate), handle.read()))
        raise ValueError("rejected")

    with pytest.raises(ValueError, match="rejected"):
        managed_file.ensure_file(str(target), "broken\n", check_mode, validate=reject)
    assert seen == [(str(tmp_path), "broken\n")]
    assert target.read_text() == "working\n"
    assert os.listdir(tmp_path) == ["llmops.rules.yml"]


def test_diff_view_masks_what_the_diff_shows_but_not_what_is_written(tmp_path):
    target = tmp_path / "secret.yaml"
    result = managed_file.ensure_file(str(target), "password: pw\n", False, diff_view=lambda text: "masked\n")
    assert result["diff"]["after"] == "masked\n" and target.read_text() == "password: pw\n"
