"""pulumi/__main__.py composes ServingWorkloads when the models file names artifacts (under mocks).

The planner and the renderer run for real; the resources Pulumi would apply must be exactly the
renderer's objects for the stack's plan, bound to the EKS cluster's provider.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from llmops_infra.config import ConfigError
from mocked_engine import PROJECT_DIR, committed_settings, run_stack

from llmops.planning import load_inputs, make_plan
from llmops.serving import serving_spec
from llmops.serving.kubernetes import RenderOptions, render_objects

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llmops/vllm:0.32.0"


def models_with_artifacts(tmp_path: Path, tenant: str = "dev-serving") -> Path:
    document = yaml.safe_load((PROJECT_DIR / "stacks/dev/models.yml").read_text())
    document["tenants"] = [{"name": tenant}]
    for model in document["models"]:
        model["artifact"] = {"name": model["name"], "version": "v1"}
        model["tenant"] = tenant
    path = tmp_path / "models.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def kubernetes_workload_resources(run):
    return [r for r in run.resources if r.type.startswith("kubernetes:") and r.name.startswith("serving-")]


def test_a_models_file_without_artifacts_is_sizing_only():
    run = run_stack("dev")
    assert kubernetes_workload_resources(run) == []
    assert not run.of_type("llmops:index:ServingWorkloads")


def test_with_artifacts_pulumi_applies_exactly_the_renderers_objects(tmp_path):
    models_file = models_with_artifacts(tmp_path)
    run = run_stack("dev", modelsFile=str(models_file), servingImage=IMAGE)
    settings = committed_settings("dev")
    fleet, models = load_inputs(PROJECT_DIR / settings["llmops:fleetFile"], models_file)
    plan = make_plan(fleet, models, time_limit_s=settings["llmops:planTimeLimitSeconds"])
    expected = render_objects(
        serving_spec(plan, models, None, device="cuda"), settings["llmops:clusterVersion"],
        RenderOptions(image=IMAGE, plan_name="dev", render_namespaces=False, service_account="model-server",
                      model_store_secret=None),
    )
    resources = kubernetes_workload_resources(run)
    assert len(run.of_type("llmops:index:ServingWorkloads")) == 1
    assert len(resources) == len(expected)
    kinds = sorted(r.type.rsplit(":", 1)[1] for r in resources)
    assert kinds == sorted(o["kind"] for o in expected)
    assert "Namespace" not in kinds, "ClusterAddons owns the namespaces on EKS"
    provider = next(r for r in run.resources if r.type == "pulumi:providers:kubernetes")
    deployments = [r for r in resources if r.type == "kubernetes:apps/v1:Deployment"]
    assert deployments
    node_group_pools = {
        group.inputs["labels"]["llmops.io/pool"] for group in run.of_type("aws:eks/nodeGroup:NodeGroup")
        if "llmops.io/pool" in group.inputs.get("labels", {})
    }
    for deployment in deployments:
        assert deployment.provider.split("::")[-2] == provider.name, "bound to the EKS cluster's provider"
        pod = deployment.inputs["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "model-server"
        assert [c["image"] for c in pod["containers"]] == [IMAGE]
        assert "envFrom" not in pod["initContainers"][0], "IRSA, not a key Secret, on EKS"
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        pools = next(e["values"] for e in terms[0]["matchExpressions"] if e["key"] == "llmops.io/pool")
        assert set(pools) <= node_group_pools, "pods only go where a node group of the same plan is"


def test_artifacts_without_a_serving_image_or_a_tenant_of_the_stack_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"llmops:servingImage: required when the models file names artifacts"):
        run_stack("dev", modelsFile=str(models_with_artifacts(tmp_path)))
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(ConfigError, match=r"llmops:tenants: no tenant 'team-x' for model 'assistant-8b'"):
        run_stack("dev", modelsFile=str(models_with_artifacts(other, tenant="team-x")), servingImage=IMAGE)
