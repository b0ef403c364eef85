"""prometheus_scrape: targets and jobs become prometheus.yml; bad input names its field."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_files import PrometheusFileError
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_scrape import (
    TARGET_FORMAT,
    build_config,
    validate_target,
)


@pytest.mark.parametrize(
    "target",
    ["lab-gpu-1:9100", "gpu-1.dc1.example.net:9400", "10.0.0.7:8000", "[fd00::7]:9100", "localhost:65535"],
)
def test_accepts_host_port_targets(target):
    validate_target(target, "scrape_jobs[0].targets[0]")


@pytest.mark.parametrize(
    "target",
    ["lab-gpu-1", "http://lab-gpu-1:9100", "lab-gpu-1:0", "lab-gpu-1:70000", "fd00::7:9100", "gpu 1:9100", ":9100", 9100],
)
def test_rejects_other_target_formats_naming_field_and_format(target):
    with pytest.raises(PrometheusFileError) as raised:
        validate_target(target, "scrape_jobs[1].targets[2]")
    assert str(raised.value).startswith("scrape_jobs[1].targets[2]:")
    assert TARGET_FORMAT in str(raised.value)


def test_jobs_and_plan_shaped_model_servers_render_as_prometheus_expects():
    text = build_config(
        {"scrape_interval": "15s", "evaluation_interval": "30s", "external_labels": {"site": "lab"}},
        ["rules/*.rules.yml"],
        [
            {"job_name": "node", "targets": ["lab-control:9100", "lab-gpu-1:9100"]},
            {"job_name": "dcgm", "targets": ["lab-gpu-1:9400"], "labels": {"pool": "h100"}, "scrape_interval": "30s"},
        ],
        [
            {"model": "llama-3-8b", "targets": ["10.0.0.11:8000", "10.0.0.12:8000"], "labels": {"gpu_type": "h100"}},
            {"model": "mistral-7b", "targets": ["10.0.0.13:8000"]},
        ],
    )
    config = yaml.safe_load(text)
    assert config["global"] == {
        "scrape_interval": "15s",
        "evaluation_interval": "30s",
        "external_labels": {"site": "lab"},
    }
    assert config["rule_files"] == ["rules/*.rules.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["node"]["static_configs"] == [{"targets": ["lab-control:9100", "lab-gpu-1:9100"]}]
    assert jobs["dcgm"]["static_configs"][0]["labels"] == {"pool": "h100"}
    assert jobs["model-servers"]["static_configs"] == [
        {"targets": ["10.0.0.11:8000", "10.0.0.12:8000"], "labels": {"gpu_type": "h100", "model": "llama-3-8b"}},
        {"targets": ["10.0.0.13:8000"], "labels": {"model": "mistral-7b"}},
    ]


@pytest.mark.parametrize(
    ("jobs", "models", "field"),
    [
        ([{"job_name": "node", "targets": ["ok:1", "bad"]}], [], "scrape_jobs[0].targets[1]"),
        ([{"job_name": "node", "target_groups": [{"targets": ["x:1"], "labels": {"__meta": "x"}}]}], [], "scrape_jobs[0].target_groups[0].labels"),
        ([{"job_name": "a", "targets": ["x:1"]}, {"job_name": "a", "targets": ["y:1"]}], [], "scrape_jobs[1].job_name"),
        ([{"job_name": "a", "scrape_interval": "15 seconds"}], [], "scrape_jobs[0].scrape_interval"),
        ([{"job_name": "a", "scheme": "ftp"}], [], "scrape_jobs[0].scheme"),
        ([], [{"model": "llama", "targets": ["10.0.0.1"]}], "model_server_targets[0].targets[0]"),
        ([], [{"targets": ["10.0.0.1:8000"]}], "model_server_targets[0].model"),
        ([{"job_name": "model-servers"}], [{"model": "m", "targets": ["h:1"]}], "model_server_targets.job_name"),
    ],
)
def test_bad_input_names_the_field(jobs, models, field):
    with pytest.raises(PrometheusFileError) as raised:
        build_config({}, [], jobs, models)
    assert str(raised.value).startswith(field + ":"), str(raised.value)
