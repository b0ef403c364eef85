"""prometheus_files: deterministic YAML and the validate-then-replace writer."""

from __future__ import annotations

import os

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_files import (
    PrometheusFileError,
    ValidatedFile,
    dump_yaml,
)


def test_yaml_keeps_every_value_and_type():
    data = {
        "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": ["a:9100"], "labels": {"on": "no"}}]}],
        "expr": 'sum by (model_name) (rate(vllm:request_success_total{finished_reason="abort"}[5m])) > 0.05\n',
        "numbers": [1, 2.5, True, None],
        "empty": {"list": [], "map": {}},
        "odd key": "1e3",
        "nested": [[1, 2], [{"a": "b"}]],
    }
    text = dump_yaml(data)
    assert yaml.safe_load(text) == data
    # Same input, byte-identical output: what makes the modules idempotent.
    assert dump_yaml(data) == text


class RecordingValidator:
    """Stands in for promtool at the run_command boundary and records what it was asked to check."""

    def __init__(self, rc=0, stderr=""):
        self.rc = rc
        self.stderr = stderr
        self.checked = []

    def __call__(self, argv):
        candidate = argv[-1]
        with open(candidate, encoding="utf-8") as handle:
            self.checked.append((argv, handle.read()))
        return self.rc, "", self.stderr.replace("{candidate}", candidate)


def validated(path, validator, check_mode=False):
    return ValidatedFile(str(path), validator, check_mode, ["promtool", "check", "rules", "{path}"])


@pytest.mark.parametrize("check_mode", [False, True])
def test_new_content_is_checked_next_to_the_live_file_then_written(tmp_path, check_mode):
    target = tmp_path / "llmops.rules.yml"
    target.write_text("old\n")
    validator = RecordingValidator()

    result = validated(target, validator, check_mode).apply("new\n")

    assert result["changed"] is True
    assert result["diff"]["before"] == "old\n" and result["diff"]["after"] == "new\n"
    (argv, checked_text), = validator.checked
    assert checked_text == "new\n"
    assert os.path.dirname(argv[-1]) == str(tmp_path)
    assert argv[:3] == ["promtool", "check", "rules"]
    assert target.read_text() == ("old\n" if check_mode else "new\n")
    assert sorted(os.listdir(tmp_path)) == ["llmops.rules.yml"]


def test_unchanged_content_is_neither_checked_nor_rewritten(tmp_path):
    target = tmp_path / "prometheus.yml"
    target.write_text("same\n")
    mtime = target.stat().st_mtime_ns
    validator = RecordingValidator()

    result = validated(target, validator).apply("same\n")

    assert result["changed"] is False
    assert validator.checked == []
    assert target.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("check_mode", [False, True])
def test_rejected_content_leaves_the_live_file_and_no_candidate(tmp_path, check_mode):
    target = tmp_path / "prometheus.yml"
    target.write_text("working\n")
    validator = RecordingValidator(rc=1, stderr='FAILED: parsing YAML file {candidate}: unknown field "scrape"')

    with pytest.raises(PrometheusFileError) as raised:
        validated(target, validator, check_mode).apply("broken\n")

    message = str(raised.value)
    assert str(target) in message and "unknown field" in message and "candidate" not in message
    assert target.read_text() == "working\n"
    assert sorted(os.listdir(tmp_path)) == ["prometheus.yml"]


def test_new_file_keeps_an_existing_files_mode(tmp_path):
    target = tmp_path / "web.yml"
    target.write_text("a\n")
    target.chmod(0o640)
    validated(target, RecordingValidator()).apply("b\n")
    assert target.stat().st_mode & 0o777 == 0o640


def test_missing_directory_fails_naming_the_path(tmp_path):
    with pytest.raises(PrometheusFileError, match="does not exist"):
        validated(tmp_path / "absent" / "prometheus.yml", RecordingValidator()).apply("x\n")
