"""playbooks/serving_kubernetes.yml against a live API server (without its gateway part).

Set LLMOPS_TEST_KUBECONFIG (for example `scripts/kube-apiserver-local.sh up`: API server and
controller manager, no nodes); skipped otherwise. The controller is the inventory's gateway and
object store host, `--skip-tags gateway` leaves the gateway role out; the lab's model and fleet
are planned for real. Checks: the tenant's Secret holds the store settings and the read-only key,
the rendered objects are applied and the model server pods are admitted (a LimitRange or quota
that rejected them would leave the ReplicaSets without pods), and a second run changes nothing.
Everything created is deleted at the end.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kubernetes.client.rest import ApiException

from llmops.planning import load_inputs, make_plan

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = os.environ.get("LLMOPS_TEST_KUBECONFIG")
LAB_VARS = ROOT / "inventories" / "lab" / "group_vars" / "all"
pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="needs a live Kubernetes API server: set LLMOPS_TEST_KUBECONFIG")


def kubernetes_client():
    from kubernetes import client, config

    config.load_kube_config(KUBECONFIG)
    return client.CoreV1Api(), client.AppsV1Api(), client.SchedulingV1Api()


def run_playbook(inventory: Path, extra: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_HOME": str(ROOT / ".ansible"),
                   "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"), "ANSIBLE_NOCOLOR": "1",
                   "LLMOPS_RUN_REPORT_DIR": str(inventory / "report")}
    argv = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory / "hosts.yml"),
            "-e", f"@{LAB_VARS / 'models.yml'}", "-e", f"@{extra}", "--skip-tags", "gateway",
            str(ROOT / "playbooks" / "serving_kubernetes.yml")]
    return subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)


def wait_until_gone(core, namespaces, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for namespace in namespaces:
        while time.monotonic() < deadline:
            try:
                core.read_namespace(namespace)
            except ApiException as error:
                if error.status == 404:
                    break
                raise
            time.sleep(1)


def recap_changed(output: str) -> int:
    match = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", output)
    assert match, output[-3000:]
    return int(match.group(1))


def test_the_playbook_applies_the_plan_admits_the_pods_and_changes_nothing_the_second_time(tmp_path):
    inventory = tmp_path / "k8s-playbook-check"
    inventory.mkdir()
    python = ROOT / ".venv" / "bin" / "python"
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": str(python)}},
        "children": {"gateway": {"hosts": {"localhost": None}}, "object_store": {"hosts": {"localhost": None}}},
    }}))
    fleet, models = load_inputs(LAB_VARS / "fleet.yml", LAB_VARS / "models.yml")
    plan = make_plan(fleet, models, time_limit_s=10)
    (inventory / "plan.json").write_text(json.dumps(plan.to_json_dict()))
    ca = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "ca.key"), "-out", str(ca), "-days", "1", "-subj", "/CN=test store CA"],
                   check=True, capture_output=True)
    extra = inventory / "extra.yml"
    extra.write_text(yaml.safe_dump({
        "llmops_serving_target": "kubernetes",
        "model_serving_plan_file": str(inventory / "plan.json"),
        "model_serving_hf_config_dir": str(LAB_VARS),
        "model_serving_inventory_hosts": {node.name: node.name for node in plan.nodes},
        "serving_kubernetes_kubeconfig": KUBECONFIG,
        "serving_kubernetes_version": os.environ.get("LLMOPS_TEST_KUBERNETES_VERSION", "v1.20.2"),
        "serving_kubernetes_image": "mirror.invalid:5000/llmops/vllm-cpu:test",
        "serving_kubernetes_device": "cpu",
        "serving_kubernetes_wait": False,
        "object_store_endpoint_url": "https://store.invalid:8333",
        "object_store_ca_file": str(ca),
        "object_store_tenants": {
            "team-a": {"bucket": "llmops-team-a", "read_access_key": "TEAMAREAD", "read_secret_key": "team-a-secret-0123"},
            "team-b": {"bucket": "llmops-team-b", "read_access_key": "TEAMBREAD", "read_secret_key": "team-b-secret-0123"},
        },
    }))
    core, apps, scheduling = kubernetes_client()
    wait_until_gone(core, ("team-a", "team-b"))  # another test's namespaces may still be terminating
    try:
        first = run_playbook(inventory, extra)
        assert first.returncode == 0, first.stdout[-4000:]
        assert recap_changed(first.stdout) >= 3
        assert "team-a-secret-0123" not in first.stdout

        secret = core.read_namespaced_secret("llmops-model-store", "team-a")
        data = {key: base64.b64decode(value).decode() for key, value in secret.data.items()}
        assert data["LLMOPS_S3_BUCKET"] == "llmops-team-a"
        assert data["LLMOPS_S3_ACCESS_KEY"] == "TEAMAREAD" and data["LLMOPS_S3_SECRET_KEY"] == "team-a-secret-0123"
        assert data["LLMOPS_S3_ENDPOINT_URL"] == "https://store.invalid:8333"
        # The PEM as the CA file holds it: TLS must load it (a stray literal "\\n" once broke every fetch).
        assert data["LLMOPS_S3_CA_BUNDLE"].strip() == ca.read_text().strip()
        ssl.create_default_context(cadata=data["LLMOPS_S3_CA_BUNDLE"])

        deployments = apps.list_namespaced_deployment("team-a", label_selector="llmops.io/plan=k8s-playbook-check").items
        assert sorted(d.metadata.name for d in deployments) == ["smollm2-135m-lab-a", "smollm2-135m-lab-b"]
        for deployment in deployments:
            pod = deployment.spec.template.spec
            assert pod.init_containers[0].env_from[0].secret_ref.name == "llmops-model-store"
            assert pod.init_containers[0].command[:3] == ["llmops", "model", "fetch"]
        deadline = time.monotonic() + 60
        while True:
            pods = core.list_namespaced_pod("team-a", label_selector="llmops.io/plan=k8s-playbook-check").items
            if len(pods) == len(deployments) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert len(pods) == len(deployments), "the model server pods were not admitted (see the ReplicaSets' events)"

        second = run_playbook(inventory, extra)
        assert second.returncode == 0, second.stdout[-4000:]
        assert recap_changed(second.stdout) == 0
    finally:
        for namespace in ("team-a", "team-b"):
            with contextlib.suppress(ApiException):  # a failed run may not have created it
                core.delete_namespace(namespace)
        for priority_class in scheduling.list_priority_class(label_selector="llmops.io/plan=k8s-playbook-check").items:
            scheduling.delete_priority_class(priority_class.metadata.name)
        wait_until_gone(core, ("team-a", "team-b"))
