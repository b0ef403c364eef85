"""kubernetes_preflight and kubernetes_device_plugin run through Ansible on the controller, as the role calls them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "kubernetes_version": "v1.20.2",
    "control_plane_hosts": ["lab-control"],
    "worker_hosts": ["lab-gpu-1", "lab-gpu-2"],
    "pod_subnet": "10.244.0.0/16",
    "service_subnet": "10.96.0.0/12",
    "node_addresses": {"lab-control": "10.89.0.2", "lab-gpu-1": "10.89.0.3"},
}


def run_module(tmp_path, module, args, check=False, python=None):
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False, "connection": "local",
        "tasks": [
            {"name": "module", f"llmops.datacenter.{module}": args, "register": "result", "ignore_errors": True},
            {"name": "out", "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(tmp_path / "result.json")},
             "check_mode": False},
        ],
    }]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_HOME=str(ROOT / ".ansible"),
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_PYTHON_INTERPRETER=python or str(ROOT / ".venv" / "bin" / "python"))
    command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    result = subprocess.run([*command, *(["--check"] if check else [])], capture_output=True, text=True, env=env,
                            check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((tmp_path / "result.json").read_text())


@pytest.mark.parametrize("check", [False, True], ids=["run", "check-mode"])
def test_preflight_returns_the_normalized_cluster(tmp_path, check):
    result = run_module(tmp_path, "kubernetes_preflight", GOOD, check=check)
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["cluster"]["kubeadm_api_version"] == "kubeadm.k8s.io/v1beta2"
    assert result["cluster"]["nodes"][2] == {"name": "lab-gpu-2", "roles": ["worker"], "address": None}


def test_preflight_fails_listing_every_problem(tmp_path):
    bad = dict(GOOD, control_plane_hosts=["cp-1", "cp-2"], pod_subnet="10.89.0.0/16", kubernetes_version="v1.20.9",
               node_addresses={"lab-gpu-1": "10.89.0.3"})
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"kubernetes_version": "v1.20.2", "binaries": [
        {"name": n, "path": f"/b/{n}", "sha256": "a" * 64} for n in ("kubeadm", "kubelet", "kubectl")], "images": []}))
    result = run_module(tmp_path, "kubernetes_preflight", dict(bad, bundle=str(bundle)))
    assert result["failed"] is True
    problems = result["problems"]
    assert any(p.startswith("control_plane_endpoint: required with 2 control planes (cp-1, cp-2)") for p in problems)
    assert any(p.startswith("pod_subnet: 10.89.0.0/16 overlaps the node network: lab-gpu-1's address") for p in problems)
    assert any(p.startswith("kubernetes_version: v1.20.9 is not held by the mirror") for p in problems)
    assert "3 problem(s)" in result["msg"]


def test_preflight_refuses_a_downgrade(tmp_path):
    result = run_module(tmp_path, "kubernetes_preflight", dict(GOOD, upgrade_from="v1.21.1"))
    assert result["failed"] is True
    assert result["problems"] == [
        "kubernetes_version: v1.20.2 is older than the running v1.21.1; kubeadm does not downgrade"
        " (accepted: v1.21.1 or a later release of 1.21 or 1.22)"
    ]


def test_device_plugin_module_renders_valid_objects(tmp_path):
    result = run_module(tmp_path, "kubernetes_device_plugin",
                        {"kubernetes_version": "v1.20.2", "image": "lab-control:5000/nvidia/k8s-device-plugin:v0.17.1"})
    assert result["changed"] is False
    assert [o["kind"] for o in result["objects"]] == ["RuntimeClass", "DaemonSet"]


def test_device_plugin_module_names_a_bad_option(tmp_path):
    result = run_module(tmp_path, "kubernetes_device_plugin", {"kubernetes_version": "1.33", "image": "device-plugin"})
    assert result["failed"] is True
    assert result["problems"][0].startswith("image: 'device-plugin' must be a full, pinned reference")


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs a system Python without the llmops package")
def test_without_the_llmops_package_the_module_says_what_to_install(tmp_path):
    probe = subprocess.run(["/usr/bin/python3", "-c", "import llmops"], capture_output=True, check=False)
    if probe.returncode == 0:
        pytest.skip("the system Python has llmops installed")
    result = run_module(tmp_path, "kubernetes_preflight", GOOD, python="/usr/bin/python3")
    assert result["failed"] is True
    assert "Failed to import the required Python library (llmops)" in result["msg"], result["msg"]
