"""The validator catches every kind of broken plan: each test breaks one thing in a valid plan.

The valid plan comes from the real solver on a small scenario (plan_fixtures); each mutation
is what a solver bug, a hand edit or stale inputs would do, and the test asserts the validator
names it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from llmops.planning.fleet import resolve_pools
from llmops.planning.options import replica_options
from llmops.planning.spec import InputError
from llmops.planning.validator import validate

from .plan_fixtures import MUTATION_FLEET, MUTATION_MODELS, fleet_of, models_of, mutation_plan  # noqa: F401


def first_node(plan: dict, pool: str) -> dict:
    return next(node for node in plan["nodes"] if node["pool"] == pool)


def replicas_on(plan: dict, node_name: str) -> list[dict]:
    return [r for r in plan["replicas"] if r["node"] == node_name]


def model_entry(plan: dict, name: str) -> dict:
    return next(m for m in plan["models"] if m["name"] == name)


def rename_node(plan: dict, old: str, new: str) -> None:
    for node in plan["nodes"]:
        if node["name"] == old:
            node["name"] = new
    for replica in plan["replicas"]:
        if replica["node"] == old:
            replica["node"] = new


def a_replica(plan: dict, model: str, pool: str | None = None) -> dict:
    nodes = {n["name"]: n["pool"] for n in plan["nodes"]}
    return next(r for r in plan["replicas"] if r["model"] == model and (pool is None or nodes[r["node"]] == pool))


def set_cost(plan: dict) -> None:
    plan["cost_per_hour"] = sum(n["hourly_cost"] for n in plan["nodes"])


# -- mutations of the plan ----------------------------------------------------------------------


def drop_status(plan, fleet, models):
    del plan["status"]


def node_in_unknown_pool(plan, fleet, models):
    first_node(plan, "l4-b")["pool"] = "l4-c"


def node_in_wrong_zone(plan, fleet, models):
    first_node(plan, "l4-b")["zone"] = "z-a"


def node_with_wrong_gpu_type(plan, fleet, models):
    first_node(plan, "rack")["gpu_type"] = "H100-SXM-80GB"


def node_with_wrong_gpu_count(plan, fleet, models):
    first_node(plan, "l4-b")["gpus"] = 8


def node_with_wrong_price(plan, fleet, models):
    first_node(plan, "l4-b")["hourly_cost"] = 1.0
    set_cost(plan)


def cloud_node_beyond_max_nodes(plan, fleet, models):
    rename_node(plan, first_node(plan, "l4-b")["name"], "l4-b-2")


def cloud_node_misnamed(plan, fleet, models):
    rename_node(plan, first_node(plan, "l4-b")["name"], "gpu-box-0")


def fixed_node_not_in_pool(plan, fleet, models):
    rename_node(plan, "rack-01", "rack-09")


def node_listed_twice(plan, fleet, models):
    plan["nodes"].append(copy.deepcopy(first_node(plan, "rack")))
    set_cost(plan)


def unused_node(plan, fleet, models):
    used = {n["name"] for n in plan["nodes"]}
    spare = next(f"l4-b-{i}" for i in range(2) if f"l4-b-{i}" not in used)
    plan["nodes"].append(dict(first_node(plan, "l4-b"), name=spare))
    set_cost(plan)


def cost_not_sum(plan, fleet, models):
    plan["cost_per_hour"] += 0.5


def bound_above_cost(plan, fleet, models):
    plan["lower_bound_per_hour"] = plan["cost_per_hour"] * 1.1


def replica_on_missing_node(plan, fleet, models):
    a_replica(plan, "chat-8b")["node"] = "l4-b-7"


def replica_gpu_type_differs_from_node(plan, fleet, models):
    a_replica(plan, "chat-8b", "rack")["gpu_type"] = "L4-24GB"


def replica_precision_not_allowed(plan, fleet, models):
    a_replica(plan, "qwen-7b")["precision"] = "int4"


def replica_precision_unsupported_by_gpu(plan, fleet, models):
    # A100s have no FP8 tensor cores; chat-8b allows fp8.
    a_replica(plan, "chat-8b", "rack")["precision"] = "fp8"


def tensor_parallel_not_power_of_two(plan, fleet, models):
    replica = a_replica(plan, "chat-8b", "l4-b")
    replica["tensor_parallel"] = 3
    replica["gpu_indices"] = [0, 1, 2]


def tensor_parallel_differs_from_gpu_count(plan, fleet, models):
    replica = a_replica(plan, "chat-8b", "rack")
    replica["tensor_parallel"] = replica["tensor_parallel"] * 2


def gpu_index_out_of_range(plan, fleet, models):
    replica = a_replica(plan, "chat-8b", "rack")
    replica["gpu_indices"] = [5 + i for i in range(len(replica["gpu_indices"]))]


def gpu_used_twice(plan, fleet, models):
    node = "rack-01"
    first, second = replicas_on(plan, node)[:2]
    second["gpu_indices"] = list(first["gpu_indices"][: len(second["gpu_indices"])])


def memory_above_utilisation(plan, fleet, models):
    a_replica(plan, "chat-8b", "rack")["memory_per_gpu_gib"] = 79.0


def memory_differs_from_option(plan, fleet, models):
    a_replica(plan, "chat-8b", "rack")["memory_per_gpu_gib"] -= 5.0


def capacity_differs_from_option(plan, fleet, models):
    replica = a_replica(plan, "chat-8b", "rack")
    replica["capacity_requests_per_second"] *= 2
    model_entry(plan, "chat-8b")["capacity_requests_per_second"] += replica["capacity_requests_per_second"] / 2


def replica_of_unknown_model(plan, fleet, models):
    a_replica(plan, "qwen-7b")["model"] = "ghost-7b"


def model_replica_count_wrong(plan, fleet, models):
    model_entry(plan, "chat-8b")["replicas"] += 1


def model_capacity_wrong(plan, fleet, models):
    model_entry(plan, "chat-8b")["capacity_requests_per_second"] += 3


def model_demand_wrong(plan, fleet, models):
    model_entry(plan, "chat-8b")["demand_requests_per_second"] = 0.25


def model_params_wrong(plan, fleet, models):
    model_entry(plan, "chat-8b")["params_billion"] = 70.6


def model_kv_bytes_wrong(plan, fleet, models):
    model_entry(plan, "chat-8b")["kv_bytes_per_token_bf16"] = 1


def model_ttft_above_slo(plan, fleet, models):
    model_entry(plan, "chat-8b")["ttft_ms"] = 3500.0


def model_missing(plan, fleet, models):
    plan["models"] = [m for m in plan["models"] if m["name"] != "qwen-7b"]


def model_twice(plan, fleet, models):
    plan["models"].append(copy.deepcopy(model_entry(plan, "qwen-7b")))


def unplaced_but_has_replicas(plan, fleet, models):
    plan["unplaced"].append({"model": "qwen-7b", "reason": "no capacity"})
    plan["status"] = "partial"


def unplaced_without_reason(plan, fleet, models):
    plan["models"] = [m for m in plan["models"] if m["name"] != "qwen-7b"]
    plan["replicas"] = [r for r in plan["replicas"] if r["model"] != "qwen-7b"]
    plan["nodes"] = [n for n in plan["nodes"] if replicas_on(plan, n["name"])]
    set_cost(plan)
    plan["lower_bound_per_hour"] = 0.0
    plan["unplaced"].append({"model": "qwen-7b", "reason": "  "})
    plan["status"] = "partial"


def partial_without_unplaced(plan, fleet, models):
    plan["status"] = "partial"


def unplaced_but_status_optimal(plan, fleet, models):
    unplaced_without_reason(plan, fleet, models)
    plan["unplaced"][-1]["reason"] = "no pool has capacity left"
    plan["status"] = "optimal"


# -- stale plans: the inputs changed under an unchanged plan ----------------------------------


def demand_grew(plan, fleet, models):
    models["models"][0]["traffic"]["requests_per_second"] = 10_000


def min_replicas_grew(plan, fleet, models):
    models["models"][1]["min_replicas"] = 5


def slo_tightened(plan, fleet, models):
    models["models"][0]["slo"]["tpot_ms"] = 0.01


def precision_withdrawn(plan, fleet, models):
    chosen = {r["precision"] for r in plan["replicas"] if r["model"] == "chat-8b"}
    models["models"][0]["precisions"] = [p for p in ("fp8", "bf16", "int4") if p not in chosen][:1]


def pool_shrank(plan, fleet, models):
    fleet["pools"][1]["max_nodes"] = 0


MUTATIONS: list[tuple[Callable, str]] = [
    (drop_status, "plan is not a valid plan document: status"),
    (node_in_unknown_pool, "pool 'l4-c' is not in the fleet"),
    (node_in_wrong_zone, "zone 'z-a' but pool l4-b is in 'z-b'"),
    (node_with_wrong_gpu_type, "gpu_type H100-SXM-80GB but pool rack has A100-SXM-80GB"),
    (node_with_wrong_gpu_count, "gpus 8 but pool l4-b has 4 per node"),
    (node_with_wrong_price, "hourly_cost 1 but pool l4-b costs"),
    (cloud_node_beyond_max_nodes, "cloud nodes of pool l4-b are named l4-b-<i> with 0 <= i < 2"),
    (cloud_node_misnamed, "cloud nodes of pool l4-b are named l4-b-<i>"),
    (fixed_node_not_in_pool, "not one of pool rack's nodes (rack-01)"),
    (node_listed_twice, "node name appears more than once"),
    (unused_node, "listed in nodes but runs no replica"),
    (cost_not_sum, "is not the sum of the nodes' hourly_cost"),
    (bound_above_cost, "exceeds cost_per_hour"),
    (replica_on_missing_node, "node 'l4-b-7' is not in the plan's nodes"),
    (replica_gpu_type_differs_from_node, "gpu_type L4-24GB but node rack-01 has A100-SXM-80GB"),
    (replica_precision_not_allowed, "precision int4 is not allowed for qwen-7b"),
    (replica_precision_unsupported_by_gpu, "A100-SXM-80GB does not support fp8"),
    (tensor_parallel_not_power_of_two, "tensor_parallel 3 is not a power of two"),
    (tensor_parallel_differs_from_gpu_count, "gpu_indices"),
    (gpu_index_out_of_range, "outside 0..1"),
    (gpu_used_twice, "of rack-01 is already used by replicas["),
    (memory_above_utilisation, "memory_per_gpu_gib 79.00 exceeds 0.90 x"),
    (memory_differs_from_option, "but this configuration needs"),
    (capacity_differs_from_option, "but this configuration sustains"),
    (replica_of_unknown_model, "model 'ghost-7b' is not in the models file"),
    (model_replica_count_wrong, "models entry chat-8b: replicas"),
    (model_capacity_wrong, "models entry chat-8b: capacity_requests_per_second"),
    (model_demand_wrong, "demand_requests_per_second 0.25 but traffic is 1"),
    (model_params_wrong, "params_billion 70.6 but the architecture has 8.03"),
    (model_kv_bytes_wrong, "kv_bytes_per_token_bf16 1 but the architecture needs 131072"),
    (model_ttft_above_slo, "ttft_ms 3500 exceeds the SLO 3000"),
    (model_missing, "model qwen-7b: neither served in models nor listed in unplaced"),
    (model_twice, "model qwen-7b: appears 2 times in models"),
    (unplaced_but_has_replicas, "model qwen-7b: listed in unplaced but has 2 replicas"),
    (unplaced_without_reason, "unplaced qwen-7b: reason is empty"),
    (partial_without_unplaced, "status 'partial' but every model is placed"),
    (unplaced_but_status_optimal, "status 'optimal' but 1 models are unplaced"),
    (demand_grew, "model chat-8b: capacity"),
    (min_replicas_grew, "model qwen-7b: 2 replicas but min_replicas is 5"),
    (slo_tightened, "meets chat-8b's SLO"),
    (precision_withdrawn, "is not allowed for chat-8b"),
    (pool_shrank, "cloud nodes of pool l4-b are named l4-b-<i> with 0 <= i < 0"),
]


def test_the_solver_plan_is_valid(mutation_plan):  # noqa: F811
    assert validate(mutation_plan, fleet_of(MUTATION_FLEET), models_of(MUTATION_MODELS)) == []


def test_scenario_uses_a_fixed_and_a_cloud_node(mutation_plan):  # noqa: F811
    pools = {node["pool"] for node in mutation_plan["nodes"]}
    assert pools == {"rack", "l4-b"}
    assert len(replicas_on(mutation_plan, "rack-01")) == 2


@pytest.mark.parametrize(("mutate", "expected"), MUTATIONS, ids=[m.__name__ for m, _ in MUTATIONS])
def test_validator_names_the_broken_constraint(mutation_plan, mutate, expected):  # noqa: F811
    plan = copy.deepcopy(mutation_plan)
    fleet = copy.deepcopy(MUTATION_FLEET)
    models = copy.deepcopy(MUTATION_MODELS)
    mutate(plan, fleet, models)
    violations = validate(plan, fleet_of(fleet), models_of(models))
    assert any(expected in line for line in violations), "\n".join(violations) or "no violations"


SPREAD_FLEET = {
    "pools": [
        {"name": f"box-{zone}", "gpu_type": "L4-24GB", "gpus_per_node": 4, "node_hourly_cost": 2.0,
         "zone": f"zone-{zone}", "nodes": [f"box-{zone}1"]}
        for zone in ("a", "b")
    ]
}


def spread_models(spread: str) -> dict:
    return {
        "models": [
            {
                "name": "small-8b",
                "architecture": "llama-3.1-8b",
                "precisions": ["fp8"],
                "max_context_tokens": 4096,
                "traffic": {"requests_per_second": 0.2, "input_tokens": 256, "output_tokens": 64},
                "slo": {"ttft_ms": 3000, "tpot_ms": 100},
                "min_replicas": 2,
                "spread": spread,
            }
        ]
    }


def packed_plan() -> dict:
    """Two replicas of one model on box-a1's GPUs 0 and 1, as a spread=none plan may be."""
    deployment = models_of(spread_models("none")).models[0]
    pool = resolve_pools(fleet_of(SPREAD_FLEET))[0]
    option = next(o for o in replica_options(deployment, pool.gpu_type, pool.gpus_per_node) if o.tensor_parallel == 1)
    replica = {
        "model": "small-8b", "node": "box-a1", "gpu_type": "L4-24GB", "precision": "fp8", "tensor_parallel": 1,
        "memory_per_gpu_gib": option.memory_per_gpu_gib, "capacity_requests_per_second": option.capacity_requests_per_second,
    }
    return {
        "status": "optimal", "cost_per_hour": 2.0, "lower_bound_per_hour": 2.0, "solve_seconds": 0.1,
        "nodes": [{"name": "box-a1", "pool": "box-a", "zone": "zone-a", "gpu_type": "L4-24GB", "gpus": 4,
                   "hourly_cost": 2.0}],
        "replicas": [dict(replica, gpu_indices=[0], traffic_weight=0.5), dict(replica, gpu_indices=[1], traffic_weight=0.5)],
        "models": [{
            "name": "small-8b", "params_billion": 8.03, "kv_bytes_per_token_bf16": 131072,
            "demand_requests_per_second": 0.2, "capacity_requests_per_second": 2 * option.capacity_requests_per_second,
            "ttft_ms": option.ttft_ms, "tpot_ms": option.tpot_ms, "replicas": 2, "served": True,
            "autoscaling": {"min_replicas": 2, "max_replicas": 3,
                            "target_requests_per_second": option.capacity_requests_per_second,
                            "target_requests_in_flight": 1.0},
        }],
        "unplaced": [],
    }


def test_hand_written_packed_plan_is_valid_without_spread():
    assert validate(packed_plan(), fleet_of(SPREAD_FLEET), models_of(spread_models("none"))) == []


def test_zone_spread_needs_two_zones_when_the_fleet_has_them():
    violations = validate(packed_plan(), fleet_of(SPREAD_FLEET), models_of(spread_models("zone")))
    assert any("spread=zone but losing zone zone-a leaves 0 req/s" in v for v in violations), violations


def test_zone_spread_is_not_required_when_only_one_zone_can_host_the_model():
    one_zone = {"pools": [SPREAD_FLEET["pools"][0]]}
    assert validate(packed_plan(), fleet_of(one_zone), models_of(spread_models("zone"))) == []


def test_node_spread_forbids_two_replicas_on_one_node():
    violations = validate(packed_plan(), fleet_of(SPREAD_FLEET), models_of(spread_models("node")))
    assert any("spread=node but 2 replicas share node box-a1" in v for v in violations), violations


def test_invalid_inputs_raise_rather_than_judge_the_plan(mutation_plan):  # noqa: F811
    fleet = copy.deepcopy(MUTATION_FLEET)
    fleet["pools"][1]["instance_type"] = "p9.mega"
    with pytest.raises(InputError) as raised:
        validate(mutation_plan, fleet_of(fleet), models_of(MUTATION_MODELS))
    assert any(line.startswith("pools[1].instance_type: unknown instance type 'p9.mega'; accepted:") and
               "p5.48xlarge" in line for line in raised.value.problems)


def test_zone_loss_must_leave_the_demand_not_a_token_replica():
    # One replica per zone passes the old "two zones" rule; here the zone-b replica is declared
    # with a tenth of the capacity, so losing zone-a leaves less than the demand.
    plan = packed_plan()
    plan["nodes"].append(dict(plan["nodes"][0], name="box-b1", pool="box-b", zone="zone-b"))
    plan["replicas"][1].update(node="box-b1", gpu_indices=[0])
    plan["cost_per_hour"] = plan["lower_bound_per_hour"] = 4.0
    models = spread_models("zone")
    models["models"][0]["traffic"]["requests_per_second"] = 2 * plan["replicas"][0]["capacity_requests_per_second"] * 0.9
    models["models"][0]["replica_floor"] = {"share_of_demand": 0, "requests_per_second": 0}
    plan["models"][0]["demand_requests_per_second"] = models["models"][0]["traffic"]["requests_per_second"]
    violations = validate(plan, fleet_of(SPREAD_FLEET), models_of(models))
    assert any("spread=zone but losing zone zone-a leaves" in v for v in violations), violations
    models["models"][0]["survive_fraction"] = 0.5
    assert not any("spread=zone" in v for v in validate(plan, fleet_of(SPREAD_FLEET), models_of(models)))


def test_node_loss_must_leave_the_demand():
    plan = packed_plan()
    plan["nodes"].append(dict(plan["nodes"][0], name="box-b1", pool="box-b", zone="zone-b"))
    plan["replicas"][1].update(node="box-b1", gpu_indices=[0])
    plan["cost_per_hour"] = plan["lower_bound_per_hour"] = 4.0
    models = spread_models("node")
    assert validate(plan, fleet_of(SPREAD_FLEET), models_of(models)) == []
    capacity = plan["replicas"][0]["capacity_requests_per_second"]
    models["models"][0]["traffic"]["requests_per_second"] = 1.5 * capacity
    plan["models"][0]["demand_requests_per_second"] = 1.5 * capacity
    violations = validate(plan, fleet_of(SPREAD_FLEET), models_of(models))
    assert any("spread=node but losing node box-a1 leaves" in v for v in violations), violations


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ((None, 0.5), "traffic_weight is missing"),
        ((0.7, 0.7), "traffic weights sum to 1.4, not 1"),
        ((-0.5, 1.5), "is negative"),
    ],
)
def test_traffic_weights_are_checked(weights, expected):
    plan = packed_plan()
    for replica, weight in zip(plan["replicas"], weights, strict=True):
        replica["traffic_weight"] = weight
    violations = validate(plan, fleet_of(SPREAD_FLEET), models_of(spread_models("none")))
    assert any(expected in v for v in violations), violations


def test_a_weight_that_overloads_a_replica_is_caught():
    plan = packed_plan()
    capacity = plan["replicas"][0]["capacity_requests_per_second"]
    models = spread_models("none")
    models["models"][0]["traffic"]["requests_per_second"] = 1.6 * capacity
    plan["models"][0]["demand_requests_per_second"] = 1.6 * capacity
    plan["replicas"][0]["traffic_weight"], plan["replicas"][1]["traffic_weight"] = 0.8, 0.2
    violations = validate(plan, fleet_of(SPREAD_FLEET), models_of(models))
    assert any("traffic_weight 0.8 sends" in v and "above its capacity" in v for v in violations), violations


def test_autoscaling_range_is_checked():
    plan = packed_plan()
    plan["models"][0]["autoscaling"].update(min_replicas=1, max_replicas=1, target_requests_per_second=1e3)
    violations = validate(plan, fleet_of(SPREAD_FLEET), models_of(spread_models("none")))
    assert any("autoscaling.min_replicas 1 but the plan runs 2" in v for v in violations), violations
    assert any("autoscaling.target_requests_per_second 1000 must be > 0" in v for v in violations), violations
    del plan["models"][0]["autoscaling"]
    violations = validate(plan, fleet_of(SPREAD_FLEET), models_of(spread_models("none")))
    assert any("served but autoscaling is missing" in v for v in violations), violations


def test_a_replica_below_the_floor_is_rejected():
    models = spread_models("none")
    models["models"][0]["replica_floor"] = {"latency_headroom": 0.99}
    violations = validate(packed_plan(), fleet_of(SPREAD_FLEET), models_of(models))
    assert any("is below the replica floor: unloaded TTFT" in v for v in violations), violations
