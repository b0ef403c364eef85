"""Prometheus answers behind basic auth, scrapes every node exporter, and runs every rule it loaded."""

import base64
import json
import os
import re
import time

import pytest

testinfra_hosts = ["prometheus-server"]

# Runs inside the container: one round trip for many API calls keeps the verifier fast.
_CLIENT = r"""
import base64, json, sys, urllib.error, urllib.parse, urllib.request
calls = json.loads(base64.b64decode(sys.argv[1]))
results = []
for call in calls:
    url = "http://127.0.0.1:9090" + call["path"]
    if call.get("params"):
        url += "?" + urllib.parse.urlencode(call["params"])
    request = urllib.request.Request(url)
    if call.get("user"):
        token = base64.b64encode((call["user"] + ":" + call["password"]).encode()).decode()
        request.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            results.append({"status": response.status, "body": response.read().decode()})
    except urllib.error.HTTPError as error:
        results.append({"status": error.code, "body": error.read().decode()})
print(json.dumps(results))
"""

# Metrics a healthy lab host or Prometheus itself always exposes; their rules must return data.
_LIVE_METRIC = re.compile(r"\b(?:node_[A-Za-z0-9_]+|llmops:node_[A-Za-z0-9_:]+|prometheus_[A-Za-z0-9_]+|up)\b(?!\s*\()")


@pytest.fixture(scope="module")
def password():
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "prometheus-admin-password")
    with open(path, encoding="utf-8") as handle:
        return handle.read().split()[0]


def call_api(host, calls):
    encoded = base64.b64encode(json.dumps(calls).encode()).decode()
    script = base64.b64encode(_CLIENT.encode()).decode()
    output = host.check_output(f"echo {script} | base64 -d > /tmp/prometheus_api.py && python3 /tmp/prometheus_api.py {encoded}")
    return json.loads(output)


def api_get(host, password, path, **params):
    (result,) = call_api(host, [{"path": path, "params": params, "user": "admin", "password": password}])
    assert result["status"] == 200, result
    return json.loads(result["body"])["data"]


def test_answers_only_with_the_admin_password(host, password):
    anonymous, wrong, admin = call_api(
        host,
        [
            {"path": "/-/ready"},
            {"path": "/-/ready", "user": "admin", "password": password + "x"},
            {"path": "/-/ready", "user": "admin", "password": password},
        ],
    )
    assert anonymous["status"] == 401
    assert wrong["status"] == 401
    assert admin["status"] == 200
    web_config = host.file("/etc/prometheus/web.yml")
    assert web_config.contains(r"\$2[aby]\$")
    assert not web_config.contains(password)


def test_live_config_is_accepted_and_loaded(host, password):
    check = host.run("promtool check config /etc/prometheus/prometheus.yml")
    assert check.rc == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout + check.stderr
    reload_state = api_get(host, password, "/api/v1/query", query="prometheus_config_last_reload_successful")
    assert reload_state["result"][0]["value"][1] == "1"


def test_every_node_exporter_target_is_up(host, password):
    deadline = time.monotonic() + 90
    while True:
        targets = api_get(host, password, "/api/v1/targets", state="active")["activeTargets"]
        node_targets = {t["labels"]["instance"]: t["health"] for t in targets if t["labels"]["job"] == "node"}
        if set(node_targets.values()) == {"up"} or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert node_targets == {"prometheus-server:9100": "up", "prometheus-node:9100": "up"}
    by_job = {t["labels"]["job"]: t for t in targets}
    assert by_job["prometheus"]["health"] == "up"
    assert by_job["dcgm"]["labels"]["instance"] == "prometheus-node:9400"
    model_server = by_job["model-servers"]["labels"]
    assert model_server["model"] == "llama-3-8b-instruct"
    assert model_server["gpu_type"] == "h100"


def test_rule_groups_are_loaded_and_every_expression_runs(host, password):
    deadline = time.monotonic() + 90
    while True:
        groups = api_get(host, password, "/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if all(rule["health"] == "ok" for rule in rules) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert {"llmops-gpu-health", "llmops-serving", "llmops-host-health"} <= {group["name"] for group in groups}
    assert [rule["name"] for rule in rules if rule["health"] != "ok"] == []
    alerts = {rule["name"] for rule in rules if rule["type"] == "alerting"}
    assert {"GpuXidError", "GpuTemperatureHigh", "ModelTtftSloBurn", "ModelTpotSloBurn", "TargetDown"} <= alerts

    expressions = sorted({rule["query"] for rule in rules})
    live_metrics = sorted({name for expr in expressions for name in _LIVE_METRIC.findall(expr)})
    calls = [
        {"path": "/api/v1/query", "params": {"query": query}, "user": "admin", "password": password}
        for query in expressions + [f"count({name})" for name in live_metrics]
    ]
    results = call_api(host, calls)
    failures = []
    for call, result in zip(calls, results, strict=True):
        query = call["params"]["query"]
        body = json.loads(result["body"])
        if result["status"] != 200 or body["status"] != "success":
            failures.append(f"{query}: {body.get('error')}")
        elif query.startswith("count(") and not body["data"]["result"]:
            failures.append(f"{query}: no data, so rules using it can never fire")
    assert failures == []
    recorded = {rule["name"]: rule["query"] for rule in rules if rule["type"] == "recording"}
    for name in ("llmops:node_filesystem_avail:ratio", "llmops:node_memory_available:ratio", "llmops:node_load1_per_cpu:ratio"):
        (result,) = call_api(host, [{"path": "/api/v1/query", "params": {"query": name}, "user": "admin", "password": password}])
        assert json.loads(result["body"])["data"]["result"], f"{name} ({recorded[name]}) returned no data"
