"""The plan served from pods on this cluster, checked with the lab's own serving checks
(tests/lab/test_live_lab_kubernetes.py): model servers Ready on their planned pools, a completion
through the gateway answered by a pod, a pod deleted under load losing no request, drains held by
the disruption budget, the tenant quota refusing a pod over its GPUs, and the NetworkPolicy probe
(skipped, saying so, where the CNI does not enforce policies; this cluster's bridge CNI does not).
Here a cluster that does not serve fails: this module's `lab` fixture replaces the lab's, which
skips without a lab. Prometheus is not part of this scenario (the prometheus scenario and the
live pod-discovery test cover scraping).
"""

import os
import pathlib
import sys
import urllib.parse

import pytest
import yaml
from kube_bundle import kubectl_path

EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PROJECT = pathlib.Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
sys.path.insert(0, str(PROJECT / "tests" / "lab"))

import test_live_lab_kubernetes as checks  # noqa: E402
from test_live_lab_kubernetes import (  # noqa: E402,F401  (collected here, with this module's fixture)
    test_a_completion_through_the_gateway_is_answered_by_a_pod,
    test_a_pod_of_another_namespace_cannot_reach_a_model_server_where_the_cni_enforces_policy,
    test_deleting_a_pod_under_load_loses_no_request,
    test_draining_the_workers_stops_where_the_disruption_budget_says,
    test_every_model_server_is_ready_on_a_worker_of_its_planned_pool,
    test_the_tenant_quota_refuses_a_pod_over_its_gpus,
)


@pytest.fixture(scope="module")
def lab():
    from kubernetes import client, config

    kubeconfig = EPHEMERAL / "kubeconfig"
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    # The control plane is also the gateway host; the controller reaches it at the API server's address.
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    gateway = urllib.parse.urlsplit(server).hostname
    cluster = {
        "kubeconfig": str(kubeconfig),
        "kubectl": kubectl_path(),
        "openai_base_url": f"http://{gateway}:8080/v1",
        "tenants": {"team-a": {"api_key": (EPHEMERAL / "gateway-key-team-a").read_text().split()[0],
                               "models": ["smollm2-135m"]}},
        "core": client.CoreV1Api(api_client),
        "apps": client.AppsV1Api(api_client),
    }
    checks._wait_all_ready(cluster, timeout=600)
    assert checks._servers(cluster), "no model server pods: the rollout did not serve the plan"
    return cluster

