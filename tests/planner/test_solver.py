"""The optimiser, one constraint family and objective term at a time, feasible and infeasible.

Every plan is also checked by the independent validator, so a test passes only when the plan is
valid as a whole, not just in the property the test is about.
"""

from __future__ import annotations

import math

import pytest
from ortools.linear_solver import pywraplp

from llmops.catalog import gpu_types
from llmops.planning import validate_plan
from llmops.planning.options import replica_options
from llmops.planning.solver import run_stage, solve, solve_with_report
from llmops.planning.spec import parse_fleet, parse_models


def pool(name, gpu="H100-SXM-80GB", gpus=8, cost=55.04, zone="z-a", max_nodes=2, nodes=None):
    entry = {"name": name, "gpu_type": gpu, "gpus_per_node": gpus, "node_hourly_cost": cost, "zone": zone}
    if nodes is None:
        entry["max_nodes"] = max_nodes
    else:
        entry["nodes"] = nodes
    return entry


def model(name, architecture="llama-3.1-8b", rps=0.5, **extra):
    entry = {
        "name": name,
        "architecture": architecture,
        "precisions": ["fp8", "bf16"],
        "max_context_tokens": 4096,
        "traffic": {"requests_per_second": rps, "input_tokens": 512, "output_tokens": 128},
        "slo": {"ttft_ms": 3000, "tpot_ms": 100},
        "spread": "none",
    }
    entry.update(extra)
    return entry


def plan_for(pools, models, time_limit_s=10):
    fleet, models_file = parse_fleet({"pools": pools}), parse_models({"models": models})
    plan = solve(fleet, models_file, time_limit_s=time_limit_s)
    assert validate_plan(plan, fleet, models_file) == []
    return plan


def replicas_of(plan, name):
    return [r for r in plan.replicas if r.model == name]


def best_capacity(gpu: str, gpus_per_node: int, **model_fields) -> float:
    deployment = parse_models({"models": [model("probe", **model_fields)]}).models[0]
    return max(o.capacity_requests_per_second for o in replica_options(deployment, gpu_types()[gpu], gpus_per_node))


# -- demand --------------------------------------------------------------------------------------


def test_demand_above_one_replica_gets_enough_replicas():
    one_replica = best_capacity("L4-24GB", 1)
    plan = plan_for([pool("l4", gpu="L4-24GB", gpus=1, cost=0.80, max_nodes=10)], [model("chat", rps=one_replica * 2.5)])
    entry = plan.models[0]
    assert entry.served and entry.replicas == 3
    assert entry.capacity_requests_per_second >= entry.demand_requests_per_second


def test_demand_beyond_the_fleet_is_unplaced_with_the_capacity_reason():
    one_replica = best_capacity("L4-24GB", 1)
    plan = plan_for([pool("l4", gpu="L4-24GB", gpus=1, cost=0.80, max_nodes=2)], [model("chat", rps=one_replica * 2.5)])
    assert plan.status == "partial" and plan.replicas == [] and plan.cost_per_hour == 0
    assert plan.unplaced[0].model == "chat"
    assert "capacity exhausted" in plan.unplaced[0].reason and "l4 with 2 free" in plan.unplaced[0].reason


# -- min_replicas --------------------------------------------------------------------------------


@pytest.mark.parametrize("min_replicas", [1, 2, 3])
def test_min_replicas_forces_replicas_demand_does_not_need(min_replicas):
    plan = plan_for([pool("h100", max_nodes=1)], [model("chat", rps=0.1, min_replicas=min_replicas)])
    assert len(replicas_of(plan, "chat")) == min_replicas
    assert len(plan.nodes) == 1  # several small replicas share one node


# -- pool size limits and fixed pools --------------------------------------------------------------


def test_max_nodes_zero_leaves_the_model_unplaced_with_a_reason():
    plan = plan_for([pool("h100", max_nodes=0)], [model("chat")])
    assert plan.status == "partial"
    assert plan.unplaced[0].model == "chat" and "no nodes" in plan.unplaced[0].reason


def test_model_that_fits_no_gpu_is_unplaced_with_the_memory_explanation():
    plan = plan_for(
        [pool("l4", gpu="L4-24GB", gpus=1, cost=0.8, max_nodes=4)],
        [model("huge", architecture="llama-3.1-405b", precisions=["bf16"]), model("chat")],
    )
    assert [u.model for u in plan.unplaced] == ["huge"]
    assert "no replica configuration fits" in plan.unplaced[0].reason and "GiB" in plan.unplaced[0].reason
    assert replicas_of(plan, "chat")  # the rest is still served


def test_fixed_pool_uses_only_its_listed_machines_and_cloud_nodes_are_numbered():
    plan = plan_for(
        [
            pool("rack", cost=10.0, nodes=["dgx-a", "dgx-b"]),
            pool("cloud", cost=55.04, zone="z-b", max_nodes=4),
        ],
        [model("big", architecture="llama-3.1-70b", rps=60, min_replicas=1)],
    )
    fixed = [n.name for n in plan.nodes if n.pool == "rack"]
    cloud = [n.name for n in plan.nodes if n.pool == "cloud"]
    assert set(fixed) == {"dgx-a", "dgx-b"}  # the cheap machines are used up first
    assert all(name.startswith("cloud-") and int(name.split("-")[1]) < 4 for name in cloud)


# -- GPUs per pool and the per-GPU assignment ------------------------------------------------------


@pytest.mark.parametrize("gpus_per_node", [8, 6])
def test_tensor_parallel_groups_sit_inside_one_node_on_aligned_gpus(gpus_per_node):
    plan = plan_for(
        [pool("h100", gpus=gpus_per_node, max_nodes=6)],
        [model("big", architecture="llama-3.1-70b", precisions=["bf16"], rps=30), model("chat", rps=40)],
    )
    used: dict[str, set[int]] = {}
    for replica in plan.replicas:
        indices = replica.gpu_indices
        assert len(indices) == replica.tensor_parallel
        assert indices == list(range(indices[0], indices[0] + replica.tensor_parallel))
        assert indices[0] % replica.tensor_parallel == 0 and indices[-1] < gpus_per_node
        assert not used.setdefault(replica.node, set()) & set(indices)
        used[replica.node] |= set(indices)


# -- spread ------------------------------------------------------------------------------------------


def test_zone_spread_places_replicas_in_two_zones():
    pools = [pool("a", zone="z-a"), pool("b", zone="z-b")]
    spread = plan_for(pools, [model("chat", spread="zone")])
    assert len({n.zone for n in spread.nodes}) == 2
    unspread = plan_for(pools, [model("chat", spread="none")])
    assert len(unspread.nodes) == 1 and spread.cost_per_hour > unspread.cost_per_hour


def test_zone_spread_does_not_bind_where_the_model_fits_in_one_zone_only():
    plan = plan_for(
        [pool("h100", zone="z-a"), pool("l4", gpu="L4-24GB", gpus=1, cost=0.8, zone="z-b")],
        [model("huge", architecture="llama-3.1-405b", precisions=["fp8"], spread="zone")],
    )
    assert plan.models[0].served and {n.zone for n in plan.nodes} == {"z-a"}


def test_node_spread_puts_replicas_on_distinct_nodes():
    spread = plan_for([pool("h100", max_nodes=3)], [model("chat", min_replicas=3, spread="node")])
    assert len({r.node for r in spread.replicas}) == 3
    packed = plan_for([pool("h100", max_nodes=3)], [model("chat", min_replicas=3, spread="none")])
    assert len({r.node for r in packed.replicas}) == 1


def test_node_spread_with_fewer_nodes_than_replicas_is_unplaced():
    plan = plan_for([pool("h100", max_nodes=2)], [model("chat", min_replicas=3, spread="node")])
    assert plan.status == "partial" and plan.unplaced[0].model == "chat"


# -- priority ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [(10, 0), (0, 10)])
def test_priority_decides_who_gets_the_only_gpu(first, second):
    plan = plan_for(
        [pool("l4", gpu="L4-24GB", gpus=1, cost=0.8, max_nodes=1)],
        [model("alpha", priority=first), model("beta", priority=second)],
    )
    winner, loser = ("alpha", "beta") if first > second else ("beta", "alpha")
    assert {r.model for r in plan.replicas} == {winner}
    assert [u.model for u in plan.unplaced] == [loser]
    assert "capacity exhausted by models of priority" in plan.unplaced[0].reason
    assert "needs at least 1 GPUs" in plan.unplaced[0].reason


def test_shortage_still_serves_as_many_equal_priority_models_as_fit():
    plan = plan_for(
        [pool("l4", gpu="L4-24GB", gpus=1, cost=0.8, max_nodes=2)],
        [model("a"), model("b"), model("c")],
    )
    assert len(plan.unplaced) == 1 and len({r.model for r in plan.replicas}) == 2


# -- objective terms and the plan's accounting ---------------------------------------------------------


def test_cheaper_gpu_type_wins_and_cost_is_the_sum_of_listed_nodes():
    fleet = parse_fleet({"pools": [pool("h100", cost=55.04), pool("cheap-h100", cost=20.0, zone="z-b")]})
    models_file = parse_models({"models": [model("chat")]})
    plan, report = solve_with_report(fleet, models_file, time_limit_s=10)
    assert [n.pool for n in plan.nodes] == ["cheap-h100"]
    assert plan.cost_per_hour == pytest.approx(sum(n.hourly_cost for n in plan.nodes)) == 20.0
    assert {r.node for r in plan.replicas} == {n.name for n in plan.nodes}
    assert report.objective_terms == {"node_cost_per_hour": 20.0, "unserved_models": 0.0}
    assert plan.status == "optimal" and plan.lower_bound_per_hour == pytest.approx(20.0)


def test_plan_models_report_demand_capacity_and_worst_latency():
    plan = plan_for([pool("h100")], [model("chat", rps=3, min_replicas=2)])
    entry = plan.models[0]
    assert entry.params_billion == pytest.approx(8.03, abs=0.05)
    assert entry.kv_bytes_per_token_bf16 == 131072  # 32 layers x 8 KV heads x 128 x 2 x 2 bytes
    assert entry.replicas == 2 and entry.demand_requests_per_second == 3
    assert entry.capacity_requests_per_second == pytest.approx(sum(r.capacity_requests_per_second for r in plan.replicas))
    assert 0 < entry.tpot_ms <= 100 and 0 < entry.ttft_ms <= 3000


def test_same_inputs_give_the_same_plan():
    pools = [pool("a", zone="z-a"), pool("b", zone="z-b", cost=40.0), pool("l4", gpu="L4-24GB", gpus=4, cost=4.6)]
    models = [model("chat", rps=20, spread="zone"), model("big", architecture="llama-3.1-70b", rps=5)]
    first = plan_for(pools, models).to_json_dict()
    second = plan_for(pools, models).to_json_dict()
    first.pop("solve_seconds"), second.pop("solve_seconds")
    assert first == second


# -- solver status mapping ---------------------------------------------------------------------------


def _tiny_solver(lower: float, upper: float):
    solver = pywraplp.Solver.CreateSolver("SCIP")
    x = solver.IntVar(0, 10, "x")
    solver.Add(x >= lower)
    solver.Add(x <= upper)
    solver.Minimize(x)
    return solver


def test_status_optimal_and_infeasible_are_mapped():
    optimal = run_stage(_tiny_solver(2, 5), "tiny", 5, cost_objective=False)
    assert (optimal.status, optimal.objective, optimal.bound) == ("optimal", 2, 2)
    infeasible = run_stage(_tiny_solver(3, 1), "tiny", 5, cost_objective=False)
    assert infeasible.status == "infeasible" and "cannot meet" in infeasible.message


def test_solver_failure_raises_with_a_message_instead_of_a_plan():
    solver = pywraplp.Solver.CreateSolver("SCIP")
    x = solver.IntVar(0, 10, "x")
    constraint = solver.Constraint(1, math.inf)
    constraint.SetCoefficient(x, math.inf)  # SCIP refuses infinite coefficients
    solver.Minimize(x)
    with pytest.raises(RuntimeError, match="failed abnormally"):
        run_stage(solver, "broken", 5, cost_objective=False)
