"""prometheus_config's alerting option: Alertmanager targets rendered, checked by the real promtool."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.modules import prometheus_config


def config_args(path, alerting):
    return {
        "path": str(path),
        "promtool": "promtool",
        "rule_files": [],
        "scrape_jobs": [{"job_name": "node", "targets": ["lab-control:9100"]}],
        "alerting": alerting,
    }


@pytest.mark.parametrize("check_mode", [False, True])
def test_alertmanagers_are_rendered_and_promtool_accepts_them(run_module, tmp_path, check_mode):
    path = tmp_path / "prometheus.yml"
    (tmp_path / "am-password").write_text("not-used-here\n")
    alerting = {
        "alertmanagers": [
            {"targets": ["lab-control:9093"]},
            {
                "targets": ["am-1.example.net:9093", "am-2.example.net:9093"],
                "scheme": "https",
                "path_prefix": "/alertmanager",
                "timeout": "10s",
                "basic_auth": {"username": "prometheus", "password_file": str(tmp_path / "am-password")},
                "tls_config": {"ca_file": "/etc/ssl/certs/ca-certificates.crt"},
            },
        ]
    }

    result = run_module(prometheus_config, config_args(path, alerting), check_mode=check_mode, diff=True)
    again = run_module(prometheus_config, config_args(path, alerting), check_mode=check_mode)

    assert result["changed"] is True, result
    rendered = yaml.safe_load(result["diff"]["after"])["alerting"]["alertmanagers"]
    assert rendered[0] == {"static_configs": [{"targets": ["lab-control:9093"]}]}
    assert rendered[1] == {
        "scheme": "https",
        "basic_auth": {"username": "prometheus", "password_file": str(tmp_path / "am-password")},
        "tls_config": {"ca_file": "/etc/ssl/certs/ca-certificates.crt"},
        "path_prefix": "/alertmanager",
        "timeout": "10s",
        "static_configs": [{"targets": ["am-1.example.net:9093", "am-2.example.net:9093"]}],
    }
    assert path.exists() is not check_mode
    assert again["changed"] is check_mode


def test_no_alertmanagers_writes_no_alerting_section(run_module, tmp_path):
    path = tmp_path / "prometheus.yml"

    result = run_module(prometheus_config, config_args(path, {"alertmanagers": []}))

    assert result["changed"] is True, result
    assert "alerting" not in yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    ("alertmanager", "message"),
    [
        ({"targets": ["http://lab-control:9093"]}, "alerting.alertmanagers[0].targets[0]: 'http://lab-control:9093' is not a valid scrape target"),
        ({"targets": ["lab-control:9093"], "scheme": "smtp"}, "alerting.alertmanagers[0].scheme: 'smtp' is not one of http, https"),
        ({"targets": ["lab-control:9093"], "path_prefix": "alertmanager"}, "alerting.alertmanagers[0].path_prefix: 'alertmanager' must start with /"),
        ({"targets": ["lab-control:9093"], "timeout": "ten seconds"}, "alerting.alertmanagers[0].timeout: 'ten seconds' is not a Prometheus duration"),
        ({"targets": ["lab-control:9093"], "basic_auth": {"username": "p"}}, "alerting.alertmanagers[0].basic_auth: username and password_file are both required"),
    ],
)
def test_bad_alertmanager_fails_naming_the_field_and_keeps_the_live_file(run_module, tmp_path, alertmanager, message):
    path = tmp_path / "prometheus.yml"
    path.write_text("# working config\n")

    result = run_module(prometheus_config, config_args(path, {"alertmanagers": [alertmanager]}))

    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith(message), result["msg"]
    assert path.read_text() == "# working config\n"
