"""kubernetes_pod_targets: which pods become scrape targets, with which labels; configuration errors
name their field; the targets file changes only when the targets do; an API server that does not
answer leaves the last targets in place."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import kubernetes_pod_targets as pods
from ansible_collections.llmops.datacenter.plugins.module_utils.kubernetes_pod_targets import (
    PodTargetsError,
    main,
    parse_selector,
    pod_target_groups,
    run_round,
    validate_config,
    write_if_changed,
)

SERVING_LABELS = {
    "app.kubernetes.io/managed-by": "llmops",
    "llmops.io/plan": "lab",
    "llmops.io/model": "smollm2",
    "llmops.io/tenant": "team-a",
    "llmops.io/pool": "cpu-a",
    "llmops.io/workload": "smollm2-cpu-a",
    "llmops.io/serves": "true",
}


def pod(name="smollm2-cpu-a-7d9f-x1", ip="10.244.1.7", labels=None, phase="Running", ports=None, node="lab-gpu-1"):
    return {
        "metadata": {"name": name, "namespace": "team-a", "labels": dict(SERVING_LABELS if labels is None else labels)},
        "spec": {
            "nodeName": node,
            # The init container's port is never a target, whatever its name.
            "initContainers": [{"name": "fetch", "ports": [{"name": "http", "containerPort": 9999}]}],
            "containers": [
                {"name": "sidecar", "ports": [{"name": "metrics", "containerPort": 9100}]},
                {"name": "vllm", "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}] if ports is None else ports},
            ],
        },
        "status": {"phase": phase, "podIP": ip},
    }


def test_a_serving_pod_is_one_target_at_its_ip_and_named_port_labelled_from_the_pod():
    assert pod_target_groups([pod()]) == [
        {
            "targets": ["10.244.1.7:8000"],
            "labels": {
                "model": "smollm2",
                "tenant": "team-a",
                "pool": "cpu-a",
                "workload": "smollm2-cpu-a",
                "plan": "lab",
                "namespace": "team-a",
                "pod": "smollm2-cpu-a-7d9f-x1",
                "node": "lab-gpu-1",
            },
        }
    ]


def test_pods_that_do_not_serve_or_cannot_be_scraped_are_left_out():
    worker = {key: value for key, value in SERVING_LABELS.items() if key != "llmops.io/serves"}
    foreign = {**SERVING_LABELS, "app.kubernetes.io/managed-by": "helm"}
    candidates = [
        pod("worker", labels=worker),  # a multi-node replica's worker: no API of its own
        pod("foreign", labels=foreign),  # matched by a broader API-side selector, dropped here
        pod("pending", ip=""),  # not started yet: no IP
        pod("failed", phase="Failed"),
        pod("done", phase="Succeeded"),
        pod("other-port", ports=[{"name": "grpc", "containerPort": 8000}]),
        pod("udp", ports=[{"name": "http", "containerPort": 8000, "protocol": "UDP"}]),
        pod("kept", ip="10.244.2.9"),
    ]
    groups = pod_target_groups(candidates)
    assert [group["labels"]["pod"] for group in groups] == ["kept"]


def test_targets_are_sorted_ipv6_is_bracketed_and_a_missing_tenant_or_node_is_no_label():
    untenanted = {key: value for key, value in SERVING_LABELS.items() if key != "llmops.io/tenant"}
    groups = pod_target_groups([pod("b", ip="fd00::7"), pod("a", ip="10.0.0.2", labels=untenanted, node=None)])
    assert [group["targets"] for group in groups] == [["10.0.0.2:8000"], ["[fd00::7]:8000"]]
    assert "tenant" not in groups[0]["labels"] and "node" not in groups[0]["labels"]


def test_another_port_name_and_selector_pick_other_pods():
    other = {**SERVING_LABELS, "llmops.io/plan": "staging"}
    candidates = [pod("lab"), pod("staging", ip="10.0.0.3", labels=other, ports=[{"name": "api", "containerPort": 8080}])]
    groups = pod_target_groups(candidates, port_name="api", selector="llmops.io/plan==staging,llmops.io/serves!=false")
    assert [group["targets"] for group in groups] == [["10.0.0.3:8080"]]


@pytest.mark.parametrize(
    ("selector", "terms"),
    [
        ("", []),
        ("a=b", [("a", "=", "b")]),
        (" app.kubernetes.io/managed-by == llmops , x!=y", [("app.kubernetes.io/managed-by", "=", "llmops"), ("x", "!=", "y")]),
        ("empty=", [("empty", "=", "")]),
    ],
)
def test_selector_terms(selector, terms):
    assert parse_selector(selector) == terms


@pytest.mark.parametrize("selector", ["app in (llmops)", "!serves", "serves", "a=b=c", "a=b c"])
def test_set_based_or_malformed_selectors_are_refused_naming_the_field(selector):
    with pytest.raises(PodTargetsError, match=r"^jobs\[0\]\.label_selector: .* accepted: comma-separated key=value"):
        parse_selector(selector, "jobs[0].label_selector")


def job(**overrides):
    values = {
        "job_name": "model-servers",
        "api_server": "https://10.89.0.2:6443",
        "ca_file": "/etc/prometheus/kubernetes/model-servers.ca.crt",
        "token_file": "/etc/prometheus/kubernetes/model-servers.token",
        "targets_file": "/var/lib/prometheus/kubernetes-pods/model-servers.json",
    }
    values.update(overrides)
    return values


def test_a_valid_configuration_gets_its_defaults():
    config = validate_config({"jobs": [job(api_server="https://10.89.0.2:6443/")]})
    assert config["interval"] == 15
    assert config["jobs"][0]["api_server"] == "https://10.89.0.2:6443"
    assert config["jobs"][0]["label_selector"] == pods.DEFAULT_LABEL_SELECTOR
    assert config["jobs"][0]["port_name"] == "http" and config["jobs"][0]["namespaces"] == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "configuration: expected a mapping"),
        ({"interval": 0, "jobs": []}, "interval: 0 must be a number of seconds from 1 to 3600"),
        ({"jobs": {}}, "jobs: expected a list"),
        ({"jobs": [job(token="x")]}, "jobs[0]: unknown key(s) token; accepted: job_name"),
        ({"jobs": [job(), job(targets_file="/x.json")]}, "jobs[1].job_name: a non-empty name, unique"),
        ({"jobs": [job(api_server="http://10.89.0.2:6443")]}, "jobs[0].api_server: 'http://10.89.0.2:6443' is not an API server URL"),
        ({"jobs": [job(ca_file="ca.crt")]}, "jobs[0].ca_file: 'ca.crt' must be an absolute path"),
        ({"jobs": [job(), job(job_name="b")]}, "jobs[1].targets_file: /var/lib/prometheus/kubernetes-pods/model-servers.json is already"),
        ({"jobs": [job(namespaces=["Team_A"])]}, "jobs[0].namespaces: expected a list of namespace names"),
        ({"jobs": [job(label_selector="app in (x)")]}, "jobs[0].label_selector: 'app in (x)' is not a selector term"),
        ({"jobs": [job(port_name="HTTP")]}, "jobs[0].port_name: 'HTTP' is not a container port name"),
    ],
)
def test_configuration_errors_name_the_field(config, message):
    with pytest.raises(PodTargetsError) as raised:
        validate_config(config)
    assert str(raised.value).startswith(message)


def test_the_targets_file_is_replaced_only_when_the_targets_change(tmp_path):
    path = tmp_path / "model-servers.json"
    groups = pod_target_groups([pod()])
    assert write_if_changed(str(path), groups) is True
    written = path.stat().st_mtime_ns
    assert write_if_changed(str(path), groups) is False
    assert path.stat().st_mtime_ns == written
    assert json.loads(path.read_text()) == groups
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert write_if_changed(str(path), []) is True and json.loads(path.read_text()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["model-servers.json"]


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_api_server_that_does_not_answer_keeps_the_last_targets(tmp_path):
    ca, token, targets = tmp_path / "ca.crt", tmp_path / "token", tmp_path / "targets.json"
    # Any CA will do: the connection is refused before TLS starts.
    ca.write_text(Path(pods.ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt").read_text())
    token.write_text("token\n")
    last = pod_target_groups([pod()])
    write_if_changed(str(targets), last)
    config = validate_config(
        {"jobs": [job(api_server=f"https://127.0.0.1:{_closed_port()}", ca_file=str(ca), token_file=str(token), targets_file=str(targets))]}
    )
    logged = []

    assert run_round(config, logged.append) == ["model-servers"]
    assert json.loads(targets.read_text()) == last
    assert "listing pods from https://127.0.0.1:" in logged[0] and "keeping the last targets" in logged[0]


def test_check_config_accepts_a_valid_file_and_refuses_a_bad_one_naming_the_field(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"interval": 30, "jobs": [job()]}))
    bad.write_text(json.dumps({"jobs": [job(port_name="Http")]}))

    assert main(["--check-config", str(good)]) == 0
    assert main(["--check-config", str(bad)]) == 2
    assert "jobs[0].port_name: 'Http' is not a container port name" in capsys.readouterr().err
