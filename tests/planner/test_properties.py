"""Property tests: for generated fleets and model sets, every plan the solver returns validates.

Fleets mix cloud pools (explicit or from an instance type) and fixed machines over the catalog's
GPU types and a few zones; model sets draw catalog architectures, precisions, traffic shapes,
SLOs, replica minimums, spread rules and priorities. Many generated cases cannot be fully
served, which exercises the partial plans and their reasons as much as the placements.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops.catalog import architectures, gpu_types, instance_types
from llmops.planning import make_plan
from llmops.planning.baselines import careful_heuristic, first_fit_decreasing
from llmops.planning.replan import replan
from llmops.planning.spec import PRECISIONS, InputError, parse_fleet, parse_models
from llmops.planning.validator import validate

GPU_TYPES = sorted(gpu_types())
INSTANCE_TYPES = sorted(instance_types())
ARCHITECTURES = sorted(architectures())
ZONES = ["zone-a", "zone-b", "zone-c"]


@st.composite
def pools(draw, index: int) -> dict:
    pool: dict = {"name": f"pool{index}", "zone": draw(st.sampled_from(ZONES))}
    if draw(st.booleans()):
        pool["instance_type"] = draw(st.sampled_from(INSTANCE_TYPES))
    else:
        pool["gpu_type"] = draw(st.sampled_from(GPU_TYPES))
        pool["gpus_per_node"] = draw(st.sampled_from([1, 2, 4, 8]))
        pool["node_hourly_cost"] = draw(st.floats(min_value=0.5, max_value=120, allow_nan=False).map(lambda x: round(x, 2)))
    if draw(st.booleans()):
        pool["max_nodes"] = draw(st.integers(min_value=0, max_value=3))
    else:
        pool["nodes"] = [f"pool{index}-host{j}" for j in range(draw(st.integers(min_value=1, max_value=3)))]
    return pool


@st.composite
def fleets(draw) -> dict:
    count = draw(st.integers(min_value=1, max_value=4))
    return {"pools": [draw(pools(i)) for i in range(count)]}


@st.composite
def deployments(draw, index: int) -> dict:
    input_tokens = draw(st.integers(min_value=64, max_value=4096))
    output_tokens = draw(st.integers(min_value=16, max_value=1024))
    return {
        "name": f"model{index}",
        "architecture": draw(st.sampled_from(ARCHITECTURES)),
        "precisions": draw(st.lists(st.sampled_from(PRECISIONS), min_size=1, max_size=4, unique=True)),
        "max_context_tokens": input_tokens + output_tokens + draw(st.integers(min_value=0, max_value=8192)),
        "traffic": {
            "requests_per_second": draw(st.floats(min_value=0.05, max_value=8, allow_nan=False).map(lambda x: round(x, 2))),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
        },
        "slo": {
            "ttft_ms": draw(st.sampled_from([300, 800, 2000, 5000])),
            "tpot_ms": draw(st.sampled_from([20, 40, 60, 100, 150])),
        },
        "min_replicas": draw(st.integers(min_value=0, max_value=3)),
        "spread": draw(st.sampled_from(["zone", "node", "none"])),
        "priority": draw(st.integers(min_value=0, max_value=10)),
    }


@st.composite
def model_sets(draw) -> dict:
    count = draw(st.integers(min_value=1, max_value=4))
    return {"models": [draw(deployments(i)) for i in range(count)]}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_data=fleets(), models_data=model_sets())
def test_every_solver_plan_passes_the_independent_validator(fleet_data, models_data):
    fleet, models = parse_fleet(fleet_data), parse_models(models_data)
    plan = make_plan(fleet, models, time_limit_s=2)
    assert validate(plan, fleet, models) == []
    # The JSON round trip users get is judged the same way.
    assert validate(plan.to_json_dict(), fleet, models) == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_data=fleets(), models_data=model_sets())
def test_every_baseline_plan_passes_the_same_validator(fleet_data, models_data):
    fleet, models = parse_fleet(fleet_data), parse_models(models_data)
    for plan in (first_fit_decreasing(fleet, models), careful_heuristic(fleet, models)):
        assert validate(plan, fleet, models) == []


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_data=fleets(), models_data=model_sets(), pick=st.integers(min_value=0, max_value=10**6))
def test_replanning_after_losing_a_used_node_gives_a_valid_plan_without_it(fleet_data, models_data, pick):
    fleet, models = parse_fleet(fleet_data), parse_models(models_data)
    current = make_plan(fleet, models, time_limit_s=2)
    used = sorted({r.node for r in current.replicas})
    if not used:
        return
    lost = used[pick % len(used)]
    if all(p.nodes == [lost] or p.max_nodes == 0 or (p.max_nodes == 1 and lost == f"{p.name}-0")
           for p in fleet.pools):
        with pytest.raises(InputError, match="every node of the fleet is lost"):
            replan(current, fleet, models, failed_nodes=[lost], time_limit_s=2)
        return
    result = replan(current, fleet, models, failed_nodes=[lost], time_limit_s=2)
    assert validate(result.plan, result.fleet, models) == []
    assert lost not in {r.node for r in result.plan.replicas}
    running = {(r.model, r.node, tuple(r.gpu_indices)) for r in current.replicas if r.node != lost}
    assert all((m.model, m.node, m.gpu_indices) in running for m in result.moves if m.action == "keep")
    assert result.count("lost") == sum(1 for r in current.replicas if r.node == lost)
