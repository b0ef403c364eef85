"""module_utils.serving_spec: module options onto llmops.serving; units per node; problems named."""

from __future__ import annotations

import json

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import serving_spec

MODELS = {
    "tenants": [{"name": "demo"}],
    "models": [
        {
            "name": "chat",
            "tenant": "demo",
            "artifact": {"name": "llama-8b", "version": "v1"},
            "architecture": "llama-3.1-8b",
            "precisions": ["bf16"],
            "max_context_tokens": 4096,
            "traffic": {"requests_per_second": 1, "input_tokens": 512, "output_tokens": 128},
            "slo": {"ttft_ms": 3000, "tpot_ms": 100},
        }
    ],
}
PLAN = {
    "status": "optimal", "cost_per_hour": 1.0, "lower_bound_per_hour": 1.0, "solve_seconds": 0.1,
    "nodes": [{"name": "gpu-1", "pool": "p", "zone": "z", "gpu_type": "L4-24GB", "gpus": 2, "hourly_cost": 1.0}],
    "replicas": [{"model": "chat", "node": "gpu-1", "gpu_indices": [1], "gpu_type": "L4-24GB", "precision": "bf16",
                  "tensor_parallel": 1, "memory_per_gpu_gib": 20.0, "capacity_requests_per_second": 2.0}],
    "models": [], "unplaced": [],
}  # fmt: skip


def params(**overrides) -> dict:
    base = {
        "plan": json.loads(json.dumps(PLAN)), "plan_file": None, "models": json.loads(json.dumps(MODELS)),
        "models_file": None, "hf_config_dir": None, "inventory_hosts": {"gpu-1": "10.0.0.5"}, "device": "cpu",
        "base_port": 8000, "port_overrides": None, "reserved_ports": None,
        "model_cache_root": "/var/lib/llmops/models", "state_root": "/var/lib/llmops/serving", "cpu_kvcache_gib": 2,
        "unit": {"python": "/opt/llmops/vllm/bin/python", "user": "llmops-vllm", "group": None, "memory_max": None,
                 "restart_sec": 5, "limit_nofile": 1024},
    }  # fmt: skip
    return {**base, **overrides}


def test_units_are_rendered_per_node_from_the_spec():
    result = serving_spec.build(params())
    (unit,) = result["units"]["gpu-1"]
    assert unit["id"] == "chat-gpu-1-1" and unit["unit_name"] == "llmops-vllm-chat-gpu-1-1.service"
    assert unit["port"] == 8001 and unit["model"] == "chat"
    assert unit["artifact"] == {"name": "llama-8b", "version": "v1", "path": "/var/lib/llmops/models/llama-8b/v1"}
    assert "LimitNOFILE=1024" in unit["content"] and 'Environment="VLLM_CPU_KVCACHE_SPACE=2"' in unit["content"]
    assert result["spec"]["replicas"][0]["base_url"] == "http://10.0.0.5:8001"


def test_without_a_python_no_units_are_rendered():
    assert serving_spec.build(params(unit=None))["units"] == {}


def test_a_plan_file_is_read_and_a_bad_one_named(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(PLAN))
    assert serving_spec.build(params(plan=None, plan_file=str(path)))["spec"]["nodes"] == {"gpu-1": ["chat-gpu-1-1"]}
    path.write_text("{")
    with pytest.raises(serving_spec.ServingSpecError, match=r"plan_file: .* is not valid JSON"):
        serving_spec.build(params(plan=None, plan_file=str(path)))


def test_reserved_ports_default_to_the_collections_services():
    with pytest.raises(serving_spec.ServingSpecError) as caught:
        serving_spec.build(params(base_port=9089))
    assert caught.value.problems == [
        "plan.replicas[0]: port clash on node 'gpu-1': replica 'chat-gpu-1-1' would take port 9090, "
        "reserved for another service (3000, 9090, 9093, 9100)"
    ]
    assert serving_spec.build(params(base_port=9089, reserved_ports=[]))["units"]["gpu-1"][0]["port"] == 9090
