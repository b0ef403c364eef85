"""k8s_serving: the module end to end, with the cluster replaced at the ClusterApi boundary.

No cluster exists in the lab yet: `module_utils.k8s_serving.make_api` is the one seam, and the
stand-in is tests/serving/fake_cluster.py (the same one the rollout's own tests use). The plan is
a real one from the planner.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from unittest import mock

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.module_utils import k8s_serving as glue
from ansible_collections.llmops.datacenter.plugins.modules import k8s_serving

PROJECT_ROOT = Path(__file__).resolve().parents[8]


def _load(name: str):
    path = PROJECT_ROOT / "tests" / "serving" / f"{name}.py"
    module_spec = importlib.util.spec_from_file_location(f"{name}_module_test", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


cases = _load("k8s_cases")
fake_cluster = _load("fake_cluster")


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(cases.plan()))
    return str(path)


def args(plan_file, **extra):
    return {
        "plan_file": plan_file,
        "models": cases.models_with(),
        "image": cases.IMAGE,
        "plan_name": "lab",
        "kubernetes_version": "1.33",
        "wait_timeout": 30,
        **extra,
    }


def with_cluster(cluster):
    """The module's one seam to the cluster, answered by the fake."""
    return mock.patch.object(glue, "make_api", lambda params: cluster)


def test_check_mode_reports_every_object_as_created_with_a_diff_and_writes_nothing(run_module, plan_file):
    cluster = fake_cluster.FakeCluster()
    with with_cluster(cluster):
        result = run_module(k8s_serving, args(plan_file), check_mode=True, diff=True)

    assert result["changed"] is True, result
    assert len(result["created"]) == len(result["objects"]) > 0
    assert cluster.objects == {} and cluster.writes == []
    name = next(n for n in result["created"] if n.startswith("Deployment "))
    assert result["diff"]["before"][name] is None
    assert result["diff"]["after"][name]["kind"] == "Deployment"


def test_a_rollout_then_a_second_run_changes_nothing(run_module, plan_file):
    cluster = fake_cluster.FakeCluster(ready_after_polls=0)  # ready at the first look: no real sleeping
    with with_cluster(cluster):
        first = run_module(k8s_serving, args(plan_file))
        second = run_module(k8s_serving, args(plan_file))

    assert first["changed"] is True and "failed" not in first, first
    assert first["ready"] and all(state.endswith("1 updated") for state in first["ready"].values())
    assert second["changed"] is False, second
    assert second["unchanged"] == len(second["objects"])
    assert "diff" not in second


def test_without_a_version_the_clusters_own_chooses_the_api_versions(run_module, plan_file):
    served = (
        fake_cluster.BASE_KINDS
        - {("policy/v1", "PodDisruptionBudget"), ("autoscaling/v2", "HorizontalPodAutoscaler")}
    ) | {
        ("policy/v1beta1", "PodDisruptionBudget"),
        ("autoscaling/v2beta2", "HorizontalPodAutoscaler"),
    }
    cluster = fake_cluster.FakeCluster(served=served, version="v1.20.2")
    with with_cluster(cluster):
        result = run_module(k8s_serving, args(plan_file, kubernetes_version=None), check_mode=True)

    assert result["kubernetes_version"] == "v1.20.2"
    versions = {(o["kind"], o["apiVersion"]) for o in result["objects"]}
    assert ("PodDisruptionBudget", "policy/v1beta1") in versions
    assert ("HorizontalPodAutoscaler", "autoscaling/v2beta2") in versions


def test_invalid_input_fails_naming_the_field_before_any_connection(run_module, plan_file):
    models = cases.models_with()
    models["tenants"][0]["gpu_quota"] = 1
    connect = mock.Mock()
    with mock.patch.object(glue, "make_api", connect):
        result = run_module(k8s_serving, args(plan_file, models=models))
        version = run_module(k8s_serving, args(plan_file, kubernetes_version="1.18"))

    assert result["failed"] is True
    assert result["problems"] == ["tenants.team-a.gpu_quota: 1 GPUs, but the plan gives the tenant 2"]
    assert version["problems"] == [
        "kubernetes_version: '1.18' is older than 1.20, the oldest version rendered for"
    ]
    connect.assert_not_called()


def test_an_unreadable_plan_and_a_bad_timeout_fail_naming_the_option(run_module, tmp_path):
    missing = run_module(k8s_serving, args(str(tmp_path / "nope.json")))
    assert missing["failed"] is True and missing["problems"][0].startswith("plan_file: cannot read")
    timeout = run_module(k8s_serving, args(str(tmp_path / "nope.json"), wait_timeout=0))
    assert timeout["problems"] == ["wait_timeout: must be > 0, got 0"]


def test_a_rollout_failure_names_the_object_and_reports_what_was_done(run_module, plan_file):
    cluster = fake_cluster.FakeCluster(served=fake_cluster.BASE_KINDS)
    with with_cluster(cluster):
        result = run_module(k8s_serving, args(plan_file, autoscaler="keda"))
    assert result["failed"] is True
    assert result["problems"][0].startswith("ScaledObject (keda.sh/v1alpha1) is not served by the cluster")


def test_without_the_kubernetes_client_the_module_says_what_to_install(run_module, plan_file):
    with mock.patch.object(glue, "HAS_KUBERNETES", False):
        result = run_module(k8s_serving, args(plan_file))
    assert result["failed"] is True
    assert "kubernetes" in result["msg"] and "Python library" in result["msg"]


def test_the_documented_options_are_the_argument_spec():
    documented = yaml.safe_load(k8s_serving.DOCUMENTATION)["options"]
    spec = k8s_serving.argument_spec()
    own = {name: option for name, option in spec.items() if name not in glue.AUTH_OPTIONS}
    assert set(documented) == set(own)
    for name, option in own.items():
        doc = documented[name]
        assert doc.get("type", "str") == option.get("type", "str"), name
        assert doc.get("default") == option.get("default"), name
        assert doc.get("choices") == option.get("choices"), name
        assert bool(doc.get("required")) == bool(option.get("required")), name
        assert doc.get("elements") == option.get("elements"), name
