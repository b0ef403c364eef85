"""Performance-model and replica-option tests: physics bounds, monotonicity, queueing, SLOs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.catalog import architecture, gpu_type
from llmops.planning.options import explain_no_option, replica_options, resolve_architecture
from llmops.planning.performance import (
    ReplicaPerformance,
    efficiency,
    erlang_c,
    md1_wait_quantile_s,
    sustainable_operating_point,
)
from llmops.planning.sizing import DEFAULT_MEMORY_UTILIZATION, memory_plan
from llmops.planning.spec import ModelDeployment


def replica(key: str, gpu_name: str, precision: str, tensor_parallel: int) -> ReplicaPerformance:
    model, gpu = architecture(key), gpu_type(gpu_name)
    return ReplicaPerformance.for_plan(model, gpu, memory_plan(model, gpu, precision, tensor_parallel))


def deployment(**overrides) -> ModelDeployment:
    fields = dict(
        name="chat",
        architecture="llama-3.1-70b",
        precisions=["fp8", "bf16"],
        max_context_tokens=8192,
        traffic={"requests_per_second": 4, "input_tokens": 1024, "output_tokens": 256},
        slo={"ttft_ms": 2000, "tpot_ms": 60},
    )
    fields.update(overrides)
    return ModelDeployment(**fields)


def test_decode_is_never_faster_than_reading_the_weights_at_peak_bandwidth():
    perf = replica("llama-3.1-8b", "H100-SXM-80GB", "bf16", 1)
    model = architecture("llama-3.1-8b")
    physics_floor_s = model.total_params * 2 / (3350e9)
    step = perf.decode_step_s(1, 1024)
    assert step > physics_floor_s
    # ...and the efficiency factors keep it within the 2-7x band real engines show at batch 1.
    assert step < 3 * physics_floor_s


def test_more_tensor_parallelism_lowers_tpot_at_low_batch():
    tpots = [replica("llama-3.1-70b", "H100-SXM-80GB", "fp8", tp).tpot_s(1, 1024, 256) for tp in (2, 4, 8)]
    assert tpots[0] > tpots[1] > tpots[2]


def test_tpot_and_throughput_grow_with_concurrency():
    perf = replica("llama-3.1-8b", "H100-SXM-80GB", "fp8", 1)
    concurrencies = [1, 4, 16, 64, 256]
    tpots = [perf.tpot_s(c, 1000, 200) for c in concurrencies]
    throughputs = [perf.throughput_rps(c, 1000, 200) for c in concurrencies]
    assert tpots == sorted(tpots)
    assert throughputs == sorted(throughputs)


def test_faster_memory_gives_faster_decode():
    h100 = replica("llama-3.1-70b", "H100-SXM-80GB", "fp8", 4).decode_step_s(8, 2048)
    h200 = replica("llama-3.1-70b", "H200-SXM-141GB", "fp8", 4).decode_step_s(8, 2048)
    assert h200 < h100


def test_prefill_is_compute_bound_and_grows_with_the_prompt():
    perf = replica("llama-3.1-8b", "H100-SXM-80GB", "bf16", 1)
    short, long = perf.prefill_s(1000), perf.prefill_s(4000)
    assert long > 4 * short * 0.95  # linear term plus the quadratic attention term
    floor = 2 * architecture("llama-3.1-8b").active_params * 4000 / 989.5e12
    assert long > floor


def test_moe_decode_reads_only_the_experts_a_small_batch_touches():
    perf = replica("mixtral-8x7b", "H100-SXM-80GB", "bf16", 2)
    one, many = perf.weight_bytes_read_per_gpu(1), perf.weight_bytes_read_per_gpu(256)
    model = architecture("mixtral-8x7b")
    assert one < 0.4 * many
    assert many == pytest.approx(model.total_params * 2 / 2, rel=0.02)


def test_pcie_all_reduce_costs_more_than_nvlink():
    nvlink = replica("llama-3.1-70b", "H100-SXM-80GB", "fp8", 4).allreduce_s(64)
    pcie = replica("llama-3.1-70b", "L40S-48GB", "fp8", 4).allreduce_s(64)
    assert pcie > nvlink > 0
    assert replica("llama-3.1-8b", "H100-SXM-80GB", "fp8", 1).allreduce_s(64) == 0


def test_erlang_c_known_values():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(4, 4.0) == 1.0
    # The large-c approximation agrees with the exact recursion near the switch-over.
    exact = erlang_c(64, 58.0)
    assert erlang_c(65, 58.0 * 65 / 64) == pytest.approx(exact, rel=0.25)


def test_md1_wait_grows_without_bound_at_saturation():
    waits = [md1_wait_quantile_s(rate, 0.1) for rate in (0.5, 5.0, 8.0, 9.9)]
    assert waits == sorted(waits) and waits[0] == 0.0
    assert math.isinf(md1_wait_quantile_s(10.0, 0.1))


def test_sustained_point_meets_both_slos():
    perf = replica("llama-3.1-70b", "H100-SXM-80GB", "fp8", 4)
    point = sustainable_operating_point(perf, 500, 1024, 256, ttft_limit_ms=1500, tpot_limit_ms=40)
    assert point is not None
    assert point.ttft_s <= 1.5 + 1e-9 and point.tpot_s <= 0.040 + 1e-9
    assert 0 < point.capacity_requests_per_second < perf.throughput_rps(point.concurrency, 1024, 256)


def test_efficiency_factors_are_fractions():
    factors = efficiency()
    assert 0 < factors.decode_bandwidth_efficiency <= 1 and 0 < factors.decode_compute_efficiency <= 1
    assert all(0 < value <= 1 for value in factors.prefill_compute_efficiency.values())
    assert all(0 < link.bandwidth_efficiency <= 1 for link in factors.allreduce.values())


# Below ~64 output tokens the TPOT SLO is bound by prefill stalls spread over the few output
# tokens (tpot = step + concurrency * prefill / output_tokens), so one more output token can
# genuinely admit a larger batch; the property is asserted where decoding dominates.
@settings(max_examples=25, deadline=None)
@given(
    input_tokens=st.integers(64, 4096),
    extra_input=st.integers(0, 4096),
    output_tokens=st.integers(64, 1024),
    extra_output=st.integers(0, 1024),
)
def test_more_tokens_per_request_never_buys_more_capacity(input_tokens, extra_input, output_tokens, extra_output):
    perf = replica("llama-3.1-8b", "H100-SXM-80GB", "fp8", 1)

    def capacity(i, o):
        point = sustainable_operating_point(perf, 256, i, o, ttft_limit_ms=3000, tpot_limit_ms=50)
        return point.capacity_requests_per_second if point else 0.0

    base = capacity(input_tokens, output_tokens)
    assert capacity(input_tokens + extra_input, output_tokens) <= base * 1.001 + 1e-9
    assert capacity(input_tokens, output_tokens + extra_output) <= base * 1.001 + 1e-9


@settings(max_examples=20, deadline=None)
@given(tpot_ms=st.floats(15, 200), looser=st.floats(0, 100), ttft_ms=st.floats(300, 5000))
def test_a_looser_slo_never_lowers_capacity(tpot_ms, looser, ttft_ms):
    perf = replica("llama-3.1-70b", "H100-SXM-80GB", "fp8", 4)

    def capacity(tpot):
        point = sustainable_operating_point(perf, 300, 1024, 256, ttft_limit_ms=ttft_ms, tpot_limit_ms=tpot)
        return point.capacity_requests_per_second if point else 0.0

    assert capacity(tpot_ms + looser) >= capacity(tpot_ms) * 0.999


def test_replica_options_fit_memory_and_meet_the_slo():
    model = deployment()
    gpu = gpu_type("H100-SXM-80GB")
    options = replica_options(model, gpu, 8)
    assert {(o.precision, o.tensor_parallel) for o in options} >= {("fp8", 4), ("fp8", 8), ("bf16", 4)}
    heads = resolve_architecture(model)
    for option in options:
        assert option.precision in model.precisions
        assert heads.num_kv_heads % option.tensor_parallel == 0
        assert option.memory_per_gpu_gib <= DEFAULT_MEMORY_UTILIZATION * gpu.memory_gib
        assert option.tpot_ms <= model.slo.tpot_ms + 1e-6 and option.ttft_ms <= model.slo.ttft_ms + 1e-6
        assert option.capacity_requests_per_second > 0 and option.max_concurrent_sequences >= 1
    # fp8 needs half the weight memory of bf16 on the same degree.
    fp8_4 = next(o for o in options if (o.precision, o.tensor_parallel) == ("fp8", 4))
    bf16_4 = next(o for o in options if (o.precision, o.tensor_parallel) == ("bf16", 4))
    assert fp8_4.weights_gib < 0.6 * bf16_4.weights_gib


def test_replica_options_do_not_depend_on_the_request_rate():
    low = replica_options(deployment(), gpu_type("H100-SXM-80GB"), 8)
    high = replica_options(
        deployment(traffic={"requests_per_second": 400, "input_tokens": 1024, "output_tokens": 256}),
        gpu_type("H100-SXM-80GB"),
        8,
    )
    assert low == high


def test_unsupported_precision_yields_no_option_and_says_why():
    model = deployment(precisions=["fp8"])
    gpu = gpu_type("A100-SXM-80GB")
    assert replica_options(model, gpu, 8) == []
    assert "A100-SXM-80GB supports none of the allowed precisions fp8" in explain_no_option(model, gpu, 8)


def test_model_too_large_for_the_node_says_how_much_it_needs():
    model = deployment(architecture="llama-3.1-405b", precisions=["int4"])
    gpu = gpu_type("L4-24GB")
    assert replica_options(model, gpu, 8) == []
    reason = explain_no_option(model, gpu, 8)
    assert reason.startswith("llama-3.1-405b needs ") and "8 x L4-24GB hold 161.9 GiB at utilisation 0.90" in reason


def test_unreachable_tpot_is_explained_with_the_best_tpot():
    model = deployment(slo={"ttft_ms": 2000, "tpot_ms": 2})
    gpu = gpu_type("H100-SXM-80GB")
    assert replica_options(model, gpu, 8) == []
    assert "exceeds the SLO of 2 ms" in explain_no_option(model, gpu, 8)


def test_context_beyond_the_model_window_is_explained():
    model = deployment(architecture="gemma-2-27b", precisions=["bf16"], max_context_tokens=16384)
    gpu = gpu_type("H100-SXM-80GB")
    assert replica_options(model, gpu, 8) == []
    assert "max_position_embeddings 8192" in explain_no_option(model, gpu, 8)


def test_replica_options_accept_a_config_json(tmp_path):
    import json

    config = tmp_path / "tiny" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps(dict(
        model_type="llama", hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, max_position_embeddings=131072,
        tie_word_embeddings=True,
    )))
    model = deployment(architecture=None, hf_config=str(config), precisions=["bf16"])
    assert resolve_architecture(model).key == "tiny"
    options = replica_options(model, gpu_type("L4-24GB"), 1)
    assert [o.tensor_parallel for o in options] == [1]
