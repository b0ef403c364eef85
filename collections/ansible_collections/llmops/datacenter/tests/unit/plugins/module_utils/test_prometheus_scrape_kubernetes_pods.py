"""prometheus_scrape's pod jobs: a file-discovery job over kubernetes_pod_targets' file, accepted by the
real promtool together with a targets file the discovery wrote; bad input names its field."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.module_utils.kubernetes_pod_targets import (
    pod_target_groups,
    write_if_changed,
)
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_files import PrometheusFileError
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_scrape import build_config

PROMTOOL = shutil.which("promtool")


def serving_pod(name, ip):
    labels = {
        "app.kubernetes.io/managed-by": "llmops",
        "llmops.io/serves": "true",
        "llmops.io/model": "smollm2",
        "llmops.io/pool": "cpu-a",
    }
    return {
        "metadata": {"name": name, "namespace": "team-a", "labels": labels},
        "spec": {"containers": [{"name": "vllm", "ports": [{"name": "http", "containerPort": 8000}]}]},
        "status": {"phase": "Running", "podIP": ip},
    }


def test_a_pod_job_watches_the_discovery_file_under_the_model_servers_job_name():
    config = yaml.safe_load(
        build_config(
            {"scrape_interval": "15s"},
            [],
            [{"job_name": "node", "targets": ["lab-control:9100"]}],
            kubernetes_pod_jobs=[
                {"job_name": "model-servers", "targets_file": "/var/lib/prometheus/kubernetes-pods/model-servers.json"},
                {"job_name": "edge", "targets_file": "/var/lib/prometheus/kubernetes-pods/edge.json", "scrape_interval": "5s"},
            ],
        )
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["model-servers"] == {
        "job_name": "model-servers",
        "metrics_path": "/metrics",
        "file_sd_configs": [{"files": ["/var/lib/prometheus/kubernetes-pods/model-servers.json"]}],
    }
    assert jobs["edge"]["scrape_interval"] == "5s"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus)")
def test_promtool_accepts_the_job_and_the_targets_file_the_discovery_writes(tmp_path):
    targets = tmp_path / "model-servers.json"
    write_if_changed(str(targets), pod_target_groups([serving_pod("a", "10.244.1.7"), serving_pod("b", "fd00::7")]))
    path = tmp_path / "prometheus.yml"
    path.write_text(build_config({}, [], [], kubernetes_pod_jobs=[{"job_name": "model-servers", "targets_file": str(targets)}]))

    checked = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True, text=True, check=False)

    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus)")
def test_promtool_refuses_a_targets_file_with_a_bad_target(tmp_path):
    # The check is real: a discovery file Prometheus could not use fails promtool.
    targets = tmp_path / "model-servers.json"
    targets.write_text('[{"targets": ["10.244.1.7:8000/metrics"], "labels": {"model": "smollm2"}}]\n')
    path = tmp_path / "prometheus.yml"
    path.write_text(build_config({}, [], [], kubernetes_pod_jobs=[{"job_name": "model-servers", "targets_file": str(targets)}]))

    checked = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True, text=True, check=False)

    assert checked.returncode != 0
    assert '"10.244.1.7:8000/metrics" is not a valid hostname' in checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("pod_jobs", "static", "message"),
    [
        ([{"job_name": "model-servers", "targets_file": "/t.json"}], [{"model": "m", "targets": ["h:8000"]}],
         "kubernetes_pod_jobs[0].job_name: 'model-servers' is already used by model_server_targets"),
        ([{"job_name": "a", "targets_file": "/a.json"}, {"job_name": "a", "targets_file": "/b.json"}], [],
         "kubernetes_pod_jobs[1].job_name: 'a' is already used by kubernetes_pod_jobs[0]"),
        ([{"job_name": "", "targets_file": "/t.json"}], [], "kubernetes_pod_jobs[0].job_name: a non-empty string"),
        ([{"job_name": "a", "targets_file": "t.json"}], [], "kubernetes_pod_jobs[0].targets_file: 't.json' must be an absolute path ending in .json"),
        ([{"job_name": "a", "targets_file": "/t.yml"}], [], "kubernetes_pod_jobs[0].targets_file: '/t.yml' must be"),
        ([{"job_name": "a", "targets_file": "/t.json", "metrics_path": "metrics"}], [], "kubernetes_pod_jobs[0].metrics_path: 'metrics' must start with /"),
        ([{"job_name": "a", "targets_file": "/t.json", "scrape_interval": "15"}], [], "kubernetes_pod_jobs[0].scrape_interval: '15' is not a Prometheus duration"),
        ([{"job_name": "a", "targets_file": "/t.json", "api_server": "https://x"}], [], "kubernetes_pod_jobs[0]: unknown option(s) api_server"),
    ],
)  # fmt: skip
def test_bad_pod_jobs_fail_naming_the_field(pod_jobs, static, message):
    with pytest.raises(PrometheusFileError) as raised:
        build_config({}, [], [], static, kubernetes_pod_jobs=pod_jobs)
    assert str(raised.value).startswith(message)
