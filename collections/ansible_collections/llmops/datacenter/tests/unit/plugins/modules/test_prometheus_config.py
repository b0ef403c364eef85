"""prometheus_config module: check mode, diff, idempotence, bad targets, and the real promtool."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.modules import prometheus_config


@pytest.fixture
def run_module(run_module):
    """Run prometheus_config with args; promtool, when given, answers for promtool (else the real one runs)."""

    def run(args, check_mode=False, diff=False, promtool=None):
        fakes = {"run_command": promtool, "bin_path": "/usr/bin/promtool"} if promtool is not None else {}
        return run_module(prometheus_config, args, check_mode, diff, **fakes)

    return run


def config_args(path, **overrides):
    args = {
        "path": str(path),
        "global_config": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": ["rules/*.rules.yml"],
        "scrape_jobs": [
            {"job_name": "node", "targets": ["lab-control:9100", "lab-gpu-1:9100", "lab-gpu-2:9100"]},
            {"job_name": "dcgm", "targets": ["lab-gpu-1:9400", "lab-gpu-2:9400"]},
        ],
        "model_server_targets": [{"model": "llama-3-8b", "targets": ["10.0.0.11:8000"], "labels": {"gpu_type": "h100"}}],
    }
    args.update(overrides)
    return args


@pytest.mark.parametrize("check_mode", [False, True])
def test_writes_the_config_after_promtool_accepts_it(run_module, fake_promtool, tmp_path, check_mode):
    path = tmp_path / "prometheus.yml"
    promtool = fake_promtool()

    result = run_module(config_args(path), check_mode=check_mode, diff=True, promtool=promtool)

    assert result["changed"] is True
    assert "lab-gpu-2:9400" in result["diff"]["after"] and result["diff"]["before"] == ""
    (argv, checked), = promtool.calls
    assert argv[:3] == ["/usr/bin/promtool", "check", "config"]
    assert checked == result["diff"]["after"]
    if check_mode:
        assert not path.exists()
    else:
        jobs = {job["job_name"]: job for job in yaml.safe_load(path.read_text())["scrape_configs"]}
        assert jobs["model-servers"]["static_configs"][0]["labels"] == {"gpu_type": "h100", "model": "llama-3-8b"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if check_mode else ["prometheus.yml"])


@pytest.mark.parametrize("check_mode", [False, True])
def test_second_run_reports_no_change(run_module, fake_promtool, tmp_path, check_mode):
    path = tmp_path / "prometheus.yml"
    run_module(config_args(path), promtool=fake_promtool())
    promtool = fake_promtool()

    result = run_module(config_args(path), check_mode=check_mode, promtool=promtool)

    assert result["changed"] is False
    assert promtool.calls == []
    assert "diff" not in result


@pytest.mark.parametrize("check_mode", [False, True])
def test_unknown_target_format_fails_naming_the_field_and_changes_nothing(run_module, fake_promtool, tmp_path, check_mode):
    path = tmp_path / "prometheus.yml"
    path.write_text("# working config\n")
    args = config_args(path, scrape_jobs=[{"job_name": "node", "targets": ["lab-control:9100", "http://lab-gpu-1:9100"]}])
    promtool = fake_promtool()

    result = run_module(args, check_mode=check_mode, promtool=promtool)

    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("scrape_jobs[0].targets[1]: 'http://lab-gpu-1:9100' is not a valid scrape target")
    assert "accepted format: host:port" in result["msg"]
    assert promtool.calls == []
    assert path.read_text() == "# working config\n"


@pytest.mark.parametrize("check_mode", [False, True])
def test_promtool_rejection_fails_and_keeps_the_live_file(run_module, fake_promtool, tmp_path, check_mode):
    path = tmp_path / "prometheus.yml"
    path.write_text("# working config\n")
    promtool = fake_promtool(rc=1, stdout="", stderr='FAILED: "rules/x.rules.yml": group "a", rule 1: parse error')

    result = run_module(config_args(path), check_mode=check_mode, promtool=promtool)

    assert result["failed"] is True
    assert "rejected the new" in result["msg"] and 'group "a", rule 1' in result["msg"]
    assert path.read_text() == "# working config\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prometheus.yml"]


def test_real_promtool_accepts_the_config_and_the_rule_files_it_references(run_module, tmp_path):
    from ansible_collections.llmops.datacenter.plugins.module_utils.monitoring_catalog import BUILTIN_GROUPS
    from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_rules import build_rules

    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "llmops.rules.yml").write_text(build_rules([], BUILTIN_GROUPS, {}, []))
    (tmp_path / "password").write_text("not-used-here\n")
    jobs = [
        {"job_name": "prometheus", "targets": ["127.0.0.1:9090"], "basic_auth": {"username": "admin", "password_file": str(tmp_path / "password")}},
        {"job_name": "node", "targets": ["lab-control:9100"]},
    ]
    path = tmp_path / "prometheus.yml"

    first = run_module(config_args(path, scrape_jobs=jobs, promtool="promtool"))
    second = run_module(config_args(path, scrape_jobs=jobs, promtool="promtool"))

    assert first["changed"] is True and second["changed"] is False
    assert yaml.safe_load(path.read_text())["scrape_configs"][0]["basic_auth"]["password_file"] == str(tmp_path / "password")

    # A rule file promtool rejects makes the whole config fail, and the live config stays.
    (tmp_path / "rules" / "broken.rules.yml").write_text("groups:\n  - name: b\n    rules:\n      - alert: B\n        expr: sum(\n")
    third = run_module(config_args(path, scrape_jobs=[*jobs, {"job_name": "dcgm", "targets": ["lab-gpu-1:9400"]}], promtool="promtool"))
    assert third["failed"] is True and "broken.rules.yml" in third["msg"]
    assert "dcgm" not in path.read_text()
