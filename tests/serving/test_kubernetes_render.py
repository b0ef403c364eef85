"""The Kubernetes renderer: objects from real plans, checked against the API's schemas offline.

Every object rendered for Kubernetes 1.33 passes `kubernetes-validate` in strict mode; the
LeaderWorkerSet and KEDA ScaledObject pass the vendored CRD schemas, made strict the same way.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest

from llmops.serving.kubernetes import (
    REPLICA_FIELDS,
    KubernetesRenderError,
    RenderOptions,
    VersionError,
    api_versions,
    object_key,
    render_objects,
    validate_objects,
)
from llmops.serving.kubernetes.render import disruption_budget_pods, replicas_needed, workloads

_CASES = Path(__file__).with_name("k8s_cases.py")
_module_spec = importlib.util.spec_from_file_location("k8s_cases", _CASES)
cases = importlib.util.module_from_spec(_module_spec)
_module_spec.loader.exec_module(cases)

OPTIONS = RenderOptions(image=cases.IMAGE, plan_name="lab")


def render(spec=None, version="1.33", **options):
    return render_objects(spec or cases.spec(), version, dataclasses.replace(OPTIONS, **options))


def of_kind(objects, kind):
    return {
        (o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects if o["kind"] == kind
    }




# --- schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        {"autoscaler": "hpa"},
        {"autoscaler": "keda", "scaling_metric": "requests_per_second"},
        {"autoscaler": "none", "render_namespaces": False, "service_account": "model-server"},
        {"device": "cpu", "model_store_secret": None, "gateway_cidrs": ("10.88.0.0/16",)},
        {"multi_node": True, "autoscaler": "keda"},
    ],
    ids=["hpa", "keda-rps", "no-autoscaler", "cpu-lab", "leaderworkerset"],
)
def test_every_object_rendered_for_kubernetes_1_33_passes_strict_schema_validation(variant):
    variant = dict(variant)
    spec = (
        cases.multi_node_spec() if variant.pop("multi_node", False) else cases.spec(variant.pop("device", "cuda"))
    )
    objects = render(spec, **variant)
    assert validate_objects(objects, "1.33") == []
    kinds = {o["kind"] for o in objects}
    assert {
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "Service",
        "PodDisruptionBudget",
    } <= kinds | ({"Namespace"} if not variant.get("render_namespaces", True) else set())
    if variant.get("autoscaler") == "keda":
        assert "ScaledObject" in kinds
    if spec.replicas[0].node_gpus == 2 or any(r.node_gpus == 2 for r in spec.replicas):
        assert "LeaderWorkerSet" in kinds


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_every_object_rendered_for_the_lab_cluster_passes_kubernetes_1_20_2s_own_schemas(device):
    objects = render(cases.spec(device), version="v1.20.2")
    assert validate_objects(objects, "v1.20.2") == []
    # The 1.33 rendering would not do there: policy/v1 and autoscaling/v2 do not exist in 1.20.
    newer = validate_objects(render(cases.spec(device), version="1.33"), "v1.20.2")
    assert any("no schema for policy/v1 PodDisruptionBudget in Kubernetes v1.20.2" in p for p in newer)
    assert any("no schema for autoscaling/v2 HorizontalPodAutoscaler" in p for p in newer)


def test_the_strict_checks_reject_unknown_and_mistyped_fields():
    objects = render(cases.multi_node_spec(), autoscaler="keda")
    lws = copy.deepcopy(next(o for o in objects if o["kind"] == "LeaderWorkerSet"))
    lws["spec"]["leaderWorkerTemplate"]["sizee"] = 2
    scaled = copy.deepcopy(next(o for o in objects if o["kind"] == "ScaledObject"))
    scaled["spec"]["minReplicaCount"] = "two"
    deployment = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1

    problems = validate_objects([lws, scaled, deployment], "1.33")

    assert any("LeaderWorkerSet" in p and "spec.leaderWorkerTemplate" in p and "sizee" in p for p in problems)
    assert any("ScaledObject" in p and "spec.minReplicaCount" in p for p in problems)
    assert any("Deployment" in p and "gpus" in p for p in problems)
    # The same for 1.20's schemas, and an int-or-string field given a list.
    old = copy.deepcopy(next(o for o in render(version="1.20") if o["kind"] == "Deployment"))
    old["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1
    old["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = [1]
    assert validate_objects([old], "1.20") == [
        f"Deployment {old['metadata']['namespace']}/{old['metadata']['name']}: spec.strategy.rollingUpdate.maxSurge: "
        "[1] is not of type 'integer', 'string'",
        f"Deployment {old['metadata']['namespace']}/{old['metadata']['name']}: spec.template.spec.containers.0: "
        "Additional properties are not allowed ('gpus' was unexpected)",
    ]


# --- API versions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "pdb", "hpa"),
    [
        ("v1.20.2", "policy/v1beta1", "autoscaling/v2beta2"),
        ("1.21", "policy/v1", "autoscaling/v2beta2"),
        ("1.22.17", "policy/v1", "autoscaling/v2beta2"),
        ("1.23", "policy/v1", "autoscaling/v2"),
        ("1.33", "policy/v1", "autoscaling/v2"),
        ("1.29.4-eks-036c24b", "policy/v1", "autoscaling/v2"),
    ],
)
def test_api_versions_follow_the_target_kubernetes_version(version, pdb, hpa):
    versions = api_versions(version)
    assert (versions.pod_disruption_budget, versions.horizontal_pod_autoscaler) == (pdb, hpa)
    objects = render(version=version)
    assert {o["apiVersion"] for o in objects if o["kind"] == "PodDisruptionBudget"} == {pdb}
    assert {o["apiVersion"] for o in objects if o["kind"] == "HorizontalPodAutoscaler"} == {hpa}


@pytest.mark.parametrize("version", ["1.19", "latest", "", "2"])
def test_unsupported_or_malformed_versions_fail_naming_the_field(version):
    with pytest.raises(VersionError, match="kubernetes_version"):
        api_versions(version)


def test_on_1_20_namespace_selectors_use_our_own_label_where_the_name_label_does_not_exist():
    policies = of_kind(render(version="1.20.2"), "NetworkPolicy")
    gateway = policies[("team-a", "llmops-allow-gateway")]["spec"]["ingress"][0]["from"][0]
    assert gateway == {"namespaceSelector": {"matchLabels": {"llmops.io/namespace": "llmops-gateway"}}}
    current = of_kind(render(version="1.33"), "NetworkPolicy")[("team-a", "llmops-allow-gateway")]
    assert current["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "llmops-gateway"
    }
    assert (
        of_kind(render(version="1.20.2"), "Namespace")[("", "team-a")]["metadata"]["labels"][
            "llmops.io/namespace"
        ]
        == "team-a"
    )


# --- workloads -------------------------------------------------------------------------------------------


def test_each_pool_gets_one_deployment_of_tp_gpu_pods_pinned_to_the_pools_nodes():
    spec = cases.spec()
    objects = render(spec)
    deployments = of_kind(objects, "Deployment")
    planned = {}
    for replica in spec.replicas:
        planned[(replica.tenant, f"{replica.model}-{replica.pool}")] = (
            planned.get((replica.tenant, f"{replica.model}-{replica.pool}"), 0) + 1
        )
    assert set(deployments) == set(planned)
    for (namespace, name), deployment in deployments.items():
        assert deployment["spec"]["replicas"] == planned[(namespace, name)]
        pod = deployment["spec"]["template"]["spec"]
        replica = next(r for r in spec.replicas if f"{r.model}-{r.pool}" == name)
        vllm = pod["containers"][0]
        assert vllm["resources"]["limits"]["nvidia.com/gpu"] == str(replica.tensor_parallel)
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        assert {e["key"]: e["values"] for e in terms[0]["matchExpressions"]} == {
            "llmops.io/pool": [replica.pool],
            "llmops.io/gpu-type": [replica.gpu_type],
            "llmops.io/zone": [replica.zone],
        }
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
            "llmops.io/zone",
            "kubernetes.io/hostname",
        }
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert vllm[probe]["httpGet"] == {"path": "/health", "port": "http"}
        assert pod["priorityClassName"] == (
            "llmops-serving-p5" if replica.model == "chat" else "llmops-serving-p0"
        )
        # The engine arguments are the spec's, with the pod's port; the GPUs are the device plugin's.
        args = vllm["command"][3:]
        expected = list(replica.engine_args)
        expected[expected.index("--port") + 1] = "8000"
        assert args == expected
        assert "CUDA_VISIBLE_DEVICES" not in {e["name"] for e in vllm["env"]}
        fetch = pod["initContainers"][0]
        assert fetch["command"][-6:] == [
            "--name", replica.artifact.name, "--version", replica.artifact.version, "--cache-dir", "/var/lib/llmops/models"
        ]  # fmt: skip
        assert args[args.index("--model") + 1] == replica.artifact.cache_path
        for labels in (
            deployment["metadata"]["labels"],
            pod and deployment["spec"]["template"]["metadata"]["labels"],
        ):
            assert labels["app.kubernetes.io/managed-by"] == "llmops"
            assert labels["llmops.io/plan"] == "lab"
            assert labels["llmops.io/model"] == replica.model


def test_the_cpu_rendering_asks_for_no_gpus_and_runs_the_cpu_engine_arguments():
    objects = render(cases.spec("cpu"), autoscaler="none")
    for deployment in of_kind(objects, "Deployment").values():
        vllm = deployment["spec"]["template"]["spec"]["containers"][0]
        assert "nvidia.com/gpu" not in vllm["resources"]["requests"]
        assert "--enforce-eager" in vllm["command"]
        assert vllm["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
        assert "VLLM_CPU_KVCACHE_SPACE" in {e["name"] for e in vllm["env"]}


def test_pods_use_the_nodes_resolver_only_where_the_cluster_has_no_dns_addon():
    # Without CoreDNS a ClusterFirst pod asks a DNS Service that does not exist and cannot resolve
    # the model store's host name; the init step then fails on every start.
    for policy, expected in (("ClusterFirst", None), ("Default", "Default")):
        objects = render(cases.spec("cpu"), autoscaler="none", dns_policy=policy)
        for deployment in of_kind(objects, "Deployment").values():
            assert deployment["spec"]["template"]["spec"].get("dnsPolicy") == expected


def test_a_replica_wider_than_its_node_becomes_a_leaderworkerset_of_node_sized_pods():
    objects = render(cases.multi_node_spec())
    lws = of_kind(objects, "LeaderWorkerSet")
    assert lws and not [k for k in of_kind(objects, "Deployment") if k[1].startswith("chat")]
    for obj in lws.values():
        template = obj["spec"]["leaderWorkerTemplate"]
        assert template["size"] == 2
        for role in ("leaderTemplate", "workerTemplate"):
            container = template[role]["spec"]["containers"][0]
            assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
        leader = template["leaderTemplate"]["spec"]["containers"][0]["command"]
        assert leader[leader.index("--tensor-parallel-size") + 1] == "2"
        assert leader[leader.index("--pipeline-parallel-size") + 1] == "2"
        assert "startupProbe" not in template["workerTemplate"]["spec"]["containers"][0]
    hpa = [
        o
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"].startswith("chat")
    ]
    assert {o["spec"]["scaleTargetRef"]["kind"] for o in hpa} == {"LeaderWorkerSet"}


# --- autoscaling and disruption -------------------------------------------------------------------------


@pytest.mark.parametrize("autoscaler", ["hpa", "keda"])
def test_autoscaling_bounds_and_per_replica_target_come_from_the_plan(autoscaler):
    plan = cases.plan()
    spec = cases.spec(plan_data=plan)
    objects = render(spec, autoscaler=autoscaler)
    for entry in plan["models"]:
        scaling = entry["autoscaling"]
        per_pool = {}
        for replica in spec.replicas:
            if replica.model == entry["name"]:
                per_pool[replica.pool] = per_pool.get(replica.pool, 0) + 1
        kind = "HorizontalPodAutoscaler" if autoscaler == "hpa" else "ScaledObject"
        low, high = (
            ("minReplicas", "maxReplicas") if autoscaler == "hpa" else ("minReplicaCount", "maxReplicaCount")
        )
        scalers = {
            k[1]: o
            for k, o in of_kind(objects, kind).items()
            if o["metadata"]["labels"]["llmops.io/model"] == entry["name"]
        }
        factor = scaling["max_replicas"] / scaling["min_replicas"]
        expected = {
            f"{entry['name']}-{pool}": (n, max(n, math.ceil(n * factor - 1e-9)))
            for pool, n in per_pool.items()
        }
        expected = {name: bounds for name, bounds in expected.items() if bounds[1] > bounds[0]}
        assert {name: (o["spec"][low], o["spec"][high]) for name, o in scalers.items()} == expected
        assert sum(high for _, high in expected.values()) >= scaling["max_replicas"] or not expected
        for scaler in scalers.values():
            if autoscaler == "hpa":
                target = scaler["spec"]["metrics"][0]["pods"]["target"]["averageValue"]
                assert target == f"{round(scaling['target_requests_in_flight'] * 1000)}m"
            else:
                assert (
                    scaler["spec"]["triggers"][0]["metadata"]["threshold"]
                    == f"{round(scaling['target_requests_in_flight'], 3):g}"
                )


def test_plans_without_autoscaling_get_fixed_replicas_and_no_autoscaler():
    plan = cases.plan()
    for entry in plan["models"]:
        entry.pop("autoscaling")
    for replica in plan["replicas"]:
        replica.pop("traffic_weight")
    objects = render(cases.spec(plan_data=plan))
    assert not of_kind(objects, "HorizontalPodAutoscaler")
    assert sum(d["spec"]["replicas"] for d in of_kind(objects, "Deployment").values()) == len(
        plan["replicas"]
    )
    assert validate_objects(objects, "1.33") == []


def test_the_disruption_budget_keeps_enough_servers_for_the_demand_whichever_remain():
    assert replicas_needed([5.0, 1.0, 1.0], 1.5) == 2  # the two slow ones must cover it
    assert replicas_needed([3.0, 3.0], 3.0) == 1
    assert replicas_needed([1.0, 1.0], 5.0) == 2  # short of demand: keep all
    spec = cases.spec()
    objects = render(spec)
    for (_, name), budget in of_kind(objects, "PodDisruptionBudget").items():
        capacities = [r.capacity_requests_per_second for r in spec.replicas if r.model == name]
        demand = spec.models[name].demand_requests_per_second
        assert budget["spec"]["minAvailable"] == max(1, replicas_needed(capacities, demand))
        assert budget["spec"]["minAvailable"] <= len(capacities)
        # After losing one more server than the budget allows, the rest would not serve the demand.
        kept = sorted(capacities)[: budget["spec"]["minAvailable"]]
        assert sum(kept) >= demand or len(kept) == len(capacities)
    # Pods of a multi-node replica: every eviction may break a group.
    lws = [w for w in workloads(cases.multi_node_spec(), OPTIONS) if w.kind == "LeaderWorkerSet"]
    demand = spec.models["chat"].demand_requests_per_second
    needed = replicas_needed([r.capacity_requests_per_second for w in lws for r in w.replicas], demand)
    pods = sum(w.planned * 2 for w in lws)
    assert disruption_budget_pods(lws, demand) == pods - (sum(w.planned for w in lws) - needed)


# --- tenants ---------------------------------------------------------------------------------------------------


def test_each_tenant_gets_a_quota_covering_its_planned_gpus_and_default_deny_policies():
    spec = cases.spec()
    objects = render(spec)
    quotas = of_kind(objects, "ResourceQuota")
    assert quotas[("team-a", "llmops-serving-quota")]["spec"]["hard"]["requests.nvidia.com/gpu"] == "16"
    assert quotas[("team-b", "llmops-serving-quota")]["spec"]["hard"]["requests.nvidia.com/gpu"] == "8"
    for tenant in ("team-a", "team-b"):
        names = {k[1] for k in of_kind(objects, "NetworkPolicy") if k[0] == tenant}
        assert names == {
            "llmops-default-deny", "llmops-allow-same-namespace", "llmops-allow-dns", "llmops-allow-gateway",
            "llmops-allow-prometheus", "llmops-allow-model-store",
        }  # fmt: skip
        deny = of_kind(objects, "NetworkPolicy")[(tenant, "llmops-default-deny")]["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def _cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _memory_gib(quantity: str) -> float:
    return float(quantity.removesuffix("Gi"))


@pytest.mark.parametrize("declared", [True, False], ids=["declared GPU quota", "undeclared"])
def test_the_quota_admits_a_replacement_pod_beside_every_workload_at_its_maximum(declared):
    # A deleted pod counts against the quota while it terminates: without room for one more replica
    # per workload, the replacement is refused with `exceeded quota` until the old pod is gone.
    models = cases.models_with()
    if not declared:
        for tenant in models["tenants"]:
            tenant.pop("gpu_quota", None)
    spec = cases.serving_spec(cases.plan(), models, None)
    objects = render(spec)
    for namespace in ("team-a", "team-b"):
        placed = [w for w in workloads(spec, OPTIONS) if w.namespace == namespace]
        deployments = [o for (ns, _), o in of_kind(objects, "Deployment").items() if ns == namespace]
        assert len(deployments) == len(placed) > 0
        cpu = memory = 0.0
        for workload in placed:
            (deployment,) = [d for d in deployments if d["metadata"]["name"] == workload.name]
            requests = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
            pods = workload.max_replicas + 1
            cpu += pods * _cpu_cores(requests["cpu"])
            memory += pods * _memory_gib(requests["memory"])
        hard = of_kind(objects, "ResourceQuota")[(namespace, "llmops-serving-quota")]["spec"]["hard"]
        assert _cpu_cores(hard["requests.cpu"]) >= cpu
        assert _memory_gib(hard["requests.memory"]) >= memory
        gpus = int(hard["requests.nvidia.com/gpu"])
        if declared:
            assert gpus == {"team-a": 16, "team-b": 8}[namespace]  # the tenant's limit, as declared
        else:
            assert gpus == sum((w.max_replicas + 1) * w.tensor_parallel for w in placed)


def test_a_declared_gpu_quota_below_the_plan_fails_naming_the_tenant():
    models = cases.models_with()
    models["tenants"][0]["gpu_quota"] = 1
    spec = cases.serving_spec(cases.plan(), models, None)
    with pytest.raises(KubernetesRenderError) as error:
        render(spec)
    assert any(p.startswith("tenants.team-a.gpu_quota: 1 GPUs") for p in error.value.problems)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"autoscaler": "vpa"}, "autoscaler"),
        ({"scaling_metric": "gpu"}, "scaling_metric"),
        ({"plan_name": "Lab_1"}, "plan_name"),
        ({"image": ""}, "image"),
        ({"cpu_per_gpu": 0}, "cpu_per_gpu"),
        ({"dns_policy": "ClusterFirstWithHostNet"}, "dns_policy"),
    ],
)
def test_bad_options_fail_naming_the_option_and_the_accepted_values(options, field):
    with pytest.raises(KubernetesRenderError) as error:
        render(**options)
    assert any(p.startswith(f"{field}:") for p in error.value.problems)


# --- replan --------------------------------------------------------------------------------------------------


def _changed_paths(before, after, path=()):
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            yield from _changed_paths(before.get(key), after.get(key), (*path, key))
    elif before != after:
        yield path


def _configurations(plan):
    return {(r["model"], r["gpu_type"], r["precision"], r["tensor_parallel"]) for r in plan["replicas"]}


def test_a_demand_only_replan_changes_replica_counts_and_nothing_else():
    # 12 req/s of chat instead of 2: on the 1-GPU L4 nodes the planner keeps TP1 fp8 and runs three
    # replicas per zone. (With 4-GPU nodes it may move to TP2 instead: a configuration change that
    # rightly changes the pods, and a solver choice this test must not depend on.)
    low, high = cases.plan(), cases.plan(chat=12.0)
    assert low["status"] == high["status"] == "optimal"
    assert _configurations(low) == _configurations(high)
    assert len(high["replicas"]) > len(low["replicas"])
    before = {object_key(o): o for o in render(cases.spec(plan_data=low))}
    after = {
        object_key(o): o for o in render(cases.spec(plan_data=high, models=cases.models_with(chat=12.0)))
    }

    assert set(before) == set(after), "a demand change added or removed objects"
    changed = {
        key: list(_changed_paths(before[key], after[key])) for key in before if before[key] != after[key]
    }
    assert changed, "more demand changed no replica count: the test would prove nothing"
    for (_, kind, namespace, name), paths in changed.items():
        allowed = REPLICA_FIELDS.get(kind)
        assert allowed is not None, f"{kind} {namespace}/{name} changed: {paths}"
        section, *fields = allowed
        assert all(p[0] == section and p[1] in fields and len(p) == 2 for p in paths), (kind, name, paths)
    assert any(kind == "Deployment" for (_, kind, _, _) in changed)
