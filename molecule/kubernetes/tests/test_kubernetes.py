"""The converged cluster, from the controller through the fetched kubeconfig.

Nodes and their labels are read with the `kubernetes` Python client; workloads are driven with
the bundle's kubectl (exec, logs and drain need it): a Deployment across both workers, pod-to-pod
traffic between nodes, a ClusterIP Service, and a drain held back by a PodDisruptionBudget.
"""

import os
import pathlib
import subprocess
import time

import pytest
from kube_bundle import kubectl_path
from kubernetes import client, config

testinfra_hosts = ["kubernetes-control"]
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
KUBECONFIG = EPHEMERAL / "kubeconfig"
NAMESPACE = "llmops-verify"
WORKERS = ["kubernetes-worker-1", "kubernetes-worker-2"]
IMAGE = "localhost/llmops/busybox-httpd:1"


KUBECTL = kubectl_path()


def kubectl(*args, check=True, stdin=None, timeout=120):
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(KUBECONFIG), *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if check and result.returncode:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
    return result


MANIFEST = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NAMESPACE}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hello, namespace: {NAMESPACE}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: hello}}}}
  template:
    metadata: {{labels: {{app: hello}}}}
    spec:
      # The workers are GPU nodes: tainted, so only pods that tolerate it land there.
      tolerations: [{{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}}]
      topologySpreadConstraints:
        - {{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
            labelSelector: {{matchLabels: {{app: hello}}}}}}
      terminationGracePeriodSeconds: 1
      containers:
        - name: hello
          image: {IMAGE}
          imagePullPolicy: Never
          command: [/bin/busybox, sh, -c]
          args:
            - /bin/busybox mkdir -p /www && /bin/busybox hostname > /www/index.html &&
              echo "serving as $(/bin/busybox hostname)" && exec /bin/busybox httpd -f -p 8080 -h /www
          ports: [{{containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 2}}
---
apiVersion: v1
kind: Service
metadata: {{name: hello, namespace: {NAMESPACE}}}
spec:
  selector: {{app: hello}}
  ports: [{{port: 80, targetPort: 8080, protocol: TCP}}]
"""


def http_get(pod, address, port):
    """The body of GET / on address:port, fetched from inside `pod` (busybox nc: static glibc's wget
    crashes in a pod, where it looks up the "http" service through NSS modules the image lacks)."""
    script = (f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 5 {address} {port}"
              " | /bin/busybox tail -n 1")
    return kubectl("-n", NAMESPACE, "exec", pod, "--", "/bin/busybox", "sh", "-c", script).stdout.strip()


def pdb(min_available):
    # policy/v1 does not exist before 1.21.
    return f"""
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {{name: hello, namespace: {NAMESPACE}}}
spec:
  minAvailable: {min_available}
  selector: {{matchLabels: {{app: hello}}}}
"""


@pytest.fixture(scope="module")
def core():
    config.load_kube_config(config_file=str(KUBECONFIG))
    return client.CoreV1Api()


@pytest.fixture(scope="module")
def workload(core):
    # A previous verify's namespace may still be terminating.
    kubectl("wait", "--for=delete", f"namespace/{NAMESPACE}", "--timeout=90s", check=False, timeout=120)
    kubectl("apply", "-f", "-", stdin=MANIFEST)
    kubectl("-n", NAMESPACE, "rollout", "status", "deployment/hello", "--timeout=120s", timeout=150)
    pods = core.list_namespaced_pod(NAMESPACE, label_selector="app=hello").items
    yield {pod.spec.node_name: pod for pod in pods if pod.status.phase == "Running"}
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_kubeconfig_is_private():
    assert KUBECONFIG.stat().st_mode & 0o777 == 0o600


def test_nodes_ready_with_fleet_labels_and_gpu_taints(core):
    nodes = {node.metadata.name: node for node in core.list_node().items}
    assert sorted(nodes) == ["kubernetes-control", *WORKERS]
    for name, node in nodes.items():
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "True", f"{name}: {ready.message}"
        assert node.status.node_info.kubelet_version == "v1.20.2"
    for name, pool, zone in [(WORKERS[0], "pool-a", "zone-a"), (WORKERS[1], "pool-b", "zone-b")]:
        labels = nodes[name].metadata.labels
        assert labels["llmops.io/pool"] == pool
        assert labels["llmops.io/zone"] == zone == labels["topology.kubernetes.io/zone"]
        assert labels["llmops.io/gpu-type"] == "L4-24GB"
        assert labels["nvidia.com/gpu.present"] == "true"
        taints = [(t.key, t.value, t.effect) for t in nodes[name].spec.taints or []]
        assert ("nvidia.com/gpu", "present", "NoSchedule") in taints
    assert "llmops.io/gpu-type" not in nodes["kubernetes-control"].metadata.labels


def test_pods_run_on_both_workers(workload):
    assert sorted(workload) == WORKERS


def test_pod_to_pod_across_nodes_exec_and_logs(workload):
    one, two = (workload[w] for w in WORKERS)
    for source, target in [(one, two), (two, one)]:
        assert http_get(source.metadata.name, target.status.pod_ip, 8080) == target.metadata.name
    logs = kubectl("-n", NAMESPACE, "logs", one.metadata.name).stdout
    assert f"serving as {one.metadata.name}" in logs


def test_service_reaches_both_pods(core, workload):
    cluster_ip = core.read_namespaced_service("hello", NAMESPACE).spec.cluster_ip
    source = workload[WORKERS[0]].metadata.name
    answers = set()
    for _attempt in range(30):
        answers.add(http_get(source, cluster_ip, 80))
        if answers >= {pod.metadata.name for pod in workload.values()}:
            break
    assert answers == {pod.metadata.name for pod in workload.values()}


def test_drain_respects_the_disruption_budget(core, workload):
    worker = WORKERS[0]
    victim = workload[worker].metadata.name
    kubectl("apply", "-f", "-", stdin=pdb(2))
    try:
        blocked = kubectl("drain", worker, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=15s",
                          check=False, timeout=60)
        assert blocked.returncode != 0 and "disruption budget" in blocked.stderr
        assert core.read_namespaced_pod(victim, NAMESPACE).status.phase == "Running"

        kubectl("apply", "-f", "-", stdin=pdb(1))
        kubectl("drain", worker, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s", timeout=90)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            names = {p.metadata.name for p in core.list_namespaced_pod(NAMESPACE, label_selector="app=hello").items}
            if victim not in names:
                break
            time.sleep(1)
        assert victim not in names
    finally:
        kubectl("uncordon", worker, check=False)
