"""prometheus_config with kubernetes_pod_jobs: through the real promtool, check mode writes nothing,
a second run changes nothing, a bad job fails naming its field and leaves the live file alone."""

from __future__ import annotations

import shutil

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.modules import prometheus_config

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian package prometheus)")


def args(path, targets_file, **overrides):
    values = {
        "path": str(path),
        "promtool": shutil.which("promtool"),
        "scrape_jobs": [{"job_name": "node", "targets": ["lab-control:9100"]}],
        "kubernetes_pod_jobs": [{"job_name": "model-servers", "targets_file": str(targets_file)}],
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize("check_mode", [False, True])
def test_the_pod_job_is_written_after_promtool_and_a_second_run_changes_nothing(run_module, tmp_path, check_mode):
    path, targets = tmp_path / "prometheus.yml", tmp_path / "model-servers.json"
    targets.write_text('[{"targets": ["10.244.1.7:8000"], "labels": {"model": "smollm2", "pod": "p"}}]\n')

    first = run_module(prometheus_config, args(path, targets), check_mode=check_mode, diff=True)

    assert first["changed"] is True and "file_sd_configs" in first["diff"]["after"]
    if check_mode:
        assert not path.exists()
        return
    jobs = {job["job_name"]: job for job in yaml.safe_load(path.read_text())["scrape_configs"]}
    assert jobs["model-servers"]["file_sd_configs"] == [{"files": [str(targets)]}]
    assert run_module(prometheus_config, args(path, targets))["changed"] is False


def test_a_bad_pod_job_fails_naming_the_field_and_keeps_the_live_file(run_module, tmp_path):
    path = tmp_path / "prometheus.yml"
    path.write_text("# working config\n")

    result = run_module(prometheus_config, args(path, tmp_path / "targets.yml"))

    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("kubernetes_pod_jobs[0].targets_file:")
    assert path.read_text() == "# working config\n"
