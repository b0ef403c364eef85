"""Numbers in messages read as a person would write them: 58.7908, not 58.790800000000004."""

from __future__ import annotations

import copy
import re

import pytest

from llmops.planning import make_plan
from llmops.planning.problems import quantity
from llmops.planning.validator import validate

from .plan_fixtures import fleet_of, models_of

FLOAT_NOISE = re.compile(r"\d\.\d{7,}")
FLEET = {"pools": [{"name": "l4", "gpu_type": "L4-24GB", "gpus_per_node": 2, "node_hourly_cost": 29.3954,
                    "zone": "z-a", "nodes": ["a1", "a2"]}]}
MODELS = {"models": [{"name": "chat", "architecture": "llama-3.1-8b", "precisions": ["fp8"],
                      "max_context_tokens": 4096, "min_replicas": 4, "spread": "none",
                      "traffic": {"requests_per_second": 0.3, "input_tokens": 512, "output_tokens": 128},
                      "slo": {"ttft_ms": 2000, "tpot_ms": 100}}]}


@pytest.mark.parametrize(
    ("value", "text"),
    [(29.3954 + 29.3954, "58.7908"), (0.1 + 0.2, "0.3"), (2.0, "2"), (7, "7"), (1234.56789, "1234.57"),
     (2_500_000.4, "2500000"), (None, "None")],
)
def test_quantity(value, text):
    assert quantity(value) == text


def test_validator_messages_carry_no_float_noise():
    fleet, models = fleet_of(FLEET), models_of(MODELS)
    plan = make_plan(fleet, models, time_limit_s=10).to_json_dict()
    assert validate(plan, fleet, models) == []
    assert len(plan["nodes"]) == 2
    tampered = copy.deepcopy(plan)
    tampered["cost_per_hour"] = 0.5
    tampered["lower_bound_per_hour"] = 0.1 + 0.2 + 58  # 58.300000000000004
    tampered["nodes"][0]["hourly_cost"] = 0.1 + 0.2
    tampered["replicas"][0]["capacity_requests_per_second"] = 0.1 + 0.2
    tampered["replicas"][0]["memory_per_gpu_gib"] = 0.1 + 0.7
    tampered["models"][0]["demand_requests_per_second"] = 0.1 + 0.2 + 1
    violations = validate(tampered, fleet, models)
    assert "cost_per_hour 0.5 is not the sum of the nodes' hourly_cost (29.6954)" in violations
    assert "lower_bound_per_hour 58.3 exceeds cost_per_hour 0.5" in violations
    assert "nodes[0] (a1): hourly_cost 0.3 but pool l4 costs 29.3954 per node" in violations
    assert any(v.endswith("memory_per_gpu_gib 0.8 but this configuration needs 13.21 GiB per GPU") for v in violations)
    assert "models entry chat: demand_requests_per_second 1.3 but traffic is 0.3" in violations
    noisy = [v for v in violations if FLOAT_NOISE.search(v)]
    assert noisy == []
