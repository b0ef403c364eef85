"""Property: for random plans from the planner's own generator, the serving spec is the plan.

Every replica of the plan appears exactly once, on its node, with its GPUs (CUDA_VISIBLE_DEVICES
in cuda mode), ports are unique per node, traffic weights sum to 1 per served model, and the
cpu rendering differs from the cuda one only in the device arguments.
"""

from __future__ import annotations

import importlib.util
import math
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from llmops.planning import make_plan
from llmops.planning.spec import parse_fleet, parse_models
from llmops.serving import serving_spec

# The planner tests' generators of fleets and model sets (loaded by path: tests/ is not a package).
_PROPERTIES = Path(__file__).resolve().parents[1] / "planner" / "test_properties.py"
_spec = importlib.util.spec_from_file_location("planner_properties", _PROPERTIES)
_generators = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_generators)
fleets, model_sets = _generators.fleets, _generators.model_sets

DEVICE_FLAGS = {"--dtype", "--quantization", "--kv-cache-dtype", "--gpu-memory-utilization", "--enforce-eager"}


def _with_tenants_and_artifacts(models_data: dict) -> dict:
    tenants = ["team-a", "team-b"]
    for index, entry in enumerate(models_data["models"]):
        entry["tenant"] = tenants[index % 2]
        entry["artifact"] = {"name": f"artifact-{entry['name']}", "version": f"v{index}"}
    return {**models_data, "tenants": [{"name": name} for name in tenants]}


def _flags(args: list[str]) -> list[str]:
    return [a for i, a in enumerate(args) if a.startswith("--") and a not in DEVICE_FLAGS] + [
        args[i + 1] for i, a in enumerate(args[:-1]) if a not in DEVICE_FLAGS and not args[i + 1].startswith("--")
    ]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_data=fleets(), models_data=model_sets())
def test_the_serving_spec_holds_every_replica_of_the_plan_exactly_once(fleet_data, models_data):
    fleet, models = parse_fleet(fleet_data), parse_models(_with_tenants_and_artifacts(models_data))
    plan = make_plan(fleet, models, time_limit_s=2)
    hosts = sorted({node.name for node in plan.nodes})
    cuda = serving_spec(plan, models, hosts, device="cuda")
    cpu = serving_spec(plan, models, hosts, device="cpu")

    planned = Counter((r.model, r.node, tuple(r.gpu_indices)) for r in plan.replicas)
    rendered = Counter((r.model, r.node, tuple(r.gpu_indices)) for r in cuda.replicas)
    assert rendered == planned
    assert all(count == 1 for count in rendered.values())
    assert len({r.id for r in cuda.replicas}) == len(cuda.replicas)

    for replica in cuda.replicas:
        assert replica.environment["CUDA_VISIBLE_DEVICES"] == ",".join(map(str, replica.gpu_indices))
        assert replica.engine_args[replica.engine_args.index("--tensor-parallel-size") + 1] == str(
            len(replica.gpu_indices)
        )
    ports = Counter((r.node, r.port) for r in cuda.replicas)
    assert all(count == 1 for count in ports.values())

    for route in cuda.models.values():
        assert route.served == bool(route.targets)
        if route.targets:
            assert math.isclose(sum(t.weight for t in route.targets), 1.0, abs_tol=1e-9)
    assert sorted(t.replica for route in cuda.models.values() for t in route.targets) == sorted(
        r.id for r in cuda.replicas
    )

    for on_gpu, on_cpu in zip(cuda.replicas, cpu.replicas, strict=True):
        assert (on_gpu.id, on_gpu.port, on_gpu.traffic_weight) == (on_cpu.id, on_cpu.port, on_cpu.traffic_weight)
        assert _flags(on_gpu.engine_args) == _flags(on_cpu.engine_args)
