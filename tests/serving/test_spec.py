"""The serving spec: what each replica runs, from the plan; bad input named; the unit renderer; the CLI."""

from __future__ import annotations

import copy
import json
import math

import pytest
import yaml

from llmops.catalog import gpu_type
from llmops.cli import main
from llmops.planning.options import replica_options
from llmops.planning.spec import parse_models
from llmops.serving import ServingSpecError, render_systemd_unit, serving_spec, unit_name
from llmops.serving.spec import dns_label, replica_id

MODELS = {
    "tenants": [{"name": "team-a"}, {"name": "team-b", "shared_models": ["chat"]}],
    "models": [
        {
            "name": "chat",
            "tenant": "team-a",
            "artifact": {"name": "llama-8b", "version": "v3"},
            "architecture": "llama-3.1-8b",
            "precisions": ["fp8", "bf16"],
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


def node(name: str, zone: str, gpus: int = 4, gpu: str = "L4-24GB") -> dict:
    return {"name": name, "pool": f"pool-{zone}", "zone": zone, "gpu_type": gpu, "gpus": gpus, "hourly_cost": 1.0}


def replica(model: str, node_name: str, gpus: list[int], precision: str = "bf16", capacity: float = 1.0,
            weight: float | None = None) -> dict:
    entry = {
        "model": model, "node": node_name, "gpu_indices": gpus, "gpu_type": "L4-24GB", "precision": precision,
        "tensor_parallel": len(gpus), "memory_per_gpu_gib": 20.0, "capacity_requests_per_second": capacity,
    }  # fmt: skip
    if weight is not None:
        entry["traffic_weight"] = weight
    return entry


PLAN = {
    "status": "optimal",
    "cost_per_hour": 2.0,
    "lower_bound_per_hour": 2.0,
    "solve_seconds": 0.1,
    "nodes": [node("gpu-a", "zone-a"), node("gpu-b", "zone-b")],
    "replicas": [
        replica("chat", "gpu-a", [0], "fp8", capacity=3.0),
        replica("chat", "gpu-b", [2], "fp8", capacity=1.0),
        replica("coder", "gpu-a", [2, 3], "bf16", capacity=2.0),
    ],
    "models": [],
    "unplaced": [],
}
HOSTS = {"gpu-a": "10.0.0.11", "gpu-b": "10.0.0.12", "gateway": "10.0.0.2"}


def spec(device: str = "cuda", plan: dict | None = None, models: dict | None = None, **kwargs):
    return serving_spec(copy.deepcopy(plan or PLAN), copy.deepcopy(models or MODELS), HOSTS, device=device, **kwargs)


def args_of(replica_spec) -> dict[str, str | None]:
    """engine args as {flag: value or None for a bare flag}."""
    args, parsed, i = replica_spec.engine_args, {}, 0
    while i < len(args):
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            parsed[args[i]] = args[i + 1]
            i += 2
        else:
            parsed[args[i]] = None
            i += 1
    return parsed


def problems_of(**kwargs) -> list[str]:
    with pytest.raises(ServingSpecError) as caught:
        spec(**kwargs)
    return caught.value.problems


def test_each_replica_runs_what_the_plan_placed_on_its_node_and_gpus():
    result = spec()
    assert [(r.model, r.node, r.gpu_indices) for r in result.replicas] == [
        ("chat", "gpu-a", [0]), ("chat", "gpu-b", [2]), ("coder", "gpu-a", [2, 3])
    ]  # fmt: skip
    chat = result.replicas[0]
    assert chat.id == "chat-gpu-a-0"
    assert chat.address == "10.0.0.11"
    assert chat.base_url == "http://10.0.0.11:8000"
    assert chat.artifact.cache_path == "/var/lib/llmops/models/llama-8b/v3"
    assert chat.labels == {
        "replica": "chat-gpu-a-0", "model": "chat", "tenant": "team-a", "gpu_type": "L4-24GB",
        "zone": "zone-a", "pool": "pool-zone-a", "node": "gpu-a",
    }  # fmt: skip
    assert result.replicas[2].environment["CUDA_VISIBLE_DEVICES"] == "2,3"


def test_cuda_engine_args_follow_the_plans_precision_and_the_planners_sizing():
    result = spec()
    chat, coder = result.replicas[0], result.replicas[2]
    chat_args, coder_args = args_of(chat), args_of(coder)
    assert chat_args["--model"] == "/var/lib/llmops/models/llama-8b/v3"
    assert chat_args["--served-model-name"] == "chat"
    assert chat_args["--quantization"] == "fp8"
    # The L4 has fp8: the sizing assumed an fp8 KV cache, so the server must use one.
    assert chat_args["--kv-cache-dtype"] == "fp8"
    assert chat_args["--gpu-memory-utilization"] == "0.90"
    assert chat_args["--max-model-len"] == "4096"
    assert coder_args["--tensor-parallel-size"] == "2"
    assert coder_args["--dtype"] == "bfloat16"
    assert "--quantization" not in coder_args
    assert coder_args["--port"] == "8002"  # base port + first GPU index
    # --max-num-seqs is what the planner's own replica option holds at the deployment's request length.
    deployment = parse_models(copy.deepcopy(MODELS)).models[1]
    options = {(o.precision, o.tensor_parallel): o for o in replica_options(deployment, gpu_type("L4-24GB"), 4)}
    assert int(coder_args["--max-num-seqs"]) == options[("bf16", 2)].max_concurrent_sequences == coder.max_num_seqs


def test_cpu_rendering_differs_from_cuda_only_in_the_device_arguments_and_environment():
    cuda, cpu = spec("cuda"), spec("cpu")
    for on_gpu, on_cpu in zip(cuda.replicas, cpu.replicas, strict=True):
        gpu_args, cpu_args = args_of(on_gpu), args_of(on_cpu)
        assert cpu_args["--dtype"] == "bfloat16"
        assert "--enforce-eager" in cpu_args
        for flag in ("--quantization", "--kv-cache-dtype", "--gpu-memory-utilization"):
            assert flag not in cpu_args
        device_flags = {"--dtype", "--quantization", "--kv-cache-dtype", "--gpu-memory-utilization", "--enforce-eager"}
        assert {k: v for k, v in gpu_args.items() if k not in device_flags} == {
            k: v for k, v in cpu_args.items() if k not in device_flags
        }
        assert on_cpu.environment["VLLM_CPU_KVCACHE_SPACE"] == "1"
        assert "CUDA_VISIBLE_DEVICES" not in on_cpu.environment
        same_env = {k: v for k, v in on_gpu.environment.items() if k != "CUDA_VISIBLE_DEVICES"}
        assert same_env == {k: v for k, v in on_cpu.environment.items() if k != "VLLM_CPU_KVCACHE_SPACE"}
        assert (on_gpu.id, on_gpu.port, on_gpu.labels, on_gpu.traffic_weight) == (
            on_cpu.id, on_cpu.port, on_cpu.labels, on_cpu.traffic_weight
        )  # fmt: skip


def test_weights_are_capacity_proportional_without_plan_weights_and_the_plans_when_given():
    result = spec()
    assert [t.weight for t in result.models["chat"].targets] == [0.75, 0.25]
    assert result.models["coder"].targets[0].weight == 1.0
    weighted = copy.deepcopy(PLAN)
    weighted["replicas"][0]["traffic_weight"] = 0.4
    weighted["replicas"][1]["traffic_weight"] = 0.6
    weighted["replicas"][2]["traffic_weight"] = 1.0
    assert [t.weight for t in spec(plan=weighted).models["chat"].targets] == [0.4, 0.6]


def test_gateway_groupings_list_routes_per_model_and_models_per_tenant():
    result = spec()
    route = result.models["chat"]
    assert route.tenant == "team-a" and route.served
    assert [(t.replica, t.address, t.port) for t in route.targets] == [
        ("chat-gpu-a-0", "10.0.0.11", 8000), ("chat-gpu-b-2", "10.0.0.12", 8002)
    ]  # fmt: skip
    assert result.tenants["team-a"].models == ["chat"]
    assert result.tenants["team-b"].models == ["coder", "chat"]
    data = result.to_dict()
    assert data["nodes"] == {"gpu-a": ["chat-gpu-a-0", "coder-gpu-a-2"], "gpu-b": ["chat-gpu-b-2"]}
    assert json.loads(json.dumps(data)) == data


def test_a_model_without_replicas_is_routed_as_unserved():
    plan = copy.deepcopy(PLAN)
    plan["replicas"] = plan["replicas"][:2]
    assert spec(plan=plan).models["coder"].served is False
    assert spec(plan=plan).models["coder"].targets == []


def test_a_placed_model_without_an_artifact_fails_naming_it():
    models = copy.deepcopy(MODELS)
    del models["models"][1]["artifact"]
    assert problems_of(models=models) == [
        "models[1].artifact: model 'coder' is placed by the plan but names no artifact (name, version) in the object store"
    ]


def test_an_unknown_tenant_fails_naming_it_and_the_accepted_ones():
    models = copy.deepcopy(MODELS)
    models["models"][0]["tenant"] = "team-z"
    problems = problems_of(models=models)
    assert problems == ["models: models[0].tenant: unknown tenant 'team-z'; accepted: team-a, team-b"]


def test_a_node_outside_the_inventory_fails_naming_it():
    with pytest.raises(ServingSpecError) as caught:
        serving_spec(copy.deepcopy(PLAN), copy.deepcopy(MODELS), ["gpu-a"])
    assert caught.value.problems == [
        "plan.replicas[1].node: 'gpu-b' is not in the inventory; accepted: gpu-a"
    ]


def test_a_plan_model_missing_from_the_models_file_fails_naming_it():
    plan = copy.deepcopy(PLAN)
    plan["replicas"].append(replica("ghost", "gpu-b", [0]))
    assert problems_of(plan=plan) == [
        "plan.replicas[3].model: 'ghost' is not in the models file; accepted: chat, coder"
    ]


def test_port_clashes_fail_naming_node_replicas_and_port():
    assert problems_of(port_overrides={"coder-gpu-a-2": 8000}) == [
        "plan.replicas[2]: port clash on node 'gpu-a': replicas 'chat-gpu-a-0' and 'coder-gpu-a-2' both take port 8000"
    ]
    problems = problems_of(base_port=9098)
    assert problems == [
        "plan.replicas[1]: port clash on node 'gpu-b': replica 'chat-gpu-b-2' would take port 9100, "
        "reserved for another service (3000, 9090, 9093, 9100)",
        "plan.replicas[2]: port clash on node 'gpu-a': replica 'coder-gpu-a-2' would take port 9100, "
        "reserved for another service (3000, 9090, 9093, 9100)"
    ]
    assert problems_of(port_overrides={"nobody": 8100}) == ["port_overrides.nobody: no replica has this id"]


def test_every_problem_is_reported_at_once():
    models = copy.deepcopy(MODELS)
    del models["models"][0]["artifact"]
    with pytest.raises(ServingSpecError) as caught:
        serving_spec(copy.deepcopy(PLAN), models, ["gpu-a"], port_overrides={"coder-gpu-a-2": 9090})
    assert len(caught.value.problems) == 3
    assert caught.value.problems[0].startswith("models[0].artifact")
    assert "'gpu-b' is not in the inventory" in caught.value.problems[1]
    assert "port 9090" in caught.value.problems[2]


def test_unknown_device_and_malformed_plans_fail_naming_the_field():
    assert problems_of(device="rocm") == ["device: 'rocm' is not accepted; accepted: cuda, cpu"]
    plan = copy.deepcopy(PLAN)
    del plan["replicas"][0]["gpu_indices"]
    assert problems_of(plan=plan) == ["plan: replicas[0].gpu_indices: required field is missing"]


def test_replica_ids_are_dns_labels_even_for_long_or_dotted_node_names():
    assert replica_id("chat", "GPU01.dc1.example.com", [3, 4]) == "chat-gpu01-dc1-example-com-3"
    long_id = replica_id("m" * 60, "node-" + "x" * 40, [0])
    assert len(long_id) <= 63 and long_id == dns_label("m" * 60 + "-node-" + "x" * 40 + "-0")
    assert long_id != replica_id("m" * 60, "node-" + "x" * 40, [1])


def test_systemd_unit_runs_the_replica_as_its_user_with_its_gpus_and_restarts_it():
    chat = spec().replicas[0]
    unit = render_systemd_unit(chat, python="/opt/llmops/vllm/bin/python", user="vllm", memory_max="8G")
    assert unit.startswith("# Managed by llmops.datacenter.model_serving: replica chat-gpu-a-0\n")
    assert unit_name(chat.id) == "llmops-vllm-chat-gpu-a-0.service"
    lines = unit.splitlines()
    assert 'Environment="CUDA_VISIBLE_DEVICES=0"' in lines
    assert "User=vllm" in lines and "Group=vllm" in lines
    assert "Restart=always" in lines and "MemoryMax=8G" in lines
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_start.startswith(
        "ExecStart=/opt/llmops/vllm/bin/python -m vllm.entrypoints.openai.api_server --model "
        "/var/lib/llmops/models/llama-8b/v3 "
    )
    assert "--port 8000" in exec_start
    # Rendering is pure: the same replica always gives the same text.
    assert unit == render_systemd_unit(chat, python="/opt/llmops/vllm/bin/python", user="vllm", memory_max="8G")


def test_cli_writes_the_spec_and_exits_2_naming_bad_input(tmp_path, capsys):
    plan_path, models_path, out = tmp_path / "plan.json", tmp_path / "models.yml", tmp_path / "spec.json"
    plan_path.write_text(json.dumps(PLAN))
    models_path.write_text(yaml.safe_dump(MODELS))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"gpu": {"hosts": {"gpu-a": None, "gpu-b": None}}}}}))
    code = main(["serving-spec", "--plan", str(plan_path), "--models", str(models_path), "--inventory",
                 str(inventory), "--device", "cpu", "--output", str(out)])  # fmt: skip
    assert code == 0
    data = json.loads(out.read_text())
    assert data["device"] == "cpu" and len(data["replicas"]) == 3
    assert data["replicas"][0]["base_url"] == "http://gpu-a:8000"
    code = main(["serving-spec", "--plan", str(plan_path), "--models", str(models_path), "--host", "gpu-a=10.1.1.1"])
    assert code == 2
    assert "'gpu-b' is not in the inventory; accepted: gpu-a" in capsys.readouterr().err


def test_weights_sum_to_one_per_model():
    for route in spec().models.values():
        if route.targets:
            assert math.isclose(sum(t.weight for t in route.targets), 1.0)
