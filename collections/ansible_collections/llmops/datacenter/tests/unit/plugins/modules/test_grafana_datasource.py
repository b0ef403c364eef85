"""grafana_datasource: files really written to a temporary directory; check mode, diff, secrets, bad input."""

from __future__ import annotations

import functools
import os
import stat

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.modules import grafana_datasource

PASSWORD = "s3cret-prometheus-pw"


@pytest.fixture
def run_module(run_module):
    """Run grafana_datasource with args; returns the result dict (failed=True on fail_json)."""
    return functools.partial(run_module, grafana_datasource)


def prometheus_args(tmp_path, **overrides) -> dict:
    args = {
        "dest": str(tmp_path / "prometheus.yaml"),
        "name": "Prometheus",
        "uid": "prometheus",
        "url": "http://127.0.0.1:9090",
        "basic_auth_user": "grafana",
        "basic_auth_password": PASSWORD,
        "json_data": {"httpMethod": "POST", "timeInterval": "15s"},
    }
    args.update(overrides)
    return args


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_writes_grafana_provisioning_document(run_module, tmp_path, check_mode):
    result = run_module(prometheus_args(tmp_path), check_mode=check_mode, diff=True)
    assert result["changed"] is True and result["uid"] == "prometheus"
    assert PASSWORD not in repr(result), "the password leaked into the task result"
    assert "basicAuthPassword" in result["diff"]["after"]
    if check_mode:
        assert list(tmp_path.iterdir()) == []
        return
    document = yaml.safe_load((tmp_path / "prometheus.yaml").read_text(encoding="utf-8"))
    assert document["apiVersion"] == 1
    (datasource,) = document["datasources"]
    assert datasource["url"] == "http://127.0.0.1:9090"
    assert datasource["basicAuth"] is True and datasource["basicAuthUser"] == "grafana"
    assert datasource["secureJsonData"] == {"basicAuthPassword": PASSWORD}
    assert datasource["jsonData"] == {"httpMethod": "POST", "timeInterval": "15s"}
    # The file holds a password: never world-readable, even before owner and mode are applied.
    assert stat.S_IMODE(os.stat(tmp_path / "prometheus.yaml").st_mode) & 0o007 == 0


def test_second_run_is_unchanged(run_module, tmp_path):
    run_module(prometheus_args(tmp_path, mode="0640"))
    result = run_module(prometheus_args(tmp_path, mode="0640"), diff=True)
    assert result["changed"] is False


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_password_change_is_reported_without_showing_it(run_module, tmp_path, check_mode):
    run_module(prometheus_args(tmp_path))
    result = run_module(prometheus_args(tmp_path, basic_auth_password="rotated-pw"), check_mode=check_mode, diff=True)
    assert result["changed"] is True
    assert PASSWORD not in repr(result) and "rotated-pw" not in repr(result)
    assert "a secret value changed" in result["diff"]["after_header"]
    assert result["diff"]["before"] != result["diff"]["after"], "the diff would show nothing"
    written = (tmp_path / "prometheus.yaml").read_text(encoding="utf-8")
    assert (PASSWORD in written) is check_mode


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"basic_auth_password": None}, "basic_auth_password"),
        ({"basic_auth_user": None}, "basic_auth_user"),
        ({"url": "prometheus:9090"}, "url"),
        ({"uid": "has spaces"}, "uid"),
        ({"secure_json_data": {"tlsCACert": ""}}, "secure_json_data.tlsCACert"),
    ],
    ids=["no-password", "no-user", "url", "uid", "empty-secret"],
)
@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_bad_input_fails_naming_the_field_and_writes_nothing(run_module, tmp_path, overrides, field, check_mode):
    result = run_module(prometheus_args(tmp_path, **overrides), check_mode=check_mode)
    assert result["failed"] is True
    assert result["field"] == field and result["msg"].startswith(f"{field}:")
    assert list(tmp_path.iterdir()) == []


def test_absent_provisions_the_deletion(run_module, tmp_path):
    run_module(prometheus_args(tmp_path))
    result = run_module({"dest": str(tmp_path / "prometheus.yaml"), "name": "Prometheus", "state": "absent"})
    assert result["changed"] is True
    document = yaml.safe_load((tmp_path / "prometheus.yaml").read_text(encoding="utf-8"))
    assert document == {"apiVersion": 1, "deleteDatasources": [{"name": "Prometheus", "orgId": 1}]}
