"""Prometheus scrapes model-server pods it learns from a real Kubernetes API server.

Runs where LLMOPS_TEST_KUBECONFIG names a cluster that may be written to (`scripts/kube-apiserver-local.sh
up` provides one; scripts/test.sh runs this file against it) and Debian's `prometheus` is installed.

Real on every hop but the kubelet: playbooks/tasks/prometheus_kubernetes_pods.yml creates the service
account, its rights and its token Secret and reads them back; kubernetes_pod_targets lists the pods with
that token and the cluster CA over TLS; a real Prometheus scrapes what it wrote. Without a kubelet, no
pod runs: the test writes each pod's status (Running, IP 127.0.0.1) through the status subresource as a
kubelet would, and a small HTTP server on loopback answers at the pod's named port with vLLM's metric
names. The local API server authorises everything (--authorization-mode=AlwaysAllow), so the
ClusterRole's limits are applied, not enforced, here; the token is really authenticated.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_scrape import build_config  # noqa: E402

KUBECONFIG = os.environ.get("LLMOPS_TEST_KUBECONFIG")
PROMETHEUS = shutil.which("prometheus")
PROGRAM = (
    ROOT / "collections/ansible_collections/llmops/datacenter/plugins/module_utils/kubernetes_pod_targets.py"
)
TASKS = ROOT / "playbooks/tasks/prometheus_kubernetes_pods.yml"
NAMESPACE = "llmops-prometheus-live"
PLAN = "prometheus-live"
pytestmark = [
    pytest.mark.skipif(
        not KUBECONFIG, reason="needs a live Kubernetes API server: set LLMOPS_TEST_KUBECONFIG"
    ),
    pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus package"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Metrics(BaseHTTPRequestHandler):
    body = b'# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name="smollm2"} 3\n'

    def do_GET(self):
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(self.body if self.path == "/metrics" else b"")

    def log_message(self, *args):
        pass


def _pod(name: str, port: int, **labels: str) -> dict:
    return {
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": "llmops",
                "llmops.io/plan": PLAN,
                "llmops.io/model": "smollm2",
                "llmops.io/tenant": NAMESPACE,
                "llmops.io/pool": "cpu-a",
                "llmops.io/workload": "smollm2-cpu-a",
                "llmops.io/serves": "true",
                **labels,
            },
        },
        "spec": {
            # No token to mount: nothing runs in these pods.
            "automountServiceAccountToken": False,
            "initContainers": [
                {"name": "fetch", "image": "fetch", "ports": [{"name": "http", "containerPort": port + 1}]}
            ],
            "containers": [
                {"name": "vllm", "image": "vllm", "ports": [{"name": "http", "containerPort": port}]}
            ],
        },
    }


def _delete_scraper_identity(core, rbac):
    from kubernetes.client.exceptions import ApiException

    for delete in (
        lambda: rbac.delete_cluster_role_binding("llmops-prometheus"),
        lambda: rbac.delete_cluster_role("llmops-prometheus"),
        lambda: core.delete_namespaced_secret("llmops-prometheus-token", "kube-system"),
        lambda: core.delete_namespaced_service_account("llmops-prometheus", "kube-system"),
    ):
        try:
            delete()
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture(scope="module")
def cluster():
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api_client = config.new_client_from_config(config_file=KUBECONFIG)
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    _delete_scraper_identity(core, rbac)
    try:
        core.delete_namespace(NAMESPACE)
    except ApiException as error:
        assert error.status == 404
    deadline = time.monotonic() + 120
    while True:
        try:
            core.read_namespace(NAMESPACE)
        except ApiException as error:
            assert error.status == 404
            break
        assert time.monotonic() < deadline, f"namespace {NAMESPACE} still terminating"
        time.sleep(1)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    yield core
    core.delete_namespace(NAMESPACE)
    _delete_scraper_identity(core, rbac)


@pytest.fixture(scope="module")
def model_server():
    server = ThreadingHTTPServer(("127.0.0.1", _free_port()), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _create_running(core, pod: dict) -> None:
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + 60
    while True:
        try:
            core.create_namespaced_pod(NAMESPACE, pod)
            break
        except ApiException as error:
            # A new namespace's default service account appears a moment after the namespace.
            assert error.status == 500 and time.monotonic() < deadline, error
            time.sleep(1)
    # What the kubelet would report once the container runs.
    status = {"status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}}
    core.patch_namespaced_pod_status(pod["metadata"]["name"], NAMESPACE, status)


def _scraper_settings(tmp_path: Path) -> dict:
    """serving_kubernetes_prometheus_pods as the playbook tasks produce it against this cluster."""
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yml").write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                        }
                    }
                }
            }
        )
    )
    out = tmp_path / "settings.json"
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "Scrape settings for the pods",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {
                        "serving_kubernetes_kubeconfig": KUBECONFIG,
                        "serving_kubernetes_plan_name": PLAN,
                    },
                    "tasks": [
                        {"name": "The playbook's tasks", "ansible.builtin.import_tasks": str(TASKS)},
                        {
                            "name": "Hand the settings to the test",
                            "ansible.builtin.copy": {
                                "content": "{{ serving_kubernetes_prometheus_pods | to_json }}",
                                "dest": str(out),
                                "mode": "0600",
                            },
                            "no_log": True,
                        },
                    ],
                }
            ]
        )
    )
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        # The run report of this small play must not replace the lab's.
        "LLMOPS_RUN_REPORT_DIR": str(tmp_path / "report"),
    }
    run = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "inventory" / "hosts.yml"), str(playbook)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    (settings,) = json.loads(out.read_text())
    return settings


def _prometheus_api(port: int, path: str, **query: str) -> dict:
    url = f"http://127.0.0.1:{port}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]


def _wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def test_prometheus_scrapes_the_serving_pods_the_api_server_lists(cluster, model_server, tmp_path):
    port = model_server
    _create_running(cluster, _pod("smollm2-cpu-a-0", port))
    # Neither of these is scraped: a multi-node replica's worker, and a pod of another plan.
    worker = _pod("smollm2-cpu-a-0-worker", port)
    del worker["metadata"]["labels"]["llmops.io/serves"]
    _create_running(cluster, worker)
    _create_running(cluster, _pod("other-plan-0", port, **{"llmops.io/plan": "other"}))

    settings = _scraper_settings(tmp_path)
    assert settings["job_name"] == "model-servers"
    assert settings["label_selector"].endswith(f"llmops.io/plan={PLAN}")
    (kubeconfig_cluster,) = yaml.safe_load(Path(KUBECONFIG).read_text())["clusters"]
    assert settings["api_server"] == kubeconfig_cluster["cluster"]["server"]

    # The files the prometheus role writes from those settings, and the discovery's configuration.
    ca, token, targets = tmp_path / "ca.crt", tmp_path / "token", tmp_path / "model-servers.json"
    ca.write_text(settings["ca_cert"])
    token.write_text(settings["bearer_token"])
    job = {
        "job_name": settings["job_name"],
        "api_server": settings["api_server"],
        "ca_file": str(ca),
        "token_file": str(token),
        "label_selector": settings["label_selector"],
        "port_name": settings["port_name"],
        "targets_file": str(targets),
    }
    config = tmp_path / "pods.json"
    config.write_text(json.dumps({"interval": 15, "jobs": [job]}))

    def discover():
        return subprocess.run([sys.executable, str(PROGRAM), "--config", str(config), "--once"],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    found = discover()
    assert found.returncode == 0, found.stderr
    (group,) = json.loads(targets.read_text())
    pod_labels = {
        "model": "smollm2",
        "tenant": NAMESPACE,
        "pool": "cpu-a",
        "workload": "smollm2-cpu-a",
        "plan": PLAN,
        "namespace": NAMESPACE,
        "pod": "smollm2-cpu-a-0",
    }
    assert group == {"targets": [f"127.0.0.1:{port}"], "labels": pod_labels}

    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text(
        build_config(
            {"scrape_interval": "1s", "evaluation_interval": "1s"},
            [],
            [],
            kubernetes_pod_jobs=[{"job_name": settings["job_name"], "targets_file": str(targets)}],
        )
    )
    web = _free_port()
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={prometheus_yml}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{web}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def scraped():
            try:
                result = _prometheus_api(
                    web, "/api/v1/query", query='vllm:num_requests_waiting{job="model-servers"}'
                )
            except OSError:
                return None
            return result["result"]

        (sample,) = _wait_for(scraped, 60, "Prometheus to scrape the pod")
        assert sample["metric"] == {
            "__name__": "vllm:num_requests_waiting",
            "job": "model-servers",
            "instance": f"127.0.0.1:{port}",
            "model_name": "smollm2",
            **pod_labels,
        }
        assert sample["value"][1] == "3"

        # A token the API server does not know: the round fails loudly and the last targets stay.
        token.write_text("not-a-token")
        refused = discover()
        assert refused.returncode == 1 and "keeping the last targets" in refused.stderr
        assert json.loads(targets.read_text()) == [group]
        token.write_text(settings["bearer_token"])

        # The pod goes away: the next round empties the file and Prometheus, watching it, drops the
        # target without a reload.
        cluster.delete_namespaced_pod("smollm2-cpu-a-0", NAMESPACE, grace_period_seconds=0)
        assert discover().returncode == 0
        assert json.loads(targets.read_text()) == []
        _wait_for(
            lambda: not _prometheus_api(web, "/api/v1/targets", state="active")["activeTargets"],
            60,
            "Prometheus to drop the deleted pod",
        )
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
