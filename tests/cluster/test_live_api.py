"""Against a real Kubernetes API server: runs only where one is given.

Set LLMOPS_TEST_KUBECONFIG to a kubeconfig of a scratch API server (no kubelet needed; for example
`scripts/kube-apiserver-local.sh up`, Kubernetes 1.20.2) and LLMOPS_TEST_KUBERNETES_VERSION where the
server does not report its real version. The tests create kube-system/kubeadm-config and Nodes
named llmops-upgrade-test-*, and delete them again; they refuse to run where a kubeadm-config they
did not create exists (a real kubeadm cluster).

What they prove: the API server takes the device plugin objects as rendered for its version (a
dry run through admission, nothing pruned, the priority class resolved), and the upgrade playbook's
check reads the running version from the cluster and refuses a skipped minor or a downgrade naming
both versions before any node is touched, while an allowed upgrade whose nodes already run the
target changes nothing; the device plugin task file applies the objects, waits for the DaemonSet's
rollout (no GPU node: zero pods) and changes nothing the second time. It creates RuntimeClass nvidia and
DaemonSet kube-system/nvidia-device-plugin and deletes them again (it skips where they exist).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from llmops.cluster import DevicePluginOptions, cluster_api_versions, parse_kube_version, render_device_plugin

KUBECONFIG = os.environ.get("LLMOPS_TEST_KUBECONFIG")
VERSION = os.environ.get("LLMOPS_TEST_KUBERNETES_VERSION", "v1.20.2")
pytestmark = pytest.mark.skipif(
    not KUBECONFIG, reason="needs a live Kubernetes API server: set LLMOPS_TEST_KUBECONFIG"
)
ROOT = Path(__file__).resolve().parents[2]
OWNER = {"llmops.io/test": "kubernetes-upgrade"}
NODES = {"llmops-upgrade-test-cp": "kube_control_plane", "llmops-upgrade-test-w": "kube_workers"}
RUNNING = "v1.20.2"


@pytest.fixture(scope="module")
def api():
    from kubernetes import client, config

    return client.ApiClient(config.new_client_from_config(config_file=KUBECONFIG).configuration)


def test_device_plugin_objects_pass_the_api_servers_admission(api):
    from kubernetes import dynamic

    dyn = dynamic.DynamicClient(api)
    objects = render_device_plugin(VERSION, DevicePluginOptions(image="mirror.test:5000/nvidia/k8s-device-plugin:v0.17.1"))
    for obj in objects:
        resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        namespace = obj["metadata"].get("namespace")
        created = resource.create(body=obj, namespace=namespace, dry_run="All").to_dict()
        if obj["kind"] == "RuntimeClass":
            assert created["handler"] == "nvidia"
            assert created["scheduling"] == obj["scheduling"]
        else:
            pod = created["spec"]["template"]["spec"]
            sent = obj["spec"]["template"]["spec"]
            for field in ("runtimeClassName", "priorityClassName", "nodeSelector", "tolerations"):
                assert pod[field] == sent[field], field
            assert pod["containers"][0]["securityContext"] == sent["containers"][0]["securityContext"]


@pytest.fixture(scope="module")
def kubeadm_cluster(api):
    """A kubeadm-config of a 1.20.2 cluster and two Nodes whose kubelets already run v1.21.14."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api)
    try:
        existing = core.read_namespaced_config_map("kubeadm-config", "kube-system")
    except ApiException as error:
        if error.status != 404:
            raise
    else:
        if (existing.metadata.labels or {}) != OWNER:
            pytest.skip("kube-system/kubeadm-config exists: this is a real kubeadm cluster, not a scratch server")
        core.delete_namespaced_config_map("kubeadm-config", "kube-system")
    cluster_configuration = {
        "apiVersion": "kubeadm.k8s.io/v1beta2",
        "kind": "ClusterConfiguration",
        "kubernetesVersion": RUNNING,
        "networking": {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12", "dnsDomain": "cluster.local"},
    }
    core.create_namespaced_config_map(
        "kube-system",
        {"metadata": {"name": "kubeadm-config", "labels": OWNER},
         "data": {"ClusterConfiguration": yaml.safe_dump(cluster_configuration)}},
    )
    for name in NODES:
        try:
            core.delete_node(name)
        except ApiException as error:
            if error.status != 404:
                raise
        core.create_node({"metadata": {"name": name, "labels": OWNER}})
        core.patch_node_status(name, {"status": {
            "nodeInfo": {"kubeletVersion": "v1.21.14", "kubeProxyVersion": "v1.21.14", "machineID": "", "systemUUID": "",
                         "bootID": "", "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test"}],
        }})
    yield core
    core.delete_namespaced_config_map("kubeadm-config", "kube-system")
    for name in NODES:
        core.delete_node(name)


def run_upgrade(tmp_path, target, bundle_version, *extra, sha256=None):
    inventory = {"all": {"children": {group: {"hosts": {name: {"ansible_connection": "local", "ansible_become": False}}}
                                      for name, group in NODES.items()}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({
        "kubernetes_version": bundle_version,
        "binaries": [{"name": n, "path": f"/b/{n}", "sha256": (sha256 or {}).get(n, "a" * 64)}
                     for n in ("kubeadm", "kubelet", "kubectl")],
        "images": [],
    }))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_HOME=str(ROOT / ".ansible"),
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", LLMOPS_RUN_REPORT_DIR=str(tmp_path / "report"),
               ANSIBLE_PYTHON_INTERPRETER=str(ROOT / ".venv" / "bin" / "python"))
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
         str(ROOT / "playbooks" / "kubernetes_upgrade.yml"), "-e", f"kubernetes_upgrade_version={target}",
         "-e", f"kubernetes_upgrade_bundle={bundle}", "-e", f"kubernetes_upgrade_kubeconfig={KUBECONFIG}",
         # Nothing may be fetched here: a mirror that does not exist makes any download fail the test.
         "-e", "kubernetes_upgrade_mirror_url=https://127.0.0.1:1/", "-e", f"kubernetes_upgrade_bin_dir={tmp_path}",
         "-e", "kubernetes_upgrade_mirror_ca_path=",
         *extra],
        capture_output=True, text=True, env=env, check=False, timeout=600,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("target", "bundle_version", "message"),
    [
        ("v1.22.17", "v1.22.17", "v1.22.17 skips 1 minor version(s) from the running v1.20.2; upgrade to 1.21 first"),
        ("v1.20.1", "v1.20.1", "v1.20.1 is older than the running v1.20.2; kubeadm does not downgrade"),
        ("v1.21.14", "v1.21.13", "v1.21.14 is not held by the mirror"),
    ],
)
def test_upgrade_playbook_refuses_before_any_node(kubeadm_cluster, tmp_path, target, bundle_version, message):
    code, output = run_upgrade(tmp_path, target, bundle_version)
    assert code != 0, output
    assert message in output, output
    assert "Upgrade this control plane" not in output, output


def test_upgrade_playbook_skips_nodes_already_on_the_target(kubeadm_cluster, tmp_path):
    code, output = run_upgrade(tmp_path, "v1.21.14", "v1.21.14")
    assert code == 0, output
    assert "minor upgrade from v1.20.2 to v1.21.14" in output, output
    recap = output[output.index("PLAY RECAP"):]
    for name in NODES:
        line = next(line for line in recap.splitlines() if line.startswith(name))
        assert "changed=0" in line and "failed=0" in line, recap


def test_a_node_behind_is_not_drained_when_the_mirror_fails(kubeadm_cluster, tmp_path):
    """The new kubeadm is fetched before the drain: an unreachable mirror leaves the node schedulable."""
    name = "llmops-upgrade-test-w"
    kubeadm_cluster.patch_node_status(name, {"status": {"nodeInfo": {"kubeletVersion": RUNNING}}})
    try:
        code, output = run_upgrade(tmp_path, "v1.21.14", "v1.21.14")
        assert code != 0, output
        assert "Fetch the new kubeadm from the mirror" in output and f"fatal: [{name}]" in output, output
        assert not kubeadm_cluster.read_node(name).spec.unschedulable
        assert not (tmp_path / "kubeadm").exists(), "nothing may be written to the bin dir"
    finally:
        kubeadm_cluster.patch_node_status(name, {"status": {"nodeInfo": {"kubeletVersion": "v1.21.14"}}})


def test_device_plugin_task_file_applies_waits_and_is_idempotent(api, tmp_path):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    apps, node = client.AppsV1Api(api), client.NodeV1Api(api)
    try:
        apps.read_namespaced_daemon_set("nvidia-device-plugin", "kube-system")
        pytest.skip("kube-system/nvidia-device-plugin exists: not a scratch server")
    except ApiException as error:
        if error.status != 404:
            raise
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {"kubernetes_device_plugin_version": VERSION, "kubernetes_device_plugin_kubeconfig": KUBECONFIG,
                 "kubernetes_device_plugin_image": "mirror.test:5000/nvidia/k8s-device-plugin:v0.17.1",
                 "kubernetes_device_plugin_rollout_timeout": 120},
        "tasks": [{"name": "device plugin",
                   "ansible.builtin.include_tasks": str(ROOT / "playbooks" / "tasks" / "kubernetes_device_plugin.yml")}],
    }]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_HOME=str(ROOT / ".ansible"),
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", LLMOPS_RUN_REPORT_DIR=str(tmp_path / "r"),
               ANSIBLE_PYTHON_INTERPRETER=str(ROOT / ".venv" / "bin" / "python"))
    command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    try:
        for run, changed in ((1, "changed=1"), (2, "changed=0")):
            result = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=300)
            output = result.stdout + result.stderr
            assert result.returncode == 0, output
            recap = output[output.index("PLAY RECAP"):]
            assert changed in recap, (run, recap)
        daemon_set = apps.read_namespaced_daemon_set("nvidia-device-plugin", "kube-system")
        assert daemon_set.spec.template.spec.runtime_class_name == "nvidia"
        assert daemon_set.spec.template.spec.priority_class_name == "system-node-critical"
        assert node.read_runtime_class("nvidia").handler == "nvidia"
    finally:
        for delete in (lambda: apps.delete_namespaced_daemon_set("nvidia-device-plugin", "kube-system"),
                       lambda: node.delete_runtime_class("nvidia")):
            try:
                delete()
            except ApiException as error:
                if error.status != 404:
                    raise


def test_drain_respects_a_pod_disruption_budget(kubeadm_cluster, tmp_path):
    """A running pod whose budget allows no disruption keeps the node from draining: the eviction is retried
    until the timeout, the pod stays, the run stops with the node cordoned and kubeadm never runs."""
    from kubernetes import client, dynamic

    core = kubeadm_cluster
    # The budget in the API version the cluster's release serves (policy/v1beta1 on 1.20).
    budgets = dynamic.DynamicClient(core.api_client).resources.get(
        api_version=cluster_api_versions(parse_kube_version(VERSION)).pod_disruption_budget, kind="PodDisruptionBudget"
    )
    name, worker = "llmops-drain-test", "llmops-upgrade-test-w"
    mirror = tmp_path / "mirror" / "kubernetes" / "v1.21.14" / "bin"
    mirror.mkdir(parents=True)
    sha256 = {}
    for binary in ("kubeadm", "kubelet", "kubectl"):
        # If the drain wrongly went through, running this "kubeadm" fails the run loudly.
        (mirror / binary).write_text("#!/bin/sh\necho must-not-run; exit 3\n")
        sha256[binary] = hashlib.sha256((mirror / binary).read_bytes()).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "mirror"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    def clean_up():
        for delete in (lambda: budgets.delete(name=name, namespace="default"),
                       lambda: core.delete_namespaced_pod(name, "default", grace_period_seconds=0),
                       lambda: core.delete_namespaced_config_map(name, "default")):
            try:
                delete()
            except (client.rest.ApiException, dynamic.exceptions.NotFoundError) as error:
                if error.status != 404:
                    raise

    clean_up()
    try:
        owner = core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": OWNER}})
        core.patch_node_status(worker, {"status": {"nodeInfo": {"kubeletVersion": RUNNING}}})
        core.create_namespaced_pod("default", {
            "metadata": {"name": name, "labels": {"app": name, **OWNER},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": name,
                                              "uid": owner.metadata.uid}]},
            "spec": {"nodeName": worker, "containers": [{"name": "pause", "image": "mirror.test:5000/pause:3.2"}]},
        })
        # No kubelet here: report the pod Running (a Pending pod may be evicted whatever its budget), not Ready.
        core.patch_namespaced_pod_status(name, "default", {"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "False"}]}})
        budgets.create(namespace="default", body={
            "metadata": {"name": name, "labels": OWNER},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}},
        })
        time.sleep(3)
        started = time.monotonic()
        code, output = run_upgrade(
            tmp_path, "v1.21.14", "v1.21.14", "-e", f"kubernetes_upgrade_mirror_url=http://127.0.0.1:{server.server_port}/",
            "-e", "kubernetes_upgrade_drain_timeout=20", "-e", "kubernetes_upgrade_drain_retry_delay=5", sha256=sha256,
        )
        assert code != 0, output
        assert "FAILED - RETRYING: [llmops-upgrade-test-w -> localhost]: Drain the node" in output, output
        assert "disruption budget" in output, output
        assert "must-not-run" not in output, output
        assert time.monotonic() - started >= 20
        pod = core.read_namespaced_pod(name, "default")
        assert pod.metadata.deletion_timestamp is None
        assert core.read_node(worker).spec.unschedulable is True
        assert (tmp_path / "kubeadm").exists(), "the new kubeadm is fetched (and checked) before the drain"
    finally:
        server.shutdown()
        clean_up()
        core.patch_node(worker, {"spec": {"unschedulable": None}})
        core.patch_node_status(worker, {"status": {"nodeInfo": {"kubeletVersion": "v1.21.14"}}})
