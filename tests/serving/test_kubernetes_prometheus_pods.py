"""Prometheus outside the cluster scrapes the pods the renderer makes: the discovery's defaults
(selector, port name) match what render.py puts on the pods, multi-node workers stay out, and the
NetworkPolicy lets the monitoring hosts' addresses in."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

from llmops.serving.kubernetes import RenderOptions, render_objects
from llmops.serving.kubernetes.render import CONTAINER_PORT

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collections"))
from ansible_collections.llmops.datacenter.plugins.module_utils.k8s_serving import render_options
from ansible_collections.llmops.datacenter.plugins.module_utils.kubernetes_pod_targets import (
    pod_target_groups,
)

_CASES = Path(__file__).with_name("k8s_cases.py")
_module_spec = importlib.util.spec_from_file_location("k8s_cases_prometheus", _CASES)
cases = importlib.util.module_from_spec(_module_spec)
_module_spec.loader.exec_module(cases)

OPTIONS = RenderOptions(image=cases.IMAGE, plan_name="lab", autoscaler="none")


def running_pods(objects):
    """One running pod per pod template (a Deployment's, an LWS leader's and worker's), as the API lists them."""
    pods = []
    for index, obj in enumerate(o for o in objects if o["kind"] in ("Deployment", "LeaderWorkerSet")):
        if obj["kind"] == "Deployment":
            templates = {"": obj["spec"]["template"]}
        else:
            spec = obj["spec"]["leaderWorkerTemplate"]
            templates = {"-leader": spec["leaderTemplate"], "-worker": spec["workerTemplate"]}
        for suffix, template in templates.items():
            pods.append(
                {
                    "metadata": {
                        "name": f"{obj['metadata']['name']}{suffix}-0",
                        "namespace": obj["metadata"]["namespace"],
                        "labels": template["metadata"]["labels"],
                    },
                    "spec": {**template["spec"], "nodeName": f"node-{index}"},
                    "status": {"phase": "Running", "podIP": f"10.244.{index}.{len(pods) + 2}"},
                }
            )
    return pods


def test_every_rendered_model_server_pod_is_a_target_labelled_for_the_serving_rules():
    objects = render_objects(cases.spec("cpu"), "v1.20.2", OPTIONS)
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    pods = running_pods(objects)

    groups = pod_target_groups(pods)

    assert len(groups) == len(deployments) >= 2
    for group in groups:
        pod = next(p for p in pods if p["metadata"]["name"] == group["labels"]["pod"])
        labels = pod["metadata"]["labels"]
        assert group["targets"] == [f"{pod['status']['podIP']}:{CONTAINER_PORT}"]
        assert group["labels"] == {
            "model": labels["llmops.io/model"],
            "tenant": labels["llmops.io/tenant"],
            "pool": labels["llmops.io/pool"],
            "workload": labels["llmops.io/workload"],
            "plan": "lab",
            "namespace": pod["metadata"]["namespace"],
            "pod": pod["metadata"]["name"],
            "node": pod["spec"]["nodeName"],
        }


def test_a_multi_node_replica_is_scraped_at_its_leader_only():
    objects = render_objects(cases.multi_node_spec(), "v1.33.0", OPTIONS)
    pods = running_pods(objects)
    assert any(p["metadata"]["name"].endswith("-worker-0") for p in pods)

    scraped = {group["labels"]["pod"] for group in pod_target_groups(pods)}

    assert scraped and not any(name.endswith("-worker-0") for name in scraped)
    assert any(name.endswith("-leader-0") for name in scraped)


def _prometheus_policy(objects):
    return [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "llmops-allow-prometheus"
    ]


def test_the_monitoring_hosts_may_scrape_the_model_servers_and_nothing_else_changes():
    spec = cases.spec("cpu")
    plain = render_objects(spec, "v1.20.2", OPTIONS)
    opened = render_objects(spec, "v1.20.2", dataclasses.replace(OPTIONS, monitoring_cidrs=("10.89.0.2/32",)))

    for policy in _prometheus_policy(opened):
        (rule,) = policy["spec"]["ingress"]
        assert rule["from"][1:] == [{"ipBlock": {"cidr": "10.89.0.2/32"}}]
        assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]
        assert policy["spec"]["podSelector"] == {"matchLabels": {"llmops.io/serves": "true"}}
    assert len(_prometheus_policy(opened)) >= 2
    for policy in _prometheus_policy(plain):
        assert [peer for peer in policy["spec"]["ingress"][0]["from"] if "ipBlock" in peer] == []
    assert [o for o in plain if o not in _prometheus_policy(plain)] == [
        o for o in opened if o not in _prometheus_policy(opened)
    ]


def test_k8s_serving_passes_monitoring_cidrs_to_the_renderer():
    options = render_options({"image": cases.IMAGE, "monitoring_cidrs": ["10.89.0.2/32", "10.89.0.3/32"]})
    assert options.monitoring_cidrs == ("10.89.0.2/32", "10.89.0.3/32")
    assert render_options({"image": cases.IMAGE}).monitoring_cidrs == ()
