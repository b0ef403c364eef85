"""Shared inputs of the Kubernetes renderer tests: a two-zone fleet of 1-GPU L4 nodes, two tenants, real plans.

One GPU per node fixes the tensor-parallel degree, so a demand change moves only replica counts
whatever the solver's tie-breaking (with 4-GPU nodes and a loaded machine it sometimes mixed TP1
and TP2 replicas).

Loaded by path (tests/ is not a package), as test_spec_properties.py loads the planner generators.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
from functools import cache
from pathlib import Path

from llmops.planning import make_plan
from llmops.planning.spec import parse_fleet, parse_models
from llmops.serving import serving_spec

IMAGE = "registry.lab.invalid/llmops/vllm:0.32.0"
FLEET = {
    "pools": [
        {
            "name": "l4-a",
            "zone": "zone-a",
            "gpu_type": "L4-24GB",
            "gpus_per_node": 1,
            "node_hourly_cost": 3.0,
            "max_nodes": 8,
        },
        {
            "name": "l4-b",
            "zone": "zone-b",
            "gpu_type": "L4-24GB",
            "gpus_per_node": 1,
            "node_hourly_cost": 3.0,
            "max_nodes": 8,
        },
    ]
}
MODELS = {
    "tenants": [
        {"name": "team-a", "gpu_quota": 16},
        {"name": "team-b", "gpu_quota": 8, "shared_models": ["chat"]},
    ],
    "models": [
        {
            "name": "chat",
            "tenant": "team-a",
            "artifact": {"name": "llama-8b", "version": "v3"},
            "architecture": "llama-3.1-8b",
            "precisions": ["fp8"],
            "max_context_tokens": 4096,
            "traffic": {"requests_per_second": 2, "input_tokens": 512, "output_tokens": 128},
            "slo": {"ttft_ms": 2000, "tpot_ms": 100},
            "spread": "zone",
            "priority": 5,
        },
        {
            "name": "coder",
            "tenant": "team-b",
            "artifact": {"name": "qwen-7b", "version": "v1"},
            "architecture": "qwen2.5-7b",
            "precisions": ["bf16"],
            "max_context_tokens": 8192,
            "traffic": {"requests_per_second": 0.5, "input_tokens": 1024, "output_tokens": 256},
            "slo": {"ttft_ms": 3000, "tpot_ms": 100},
            "spread": "zone",
        },
    ],
}


def models_with(**demand: float) -> dict:
    """MODELS with the named models' requests_per_second changed."""
    data = copy.deepcopy(MODELS)
    for entry in data["models"]:
        if entry["name"] in demand:
            entry["traffic"]["requests_per_second"] = demand[entry["name"]]
    return data


@cache
def _plan_json(models_key: tuple) -> dict:
    models = dict(models_key)
    return make_plan(parse_fleet(FLEET), parse_models(models_with(**models)), time_limit_s=10).to_json_dict()


def plan(**demand: float) -> dict:
    return copy.deepcopy(_plan_json(tuple(sorted(demand.items()))))


def spec(device: str = "cuda", plan_data: dict | None = None, models: dict | None = None, **demand: float):
    return serving_spec(plan_data or plan(**demand), models or models_with(**demand), None, device=device)


def multi_node_spec():
    """The chat model as a TP4 replica on nodes of 2 GPUs (the plan never does this, a fleet of small
    nodes would): rendered as a LeaderWorkerSet."""
    base = spec()
    replicas = []
    for replica in base.replicas:
        if replica.model == "chat":
            args = list(replica.engine_args)
            args[args.index("--tensor-parallel-size") + 1] = "4"
            replica = dataclasses.replace(
                replica, tensor_parallel=4, gpu_indices=[0, 1, 2, 3], node_gpus=2, engine_args=args
            )
        replicas.append(replica)
    return dataclasses.replace(base, replicas=replicas)


def planner_generators():
    """The planner property tests' generators of fleets and model sets."""
    path = Path(__file__).resolve().parents[1] / "planner" / "test_properties.py"
    module_spec = importlib.util.spec_from_file_location("planner_properties_k8s", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.fleets, module.model_sets
