"""The catalogs: GPU types, AWS instance types and model architectures.

The numbers live in the YAML files next to this module (gpus.yaml, instances.yaml, models.yaml),
each with its source cited; this module only loads them. Catalog models are stored as their
Hugging Face config.json fields, so a catalog model and a user's `hf_config: config.json` are
turned into a `ModelArchitecture` by the same function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

_HERE = Path(__file__).resolve().parent

# Model types whose config.json leaves tie_word_embeddings out because their class defaults it to
# true (transformers' GemmaConfig/Gemma2Config/Gemma3TextConfig); the Llama-style classes default
# to false.
_TIED_BY_DEFAULT = frozenset({"gemma", "gemma2", "gemma3", "gemma3_text"})
# Model types with a bias on the q, k and v projections that is hard-coded in the model class
# rather than announced by an `attention_bias` field (transformers' Qwen2Attention).
_QKV_BIAS_MODEL_TYPES = frozenset({"qwen2", "qwen2_moe", "qwen2_vl"})
# Gemma 2 and 3 normalise both before and after attention and the feed-forward block.
_FOUR_NORMS_PER_LAYER = frozenset({"gemma2", "gemma3", "gemma3_text"})
# Qwen3 normalises queries and keys per head (q_norm, k_norm of size head_dim).
_QK_NORM_MODEL_TYPES = frozenset({"qwen3", "qwen3_moe"})

_REQUIRED_HF_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "vocab_size",
)


class UnknownCatalogKey(KeyError):
    """A name that is not in a catalog; the message lists the accepted names."""

    def __init__(self, kind: str, key: str, accepted: list[str]):
        self.kind, self.key, self.accepted = kind, key, sorted(accepted)
        super().__init__(f"unknown {kind} {key!r}; accepted: {', '.join(self.accepted)}")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class GpuType:
    """One GPU model. Units: GiB, GB/s (10^9 B/s), dense TFLOP/s; see gpus.yaml for sources."""

    name: str
    memory_gib: float
    hbm_bandwidth_gb_s: float
    bf16_tflops: float
    fp8_tflops: float
    int8_tops: float
    supports_fp8: bool
    supports_int4: bool
    compute_capability: str
    interconnect: str
    interconnect_gb_s: float
    nvidia_smi_names: tuple[str, ...]

    def supports(self, precision: str) -> bool:
        """Whether vLLM has kernels for weights of this precision on this GPU."""
        if precision == "fp8":
            return self.supports_fp8
        if precision == "int4":
            return self.supports_int4
        return precision in ("bf16", "int8")

    def peak_tflops(self, precision: str) -> float:
        """Dense tensor-core peak for the matmuls of a model with weights in `precision`.

        fp8 and int8 are W8A8 (both operands 8-bit); int4 is weight-only (W4A16), so its
        matmuls run at the 16-bit rate after dequantisation.
        """
        if precision == "fp8":
            return self.fp8_tflops
        if precision == "int8":
            return self.int8_tops
        return self.bf16_tflops


@dataclass(frozen=True)
class InstanceType:
    name: str
    gpu_type: str
    gpus: int
    hourly_usd: float
    price_date: str


@dataclass(frozen=True)
class ModelArchitecture:
    """A decoder-only transformer's shape and parameter counts.

    Parameters are split by how the sizing treats them: `linear_params` (attention and MLP
    projections, experts included) are stored at the chosen weight precision;
    `embedding_params` (input embedding plus an untied lm_head) and `other_params` (norms,
    biases, MoE routers) stay in bf16.
    """

    key: str
    model_type: str
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    qkv_bias: bool
    num_experts: int
    experts_per_token: int
    max_position_embeddings: int
    embedding_params: int
    linear_params: int
    active_linear_params: int
    other_params: int

    @property
    def total_params(self) -> int:
        return self.embedding_params + self.linear_params + self.other_params

    @property
    def active_params(self) -> int:
        """Parameters used for one token (all of them for a dense model)."""
        return self.embedding_params + self.active_linear_params + self.other_params

    @property
    def params_billion(self) -> float:
        return self.total_params / 1e9

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    def kv_bytes_per_token(self, kv_bytes_per_element: float = 2) -> int:
        """KV-cache bytes one token occupies across all layers (K and V, every KV head)."""
        return int(2 * self.num_layers * self.num_kv_heads * self.head_dim * kv_bytes_per_element)


def _load_yaml(name: str) -> dict[str, Any]:
    with open(_HERE / name, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@cache
def gpu_types() -> dict[str, GpuType]:
    return {
        name: GpuType(name=name, **{**fields, "nvidia_smi_names": tuple(fields["nvidia_smi_names"])})
        for name, fields in _load_yaml("gpus.yaml").items()
    }


@cache
def instance_types() -> dict[str, InstanceType]:
    return {name: InstanceType(name=name, **fields) for name, fields in _load_yaml("instances.yaml").items()}


def gpu_type(name: str) -> GpuType:
    catalog = gpu_types()
    if name not in catalog:
        raise UnknownCatalogKey("GPU type", name, list(catalog))
    return catalog[name]


def instance_type(name: str) -> InstanceType:
    catalog = instance_types()
    if name not in catalog:
        raise UnknownCatalogKey("instance type", name, list(catalog))
    return catalog[name]


def gpu_type_for_smi_name(smi_name: str) -> GpuType | None:
    """The catalog GPU whose nvidia-smi product name is `smi_name`, or None."""
    for gpu in gpu_types().values():
        if smi_name in gpu.nvidia_smi_names:
            return gpu
    return None


def architecture_from_hf_dict(config: dict[str, Any], key: str) -> ModelArchitecture:
    """Build a ModelArchitecture from the fields of a Hugging Face config.json.

    Understands grouped-query attention (num_key_value_heads), an explicit head_dim (Gemma 2),
    tied embeddings, attention biases (Llama's attention_bias, Qwen2's built-in q/k/v bias),
    MLP biases, and mixture-of-experts in Mixtral's form (num_local_experts, one router) and
    Qwen-MoE's form (num_experts, moe_intermediate_size, optional shared expert). The MLP is
    taken to be gated (gate, up and down projections), as in every family above.
    Raises ValueError naming the missing fields when the config is not of this shape.
    """
    if "text_config" in config and "hidden_size" not in config:
        config = {**config["text_config"], "model_type": config["text_config"].get("model_type", "")}
    missing = [field for field in _REQUIRED_HF_FIELDS if not isinstance(config.get(field), int)]
    if missing:
        raise ValueError(
            f"{key}: config.json lacks integer field(s) {', '.join(missing)}; "
            "a decoder-only model with Llama-style config fields is required"
        )
    model_type = str(config.get("model_type", ""))
    hidden = config["hidden_size"]
    layers = config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    vocab = config["vocab_size"]
    tied = config.get("tie_word_embeddings", model_type in _TIED_BY_DEFAULT)

    attention_bias = bool(config.get("attention_bias", False))
    qkv_bias = attention_bias or model_type in _QKV_BIAS_MODEL_TYPES
    q_width, kv_width = heads * head_dim, kv_heads * head_dim
    attention_linear = hidden * q_width + 2 * hidden * kv_width + q_width * hidden
    attention_biases = (q_width + 2 * kv_width if qkv_bias else 0) + (hidden if attention_bias else 0)

    mlp_bias = bool(config.get("mlp_bias", False))

    def gated_mlp(width: int) -> tuple[int, int]:
        return 3 * hidden * width, (2 * width + hidden if mlp_bias else 0)

    num_experts = int(config.get("num_local_experts") or config.get("num_experts") or 1)
    experts_per_token = int(config.get("num_experts_per_tok") or 1) if num_experts > 1 else 1
    if num_experts > 1:
        expert_width = config.get("moe_intermediate_size") or config["intermediate_size"]
        expert_linear, expert_bias = gated_mlp(expert_width)
        router = hidden * num_experts
        shared_width = config.get("shared_expert_intermediate_size") or 0
        shared_linear, shared_bias = gated_mlp(shared_width) if shared_width else (0, 0)
        shared_gate = hidden if shared_width else 0
        mlp_linear_total = num_experts * expert_linear + shared_linear
        mlp_linear_active = experts_per_token * expert_linear + shared_linear
        mlp_other = num_experts * expert_bias + shared_bias + router + shared_gate
    else:
        mlp_linear_total, mlp_bias_params = gated_mlp(config["intermediate_size"])
        mlp_linear_active = mlp_linear_total
        mlp_other = mlp_bias_params

    norms_per_layer = (4 if model_type in _FOUR_NORMS_PER_LAYER else 2) * hidden
    if model_type in _QK_NORM_MODEL_TYPES:
        norms_per_layer += 2 * head_dim

    return ModelArchitecture(
        key=key,
        model_type=model_type,
        num_layers=layers,
        hidden_size=hidden,
        intermediate_size=config["intermediate_size"],
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        tie_word_embeddings=bool(tied),
        qkv_bias=qkv_bias,
        num_experts=num_experts,
        experts_per_token=experts_per_token,
        max_position_embeddings=int(config.get("max_position_embeddings") or 0),
        embedding_params=vocab * hidden * (1 if tied else 2),
        linear_params=layers * (attention_linear + mlp_linear_total),
        active_linear_params=layers * (attention_linear + mlp_linear_active),
        other_params=layers * (attention_biases + mlp_other + norms_per_layer) + hidden,
    )


def _key_for_path(path: Path) -> str:
    # .../Qwen2.5-7B-Instruct/config.json is best named after its folder.
    return path.parent.name if path.name == "config.json" and path.parent.name else path.stem


def architecture_from_hf_config(path: str | Path) -> ModelArchitecture:
    """Read a Hugging Face config.json; raises ValueError with the path on any problem."""
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a config.json must hold a JSON object")
    return architecture_from_hf_dict(config, key=_key_for_path(path))


@cache
def _model_entries() -> dict[str, dict[str, Any]]:
    return _load_yaml("models.yaml")


@cache
def architectures() -> dict[str, ModelArchitecture]:
    return {key: architecture_from_hf_dict(entry["config"], key) for key, entry in _model_entries().items()}


def architecture(key: str) -> ModelArchitecture:
    catalog = architectures()
    if key not in catalog:
        raise UnknownCatalogKey("model architecture", key, list(catalog))
    return catalog[key]


def published_params_billion(key: str) -> tuple[float, float | None]:
    """(total, active-or-None) parameter counts, in billions, that the model's authors publish."""
    entry = _model_entries()[key]
    return entry["published_params_billion"], entry.get("published_active_params_billion")


__all__ = [
    "GpuType",
    "InstanceType",
    "ModelArchitecture",
    "UnknownCatalogKey",
    "architecture",
    "architecture_from_hf_config",
    "architecture_from_hf_dict",
    "architectures",
    "gpu_type",
    "gpu_type_for_smi_name",
    "gpu_types",
    "instance_type",
    "instance_types",
    "published_params_billion",
]
