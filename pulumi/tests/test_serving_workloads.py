"""ServingWorkloads under Pulumi's mocks: the resources Pulumi would apply are the renderer's objects."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pulumi_kubernetes as k8s
from llmops_infra.serving import ServingWorkloads, ServingWorkloadsArgs, resource_name
from mocked_engine import run_with_mocks

import pulumi
from llmops.serving.kubernetes import RenderOptions, render_objects

_CASES = Path(__file__).resolve().parents[2] / "tests" / "serving" / "k8s_cases.py"
_module_spec = importlib.util.spec_from_file_location("k8s_cases_pulumi", _CASES)
cases = importlib.util.module_from_spec(_module_spec)
_module_spec.loader.exec_module(cases)

# As on EKS: ClusterAddons owns the namespaces and the model-server service account (IRSA).
EKS = RenderOptions(
    image=cases.IMAGE,
    plan_name="prod",
    render_namespaces=False,
    service_account="model-server",
    model_store_secret=None,
)




def resource_type(obj: dict) -> str:
    group, _, version = obj["apiVersion"].rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"


def workloads(objects, parents=None, depends=None):
    def record(args: pulumi.ResourceTransformationArgs):
        if parents is not None:
            parents[args.name] = args.opts.parent._name if args.opts and args.opts.parent else None
        if depends is not None:
            depends[args.name] = sorted(d._name for d in (args.opts.depends_on or []))

    def program():
        pulumi.runtime.register_stack_transformation(record)
        provider = k8s.Provider("k8s", kubeconfig="{}")
        return ServingWorkloads("serving", ServingWorkloadsArgs(provider=provider, objects=objects))

    return run_with_mocks(program)


def test_every_rendered_object_becomes_one_resource_with_the_same_content():
    objects = render_objects(cases.multi_node_spec(), "1.33", dataclasses.replace(EKS, autoscaler="keda"))
    run = workloads(objects)

    recorded = {r.name: r for r in run.custom_resources if r.type.startswith("kubernetes:")}
    assert len(recorded) == len(objects)
    kinds = set()
    for obj in objects:
        resource = recorded[resource_name("serving", obj)]
        assert resource.type == resource_type(obj)
        assert resource.inputs == obj  # the renderer's object, field for field
        kinds.add(obj["kind"])
    assert {"LeaderWorkerSet", "ScaledObject", "Deployment", "PodDisruptionBudget"} <= kinds
    assert "Namespace" not in kinds  # ClusterAddons owns them on EKS


def test_every_resource_is_parented_to_the_component_and_uses_the_clusters_provider():
    parents, depends = {}, {}
    objects = render_objects(cases.spec(), "1.33", dataclasses.replace(EKS, render_namespaces=True))
    run = workloads(objects, parents, depends)

    for resource in run.custom_resources:
        if resource.type.startswith("pulumi:providers"):
            continue
        assert parents[resource.name] == "serving", resource.name
        assert resource.name.startswith("serving-")
        assert resource.provider and "k8s" in resource.provider
    component = [r for r in run.resources if not r.custom]
    assert [r.type for r in component] == ["llmops:index:ServingWorkloads"]
    # A namespaced object waits for its Namespace when the component creates it.
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    namespace = deployment["metadata"]["namespace"]
    assert depends[resource_name("serving", deployment)] == [f"serving-namespace-{namespace}"]


def test_older_clusters_get_the_older_api_versions_as_typed_resources():
    objects = render_objects(cases.spec(), "1.22", EKS)
    types = {r.type for r in workloads(objects).custom_resources}
    assert "kubernetes:autoscaling/v2beta2:HorizontalPodAutoscaler" in types
    assert "kubernetes:policy/v1:PodDisruptionBudget" in types
