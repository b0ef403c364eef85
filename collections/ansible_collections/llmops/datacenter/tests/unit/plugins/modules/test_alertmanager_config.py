"""alertmanager_config module: check mode, diff, idempotence, field-named errors, and the real amtool."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.modules import alertmanager_config


@pytest.fixture
def run_module(run_module):
    """Run alertmanager_config with args against the real amtool on this machine."""

    def run(args, check_mode=False, diff=False):
        return run_module(alertmanager_config, args, check_mode, diff)

    return run


def config_args(path, **overrides):
    args = {
        "path": str(path),
        "global_config": {"resolve_timeout": "5m", "smtp_smarthost": "mail.example.net:587", "smtp_from": "am@example.net"},
        "route": {
            "receiver": "discard",
            "group_by": ["alertname", "instance"],
            "group_wait": "30s",
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "on-call", "continue": True},
                {"matchers": ['severity=~"warning|critical"'], "receiver": "team-mail"},
            ],
        },
        "receivers": [
            {"name": "discard"},
            {"name": "on-call", "webhook_configs": [{"url": "https://pager.example.net/hook", "send_resolved": True}]},
            {"name": "team-mail", "email_configs": [{"to": "llm-platform@example.net"}]},
        ],
        "inhibit_rules": [
            {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'], "equal": ["alertname", "instance"]}
        ],
    }
    args.update(overrides)
    return args


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("check_mode", [False, True])
def test_writes_the_config_amtool_accepts_and_check_mode_writes_nothing(run_module, tmp_path, check_mode):
    path = tmp_path / "alertmanager.yml"

    result = run_module(config_args(path), check_mode=check_mode, diff=True)

    assert result["changed"] is True, result
    assert result["diff"]["before"] == "" and result["diff"]["before_header"] == "(absent)"
    after = yaml.safe_load(result["diff"]["after"])
    assert after["route"]["routes"][0] == {"receiver": "on-call", "matchers": ['severity="critical"'], "continue": True}
    assert [receiver["name"] for receiver in after["receivers"]] == ["discard", "on-call", "team-mail"]
    assert after["inhibit_rules"][0]["equal"] == ["alertname", "instance"]
    if check_mode:
        assert leftovers(tmp_path) == []
    else:
        assert path.read_text() == result["diff"]["after"]
        assert leftovers(tmp_path) == ["alertmanager.yml"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_second_run_reports_no_change_and_a_diff_of_an_edit(run_module, tmp_path, check_mode):
    path = tmp_path / "alertmanager.yml"
    run_module(config_args(path))
    before = path.read_text()

    same = run_module(config_args(path), check_mode=check_mode, diff=True)
    smtp = {"smtp_smarthost": "mail.example.net:587", "smtp_from": "am@example.net"}
    edited = run_module(config_args(path, global_config={"resolve_timeout": "10m", **smtp}), check_mode=check_mode, diff=True)

    assert same["changed"] is False and same["diff"]["before"] == same["diff"]["after"] == before
    assert edited["changed"] is True, edited
    assert 'resolve_timeout: "5m"' in edited["diff"]["before"] and 'resolve_timeout: "10m"' in edited["diff"]["after"]
    assert ("10m" in path.read_text()) is not check_mode


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"route": {"receiver": "discard", "routes": [{"matchers": ['team="ml"'], "receiver": "pager"}]}},
            "route.routes[0].receiver: 'pager' is not a defined receiver; defined: discard, on-call, team-mail",
        ),
        (
            {"route": {"receiver": "discard", "group_wait": "half a minute"}},
            "route.group_wait: 'half a minute' is not a duration such as 30s, 5m or 4h",
        ),
        (
            {"route": {"receiver": "discard", "routes": [{"matchers": ["severity is critical"], "receiver": "on-call"}]}},
            "route.routes[0].matchers[0]: 'severity is critical' is not a matcher such as severity=\"critical\"",
        ),
        (
            {"route": {"receiver": "discard", "matchers": ['severity="critical"']}},
            "route.matchers: the root route matches every alert",
        ),
        (
            {"receivers": [{"name": "discard", "webhook_configs": [{"url": "pager.example.net/hook"}]}]},
            "receivers[0].webhook_configs[0].url: 'pager.example.net/hook' is not an absolute URL with scheme http or https",
        ),
        (
            {"receivers": [{"name": "discard"}, {"name": "discard"}]},
            "receivers[1].name: 'discard' is already used by receivers[0]; receiver names must be unique",
        ),
        (
            {"receivers": [{"name": "discard", "webhook_configs": [{"url": "https://h/", "http_config": {"basic_auth": {"username": "a", "password": "s3cret"}}}]}]},
            "receivers[0].webhook_configs[0].http_config.basic_auth.password: secrets are not written into alertmanager.yml",
        ),
        (
            {"inhibit_rules": [{"source_matchers": [], "target_matchers": ['severity="warning"']}]},
            "inhibit_rules[0].source_matchers: at least one matcher is required",
        ),
    ],
)
def test_bad_input_fails_naming_the_field_and_changes_nothing(run_module, tmp_path, overrides, message):
    path = tmp_path / "alertmanager.yml"
    path.write_text("# working config\n")

    result = run_module(config_args(path, **overrides), diff=True)

    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith(message), result["msg"]
    assert "s3cret" not in str(result)
    assert path.read_text() == "# working config\n"
    assert leftovers(tmp_path) == ["alertmanager.yml"]


def test_unknown_key_lists_the_accepted_ones(run_module, tmp_path):
    route = {"receiver": "discard", "routes": [{"match": {"severity": "critical"}, "receiver": "on-call"}]}

    result = run_module(config_args(tmp_path / "alertmanager.yml", route=route))

    assert result["failed"] is True
    assert result["msg"] == (
        "route.routes[0]: unknown key(s) match; accepted: receiver, group_by, group_wait, group_interval, "
        "repeat_interval, matchers, continue, routes"
    )


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize(
    ("overrides", "verdict"),
    [
        # Structurally fine, but only Alertmanager knows an email needs a smarthost from somewhere.
        ({"global_config": {"resolve_timeout": "5m"}}, "no global SMTP smarthost set"),
        # Matcher syntax is ours to check; whether the value is a valid RE2 regexp is amtool's.
        (
            {"route": {"receiver": "discard", "routes": [{"matchers": ['severity=~"(critical"'], "receiver": "on-call"}]}},
            "error parsing regexp: missing closing )",
        ),
    ],
)
def test_real_amtool_rejection_names_the_problem_and_keeps_the_live_file(run_module, tmp_path, check_mode, overrides, verdict):
    path = tmp_path / "alertmanager.yml"
    assert run_module(config_args(path))["changed"] is True
    live = path.read_text()

    result = run_module(config_args(path, **overrides), check_mode=check_mode)

    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith(f"amtool check-config rejected the new {path}; the live file was not changed")
    assert verdict in result["msg"]
    # amtool names the candidate it checked; the message names the file the user asked for.
    assert ".tmp" not in result["msg"]
    assert path.read_text() == live
    assert leftovers(tmp_path) == ["alertmanager.yml"]


def test_missing_directory_fails_naming_path(run_module, tmp_path):
    result = run_module(config_args(tmp_path / "missing" / "alertmanager.yml"))

    assert result["failed"] is True
    assert result["msg"] == f"path: directory {tmp_path / 'missing'} does not exist; create it first"


def test_file_options_apply_and_are_idempotent(run_module, tmp_path):
    path = tmp_path / "alertmanager.yml"

    first = run_module(config_args(path, mode="0640"))
    second = run_module(config_args(path, mode="0640"))

    assert first["changed"] is True and second["changed"] is False
    assert path.stat().st_mode & 0o777 == 0o640
