"""The gateway's upstreams on Kubernetes: one target per pool's Service, weighted as the plan split traffic."""

from __future__ import annotations

import copy
import importlib.util
import ipaddress
from collections import defaultdict
from pathlib import Path

import pytest

from llmops.serving.gateway import gateway_routes, nginx_weights
from llmops.serving.kubernetes import RenderOptions, ServiceTargetError, gateway_spec, render_objects

_CASES = Path(__file__).with_name("k8s_cases.py")
_module_spec = importlib.util.spec_from_file_location("k8s_cases", _CASES)
cases = importlib.util.module_from_spec(_module_spec)
_module_spec.loader.exec_module(cases)

KEYS = [{"id": "a-1", "tenant": "team-a", "key": "k" * 32}, {"id": "b-1", "tenant": "team-b", "key": "j" * 32}]


def live_services(spec):
    """The rendered Services as the API server answers them: each given a cluster IP."""
    objects = render_objects(spec, "v1.20.2", RenderOptions(image=cases.IMAGE, plan_name="lab"))
    services = [copy.deepcopy(o) for o in objects if o["kind"] == "Service"]
    for index, service in enumerate(services):
        service["spec"]["clusterIP"] = str(ipaddress.ip_address("10.96.0.10") + index)
    return services


def test_each_served_model_routes_to_its_pools_services_with_the_plans_weights():
    served = cases.spec()
    spec, services = served.to_dict(), live_services(served)
    result = gateway_spec(spec, services)
    assert result["replicas"] == spec["replicas"] and result["tenants"] == spec["tenants"]
    by_ip = {s["spec"]["clusterIP"]: s for s in services}
    for model, route in spec["models"].items():
        if not route.get("targets"):
            assert result["models"][model] == route
            continue
        plan_weights = defaultdict(float)
        for replica in spec["replicas"]:
            if replica["model"] == model:
                plan_weights[replica["pool"]] += replica["traffic_weight"]
        targets = result["models"][model]["targets"]
        assert len(targets) == len(plan_weights)
        for target in targets:
            service = by_ip[target["address"]]
            labels = service["metadata"]["labels"]
            assert labels["llmops.io/model"] == model
            assert target["port"] == 8000
            assert target["weight"] == pytest.approx(plan_weights[labels["llmops.io/pool"]])
            assert target["replica"] == f"{service['metadata']['namespace']}/{service['metadata']['name']}"
        # The weights still sum to the model's whole traffic.
        assert sum(t["weight"] for t in targets) == pytest.approx(sum(t["weight"] for t in route["targets"]))


def test_the_gateway_renders_one_upstream_per_model_over_the_services():
    served = cases.spec()
    spec, services = served.to_dict(), live_services(served)
    routes = gateway_routes(gateway_spec(spec, services), KEYS)
    chat = next(u for u in routes["upstreams"] if u["model"] == "chat")
    assert all(server["address"].startswith("10.96.0.") for server in chat["servers"])
    assert [s["weight"] for s in chat["servers"]] == nginx_weights(
        [t["weight"] for t in gateway_spec(spec, services)["models"]["chat"]["targets"]])


def test_the_services_addresses_do_not_depend_on_replica_counts():
    """A demand-only replan changes replicas, not the gateway's upstreams (same Services, same weights split)."""
    low, high = cases.spec(), cases.spec(chat=12)
    services = live_services(low)
    low, high = low.to_dict(), high.to_dict()
    low_targets = {t["address"] for t in gateway_spec(low, services)["models"]["chat"]["targets"]}
    high_targets = {t["address"] for t in gateway_spec(high, services)["models"]["chat"]["targets"]}
    assert low_targets == high_targets


def test_a_missing_or_unrouteable_service_fails_naming_the_model_and_pool():
    served = cases.spec()
    spec, services = served.to_dict(), live_services(served)
    chat_pool_services = [s for s in services if s["metadata"]["labels"].get("llmops.io/model") == "chat"
                          and "llmops.io/pool" in s["metadata"]["labels"]]
    missing = chat_pool_services[0]
    pool = missing["metadata"]["labels"]["llmops.io/pool"]
    with pytest.raises(ServiceTargetError, match=rf"models.chat: no Service with labels llmops.io/model=chat, llmops.io/pool={pool}"):
        gateway_spec(spec, [s for s in services if s is not missing])
    headless = copy.deepcopy(services)
    for service in headless:
        if service["metadata"]["name"] == chat_pool_services[1]["metadata"]["name"]:
            service["spec"]["clusterIP"] = "None"
    with pytest.raises(ServiceTargetError, match=r"Service team-a/.*: has no cluster IP"):
        gateway_spec(spec, headless)
