"""Plan -> node-group sizes (pure function), with the stack's per-pool overrides."""

from __future__ import annotations

import pytest
from llmops_infra.config import ConfigError, PoolOverride, parse_pool_overrides
from llmops_infra.sizing import ROOT_VOLUME_BASE_GIB, size_pools

from llmops.planning.result import Plan, PlanModel, PlanNode, PlanReplica
from llmops.planning.spec import parse_fleet

FLEET = parse_fleet(
    {
        "pools": [
            {"name": "h100-a", "instance_type": "p5.48xlarge", "gpu_type": "H100-SXM-80GB", "gpus_per_node": 8,
             "node_hourly_cost": 55.04, "zone": "us-east-1a", "max_nodes": 4},
            {"name": "l4-b", "instance_type": "g6.12xlarge", "gpu_type": "L4-24GB", "gpus_per_node": 4,
             "node_hourly_cost": 4.6, "zone": "us-east-1b", "max_nodes": 3},
            {"name": "idle", "instance_type": "g6.xlarge", "gpu_type": "L4-24GB", "gpus_per_node": 1,
             "node_hourly_cost": 0.8, "zone": "us-east-1b", "max_nodes": 2},
            {"name": "dgx", "gpu_type": "A100-SXM-80GB", "gpus_per_node": 8, "node_hourly_cost": 12.0,
             "zone": "dc1", "nodes": ["dgx-01"]},
        ]
    }
)


def node(name: str, pool: str, gpu_type: str = "H100-SXM-80GB") -> PlanNode:
    return PlanNode(name=name, pool=pool, zone="z", gpu_type=gpu_type, gpus=8, hourly_cost=1.0)


def replica(model: str, node_name: str, precision: str = "bf16") -> PlanReplica:
    return PlanReplica(
        model=model, node=node_name, gpu_indices=[0], gpu_type="H100-SXM-80GB", precision=precision,
        tensor_parallel=1, memory_per_gpu_gib=40.0, capacity_requests_per_second=1.0,
    )


def model(name: str, params_billion: float) -> PlanModel:
    return PlanModel(
        name=name, params_billion=params_billion, kv_bytes_per_token_bf16=1, demand_requests_per_second=1,
        capacity_requests_per_second=1, ttft_ms=1, tpot_ms=1, replicas=1, served=True,
    )


PLAN = Plan(
    status="optimal", cost_per_hour=1, lower_bound_per_hour=1, solve_seconds=0.1,
    nodes=[node("h100-a-1", "h100-a"), node("h100-a-0", "h100-a"), node("l4-b-0", "l4-b", "L4-24GB"),
           node("dgx-01", "dgx", "A100-SXM-80GB")],
    replicas=[replica("big", "h100-a-0", "fp8"), replica("big", "h100-a-1", "fp8"), replica("big", "h100-a-1", "bf16"),
              replica("small", "l4-b-0"), replica("small", "dgx-01")],
    models=[model("big", 70.0), model("small", 8.0)],
    unplaced=[],
)


def sizes(overrides=None, minimum_gib=100):
    return {size.name: size for size in size_pools(FLEET, PLAN, overrides or {}, minimum_gib)}


def test_desired_equals_the_plans_nodes_and_min_keeps_them():
    result = sizes()
    assert (result["h100-a"].desired, result["h100-a"].min, result["h100-a"].max) == (2, 2, 4)
    assert (result["l4-b"].desired, result["l4-b"].min, result["l4-b"].max) == (1, 1, 3)
    assert result["h100-a"].node_names == ("h100-a-0", "h100-a-1")


def test_pool_without_replicas_gets_zero_desired_and_zero_min():
    idle = sizes()["idle"]
    assert (idle.desired, idle.min, idle.max) == (0, 0, 2)
    assert idle.node_names == ()


def test_existing_machines_get_no_node_group():
    assert "dgx" not in sizes()


def test_pool_with_zero_max_nodes_gets_no_node_group():
    fleet = parse_fleet({"pools": [{"name": "none", "instance_type": "g6.xlarge", "gpu_type": "L4-24GB",
                                    "gpus_per_node": 1, "node_hourly_cost": 1, "zone": "z", "max_nodes": 0}]})
    assert size_pools(fleet, PLAN, {}) == []


def test_root_volume_holds_every_model_precision_placed_on_the_pool():
    result = sizes(minimum_gib=20)
    # 70B at fp8 (70e9 B) and at bf16 (140e9 B) both may land on any h100-a node.
    expected_cache_gib = (70e9 + 140e9) / 2**30
    assert result["h100-a"].root_volume_gib == pytest.approx(ROOT_VOLUME_BASE_GIB + 1.2 * expected_cache_gib, abs=1)
    assert result["l4-b"].root_volume_gib < result["h100-a"].root_volume_gib
    assert result["idle"].root_volume_gib == max(20, ROOT_VOLUME_BASE_GIB)
    assert sizes(minimum_gib=1000)["h100-a"].root_volume_gib == 1000


def test_override_wins_over_the_plan_and_names_extra_nodes_like_the_planner():
    result = sizes({"h100-a": PoolOverride(desired=3, max=4), "idle": PoolOverride(min=1, capacity_type="SPOT")})
    assert (result["h100-a"].desired, result["h100-a"].min) == (3, 3)
    assert result["h100-a"].node_names == ("h100-a-0", "h100-a-1", "h100-a-2")
    assert (result["idle"].desired, result["idle"].min, result["idle"].capacity_type) == (1, 1, "SPOT")
    assert result["l4-b"].capacity_type == "ON_DEMAND"


def test_override_for_unknown_pool_names_the_accepted_ones():
    with pytest.raises(ConfigError, match=r"poolOverrides\.h200: .*accepted: h100-a, idle, l4-b"):
        sizes({"h200": PoolOverride(desired=1)})


def test_override_below_the_plan_is_refused_when_inconsistent():
    with pytest.raises(ConfigError, match=r"h100-a: need min <= desired <= max, got min=2 desired=2 max=1"):
        sizes({"h100-a": PoolOverride(max=1)})


def test_override_parsing_names_the_bad_field():
    problems: list[str] = []
    parse_pool_overrides({"l4-b": {"desired": -1, "capacityType": "RESERVED", "maxx": 3}}, problems)
    assert "llmops:poolOverrides.l4-b.desired: must be an integer >= 0, got -1" in problems
    assert "llmops:poolOverrides.l4-b.capacityType: must be one of ON_DEMAND, SPOT, got 'RESERVED'" in problems
    assert any("unknown field(s) maxx" in problem for problem in problems)


def test_gpu_type_of_an_unused_pool_comes_from_its_instance_type():
    fleet = parse_fleet({"pools": [{"name": "h200", "instance_type": "p5en.48xlarge", "zone": "z", "max_nodes": 1}]})
    (size,) = size_pools(fleet, PLAN, {})
    assert (size.gpu_type, size.desired, size.max) == ("H200-SXM-141GB", 0, 1)
