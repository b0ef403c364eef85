"""Sizing tests: weight bytes per precision, KV precision, runtime overhead, tensor-parallel
degrees and concurrency limits."""

from __future__ import annotations

import pytest

from llmops.catalog import architecture, architecture_from_hf_dict, gpu_type, gpu_types
from llmops.planning import sizing
from llmops.planning.sizing import (
    GIB,
    is_valid_tensor_parallel,
    memory_plan,
    valid_tensor_parallel_degrees,
    weight_bytes,
    weight_bytes_per_gpu,
    weights_gib,
)


def test_llama_8b_bf16_weights_match_what_vllm_loads():
    # vLLM logs "Loading model weights took 14.9888 GB" (GiB) for Llama-3.1-8B-Instruct in bf16.
    assert weights_gib(architecture("llama-3.1-8b"), "bf16") == pytest.approx(14.99, rel=0.005)


def test_quantised_precisions_keep_embeddings_lm_head_and_norms_in_bf16():
    model = architecture("llama-3.1-70b")
    bf16_only = (model.embedding_params + model.other_params) * 2
    assert weight_bytes(model, "fp8") == pytest.approx(model.linear_params * 1 + bf16_only)
    assert weight_bytes(model, "int8") == pytest.approx(model.linear_params * 1 + bf16_only)
    # int4: half a byte a weight plus one bf16 scale per group of 128 weights.
    assert weight_bytes(model, "int4") == pytest.approx(model.linear_params * (0.5 + 2 / 128) + bf16_only)
    assert weight_bytes(model, "bf16") == pytest.approx(model.total_params * 2)


def test_lower_precisions_need_less_memory_in_order():
    model = architecture("qwen2.5-72b")
    sizes = [weights_gib(model, precision) for precision in ("bf16", "fp8", "int4")]
    assert sizes == sorted(sizes, reverse=True)
    assert weights_gib(model, "fp8") > weights_gib(model, "bf16") / 2  # the bf16 embeddings remain


def test_tensor_parallel_splits_weights_but_replicates_norms():
    model = architecture("llama-3.1-70b")
    one = weight_bytes_per_gpu(model, "bf16", 1)
    four = weight_bytes_per_gpu(model, "bf16", 4)
    assert four == pytest.approx((one - model.other_params * 2) / 4 + model.other_params * 2)
    assert one == pytest.approx(weight_bytes(model, "bf16"))


def test_fp8_kv_cache_only_with_fp8_weights_on_fp8_hardware():
    assert sizing.kv_bytes_per_element("fp8", gpu_type("H100-SXM-80GB")) == 1
    assert sizing.kv_bytes_per_element("bf16", gpu_type("H100-SXM-80GB")) == 2
    assert sizing.kv_bytes_per_element("int4", gpu_type("L40S-48GB")) == 2
    assert sizing.kv_bytes_per_element("fp8", gpu_type("A100-SXM-80GB")) == 2


@pytest.mark.parametrize(
    ("key", "gpus_per_node", "expected"),
    [
        ("llama-3.1-70b", 8, [1, 2, 4, 8]),  # 64 heads, 8 KV heads
        ("qwen2.5-7b", 8, [1, 2, 4]),  # 28 heads, 4 KV heads: 8 divides neither
        ("gemma-2-27b", 8, [1, 2, 4, 8]),  # 32 heads, 16 KV heads
        ("llama-3.1-70b", 6, [1, 2, 4]),  # powers of two within the node only
        ("llama-3.1-8b", 1, [1]),
    ],
)
def test_valid_tensor_parallel_degrees(key, gpus_per_node, expected):
    assert valid_tensor_parallel_degrees(architecture(key), gpus_per_node) == expected


def test_tensor_parallel_must_divide_the_kv_heads_too():
    # 40 attention heads, 5 KV heads: 2 divides neither count evenly for KV; 5 is no power of two.
    model = architecture_from_hf_dict(
        dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40,
             num_key_value_heads=5, vocab_size=32000),
        "odd-kv",
    )
    assert valid_tensor_parallel_degrees(model, 8) == [1]
    assert not is_valid_tensor_parallel(model, 5)
    assert not is_valid_tensor_parallel(architecture("llama-3.1-70b"), 3)


def test_runtime_overhead_is_reserved_per_gpu():
    model, gpu = architecture("llama-3.1-8b"), gpu_type("H100-SXM-80GB")
    overhead = sizing.runtime_overhead_gib(model, gpu, 1)
    # CUDA context + CUDA graphs + an activation peak of about 1 GiB at 8192 batched tokens.
    assert 2.0 < overhead < 4.0
    assert sizing.runtime_overhead_gib(model, gpu, 2) > overhead - 0.5  # all-reduce buffers added


def test_memory_utilisation_caps_what_the_kv_cache_gets():
    model, gpu = architecture("llama-3.1-8b"), gpu_type("H100-SXM-80GB")
    plan = memory_plan(model, gpu, "bf16", 1, memory_utilization=0.90)
    smaller = memory_plan(model, gpu, "bf16", 1, memory_utilization=0.50)
    assert plan.usable_gib == pytest.approx(0.90 * gpu.memory_gib)
    expected_budget = plan.usable_gib - plan.weights_per_gpu_gib - plan.overhead_per_gpu_gib
    assert plan.kv_budget_per_gpu_gib == pytest.approx(expected_budget)
    assert plan.kv_token_capacity * plan.kv_bytes_per_token_per_gpu <= expected_budget * GIB
    assert smaller.kv_token_capacity < plan.kv_token_capacity


def test_concurrency_falls_as_the_context_grows():
    plan = memory_plan(architecture("llama-3.1-70b"), gpu_type("H100-SXM-80GB"), "fp8", 4)
    counts = [plan.max_concurrent_sequences(tokens) for tokens in (512, 2048, 8192, 32768, 131072)]
    assert counts == sorted(counts, reverse=True)
    assert counts[-1] >= 1 and counts[0] <= plan.max_num_seqs


def test_a_model_that_does_not_fit_has_no_kv_cache():
    plan = memory_plan(architecture("llama-3.1-405b"), gpu_type("L4-24GB"), "int4", 8)
    assert plan.kv_budget_per_gpu_gib < 0
    assert plan.kv_blocks == 0 and not plan.fits_context(1)
    assert plan.max_concurrent_sequences(100) == 0


def test_full_context_must_fit_for_one_sequence():
    # Llama-3.1-70B bf16 on 2 x H100: 65.7 GiB of weights a GPU leave room for a few thousand tokens.
    plan = memory_plan(architecture("llama-3.1-70b"), gpu_type("H100-SXM-80GB"), "bf16", 2)
    assert plan.fits_context(4096)
    assert not plan.fits_context(131072)
    needed = plan.required_gib_for_context(131072)
    assert needed > plan.usable_gib


@pytest.mark.parametrize("gpu_name", sorted(gpu_types()))
def test_memory_per_gpu_never_exceeds_the_cap_when_it_fits(gpu_name):
    gpu = gpu_type(gpu_name)
    model = architecture("llama-3.1-8b")
    for precision in ("bf16", "int4"):
        plan = memory_plan(model, gpu, precision, 1)
        sequences = plan.max_concurrent_sequences(2048)
        if sequences:
            assert plan.memory_per_gpu_gib(sequences, 2048, 2048) <= plan.usable_gib + 1e-9
