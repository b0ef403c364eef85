"""Memory sizing of one model replica: weights, KV cache, runtime overhead, concurrency.

The accounting follows vLLM, the serving engine llmops deploys:

* Weights. Attention and MLP projections (experts included) are stored at the chosen precision;
  the input embedding, the lm_head and all norms, biases and MoE routers stay in bf16, as vLLM's
  fp8/int8/int4 checkpoints (llm-compressor, AutoAWQ/GPTQ) leave them. int4 is GPTQ/AWQ style:
  4 bits a weight plus one bf16 scale per group of 128 weights (0.5 + 2/128 bytes a weight).
  Under tensor parallelism every projection and the vocabulary-parallel embedding/lm_head are
  split across the GPUs; the few norm weights are replicated (counted once per GPU).
* KV cache. 2 (K and V) x layers x KV heads x head_dim elements a token, in bf16 by default and
  in fp8 (`--kv-cache-dtype fp8`) when the weights are fp8 and the GPU has fp8 support.
* Runtime overhead per GPU: the CUDA context and other non-PyTorch allocations, NCCL/custom
  all-reduce buffers under tensor parallelism, CUDA-graph memory, and the activation peak of a
  forward pass over `max_num_batched_tokens` tokens, which vLLM's memory profiler reserves before
  it hands the rest to the KV cache.
* Utilisation cap. vLLM's `gpu_memory_utilization` (default 0.90) is the fraction of a GPU the
  engine may use for all of the above.

Tensor-parallel rule (one rule, used everywhere in the planner): the degree is a power of two,
at most the GPUs in one node, and divides BOTH the attention-head count and the KV-head count.
vLLM also accepts a degree that is a multiple of the KV-head count by replicating KV heads on
several GPUs, but then every GPU stores a full KV head per replica of it, so the KV cache per
token no longer shrinks with the degree; the planner does not use such degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmops.catalog import GpuType, ModelArchitecture

GIB = 1024**3
BF16_BYTES = 2.0
INT4_GROUP_SIZE = 128
WEIGHT_BYTES_PER_PARAM = {
    "bf16": 2.0,
    "fp8": 1.0,
    # W8A8 int8 keeps one fp32 scale per output channel: hidden/(hidden*width) of a byte, negligible.
    "int8": 1.0,
    "int4": 0.5 + BF16_BYTES / INT4_GROUP_SIZE,
}
PRECISIONS = tuple(WEIGHT_BYTES_PER_PARAM)

DEFAULT_MEMORY_UTILIZATION = 0.90
# vLLM allocates KV cache in blocks of 16 tokens (the default --block-size on CUDA).
KV_BLOCK_TOKENS = 16
# vLLM V1's default --max-num-seqs for the OpenAI server on GPUs with >= 70 GiB is 1024 and 256
# below that (vllm/engine/arg_utils.py, _set_default_args); the planner never batches beyond it.
MAX_NUM_SEQS_LARGE_GPU = 1024
MAX_NUM_SEQS_SMALL_GPU = 256
# vLLM V1's default --max-num-batched-tokens for the OpenAI server: 8192 on >= 70 GiB GPUs,
# 2048 on smaller ones (same function); it bounds the prefill chunk and the activation peak.
MAX_NUM_BATCHED_TOKENS_LARGE_GPU = 8192
MAX_NUM_BATCHED_TOKENS_SMALL_GPU = 2048
LARGE_GPU_GIB = 70.0

# Runtime overhead, per GPU. vLLM logs its memory profile at start-up ("Memory profiling takes
# ... model weights take X GiB; non_torch_memory takes Y GiB; PyTorch activation peak memory
# takes Z GiB; the rest ... KV Cache") and "Graph capturing finished ... took W GiB". Public logs
# of Llama-3.1-8B on one H100 show non-torch memory of 0.2-0.6 GiB, an activation peak of about
# 1.2 GiB at 8192 batched tokens, and CUDA graphs of 0.3-0.7 GiB; tensor-parallel runs add
# 0.2-0.5 GiB of non-torch memory for NCCL and the custom all-reduce buffers.
CUDA_CONTEXT_GIB = 0.6
TENSOR_PARALLEL_BUFFERS_GIB = 0.4
CUDA_GRAPHS_GIB = 0.6
# The activation peak of the profiling pass: for each batched token the MLP's gate/up output
# (2 x intermediate / tp), its activated half (intermediate / tp) and a few hidden-size buffers
# (residual, norm output, attention output, QKV), all bf16; plus fp32 logits for up to
# max_num_seqs sampled tokens. For Llama-3.1-8B at 8192 tokens this gives 1.03 GiB (logged: ~1.2).
ACTIVATION_HIDDEN_BUFFERS = 4
LOGITS_BYTES = 4


def weight_bytes(arch: ModelArchitecture, precision: str) -> float:
    """Bytes of the whole model's weights stored at `precision`."""
    per_param = WEIGHT_BYTES_PER_PARAM[precision]
    return arch.linear_params * per_param + (arch.embedding_params + arch.other_params) * BF16_BYTES


def weights_gib(arch: ModelArchitecture, precision: str) -> float:
    return weight_bytes(arch, precision) / GIB


def weight_bytes_per_gpu(arch: ModelArchitecture, precision: str, tensor_parallel: int) -> float:
    """Bytes of weights one GPU of a tensor-parallel group holds."""
    per_param = WEIGHT_BYTES_PER_PARAM[precision]
    sharded = arch.linear_params * per_param + arch.embedding_params * BF16_BYTES
    return sharded / tensor_parallel + arch.other_params * BF16_BYTES


def kv_bytes_per_element(precision: str, gpu: GpuType) -> int:
    """1 (fp8 KV cache) where the weights are fp8 and the GPU supports fp8, else 2 (bf16)."""
    return 1 if precision == "fp8" and gpu.supports_fp8 else 2


def is_valid_tensor_parallel(arch: ModelArchitecture, tensor_parallel: int) -> bool:
    """Power of two that divides both the attention-head and the KV-head counts."""
    return (
        tensor_parallel >= 1
        and tensor_parallel & (tensor_parallel - 1) == 0
        and arch.num_attention_heads % tensor_parallel == 0
        and arch.num_kv_heads % tensor_parallel == 0
    )


def valid_tensor_parallel_degrees(arch: ModelArchitecture, gpus_per_node: int) -> list[int]:
    """Every degree allowed by `is_valid_tensor_parallel` that fits in one node, ascending."""
    degrees, degree = [], 1
    while degree <= gpus_per_node:
        if is_valid_tensor_parallel(arch, degree):
            degrees.append(degree)
        degree *= 2
    return degrees


def max_num_seqs(gpu: GpuType) -> int:
    return MAX_NUM_SEQS_LARGE_GPU if gpu.memory_gib >= LARGE_GPU_GIB else MAX_NUM_SEQS_SMALL_GPU


def max_num_batched_tokens(gpu: GpuType) -> int:
    return MAX_NUM_BATCHED_TOKENS_LARGE_GPU if gpu.memory_gib >= LARGE_GPU_GIB else MAX_NUM_BATCHED_TOKENS_SMALL_GPU


def runtime_overhead_gib(arch: ModelArchitecture, gpu: GpuType, tensor_parallel: int) -> float:
    """Per-GPU memory that is neither weights nor KV cache (see the module docstring)."""
    tokens = max_num_batched_tokens(gpu)
    per_token_elements = 3 * arch.intermediate_size / tensor_parallel + ACTIVATION_HIDDEN_BUFFERS * arch.hidden_size
    activations = tokens * per_token_elements * BF16_BYTES + max_num_seqs(gpu) * arch.vocab_size * LOGITS_BYTES
    buffers = TENSOR_PARALLEL_BUFFERS_GIB if tensor_parallel > 1 else 0.0
    return CUDA_CONTEXT_GIB + buffers + CUDA_GRAPHS_GIB + activations / GIB


def blocks_for(tokens: int) -> int:
    """KV blocks one sequence of `tokens` tokens occupies."""
    return max(1, math.ceil(tokens / KV_BLOCK_TOKENS))


@dataclass(frozen=True)
class MemoryPlan:
    """How one GPU of a replica (architecture, GPU, precision, tensor-parallel degree) is used."""

    precision: str
    tensor_parallel: int
    memory_utilization: float
    gpu_memory_gib: float
    weights_gib: float
    weights_per_gpu_gib: float
    overhead_per_gpu_gib: float
    kv_bytes_per_element: int
    kv_bytes_per_token: int
    kv_bytes_per_token_per_gpu: float
    max_num_seqs: int

    @property
    def usable_gib(self) -> float:
        return self.memory_utilization * self.gpu_memory_gib

    @property
    def kv_budget_per_gpu_gib(self) -> float:
        """What is left for the KV cache on each GPU (negative when the weights do not fit)."""
        return self.usable_gib - self.weights_per_gpu_gib - self.overhead_per_gpu_gib

    @property
    def kv_blocks(self) -> int:
        """KV blocks the replica can hold (the same count on every GPU of the group)."""
        if self.kv_budget_per_gpu_gib <= 0:
            return 0
        return int(self.kv_budget_per_gpu_gib * GIB // (self.kv_bytes_per_token_per_gpu * KV_BLOCK_TOKENS))

    @property
    def kv_token_capacity(self) -> int:
        return self.kv_blocks * KV_BLOCK_TOKENS

    def fits_context(self, context_tokens: int) -> bool:
        """vLLM refuses to start unless one sequence of the full context fits in the KV cache."""
        return self.kv_blocks >= blocks_for(context_tokens)

    def max_concurrent_sequences(self, tokens_per_sequence: int) -> int:
        """Sequences of `tokens_per_sequence` tokens that fit at once, capped at max_num_seqs."""
        return min(self.max_num_seqs, self.kv_blocks // blocks_for(tokens_per_sequence))

    def memory_per_gpu_gib(self, sequences: int, tokens_per_sequence: int, context_tokens: int) -> float:
        """Memory one GPU needs to run `sequences` sequences of the given length at once.

        Never less than what one sequence of the full context needs, since vLLM checks that at
        start-up.
        """
        blocks = max(sequences * blocks_for(tokens_per_sequence), blocks_for(context_tokens))
        kv_gib = blocks * KV_BLOCK_TOKENS * self.kv_bytes_per_token_per_gpu / GIB
        return self.weights_per_gpu_gib + self.overhead_per_gpu_gib + kv_gib

    def required_gib_for_context(self, context_tokens: int) -> float:
        """Per-GPU memory for the weights, the overhead and one sequence of the full context."""
        return self.memory_per_gpu_gib(1, context_tokens, context_tokens)


def memory_plan(
    arch: ModelArchitecture,
    gpu: GpuType,
    precision: str,
    tensor_parallel: int,
    memory_utilization: float = DEFAULT_MEMORY_UTILIZATION,
) -> MemoryPlan:
    kv_element = kv_bytes_per_element(precision, gpu)
    kv_per_token = arch.kv_bytes_per_token(kv_element)
    return MemoryPlan(
        precision=precision,
        tensor_parallel=tensor_parallel,
        memory_utilization=memory_utilization,
        gpu_memory_gib=gpu.memory_gib,
        weights_gib=weights_gib(arch, precision),
        weights_per_gpu_gib=weight_bytes_per_gpu(arch, precision, tensor_parallel) / GIB,
        overhead_per_gpu_gib=runtime_overhead_gib(arch, gpu, tensor_parallel),
        kv_bytes_per_element=kv_element,
        kv_bytes_per_token=kv_per_token,
        kv_bytes_per_token_per_gpu=kv_per_token / tensor_parallel,
        max_num_seqs=max_num_seqs(gpu),
    )
