"""The gateway renderer: upstreams, weights, tenant access and key digests from a real serving spec."""

from __future__ import annotations

import copy
import hashlib

import pytest

from llmops.serving import serving_spec
from llmops.serving.gateway import (
    GatewayConfigError,
    gateway_routes,
    nginx_weights,
    scrape_targets,
    upstream_name,
)

MODELS = {
    "tenants": [{"name": "team-a"}, {"name": "team-b", "shared_models": ["chat"]}, {"name": "team-c"}],
    "models": [
        {
            "name": "chat",
            "tenant": "team-a",
            "artifact": {"name": "llama-8b", "version": "v3"},
            "architecture": "llama-3.1-8b",
            "precisions": ["fp8"],
            "max_context_tokens": 4096,
            "traffic": {"requests_per_second": 1, "input_tokens": 512, "output_tokens": 128},
            "slo": {"ttft_ms": 3000, "tpot_ms": 100},
        },
        {
            "name": "coder",
            "tenant": "team-b",
            "artifact": {"name": "qwen-7b", "version": "2024-11-01"},
            "architecture": "qwen2.5-7b",
            "precisions": ["bf16"],
            "max_context_tokens": 8192,
            "traffic": {"requests_per_second": 0.5, "input_tokens": 1024, "output_tokens": 256},
            "slo": {"ttft_ms": 3000, "tpot_ms": 100},
        },
    ],
}


def _node(name, zone):
    return {"name": name, "pool": f"pool-{zone}", "zone": zone, "gpu_type": "L4-24GB", "gpus": 4, "hourly_cost": 1.0}


def _replica(model, node, gpus, precision, weight):
    return {
        "model": model, "node": node, "gpu_indices": gpus, "gpu_type": "L4-24GB", "precision": precision,
        "tensor_parallel": len(gpus), "memory_per_gpu_gib": 20.0, "capacity_requests_per_second": 1.0,
        "traffic_weight": weight,
    }  # fmt: skip


PLAN = {
    "status": "optimal",
    "cost_per_hour": 2.0,
    "lower_bound_per_hour": 2.0,
    "solve_seconds": 0.1,
    "nodes": [_node("gpu-a", "zone-a"), _node("gpu-b", "zone-b")],
    "replicas": [
        _replica("chat", "gpu-a", [0], "fp8", 0.75),
        _replica("chat", "gpu-b", [2], "fp8", 0.25),
        _replica("coder", "gpu-a", [2, 3], "bf16", 1.0),
    ],
    "models": [],
    "unplaced": [],
}
HOSTS = {"gpu-a": "10.0.0.11", "gpu-b": "10.0.0.12"}
KEYS = [
    {"id": "team-a-1", "tenant": "team-a", "key": "a" * 32},
    {"id": "team-b-1", "tenant": "team-b", "key": "b" * 32},
]


@pytest.fixture()
def spec():
    return serving_spec(copy.deepcopy(PLAN), copy.deepcopy(MODELS), HOSTS, device="cuda")


def test_one_weighted_upstream_per_served_model(spec):
    routes = gateway_routes(spec, KEYS)
    by_model = {u["model"]: u for u in routes["upstreams"]}
    assert set(by_model) == {"chat", "coder"}
    chat = by_model["chat"]
    assert chat["name"] == upstream_name("chat") == routes["routes"]["chat"]
    assert [(s["address"], s["weight"]) for s in chat["servers"]] == [("10.0.0.11:8000", 75), ("10.0.0.12:8002", 25)]
    assert [s["address"] for s in by_model["coder"]["servers"]] == ["10.0.0.11:8002"]


def test_the_spec_object_and_its_dict_render_the_same(spec):
    assert gateway_routes(spec, KEYS) == gateway_routes(spec.to_dict(), KEYS)


def test_tenants_get_their_own_and_shared_models_only(spec):
    routes = gateway_routes(spec, KEYS)
    assert routes["tenants"] == {"team-a": ["chat"], "team-b": ["coder", "chat"], "team-c": []}
    by_id = {entry["id"]: entry for entry in routes["keys"].values()}
    assert by_id["team-a-1"]["models"] == ["chat"] and by_id["team-b-1"]["models"] == ["coder", "chat"]
    assert routes["models"]["chat"] == {"owned_by": "team-a"}


def test_keys_are_stored_as_sha256_digests_only(spec):
    routes = gateway_routes(spec, KEYS)
    assert set(routes["keys"]) == {hashlib.sha256(k["key"].encode()).hexdigest() for k in KEYS}
    assert "a" * 32 not in repr(routes) and "b" * 32 not in repr(routes)
    digest = hashlib.sha256(b"c" * 32).hexdigest()
    prehashed = gateway_routes(spec, [{"id": "c-1", "tenant": "team-c", "key_sha256": digest}])
    assert prehashed["keys"] == {digest: {"id": "c-1", "tenant": "team-c", "models": []}}


def test_a_model_without_replicas_is_known_but_unrouted(spec):
    data = spec.to_dict()
    data["models"]["coder"]["targets"] = []
    routes = gateway_routes(data, KEYS)
    assert routes["routes"]["coder"] is None and "coder" in routes["models"]
    assert [u["model"] for u in routes["upstreams"]] == ["chat"]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ([{"id": "x-1", "tenant": "nobody", "key": "k" * 32}], "api_keys[0].tenant: unknown tenant 'nobody'; accepted: team-a, team-b, team-c"),
        ([{"id": "x 1", "tenant": "team-a", "key": "k" * 32}], "api_keys[0].id:"),
        ([{"id": "x-1", "tenant": "team-a", "key": "short"}], "api_keys[0].key: must be a string of at least 20 characters"),
        ([{"id": "x-1", "tenant": "team-a"}], "api_keys[0]: set exactly one of key and key_sha256"),
        ([{"id": "x-1", "tenant": "team-a", "key_sha256": "ABC"}], "api_keys[0].key_sha256: must be 64 lower-case hex digits"),
        ([KEYS[0], dict(KEYS[0], id="other")], "api_keys[1]: the same key is already given to 'team-a-1'"),
        ([KEYS[0], dict(KEYS[1], id="team-a-1")], "api_keys[1].id: 'team-a-1' is already used by api_keys[0]"),
        ([{"id": "x-1", "tenant": "team-a", "key": "k" * 32, "secret": 1}], "api_keys[0]: unknown option(s) secret"),
    ],
)
def test_bad_keys_are_named_and_never_echoed(spec, keys, expected):
    with pytest.raises(GatewayConfigError) as error:
        gateway_routes(spec, keys)
    assert expected in str(error.value)
    for entry in keys:
        if len(entry.get("key", "")) >= 20:
            assert entry["key"] not in str(error.value)


def test_bad_replica_addresses_are_named(spec):
    data = spec.to_dict()
    data["models"]["chat"]["targets"][0]["address"] = "10.0.0.11; evil"
    data["models"]["chat"]["targets"][1]["port"] = 70000
    with pytest.raises(GatewayConfigError) as error:
        gateway_routes(data, KEYS)
    assert error.value.problems == [
        "spec.models.chat.targets[0].address: '10.0.0.11; evil' is not a host name or IP address",
        "spec.models.chat.targets[1].port: 70000 is not a TCP port (1-65535)",
    ]


def test_nginx_weights_are_integers_that_keep_every_replica():
    assert nginx_weights([0.75, 0.25]) == [75, 25]
    assert nginx_weights([0.999, 0.001]) == [100, 1]
    assert nginx_weights([0.0, 0.0]) == [1, 1]
    assert nginx_weights([2.0, 1.0, 1.0]) == [50, 25, 25]


def test_scrape_targets_carry_model_tenant_gpu_type_and_zone(spec):
    targets = scrape_targets(spec)
    assert len(targets) == len(spec.replicas) == 3
    chat = [t for t in targets if t["model"] == "chat"]
    assert chat[0]["targets"] == ["10.0.0.11:8000"]
    assert chat[0]["labels"] == {
        "tenant": "team-a", "gpu_type": "L4-24GB", "zone": "zone-a", "replica": "chat-gpu-a-0", "node": "gpu-a",
    }  # fmt: skip
    assert scrape_targets(spec.to_dict()) == targets
