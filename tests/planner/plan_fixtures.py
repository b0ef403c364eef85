"""Small planner inputs shared by the validator, property and CLI tests.

The mutation scenario is shaped so that every valid plan uses exactly one fixed node (rack-01,
two A100s, zone z-a) and at least one cloud node (pool l4-b, instance type g6.12xlarge, zone
z-b): chat-8b must spread over both zones, and qwen-7b must put its two replicas on two nodes.
"""

from __future__ import annotations

import copy

import pytest

from llmops.planning import make_plan
from llmops.planning.spec import Fleet, ModelsFile, parse_fleet, parse_models

MUTATION_FLEET = {
    "pools": [
        {
            "name": "rack",
            "gpu_type": "A100-SXM-80GB",
            "gpus_per_node": 2,
            "node_hourly_cost": 3.0,
            "zone": "z-a",
            "nodes": ["rack-01"],
        },
        {"name": "l4-b", "instance_type": "g6.12xlarge", "zone": "z-b", "max_nodes": 2},
    ]
}

MUTATION_MODELS = {
    "models": [
        {
            "name": "chat-8b",
            "architecture": "llama-3.1-8b",
            "precisions": ["fp8", "bf16"],
            "max_context_tokens": 4096,
            "traffic": {"requests_per_second": 1, "input_tokens": 512, "output_tokens": 128},
            "slo": {"ttft_ms": 3000, "tpot_ms": 100},
            "spread": "zone",
            "priority": 2,
        },
        {
            "name": "qwen-7b",
            "architecture": "qwen2.5-7b",
            "precisions": ["bf16"],
            "max_context_tokens": 4096,
            "traffic": {"requests_per_second": 0.5, "input_tokens": 512, "output_tokens": 128},
            "slo": {"ttft_ms": 3000, "tpot_ms": 100},
            "min_replicas": 2,
            "spread": "node",
        },
    ]
}


def fleet_of(data: dict) -> Fleet:
    return parse_fleet(copy.deepcopy(data))


def models_of(data: dict) -> ModelsFile:
    return parse_models(copy.deepcopy(data))


@pytest.fixture(scope="session")
def mutation_plan() -> dict:
    """A plan the solver made for the mutation scenario, as the JSON document users see."""
    plan = make_plan(fleet_of(MUTATION_FLEET), models_of(MUTATION_MODELS), time_limit_s=10)
    return plan.to_json_dict()
