"""A firing alert travels Prometheus -> each Alertmanager -> a real webhook; amtool answers; silences
survive a restart; hosts with simulated GPUs get no DCGM scrape job and no GPU alerts."""

import base64
import json
import os
import time

import pytest

testinfra_hosts = ["alertmanager-server", "alertmanager-airgapped"]

# Runs inside the container: GET a URL (optionally with basic auth), print status and body as JSON.
_GET = r"""
import base64, json, sys, urllib.error, urllib.request
url, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request(url)
if user:
    request.add_header("Authorization", "Basic " + base64.b64encode((user + ":" + password).encode()).decode())
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(json.dumps({"status": response.status, "body": response.read().decode()}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code, "body": error.read().decode()}))
except OSError as error:
    print(json.dumps({"status": 0, "body": str(error)}))
"""


def http_get(host, url, user="", password=""):
    script = base64.b64encode(_GET.encode()).decode()
    output = host.check_output(f"echo {script} | base64 -d > /tmp/http_get.py && python3 /tmp/http_get.py '{url}' '{user}' '{password}'")
    return json.loads(output)


def on(host, name):
    if host.backend.get_hostname() != name:
        pytest.skip(f"checked on {name}")


@pytest.fixture(scope="module")
def password():
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "prometheus-admin-password")
    with open(path, encoding="utf-8") as handle:
        return handle.read().split()[0]


def prometheus_api(host, password, path):
    result = http_get(host, f"http://127.0.0.1:9090{path}", "admin", password)
    assert result["status"] == 200, result
    return json.loads(result["body"])["data"]


def test_alertmanager_is_ready_and_amtool_accepts_and_shows_the_live_config(host):
    assert http_get(host, "http://127.0.0.1:9093/-/ready")["status"] == 200
    check = host.run("amtool check-config /etc/prometheus/alertmanager.yml")
    assert check.rc == 0 and "SUCCESS" in check.stdout, check.stdout + check.stderr
    # amtool reads /etc/prometheus/amtool.yml for the URL: no flags needed on the host.
    shown = host.check_output("amtool config show")
    assert "http://alertmanager-server:8099/alerts" in shown
    assert "alertname=\"AlertDeliveryTest\"" in shown
    assert "smtp_auth_password_file: /etc/prometheus/alertmanager-smtp-password" in shown
    status = json.loads(http_get(host, "http://127.0.0.1:9093/api/v2/status")["body"])
    assert status["cluster"]["status"] == "disabled"


def test_smtp_password_stays_out_of_the_config(host):
    secret_file = host.file("/etc/prometheus/alertmanager-smtp-password")
    assert secret_file.mode == 0o640 and secret_file.user == "root" and secret_file.group == "prometheus"
    secret = host.check_output("cat /etc/prometheus/alertmanager-smtp-password")
    assert len(secret) == 24
    assert not host.file("/etc/prometheus/alertmanager.yml").contains(secret)


def test_prometheus_sends_to_both_alertmanagers(host, password):
    on(host, "alertmanager-server")
    active = prometheus_api(host, password, "/api/v1/alertmanagers")["activeAlertmanagers"]
    assert sorted(entry["url"] for entry in active) == [
        "http://alertmanager-airgapped:9093/api/v2/alerts",
        "http://alertmanager-server:9093/api/v2/alerts",
    ]


def test_firing_alert_reaches_the_webhook_through_each_alertmanager(host):
    on(host, "alertmanager-server")
    deadline = time.monotonic() + 120
    senders = set()
    while time.monotonic() < deadline:
        record = host.run("cat /var/lib/webhook-recorder/posts.jsonl")
        posts = [json.loads(line) for line in record.stdout.splitlines()] if record.rc == 0 else []
        for post in posts:
            payload = json.loads(post["body"])
            names = {alert["labels"]["alertname"] for alert in payload["alerts"]}
            if post["path"] == "/alerts" and payload["status"] == "firing" and names == {"AlertDeliveryTest"}:
                # Each Alertmanager links back to itself: its external URL names the sender.
                senders.add(payload["externalURL"])
                assert payload["receiver"] == "recorder"
                assert payload["alerts"][0]["generatorURL"].startswith("http://alertmanager-server:9090/")
        if len(senders) == 2:
            break
        time.sleep(3)
    assert senders == {"http://alertmanager-server:9093", "http://alertmanager-airgapped:9093"}


def test_silences_survive_a_restart(host):
    silence_id = host.check_output(
        "amtool silence add alertname=SilenceProbe --comment='restart probe' --duration=1h --author=molecule"
    ).strip()
    assert silence_id
    host.check_output("systemctl restart prometheus-alertmanager")
    deadline = time.monotonic() + 30
    while http_get(host, "http://127.0.0.1:9093/-/ready")["status"] != 200 and time.monotonic() < deadline:
        time.sleep(1)
    assert silence_id in host.check_output("amtool silence query --quiet").split()
    host.check_output(f"amtool silence expire {silence_id}")


def test_simulated_gpus_get_no_dcgm_job_and_no_gpu_alerts(host, password):
    on(host, "alertmanager-server")
    targets = prometheus_api(host, password, "/api/v1/targets")["activeTargets"]
    assert {target["labels"]["job"] for target in targets} == {"prometheus"}
    groups = {group["name"] for group in prometheus_api(host, password, "/api/v1/rules")["groups"]}
    assert groups == {"llmops-serving", "llmops-host-health", "alert-delivery-test"}
    assert "dcgm" not in host.file("/etc/prometheus/prometheus.yml").content_string
