"""Catalog tests: parameter counts against published totals, KV bytes per token, config.json
parsing (real config.json files under fixtures/), GPU and instance catalogs."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from llmops import catalog
from llmops.catalog import (
    UnknownCatalogKey,
    architecture,
    architecture_from_hf_config,
    architecture_from_hf_dict,
    architectures,
    gpu_type_for_smi_name,
    gpu_types,
    instance_types,
    published_params_billion,
)

FIXTURES = Path(__file__).parent / "fixtures"

REQUIRED_MODELS = (
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "mistral-7b",
    "mixtral-8x7b",
    "qwen2.5-7b",
    "qwen2.5-72b",
    "gemma-2-27b",
)
REQUIRED_GPUS = (
    "H100-SXM-80GB",
    "H200-SXM-141GB",
    "A100-SXM-80GB",
    "A100-SXM-40GB",
    "L40S-48GB",
    "A10G-24GB",
    "L4-24GB",
    "B200-180GB",
)


@pytest.mark.parametrize("key", REQUIRED_MODELS)
def test_parameter_count_matches_published_total_within_one_percent(key):
    published_total, published_active = published_params_billion(key)
    model = architecture(key)
    assert model.total_params / 1e9 == pytest.approx(published_total, rel=0.01)
    if published_active is not None:
        assert model.active_params / 1e9 == pytest.approx(published_active, rel=0.01)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # 2 (K,V) x layers x KV heads x head_dim x 2 bytes
        ("llama-3.1-8b", 131072),  # 2 x 32 x 8 x 128 x 2
        ("llama-3.1-70b", 327680),  # 2 x 80 x 8 x 128 x 2
        ("llama-3.1-405b", 516096),  # 2 x 126 x 8 x 128 x 2
        ("qwen2.5-7b", 57344),  # 2 x 28 x 4 x 128 x 2
        ("gemma-2-27b", 376832),  # 2 x 46 x 16 x 128 x 2 (explicit head_dim 128, not 4608/32)
        ("mixtral-8x7b", 131072),
    ],
)
def test_kv_bytes_per_token_in_bf16(key, expected):
    assert architecture(key).kv_bytes_per_token() == expected


def test_fp8_kv_cache_halves_the_bytes_per_token():
    model = architecture("llama-3.1-70b")
    assert model.kv_bytes_per_token(1) * 2 == model.kv_bytes_per_token(2)


def test_moe_active_parameters_are_far_fewer_than_total():
    mixtral = architecture("mixtral-8x7b")
    assert mixtral.is_moe and mixtral.num_experts == 8 and mixtral.experts_per_token == 2
    assert mixtral.active_params / mixtral.total_params == pytest.approx(12.9 / 46.7, rel=0.01)
    dense = architecture("llama-3.1-70b")
    assert dense.active_params == dense.total_params


def test_qwen_config_json_has_qkv_bias_and_untied_embeddings():
    model = architecture_from_hf_config(FIXTURES / "Qwen2.5-7B-Instruct" / "config.json")
    assert model.key == "Qwen2.5-7B-Instruct"
    assert model.qkv_bias and not model.tie_word_embeddings
    assert model.num_kv_heads == 4 and model.head_dim == 128
    # Hugging Face's safetensors index of Qwen2.5-7B-Instruct: 7,615,616,512 parameters, biases included.
    assert model.total_params == 7_615_616_512


def test_gemma_config_json_uses_explicit_head_dim_and_default_tied_embeddings():
    path = FIXTURES / "gemma-2-27b-it" / "config.json"
    assert "tie_word_embeddings" not in json.loads(path.read_text())
    model = architecture_from_hf_config(path)
    assert model.head_dim == 128 != model.hidden_size // model.num_attention_heads
    assert model.tie_word_embeddings
    assert model.embedding_params == model.vocab_size * model.hidden_size
    assert model.total_params / 1e9 == pytest.approx(27.2, rel=0.01)


def test_mixtral_config_json_reports_total_and_active_parameters():
    model = architecture_from_hf_config(FIXTURES / "Mixtral-8x7B-Instruct-v0.1" / "config.json")
    assert model.total_params / 1e9 == pytest.approx(46.7, rel=0.01)
    assert model.active_params / 1e9 == pytest.approx(12.9, rel=0.01)


@pytest.mark.parametrize(
    ("fixture", "catalog_key"),
    [
        ("Qwen2.5-7B-Instruct", "qwen2.5-7b"),
        ("gemma-2-27b-it", "gemma-2-27b"),
        ("Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"),
    ],
)
def test_config_json_and_catalog_entry_give_the_same_architecture(fixture, catalog_key):
    from_file = architecture_from_hf_config(FIXTURES / fixture / "config.json")
    from_catalog = architecture(catalog_key)
    assert from_file.total_params == from_catalog.total_params
    assert from_file.kv_bytes_per_token() == from_catalog.kv_bytes_per_token()


def test_attention_bias_field_adds_biases_on_all_four_projections():
    base = dict(
        model_type="llama",
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
    )
    without = architecture_from_hf_dict(base, "a")
    with_bias = architecture_from_hf_dict({**base, "attention_bias": True}, "b")
    # q (4096) + k (1024) + v (1024) + o (4096) biases in each of the 32 layers.
    assert with_bias.total_params - without.total_params == 32 * (4096 + 1024 + 1024 + 4096)


def test_missing_num_key_value_heads_means_multi_head_attention():
    model = architecture_from_hf_dict(
        dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, vocab_size=32000),
        "mha",
    )
    assert model.num_kv_heads == 32 and model.head_dim == 64


def test_config_without_required_fields_names_them(tmp_path):
    path = tmp_path / "gpt2" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "vocab_size": 50257}))
    with pytest.raises(ValueError, match="hidden_size, intermediate_size, num_hidden_layers, num_attention_heads"):
        architecture_from_hf_config(path)


def test_unreadable_and_invalid_config_json_name_the_path(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        architecture_from_hf_config(tmp_path / "absent.json")
    broken = tmp_path / "config.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json: not valid JSON"):
        architecture_from_hf_config(broken)


def test_unknown_model_key_lists_the_accepted_keys():
    with pytest.raises(KeyError) as raised:
        architecture("llama-4-9000b")
    assert isinstance(raised.value, UnknownCatalogKey)
    message = str(raised.value)
    assert "llama-4-9000b" in message
    assert all(key in message for key in REQUIRED_MODELS)


def test_every_required_model_and_gpu_is_in_the_catalog():
    assert set(REQUIRED_MODELS) <= set(architectures())
    assert set(REQUIRED_GPUS) <= set(gpu_types())


def test_gpu_capabilities_follow_their_architecture():
    gpus = gpu_types()
    for name in ("A100-SXM-80GB", "A100-SXM-40GB", "A10G-24GB"):  # Ampere: no FP8 tensor cores
        assert not gpus[name].supports("fp8") and gpus[name].fp8_tflops == 0
    for name in ("H100-SXM-80GB", "H200-SXM-141GB", "B200-180GB", "L40S-48GB", "L4-24GB"):
        assert gpus[name].supports("fp8") and gpus[name].fp8_tflops >= 2 * gpus[name].bf16_tflops * 0.99
    for gpu in gpus.values():
        assert gpu.supports("bf16") and gpu.supports("int4")
        assert gpu.memory_gib > 0 and gpu.hbm_bandwidth_gb_s > 0 and gpu.interconnect_gb_s > 0
    assert gpus["H200-SXM-141GB"].hbm_bandwidth_gb_s > gpus["H100-SXM-80GB"].hbm_bandwidth_gb_s
    assert gpus["H100-SXM-80GB"].interconnect.startswith("nvlink")
    assert gpus["L40S-48GB"].interconnect.startswith("pcie")


def test_nvidia_smi_names_map_back_to_one_catalog_gpu():
    seen = {}
    for gpu in gpu_types().values():
        for smi_name in gpu.nvidia_smi_names:
            assert smi_name not in seen, f"{smi_name} claimed by {seen.get(smi_name)} and {gpu.name}"
            seen[smi_name] = gpu.name
            assert gpu_type_for_smi_name(smi_name) is gpu
    assert gpu_type_for_smi_name("NVIDIA GeForce RTX 4090") is None


def test_instances_carry_catalog_gpus_with_dated_prices():
    gpus = gpu_types()
    instances = instance_types()
    for instance in instances.values():
        assert instance.gpu_type in gpus, instance.name
        assert instance.gpus in (1, 4, 8)
        assert instance.hourly_usd > 0
        datetime.date.fromisoformat(instance.price_date)
    carried = {instance.gpu_type for instance in instances.values()}
    assert set(REQUIRED_GPUS) <= carried


def test_p5_price_reflects_the_june_2025_price_cut():
    # Before 2025-06-05 p5.48xlarge listed at 98.32 USD/h in us-east-1; AWS announced up to 45% off.
    assert instance_types()["p5.48xlarge"].hourly_usd < 98.32 * 0.6


def test_unknown_gpu_and_instance_lookups_list_accepted_names():
    with pytest.raises(UnknownCatalogKey, match="H100-SXM-80GB"):
        catalog.gpu_type("H100")
    with pytest.raises(UnknownCatalogKey, match=r"p5\.48xlarge"):
        catalog.instance_type("p5.big")
