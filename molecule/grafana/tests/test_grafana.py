"""Grafana's provisioning, checked at the nearest real boundaries (Grafana itself cannot run here).

- the provisioning files are valid for Grafana's provisioning formats (JSON Schemas) and laid out
  without overlapping panels;
- the datasource's URL and credentials open the live Prometheus of this host;
- every expression of every dashboard runs on that Prometheus and parses, and those reading
  Prometheus' and node exporter's own metrics return data;
- the APT source verifies the repository with the stored key only (Signed-By).
"""

import base64
import configparser
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "tests" / "monitoring"))
from grafana_provisioning_checks import (
    dashboard_queries,
    layout_errors,
    must_return_data,
    schema_errors,
)

CONFIG_DIR = "/etc/grafana"
DATASOURCE_FILE = "/etc/grafana/provisioning/datasources/llmops-prometheus.yaml"
PROVIDER_FILE = "/etc/grafana/provisioning/dashboards/llmops.yaml"
DASHBOARDS_DIR = "/var/lib/grafana/dashboards/llmops"
DASHBOARD_UIDS = ("llmops-gpu-fleet", "llmops-model-serving")

# Runs inside the container: one round trip for all queries keeps the verifier fast.
_CLIENT = r"""
import base64, json, sys, urllib.error, urllib.parse, urllib.request
request_spec = json.loads(base64.b64decode(sys.argv[1]))
token = base64.b64encode((request_spec["user"] + ":" + request_spec["password"]).encode()).decode()
answers = []
for query in request_spec["queries"]:
    url = request_spec["url"] + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    request = urllib.request.Request(url, headers={"Authorization": "Basic " + token})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answers.append({"status": response.status, "body": json.load(response)})
    except urllib.error.HTTPError as error:
        body = error.read()
        answers.append({"status": error.code, "body": json.loads(body) if body.startswith(b"{") else {}})
print(json.dumps(answers))
"""


def read_text(host, path):
    file = host.file(path)
    assert file.exists, f"{path} is missing"
    return file.content_string


@pytest.fixture(scope="module")
def datasource(host):
    document = yaml.safe_load(read_text(host, DATASOURCE_FILE))
    assert not schema_errors(document, "grafana_datasources"), schema_errors(document, "grafana_datasources")
    (entry,) = document["datasources"]
    return entry


@pytest.fixture(scope="module")
def dashboards(host):
    return {uid: json.loads(read_text(host, f"{DASHBOARDS_DIR}/{uid}.json")) for uid in DASHBOARD_UIDS}


def run_queries(host, datasource, queries):
    spec = {
        "url": datasource["url"],
        "user": datasource["basicAuthUser"],
        "password": datasource["secureJsonData"]["basicAuthPassword"],
        "queries": queries,
    }
    script = base64.b64encode(_CLIENT.encode()).decode()
    encoded = base64.b64encode(json.dumps(spec).encode()).decode()
    output = host.check_output(
        f"echo {script} | base64 -d > /tmp/grafana_queries.py && python3 /tmp/grafana_queries.py {encoded}"
    )
    return json.loads(output)


def test_provisioning_files_are_valid_for_grafana(host, datasource, dashboards):
    provider = yaml.safe_load(read_text(host, PROVIDER_FILE))
    assert not schema_errors(provider, "grafana_dashboard_providers"), schema_errors(provider, "grafana_dashboard_providers")
    assert provider["providers"][0]["options"]["path"] == DASHBOARDS_DIR

    assert datasource["uid"] == "prometheus" and datasource["basicAuth"] is True
    for uid, dashboard in dashboards.items():
        assert not schema_errors(dashboard, "grafana_dashboard"), (uid, schema_errors(dashboard, "grafana_dashboard"))
        assert not layout_errors(dashboard), (uid, layout_errors(dashboard))
        referenced = {panel["datasource"]["uid"] for panel in dashboard["panels"] if panel["type"] != "row"}
        assert referenced == {datasource["uid"]}, f"{uid} queries a datasource that is not provisioned"
    # Only the role's dashboards are in the provider's directory.
    listed = host.check_output(f"ls {DASHBOARDS_DIR}").split()
    assert sorted(listed) == sorted(f"{uid}.json" for uid in DASHBOARD_UIDS)

    # The files holding secrets are readable by root and Grafana's group only.
    for path in (DATASOURCE_FILE, f"{CONFIG_DIR}/admin_password"):
        secret_file = host.file(path)
        assert (secret_file.user, secret_file.group, secret_file.mode) == ("root", "grafana", 0o640), path

    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(read_text(host, f"{CONFIG_DIR}/grafana.ini"))
    assert ini["server"]["protocol"] == "http" and ini["server"]["http_port"] == "3000"
    assert ini["paths"]["provisioning"] == "/etc/grafana/provisioning"
    assert ini["security"]["admin_password"] == f"$__file{{{CONFIG_DIR}/admin_password}}"
    with open(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "grafana-admin-password", encoding="utf-8") as handle:
        admin_password = handle.read().split()[0]
    assert read_text(host, f"{CONFIG_DIR}/admin_password") == admin_password
    assert admin_password not in read_text(host, f"{CONFIG_DIR}/grafana.ini")


def test_every_dashboard_expression_runs_on_the_live_prometheus(host, datasource, dashboards):
    # The credentials Grafana would use: a wrong password must be refused, the provisioned one accepted.
    (refused,) = run_queries(host, dict(datasource, secureJsonData={"basicAuthPassword": "wrong"}), ["up"])
    assert refused["status"] == 401

    queries = [(uid, where, promql) for uid, dashboard in dashboards.items() for where, promql in dashboard_queries(dashboard)]
    assert len(queries) >= 30
    answers = run_queries(host, datasource, [promql for _, _, promql in queries])
    failures = []
    for (uid, where, promql), answer in zip(queries, answers, strict=True):
        if answer["status"] != 200 or answer["body"].get("status") != "success":
            failures.append(f"{uid} / {where}: {promql!r} rejected: {answer['body'].get('error')}")
        elif must_return_data(promql) and not answer["body"]["data"]["result"]:
            failures.append(f"{uid} / {where}: {promql!r} returned no data")
    assert not failures, "\n".join(failures)
    assert sum(must_return_data(promql) for _, _, promql in queries) >= 5


def test_apt_source_trusts_only_the_stored_key(host):
    sources = read_text(host, "/etc/apt/sources.list.d/grafana.sources")
    assert "Signed-By: /etc/apt/keyrings/grafana.asc" in sources
    assert host.file("/etc/apt/keyrings/grafana.asc").mode == 0o644
    only_grafana = "-o Dir::Etc::sourcelist=/etc/apt/sources.list.d/grafana.sources -o Dir::Etc::sourceparts=-"
    update = host.run(f"apt-get update --error-on=any {only_grafana} -o APT::Get::List-Cleanup=0")
    assert update.rc == 0 and "NO_PUBKEY" not in update.stdout + update.stderr, update.stderr
    # The same source pointed at another key is refused: apt really checks Signed-By.
    host.check_output(
        "sed 's|^Signed-By:.*|Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg|' "
        "/etc/apt/sources.list.d/grafana.sources > /tmp/grafana-wrong-key.sources"
    )
    wrong = host.run(
        "apt-get update --error-on=any -o Dir::Etc::sourcelist=/tmp/grafana-wrong-key.sources -o Dir::Etc::sourceparts=-"
    )
    assert wrong.rc != 0 and "NO_PUBKEY" in wrong.stdout + wrong.stderr
