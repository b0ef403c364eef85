"""The rollout, tested at the client boundary: no cluster exists in the lab yet.

`rollout()` runs against FakeCluster (tests/serving/fake_cluster.py), which stands at the
ClusterApi boundary; `DynamicClusterApi` is tested against the `kubernetes` DynamicClient's
methods with a mock in its place, checking the requests it would send (field manager, dry run,
force, propagation). What needs a live cluster (real field ownership and defaulting, controllers
making pods Ready, drains against the PDB, quota admission, NetworkPolicy enforcement) is listed
in docs/kubernetes-serving.md.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
from pathlib import Path
from unittest import mock

import pytest

from llmops.serving.kubernetes import RenderOptions, object_key, render_objects
from llmops.serving.kubernetes.rollout import (
    ApiError,
    DynamicClusterApi,
    RolloutError,
    contains,
    describe,
    overlay,
    owner_selector,
    rollout,
    up_to_date,
)


def _load(name: str):
    path = Path(__file__).with_name(f"{name}.py")
    module_spec = importlib.util.spec_from_file_location(f"{name}_rollout", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


cases = _load("k8s_cases")
fake_cluster = _load("fake_cluster")
FakeCluster = fake_cluster.FakeCluster

OPTIONS = RenderOptions(image=cases.IMAGE, plan_name="lab")


def objects(**demand):
    return render_objects(cases.spec(**demand) if demand else cases.spec(), "1.33", OPTIONS)


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(cluster, rendered, **kwargs):
    clock = kwargs.pop("clock", None) or Clock()
    return rollout(
        cluster, rendered, plan_name="lab", sleep=clock.sleep, clock=clock, poll_interval=5, **kwargs
    )


def test_a_first_rollout_creates_every_object_in_apply_order_then_waits_for_the_workloads():
    cluster, rendered, clock = FakeCluster(ready_after_polls=2), objects(), Clock()
    result = run(cluster, rendered, clock=clock)

    assert result.changed
    assert result.created == [describe(object_key(o)) for o in rendered]
    assert set(cluster.objects) == {(k[1], k[2], k[3]) for k in map(object_key, rendered)}
    applied = [c for c in cluster.calls if c[0] == "apply"]
    assert [c[1] for c in applied] == [o["kind"] for o in rendered]
    assert all(c[4] == "llmops" and c[5] is False for c in applied)  # one field manager, real applies
    assert len(cluster.writes) == len(rendered)
    deployments = [describe(object_key(o)) for o in rendered if o["kind"] == "Deployment"]
    assert sorted(result.ready) == sorted(deployments)
    assert all(state.startswith("1/1 available") for state in result.ready.values())
    assert clock.sleeps == [5, 5]  # the fake's controllers report ready at the third look


def test_a_second_run_changes_nothing_and_writes_nothing():
    cluster = FakeCluster()
    run(cluster, objects())
    writes, versions = (
        len(cluster.writes),
        {k: o["metadata"]["resourceVersion"] for k, o in cluster.objects.items()},
    )

    again = run(cluster, objects())

    assert not again.changed
    assert again.created == again.updated == again.pruned == []
    assert len(cluster.writes) == writes
    assert {k: o["metadata"]["resourceVersion"] for k, o in cluster.objects.items()} == versions


def test_check_mode_does_not_ask_the_server_about_objects_that_already_hold_every_rendered_field():
    cluster = FakeCluster()
    run(cluster, objects())
    before = len(cluster.calls)

    result = run(cluster, objects(), check_mode=True)

    assert not result.changed
    assert [c for c in cluster.calls[before:] if c[0] == "apply"] == []


def test_check_mode_on_an_empty_cluster_writes_nothing_and_shows_every_object_as_created():
    cluster, rendered = FakeCluster(), objects()
    result = run(cluster, rendered, check_mode=True)

    assert result.changed and len(result.created) == len(rendered)
    assert cluster.objects == {} and cluster.writes == []
    namespaced = next(o for o in rendered if o["kind"] == "Deployment")
    name = describe(object_key(namespaced))
    assert result.before[name] is None and result.after[name]["spec"] == namespaced["spec"]


@pytest.mark.parametrize(
    ("autoscaler", "kinds", "field"),
    [
        # The HPA owns the Deployment's replicas: the replan moves its bounds, the HPA the replicas.
        (
            "hpa",
            {"HorizontalPodAutoscaler", "PodDisruptionBudget"},
            ("HorizontalPodAutoscaler", "minReplicas"),
        ),
        ("none", {"Deployment", "PodDisruptionBudget"}, ("Deployment", "replicas")),
    ],
)
def test_check_mode_diff_of_a_demand_change_shows_only_the_replica_counts(autoscaler, kinds, field):
    options = dataclasses.replace(OPTIONS, autoscaler=autoscaler)
    cluster = FakeCluster()
    run(cluster, render_objects(cases.spec(), "1.33", options))
    stored, writes = copy.deepcopy(cluster.objects), len(cluster.writes)
    high = cases.spec(plan_data=cases.plan(chat=12.0), models=cases.models_with(chat=12.0))

    result = run(cluster, render_objects(high, "1.33", options), check_mode=True)

    assert cluster.objects == stored and len(cluster.writes) == writes
    assert result.updated and not result.created and not result.pruned
    assert {name.split(" ")[0] for name in result.updated} == kinds
    kind, spec_field = field
    changed = next(n for n in result.updated if n.startswith(f"{kind} team-a/chat-l4-a"))
    assert result.before[changed]["spec"][spec_field] < result.after[changed]["spec"][spec_field]
    before, after = copy.deepcopy(result.before[changed]), copy.deepcopy(result.after[changed])
    before["spec"].pop(spec_field), after["spec"].pop(spec_field)
    if kind == "HorizontalPodAutoscaler":
        before["spec"].pop("maxReplicas"), after["spec"].pop("maxReplicas")
    assert before == after


def test_prune_deletes_only_our_objects_the_plan_no_longer_wants_and_keeps_namespaces():
    cluster, rendered = FakeCluster(), objects()
    run(cluster, rendered)
    ours = {"app.kubernetes.io/managed-by": "llmops", "llmops.io/plan": "lab"}
    stale_deployment = copy.deepcopy(next(o for o in rendered if o["kind"] == "Deployment"))
    stale_deployment["metadata"]["name"] = "retired-l4-a"
    stale_hpa = copy.deepcopy(next(o for o in rendered if o["kind"] == "HorizontalPodAutoscaler"))
    stale_hpa["metadata"]["name"] = "retired-l4-a"
    foreign = copy.deepcopy(stale_deployment)
    foreign["metadata"].update(name="hand-made", labels={"app": "hand-made"})
    other_plan = copy.deepcopy(stale_deployment)
    other_plan["metadata"].update(name="other-plan", labels={**ours, "llmops.io/plan": "staging"})
    stale_namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-gone", "labels": ours},
    }
    for obj in (stale_deployment, stale_hpa, foreign, other_plan, stale_namespace):
        cluster.put(obj)

    result = run(cluster, rendered)

    assert result.pruned == [
        "HorizontalPodAutoscaler team-a/retired-l4-a",
        "Deployment team-a/retired-l4-a",
    ]  # dependents first
    assert result.kept_namespaces == ["team-gone"]
    remaining = {k[2] for k in cluster.objects}
    assert {"hand-made", "other-plan", "team-gone"} <= remaining and "retired-l4-a" not in remaining
    lists = {c[2] for c in cluster.calls if c[0] == "list"}
    assert lists == {owner_selector("lab")} == {"app.kubernetes.io/managed-by=llmops,llmops.io/plan=lab"}


def test_prune_in_check_mode_only_dry_runs_the_deletes():
    cluster, rendered = FakeCluster(), objects()
    run(cluster, rendered)
    stale = copy.deepcopy(next(o for o in rendered if o["kind"] == "Service"))
    stale["metadata"]["name"] = "retired"
    cluster.put(stale)

    result = run(cluster, rendered, check_mode=True)

    assert result.pruned == ["Service team-a/retired"]
    assert ("Service", "team-a", "retired") in cluster.objects
    assert [c for c in cluster.calls if c[0] == "delete"] == [
        ("delete", "Service", "team-a", "retired", True)
    ]


def test_an_autoscaled_workload_keeps_the_replicas_its_autoscaler_set():
    cluster, rendered = FakeCluster(), objects()
    run(cluster, rendered)
    key = ("Deployment", "team-a", "chat-l4-a")
    cluster.objects[key]["spec"]["replicas"] = 2  # the HPA scaled it up

    result = run(cluster, rendered)

    assert not result.changed
    assert cluster.objects[key]["spec"]["replicas"] == 2


def test_without_an_autoscaler_the_plans_replica_count_is_restored():
    cluster = FakeCluster()
    rendered = render_objects(cases.spec(), "1.33", dataclasses.replace(OPTIONS, autoscaler="none"))
    run(cluster, rendered)
    key = ("Deployment", "team-a", "chat-l4-a")
    cluster.objects[key]["spec"]["replicas"] = 3

    result = run(cluster, rendered)

    assert result.updated == ["Deployment team-a/chat-l4-a"]
    assert cluster.objects[key]["spec"]["replicas"] == 1


def test_a_field_owned_by_another_manager_fails_naming_the_object_unless_forced():
    cluster, rendered = FakeCluster(), objects()
    run(cluster, rendered)
    service = next(o for o in rendered if o["kind"] == "Service")
    service_key = ("Service", service["metadata"]["namespace"], service["metadata"]["name"])
    cluster.objects[service_key]["spec"]["type"] = "NodePort"
    cluster.conflicts.add(service_key)

    with pytest.raises(RolloutError) as error:
        run(cluster, rendered)
    assert error.value.problems == [
        f"Service {service_key[1]}/{service_key[2]}: apply failed: Apply failed with 1 conflict: conflict with "
        '"kubectl-edit": .spec (Service) (another field manager owns a field we set; see force_conflicts)'
    ]
    assert cluster.objects[service_key]["spec"]["type"] == "NodePort"

    forced = run(cluster, rendered, force_conflicts=True)
    assert forced.updated == [describe(("v1", "Service", service_key[1], service_key[2]))]
    assert cluster.objects[service_key]["spec"]["type"] == "ClusterIP"


def test_a_kind_the_cluster_does_not_serve_fails_before_anything_is_written():
    cluster = FakeCluster(served=fake_cluster.BASE_KINDS)
    rendered = render_objects(cases.spec(), "1.33", dataclasses.replace(OPTIONS, autoscaler="keda"))

    with pytest.raises(RolloutError) as error:
        run(cluster, rendered)

    assert error.value.problems == [
        "ScaledObject (keda.sh/v1alpha1) is not served by the cluster: install its CRD/controller first (ScaledObject: KEDA)"
    ]
    assert cluster.calls == []


def test_objects_without_our_labels_are_refused():
    rendered = objects()
    rendered[0]["metadata"]["labels"]["llmops.io/plan"] = "other"
    with pytest.raises(RolloutError, match="lacks the ownership labels of plan 'lab'"):
        run(FakeCluster(), rendered)


def test_waiting_gives_up_at_the_timeout_naming_each_workload_and_its_state():
    cluster, clock = FakeCluster(ready_after_polls=None), Clock()

    with pytest.raises(RolloutError) as error:
        run(cluster, objects(), wait_timeout=12, clock=clock)

    assert (
        error.value.problems[0]
        == "Deployment team-a/chat-l4-a: not rolled out within 12s (0/1 available, 0 updated)"
    )
    assert len(error.value.problems) == 4
    assert clock.sleeps == [5, 5, 5]
    assert error.value.result["created"]  # what was applied is reported


# --- DynamicClusterApi against the kubernetes client's DynamicClient (mocked: no API server) -------------


def _dynamic_client():
    from kubernetes.dynamic import DynamicClient

    client = mock.create_autospec(DynamicClient, instance=True)
    client.resources = mock.Mock()
    client.version = {"kubernetes": {"gitVersion": "v1.20.2"}}
    return client


def test_the_dynamic_client_applies_server_side_with_our_field_manager_and_dry_runs_when_asked():
    client = _dynamic_client()
    client.server_side_apply.return_value.to_dict.return_value = {"kind": "Service"}
    api = DynamicClusterApi(client)
    service = next(o for o in objects() if o["kind"] == "Service")

    assert api.apply(service, "llmops", False, dry_run=True) == {"kind": "Service"}
    api.apply(service, "llmops", True, dry_run=False)

    client.resources.get.assert_called_with(api_version="v1", kind="Service")
    first, second = client.server_side_apply.call_args_list
    resource = client.resources.get.return_value
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    assert first == mock.call(
        resource,
        body=service,
        name=name,
        namespace=namespace,
        field_manager="llmops",
        force_conflicts=False,
        dry_run="All",
    )
    assert second == mock.call(
        resource, body=service, name=name, namespace=namespace, field_manager="llmops", force_conflicts=True
    )
    assert api.server_version() == "v1.20.2"


def test_the_dynamic_client_maps_not_found_missing_kinds_and_api_errors():
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, ResourceNotFoundError

    client = _dynamic_client()
    api = DynamicClusterApi(client)
    client.get.side_effect = NotFoundError(ApiException(status=404, reason="Not Found"))
    assert api.get("apps/v1", "Deployment", "x", "team-a") is None

    client.resources.get.side_effect = ResourceNotFoundError("no LeaderWorkerSet")
    assert api.has_kind("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet") is False
    client.resources.get.side_effect = None

    client.server_side_apply.side_effect = ConflictError(ApiException(status=409, reason="Conflict"))
    with pytest.raises(ApiError) as error:
        api.apply(next(o for o in objects() if o["kind"] == "Service"), "llmops", False, dry_run=True)
    assert error.value.status == 409

    api.delete("apps/v1", "Deployment", "retired", "team-a", dry_run=True)
    client.delete.assert_called_once_with(
        client.resources.get.return_value, name="retired", namespace="team-a", propagation_policy="Foreground",
        dry_run="All",
    )  # fmt: skip
    client.get.side_effect = None
    client.get.return_value.to_dict.return_value = {"items": [{"metadata": {"name": "a"}}]}
    assert api.list("apps/v1", "Deployment", owner_selector("lab")) == [{"metadata": {"name": "a"}}]
    client.get.assert_called_with(client.resources.get.return_value, label_selector=owner_selector("lab"))


# --- deciding "up to date" on a real server's answer -----------------------------------------------------

# A Deployment as a 1.20.2 API server stored it after our apply (defaults, managedFields of our
# manager and of kube-controller-manager), next to what we rendered: recorded from that server.
RECORDED = json.loads((Path(__file__).with_name("fixtures") / "deployment-1.20.2.json").read_text())


def test_a_live_object_with_server_defaults_is_up_to_date():
    live, rendered = RECORDED["live"], RECORDED["rendered"]
    assert live["spec"]["template"]["spec"]["containers"][0][
        "terminationMessagePath"
    ]  # a default we never set
    assert up_to_date(live, rendered, "llmops")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["spec"].update(replicas=d["spec"]["replicas"] + 1),
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "NEW", "value": "1"}),
        lambda d: d["metadata"]["labels"].update({"llmops.io/extra": "x"}),
    ],
    ids=["replicas", "env-added", "label-added"],
)
def test_a_rendered_change_is_not_up_to_date(change):
    rendered = copy.deepcopy(RECORDED["rendered"])
    change(rendered)
    assert not up_to_date(RECORDED["live"], rendered, "llmops")


@pytest.mark.parametrize(
    "removal",
    [
        lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("securityContext"),
        lambda d: d["spec"]["template"]["spec"].pop("priorityClassName"),
        lambda d: d["metadata"]["labels"].pop("llmops.io/tenant"),
    ],
    ids=["container-field", "pod-field", "label"],
)
def test_a_field_we_stopped_rendering_is_a_change_because_our_manager_owns_it(removal):
    rendered = copy.deepcopy(RECORDED["rendered"])
    removal(rendered)
    assert contains(RECORDED["live"], rendered)  # the live object still holds everything else ...
    assert not up_to_date(RECORDED["live"], rendered, "llmops")  # ... but applying would remove the field


def test_fields_the_server_omits_are_their_zero_values_and_booleans_are_not_numbers():
    assert contains({"value": 5}, {"value": 5, "globalDefault": False})
    assert not contains({"value": 5}, {"value": 5, "globalDefault": True})
    assert not contains({"flag": 1}, {"flag": True})
    assert contains({"a": [{"x": 1, "default": "d"}]}, {"a": [{"x": 1}]})
    assert not contains({"a": [{"x": 1}, {"x": 2}]}, {"a": [{"x": 1}]})


def test_the_check_mode_diff_lays_our_fields_over_the_live_object():
    live = RECORDED["live"]
    rendered = copy.deepcopy(RECORDED["rendered"])
    rendered["spec"]["replicas"] = 3
    after = overlay(live, rendered)
    assert after["spec"]["replicas"] == 3
    assert (
        after["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    )
    assert after["metadata"]["uid"] == live["metadata"]["uid"]
