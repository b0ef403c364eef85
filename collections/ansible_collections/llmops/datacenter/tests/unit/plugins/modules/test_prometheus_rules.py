"""prometheus_rules module: check mode, diff, idempotence, invalid rules, and the real promtool."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.modules import prometheus_rules


@pytest.fixture
def run_module(run_module):
    """Run prometheus_rules with args; promtool, when given, answers for promtool (else the real one runs)."""

    def run(args, check_mode=False, diff=False, promtool=None):
        fakes = {"run_command": promtool, "bin_path": "/usr/bin/promtool"} if promtool is not None else {}
        return run_module(prometheus_rules, args, check_mode, diff, **fakes)

    return run


def rules_args(path, **overrides):
    args = {
        "path": str(path),
        "builtin_groups": ["gpu_health", "serving", "host_health"],
        "model_slos": [{"model": "llama-3-8b", "objective": 0.99, "ttft_seconds": 1.0, "tpot_seconds": 0.1}],
        "groups": [{"name": "site", "rules": [{"alert": "ConfigReloadFailed", "expr": "prometheus_config_last_reload_successful == 0", "for": "5m"}]}],
    }
    args.update(overrides)
    return args


@pytest.mark.parametrize("check_mode", [False, True])
def test_writes_rules_after_promtool_accepts_them(run_module, fake_promtool, tmp_path, check_mode):
    path = tmp_path / "llmops.rules.yml"
    promtool = fake_promtool()

    result = run_module(rules_args(path), check_mode=check_mode, diff=True, promtool=promtool)

    assert result["changed"] is True
    (argv, checked), = promtool.calls
    assert argv[1:3] == ["check", "rules"]
    assert checked == result["diff"]["after"]
    assert "ModelTtftSloBurn" in checked and "ConfigReloadFailed" in checked
    if check_mode:
        assert not path.exists()
    else:
        names = [group["name"] for group in yaml.safe_load(path.read_text())["groups"]]
        assert names == ["llmops-gpu-health", "llmops-serving", "llmops-host-health", "site"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_second_run_reports_no_change(run_module, fake_promtool, tmp_path, check_mode):
    path = tmp_path / "llmops.rules.yml"
    run_module(rules_args(path), promtool=fake_promtool())
    promtool = fake_promtool()

    result = run_module(rules_args(path), check_mode=check_mode, diff=True, promtool=promtool)

    assert result["changed"] is False
    assert result["diff"]["before"] == result["diff"]["after"]
    assert promtool.calls == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_structurally_invalid_rule_fails_naming_group_and_rule(run_module, fake_promtool, tmp_path, check_mode):
    path = tmp_path / "llmops.rules.yml"
    path.write_text("# live rules\n")
    args = rules_args(path, groups=[{"name": "site", "rules": [{"alert": "NoExpr", "for": "5m"}]}])
    promtool = fake_promtool()

    result = run_module(args, check_mode=check_mode, promtool=promtool)

    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("group 'site', rule 0 (NoExpr).expr:")
    assert promtool.calls == []
    assert path.read_text() == "# live rules\n"


@pytest.mark.parametrize("check_mode", [False, True])
def test_bad_slo_latency_fails_listing_the_bucket_bounds(run_module, fake_promtool, tmp_path, check_mode):
    path = tmp_path / "llmops.rules.yml"
    args = rules_args(path, model_slos=[{"model": "llama-3-8b", "ttft_seconds": 0.3}])

    result = run_module(args, check_mode=check_mode, promtool=fake_promtool())

    assert result["failed"] is True
    assert "model_slos[0].ttft_seconds: 0.3 is not a vLLM histogram bucket bound; accepted:" in result["msg"]
    assert not path.exists()


@pytest.mark.parametrize("check_mode", [False, True])
def test_real_promtool_rejects_bad_promql_naming_group_and_rule_and_changes_nothing(run_module, tmp_path, check_mode):
    path = tmp_path / "llmops.rules.yml"
    first = run_module(rules_args(path, promtool="promtool"))
    assert first["changed"] is True
    live = path.read_text()
    broken = [{"name": "site", "rules": [{"alert": "Fine", "expr": "up == 0"}, {"alert": "Broken", "expr": "rate(up[5m]"}]}]

    result = run_module(rules_args(path, promtool="promtool", groups=broken), check_mode=check_mode)

    assert result["failed"] is True
    assert 'group "site", rule 2, "Broken"' in result["msg"]
    assert str(path) in result["msg"]
    assert path.read_text() == live
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llmops.rules.yml"]
