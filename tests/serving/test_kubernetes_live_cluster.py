"""The rollout against a real Kubernetes API server: runs only where one is given.

Set LLMOPS_TEST_KUBECONFIG to a kubeconfig whose cluster may be written to (it creates and
deletes the namespaces team-a and team-b and objects labelled llmops.io/plan=live-test), and
LLMOPS_TEST_KUBERNETES_VERSION where the server does not report its real version. There
is no cluster in the lab yet, so these tests are skipped there; they need an API server and a
controller manager (quota status, namespace deletion), no kubelet: no pod has to run.
`scripts/kube-apiserver-local.sh build && scripts/kube-apiserver-local.sh up` provides one
(Kubernetes 1.20.2 built from Debian's source package) and prints the two variables.

What they prove that the client-boundary tests cannot: the API server's own defaulting does not
make a second run write anything, its dry run is what the check-mode diff shows, field ownership
conflicts are real 409s, pruning by label works on a real list, and the tenant quota rejects a
pod that asks for more GPUs than the tenant has.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import time
from pathlib import Path

import pytest

from llmops.serving.kubernetes import RenderOptions, render_objects
from llmops.serving.kubernetes.rollout import DynamicClusterApi, RolloutError, rollout

KUBECONFIG = os.environ.get("LLMOPS_TEST_KUBECONFIG")
pytestmark = pytest.mark.skipif(
    not KUBECONFIG,
    reason="needs a live Kubernetes API server: set LLMOPS_TEST_KUBECONFIG (no cluster in the lab yet)",
)

_CASES = Path(__file__).with_name("k8s_cases.py")
_module_spec = importlib.util.spec_from_file_location("k8s_cases_live", _CASES)
cases = importlib.util.module_from_spec(_module_spec)
_module_spec.loader.exec_module(cases)

PLAN = "live-test"
OPTIONS = RenderOptions(image=cases.IMAGE, plan_name=PLAN, autoscaler="hpa")


@pytest.fixture(scope="module")
def cluster():
    from kubernetes import config, dynamic

    client = dynamic.DynamicClient(config.new_client_from_config(config_file=KUBECONFIG))
    api = DynamicClusterApi(client)
    rollout(api, [], plan_name=PLAN, prune_namespaces=True, wait=False)
    _gone(api, ["team-a", "team-b"])
    yield api
    rollout(api, [], plan_name=PLAN, prune_namespaces=True, wait=False)


def _gone(api, namespaces, timeout=120):
    deadline = time.monotonic() + timeout
    while any(api.get("v1", "Namespace", ns, None) for ns in namespaces):
        assert time.monotonic() < deadline, f"namespaces {namespaces} still terminating"
        time.sleep(1)


def _render(api, device="cpu", **demand):
    # A source build without version stamping reports v0.0.0-master: name its version then.
    version = os.environ.get("LLMOPS_TEST_KUBERNETES_VERSION") or api.server_version()
    spec = cases.spec(device, plan_data=cases.plan(**demand), models=cases.models_with(**demand))
    return render_objects(spec, version, OPTIONS)


def test_rollout_then_a_second_run_writes_nothing(cluster):
    objects = _render(cluster)
    first = rollout(cluster, objects, plan_name=PLAN, wait=False)
    assert len(first.created) == len(objects)
    versions = {
        o["metadata"]["name"] + o["kind"]: cluster.get(o["apiVersion"], o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))["metadata"]["resourceVersion"]
        for o in objects
    }  # fmt: skip

    second = rollout(cluster, objects, plan_name=PLAN, wait=False)

    assert not second.changed, (
        second.updated,
        {k: (second.before[k], second.after[k]) for k in second.updated},
    )
    after = {
        o["metadata"]["name"] + o["kind"]: cluster.get(o["apiVersion"], o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))["metadata"]["resourceVersion"]
        for o in objects
    }  # fmt: skip
    assert after == versions


def test_check_mode_shows_a_demand_change_as_replica_counts_only_and_writes_nothing(cluster):
    rollout(cluster, _render(cluster), plan_name=PLAN, wait=False)
    live = cluster.list("apps/v1", "Deployment", f"llmops.io/plan={PLAN}")

    result = rollout(cluster, _render(cluster, chat=12.0), plan_name=PLAN, wait=False, check_mode=True)

    assert result.updated and not result.created and not result.pruned
    assert {n.split(" ")[0] for n in result.updated} == {"HorizontalPodAutoscaler", "PodDisruptionBudget"}
    for name in result.updated:
        before, after = copy.deepcopy(result.before[name]), copy.deepcopy(result.after[name])
        for obj in (before, after):
            for field in ("minReplicas", "maxReplicas", "minAvailable"):
                obj["spec"].pop(field, None)
        assert before == after, name
    assert cluster.list("apps/v1", "Deployment", f"llmops.io/plan={PLAN}") == live


def test_prune_removes_a_retired_model_and_leaves_foreign_objects(cluster):
    objects = _render(cluster)
    rollout(cluster, objects, plan_name=PLAN, wait=False)
    foreign = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hand-made", "namespace": "team-b"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}]},
    }
    cluster.apply(foreign, "someone-else", False, dry_run=False)
    without_coder = [o for o in objects if o["metadata"]["labels"].get("llmops.io/model") != "coder"]

    result = rollout(cluster, without_coder, plan_name=PLAN, wait=False)

    assert result.pruned and all("coder" in name for name in result.pruned)
    # Foreground deletion: the garbage collector removes the ReplicaSets first, then the Deployment.
    deadline = time.monotonic() + 60
    while cluster.get("apps/v1", "Deployment", "coder-l4-a", "team-b") is not None:
        assert time.monotonic() < deadline, "the pruned Deployment is still there after 60 s"
        time.sleep(1)
    assert cluster.get("apps/v1", "Deployment", "chat-l4-a", "team-a") is not None
    assert cluster.get("v1", "Service", "hand-made", "team-b") is not None
    cluster.delete("v1", "Service", "hand-made", "team-b", dry_run=False)


def test_a_field_another_manager_owns_is_a_real_conflict(cluster):
    objects = _render(cluster)
    rollout(cluster, objects, plan_name=PLAN, wait=False)
    service = copy.deepcopy(next(o for o in objects if o["kind"] == "Service"))
    taken = copy.deepcopy(service)
    taken["spec"]["ports"][0]["targetPort"] = 9000
    cluster.apply(taken, "someone-else", True, dry_run=False)

    with pytest.raises(RolloutError, match="conflict"):
        rollout(cluster, objects, plan_name=PLAN, wait=False)
    forced = rollout(cluster, objects, plan_name=PLAN, wait=False, force_conflicts=True)
    assert forced.updated


def test_the_tenant_quota_rejects_a_pod_over_its_gpus(cluster):
    from llmops.serving.kubernetes.rollout import ApiError

    rollout(cluster, _render(cluster), plan_name=PLAN, wait=False)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "too-many-gpus", "namespace": "team-b"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": cases.IMAGE,
                    "resources": {
                        "limits": {"nvidia.com/gpu": "9", "memory": "1Gi"},
                        "requests": {"cpu": "1"},
                    },
                }
            ]
        },
    }
    deadline = time.monotonic() + 60
    while True:
        try:
            cluster.apply(pod, "live-test", False, dry_run=True)
        except ApiError as error:
            if "status unknown for quota" in error.reason and time.monotonic() < deadline:
                time.sleep(1)  # the quota controller has not counted the namespace yet
                continue
            assert error.status == 403 and "exceeded quota: llmops-serving-quota" in error.reason, (
                error.reason
            )
            break
        pytest.fail("a pod asking for 9 GPUs was admitted in a namespace with a quota of 8")
    # The same pod within the quota is admitted: the rejection was the quota's.
    pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "1"
    cluster.apply(pod, "live-test", False, dry_run=True)
