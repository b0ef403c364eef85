"""Property: for random plans from the planner's own generators, the Kubernetes objects are the plan.

- every plan replica is accounted for: per model and pool, the workload's replicas are the
  replicas the plan put there;
- each tensor-parallel group stays on one node: a Deployment pod asks for exactly TP GPUs, no
  more than its node has (a LeaderWorkerSet's pods split the group over whole nodes);
- GPU requests per node never exceed the node's GPUs: placing the rendered pods where the plan
  placed their replicas, each node's requests (pods x GPUs per pod) fit;
- every tenant's quota covers the GPUs its planned pods request;
- every object passes the strict Kubernetes 1.33 schema check.
"""

from __future__ import annotations

import importlib.util
from collections import Counter, defaultdict
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings

from llmops.planning import make_plan
from llmops.planning.spec import parse_fleet, parse_models
from llmops.serving import serving_spec
from llmops.serving.kubernetes import RenderOptions, render_objects, validate_objects

_CASES = Path(__file__).with_name("k8s_cases.py")
_module_spec = importlib.util.spec_from_file_location("k8s_cases_properties", _CASES)
cases = importlib.util.module_from_spec(_module_spec)
_module_spec.loader.exec_module(cases)
fleets, model_sets = cases.planner_generators()

WORKLOAD_KINDS = ("Deployment", "LeaderWorkerSet")


def _with_tenants_and_artifacts(models_data: dict) -> dict:
    tenants = ["team-a", "team-b"]
    for index, entry in enumerate(models_data["models"]):
        entry["tenant"] = tenants[index % 2]
        entry["artifact"] = {"name": f"artifact-{entry['name']}", "version": f"v{index}"}
    return {**models_data, "tenants": [{"name": name} for name in tenants]}


def _pods(obj: dict) -> list[tuple[dict, int]]:
    """(pod spec, pods per replica of that template) for a workload object."""
    if obj["kind"] == "Deployment":
        return [(obj["spec"]["template"]["spec"], 1)]
    template = obj["spec"]["leaderWorkerTemplate"]
    return [
        (template["leaderTemplate"]["spec"], 1),
        (template["workerTemplate"]["spec"], template["size"] - 1),
    ]


def _gpus(pod: dict) -> int:
    return sum(int(c["resources"]["requests"].get("nvidia.com/gpu", "0")) for c in pod["containers"])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_data=fleets(), models_data=model_sets())
def test_rendered_workloads_hold_every_replica_and_fit_the_plans_nodes(fleet_data, models_data):
    fleet, models = parse_fleet(fleet_data), parse_models(_with_tenants_and_artifacts(models_data))
    plan = make_plan(fleet, models, time_limit_s=2)
    spec = serving_spec(plan, models, None, device="cuda")
    objects = render_objects(spec, "1.33", RenderOptions(image=cases.IMAGE))
    node_gpus = {node.name: node.gpus for node in plan.nodes}
    pool_of = {node.name: node.pool for node in plan.nodes}

    event(f"replicas: {min(len(plan.replicas), 5)}+")
    planned = Counter((r.model, pool_of[r.node]) for r in plan.replicas)
    rendered = Counter()
    gpus_per_replica = {}
    for obj in objects:
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        labels = obj["metadata"]["labels"]
        key = (labels["llmops.io/model"], labels["llmops.io/pool"])
        rendered[key] += obj["spec"]["replicas"]
        pods = _pods(obj)
        per_replica = sum(_gpus(pod) * count for pod, count in pods)
        gpus_per_replica.setdefault(key, set()).add(per_replica)
        for pod, _ in pods:
            args = pod["containers"][0]["command"]
            if "--tensor-parallel-size" in args:
                # One TP group per pod: the pod asks for exactly its TP degree, and a pod lies on one node.
                assert _gpus(pod) == int(args[args.index("--tensor-parallel-size") + 1])
            pool_nodes = [n for n in plan.nodes if n.pool == key[1]]
            assert _gpus(pod) <= min(n.gpus for n in pool_nodes)
    # Every plan replica is accounted for, in its pool.
    assert rendered == planned

    # Each replica's GPUs as rendered equal its TP degree (the whole group, on whole nodes).
    for replica in plan.replicas:
        assert gpus_per_replica[(replica.model, pool_of[replica.node])] >= {replica.tensor_parallel}
    # Per node: the rendered pods placed where the plan placed their replicas fit the node's GPUs.
    requested = defaultdict(int)
    for replica in plan.replicas:
        (per_replica,) = gpus_per_replica[(replica.model, pool_of[replica.node])] & {replica.tensor_parallel}
        requested[replica.node] += per_replica
    assert all(requested[node] <= node_gpus[node] for node in requested)

    # Quotas cover the tenant's planned GPUs.
    quotas = {
        o["metadata"]["namespace"]: int(o["spec"]["hard"]["requests.nvidia.com/gpu"])
        for o in objects
        if o["kind"] == "ResourceQuota"
    }
    planned_gpus = Counter()
    for obj in objects:
        if obj["kind"] in WORKLOAD_KINDS:
            planned_gpus[obj["metadata"]["namespace"]] += obj["spec"]["replicas"] * sum(
                _gpus(pod) * count for pod, count in _pods(obj)
            )
    assert all(planned_gpus[ns] <= quotas[ns] for ns in planned_gpus)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_data=fleets(), models_data=model_sets())
def test_every_object_rendered_from_a_random_plan_passes_strict_validation_for_1_33(fleet_data, models_data):
    fleet, models = parse_fleet(fleet_data), parse_models(_with_tenants_and_artifacts(models_data))
    plan = make_plan(fleet, models, time_limit_s=2)
    spec = serving_spec(plan, models, None, device="cuda")
    objects = render_objects(spec, "1.33", RenderOptions(image=cases.IMAGE))
    assert validate_objects(objects, "1.33") == []
