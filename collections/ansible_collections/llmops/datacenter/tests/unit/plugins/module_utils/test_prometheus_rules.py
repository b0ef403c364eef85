"""prometheus_rules and monitoring_catalog: structured groups, built-in rules, real promtool checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.module_utils import monitoring_catalog
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_files import PrometheusFileError
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_rules import build_rules

ROLE_RULE_TESTS = Path(__file__).resolve().parents[4] / "roles" / "prometheus" / "files" / "tests"
# The SLO the promtool scenarios in ROLE_RULE_TESTS were written for (see the README there).
TEST_SLOS = [{"model": "llama-3-8b", "objective": 0.99, "ttft_seconds": 1.0, "tpot_seconds": 0.1}]
# scripts/setup.sh installs Debian's prometheus package; without promtool these tests fail, never skip.
PROMTOOL = shutil.which("promtool") or "promtool"


def promtool(*args, cwd=None):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, check=False)


def all_builtin_rules():
    return build_rules([], monitoring_catalog.BUILTIN_GROUPS, {}, TEST_SLOS)


def test_builtin_groups_cover_gpu_serving_and_host_health():
    groups = yaml.safe_load(all_builtin_rules())["groups"]
    names = {group["name"]: [rule.get("alert") or rule.get("record") for rule in group["rules"]] for group in groups}
    assert {"GpuXidError", "GpuTemperatureHigh", "GpuFramebufferNearlyFull"} <= set(names["llmops-gpu-health"])
    assert {"ModelTtftSloBurn", "ModelTpotSloBurn", "ModelQueueBacklog", "ModelKvCacheNearlyFull", "ModelReplicaDown"} <= set(names["llmops-serving"])
    assert {"TargetDown", "HostFilesystemAlmostFull", "HostMemoryLow", "HostHighLoad"} <= set(names["llmops-host-health"])
    text = all_builtin_rules()
    for metric in ("DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_GPU_TEMP", "vllm:time_to_first_token_seconds_bucket",
                   "vllm:inter_token_latency_seconds_bucket", "vllm:num_requests_waiting",
                   "vllm:kv_cache_usage_perc", "vllm:request_success_total"):
        assert metric in text
    # Names vLLM no longer exports must not come back.
    assert "vllm:gpu_cache_usage_perc" not in text and "vllm:time_per_output_token_seconds" not in text


def test_thresholds_override_defaults():
    text = build_rules([], ["gpu_health"], {"gpu_temperature_celsius": 80}, [])
    rules = {rule.get("alert"): rule for rule in yaml.safe_load(text)["groups"][0]["rules"]}
    assert rules["GpuTemperatureHigh"]["expr"] == "DCGM_FI_DEV_GPU_TEMP > 80"


def test_promtool_accepts_every_builtin_rule(tmp_path):
    rule_file = tmp_path / "llmops.rules.yml"
    rule_file.write_text(all_builtin_rules())
    result = promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", sorted(path.name for path in ROLE_RULE_TESTS.glob("*.test.yml")))
def test_promtool_rule_unit_tests_pass(tmp_path, scenario):
    (tmp_path / "llmops.rules.yml").write_text(all_builtin_rules())
    shutil.copy(ROLE_RULE_TESTS / scenario, tmp_path / scenario)
    result = promtool("test", "rules", scenario, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_exist_for_every_builtin_group():
    assert sorted(path.name for path in ROLE_RULE_TESTS.glob("*.test.yml")) == [
        "gpu_health.test.yml", "host_health.test.yml", "serving.test.yml",
    ]


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([{"name": "site", "rules": [{"alert": "A", "record": "b", "expr": "up"}]}], "group 'site', rule 0 (A): set exactly one"),
        ([{"name": "site", "rules": [{"alert": "A"}]}], "group 'site', rule 0 (A).expr:"),
        ([{"name": "site", "rules": [{"record": "bad name", "expr": "up"}]}], "group 'site', rule 0 (bad name).record:"),
        ([{"name": "site", "rules": [{"alert": "A", "expr": "up", "for": "five minutes"}]}], "group 'site', rule 0 (A).for:"),
        ([{"name": "site", "rules": [{"alert": "A", "expr": "up", "severity": "page"}]}], "group 'site', rule 0 (A): unknown key(s) severity"),
        ([{"name": "site", "rules": []}], "group 'site'.rules:"),
        ([{"rules": [{"alert": "A", "expr": "up"}]}], "groups[0].name:"),
        ([{"name": "llmops-serving", "rules": [{"alert": "A", "expr": "up"}]}], "group 'llmops-serving': group names must be unique"),
    ],
)
def test_structural_mistakes_name_the_group_and_rule(groups, expected):
    with pytest.raises(PrometheusFileError) as raised:
        build_rules(groups, ["serving"], {}, [])
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("slos", "thresholds", "expected"),
    [
        ([{"model": "m", "ttft_seconds": 0.3}], {}, "model_slos[0].ttft_seconds: 0.3 is not a vLLM histogram bucket bound; accepted: 0.001"),
        ([{"model": "m", "tpot_seconds": 0.1, "objective": 99}], {}, "model_slos[0].objective:"),
        ([{"model": "m"}], {}, "model_slos[0]: set ttft_seconds, tpot_seconds or both"),
        ([{"model": 'm"x', "ttft_seconds": 1.0}], {}, "model_slos[0].model:"),
        ([{"model": "m", "ttft_seconds": 1.0}, {"model": "m", "ttft_seconds": 1.0}], {}, "model_slos[1].model: 'm' appears twice"),
        ([], {"gpu_temp": 80}, "thresholds: unknown key(s) gpu_temp; accepted:"),
    ],
)
def test_bad_slos_and_thresholds_name_the_field(slos, thresholds, expected):
    with pytest.raises(PrometheusFileError) as raised:
        build_rules([], monitoring_catalog.BUILTIN_GROUPS, thresholds, slos)
    assert expected in str(raised.value)


def test_promtool_rejects_invalid_promql_naming_group_and_rule(tmp_path):
    text = build_rules([{"name": "site", "rules": [{"alert": "Broken", "expr": "sum(rate(up[5m])"}]}], [], {}, [])
    rule_file = tmp_path / "site.rules.yml"
    rule_file.write_text(text)
    result = promtool("check", "rules", str(rule_file))
    assert result.returncode != 0
    assert 'group "site", rule 1, "Broken"' in result.stdout + result.stderr
