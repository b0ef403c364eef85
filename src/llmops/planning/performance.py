"""Performance model of one replica: decode step, prefill, TTFT, TPOT and sustainable rate.

All times are seconds inside this module (milliseconds only at its edges).

Decode step at batch B (B running sequences, each with a mean KV length L):
    bytes per GPU  = weights read once (for MoE: only the experts the batch touches)
                     + B * L * kv_bytes_per_token / tp
    flops per GPU  = (2 * active_params * B + attention 4 * B * L * heads * head_dim * layers) / tp
    step           = max(bytes / (bandwidth * e_bw), flops / (peak * e_compute))
                     + 2 all-reduces per layer (tp > 1) + host overhead (fixed + per sequence)
Prefill of I tokens (compute-bound):
    flops          = 2 * active_params * I + 2 * layers * heads * head_dim * I^2 (causal attention)
    prefill        = max(flops / tp / (peak * e_prefill), weight read) + its all-reduces
All-reduce of M bytes over a ring of tp GPUs: latency + 2 (tp-1)/tp * M / (link * e_link).

Serving model (continuous batching with chunked prefill, as vLLM runs it). With at most B
requests decoding at once, each request costs the engine one prefill p and O decode steps
shared with the other B-1 sequences. At full occupancy the engine spends a fraction lambda*p of
its time on prefills and the rest on steps of B tokens, so
    throughput  lambda(B) = B / (O * s(B) + B * p)          (Little's law on B decode slots)
    TPOT(B)     = s(B) / (1 - lambda(B) * p) = s(B) + B * p / O
The largest B whose TPOT(B) meets the SLO is chosen (TPOT grows with B). Running exactly at
lambda(B) would make queues grow without bound, so the rate is derated until
    TTFT_p90 = W_slot,p90 + W_prefill,p90 + p + s(B) <= SLO
where W_slot is the Erlang-C (M/M/c) wait for one of the B slots, each held for O*TPOT + p,
and W_prefill the M/D/1 wait of prefills behind each other (utilisation lambda*p). The TTFT
SLO is read as a 90th percentile (the sum of the two waits' percentiles bounds it from above);
the reported TPOT is TPOT(B), the mean at full occupancy and so an upper bound at any rate up
to the sustained one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from llmops.catalog import GpuType, ModelArchitecture

from .sizing import BF16_BYTES, WEIGHT_BYTES_PER_PARAM, MemoryPlan

_EFFICIENCY_FILE = Path(__file__).resolve().parent / "efficiency.yaml"


@dataclass(frozen=True)
class LinkEfficiency:
    latency_us: float
    bandwidth_efficiency: float


@dataclass(frozen=True)
class Efficiency:
    decode_bandwidth_efficiency: float
    int4_bandwidth_efficiency: float
    decode_compute_efficiency: float
    prefill_compute_efficiency: dict[str, float]
    step_overhead_ms: float
    per_sequence_overhead_us: float
    allreduce: dict[str, LinkEfficiency]

    def link(self, interconnect: str) -> LinkEfficiency:
        if interconnect in self.allreduce:
            return self.allreduce[interconnect]
        # Unknown links are treated as the slowest one known.
        return max(self.allreduce.values(), key=lambda link: link.latency_us)


def _efficiency_from(data: dict[str, Any]) -> Efficiency:
    return Efficiency(
        decode_bandwidth_efficiency=float(data["decode_bandwidth_efficiency"]),
        int4_bandwidth_efficiency=float(data["int4_bandwidth_efficiency"]),
        decode_compute_efficiency=float(data["decode_compute_efficiency"]),
        prefill_compute_efficiency={k: float(v) for k, v in data["prefill_compute_efficiency"].items()},
        step_overhead_ms=float(data["step_overhead_ms"]),
        per_sequence_overhead_us=float(data["per_sequence_overhead_us"]),
        allreduce={name: LinkEfficiency(**fields) for name, fields in data["allreduce"].items()},
    )


@cache
def efficiency() -> Efficiency:
    with open(_EFFICIENCY_FILE, encoding="utf-8") as handle:
        return _efficiency_from(yaml.safe_load(handle))


@dataclass(frozen=True)
class ReplicaPerformance:
    """Timing model of one replica: a model at a precision on `tensor_parallel` GPUs of one type."""

    arch: ModelArchitecture
    gpu: GpuType
    precision: str
    tensor_parallel: int
    kv_bytes_per_element: int

    @classmethod
    def for_plan(cls, arch: ModelArchitecture, gpu: GpuType, plan: MemoryPlan) -> ReplicaPerformance:
        return cls(arch, gpu, plan.precision, plan.tensor_parallel, plan.kv_bytes_per_element)

    # -- building blocks -------------------------------------------------------------------------

    def _bandwidth_bytes_per_s(self) -> float:
        eff = efficiency()
        factor = eff.decode_bandwidth_efficiency
        if self.precision == "int4":
            factor *= eff.int4_bandwidth_efficiency
        return self.gpu.hbm_bandwidth_gb_s * 1e9 * factor

    def _peak_flops(self) -> float:
        return self.gpu.peak_tflops(self.precision) * 1e12

    def weight_bytes_read_per_gpu(self, batch: int) -> float:
        """Weight bytes one decode step streams from one GPU's memory."""
        arch = self.arch
        per_param = WEIGHT_BYTES_PER_PARAM[self.precision]
        linear = arch.linear_params
        if arch.is_moe:
            # Each token picks k of E experts; a batch touches E * (1 - (1 - k/E)^B) of them.
            expert_params_total = (arch.linear_params - arch.active_linear_params) * arch.num_experts / (
                arch.num_experts - arch.experts_per_token
            )
            dense_params = arch.linear_params - expert_params_total
            touched = arch.num_experts * (1 - (1 - arch.experts_per_token / arch.num_experts) ** batch)
            linear = dense_params + expert_params_total * touched / arch.num_experts
        # The lm_head is read every step; the input embedding is a gather of B rows.
        lm_head = arch.embedding_params if arch.tie_word_embeddings else arch.embedding_params / 2
        sharded = linear * per_param + lm_head * BF16_BYTES
        return sharded / self.tensor_parallel + arch.other_params * BF16_BYTES

    def allreduce_s(self, tokens: int) -> float:
        """One all-reduce of `tokens` hidden states (bf16) across the tensor-parallel group."""
        if self.tensor_parallel == 1:
            return 0.0
        link = efficiency().link(self.gpu.interconnect)
        message = tokens * self.arch.hidden_size * BF16_BYTES
        ring_factor = 2 * (self.tensor_parallel - 1) / self.tensor_parallel
        bandwidth = self.gpu.interconnect_gb_s * 1e9 * link.bandwidth_efficiency
        return link.latency_us * 1e-6 + ring_factor * message / bandwidth

    def _allreduces_per_pass_s(self, tokens: int) -> float:
        # Megatron-style tensor parallelism: one after attention, one after the MLP, every layer.
        return 2 * self.arch.num_layers * self.allreduce_s(tokens)

    def _attention_flops(self, query_tokens: float, kv_tokens: float) -> float:
        arch = self.arch
        # QK^T and PV: 2 matmuls of 2 * q * kv * head_dim flops per head and layer.
        return 4 * query_tokens * kv_tokens * arch.num_attention_heads * arch.head_dim * arch.num_layers

    def _matmul_params(self) -> int:
        # Parameters a token multiplies through: active projections plus the lm_head.
        arch = self.arch
        lm_head = arch.embedding_params if arch.tie_word_embeddings else arch.embedding_params // 2
        return arch.active_linear_params + lm_head

    def decode_step_s(self, batch: int, mean_context_tokens: float) -> float:
        """Time of one decode step with `batch` sequences of `mean_context_tokens` KV tokens."""
        eff = efficiency()
        kv_bytes = batch * mean_context_tokens * self.arch.kv_bytes_per_token(self.kv_bytes_per_element)
        bytes_per_gpu = self.weight_bytes_read_per_gpu(batch) + kv_bytes / self.tensor_parallel
        memory_s = bytes_per_gpu / self._bandwidth_bytes_per_s()
        flops = 2 * self._matmul_params() * batch + self._attention_flops(batch, mean_context_tokens)
        compute_s = flops / self.tensor_parallel / (self._peak_flops() * eff.decode_compute_efficiency)
        host_s = eff.step_overhead_ms * 1e-3 + batch * eff.per_sequence_overhead_us * 1e-6
        return max(memory_s, compute_s) + self._allreduces_per_pass_s(batch) + host_s

    def prefill_s(self, input_tokens: int) -> float:
        """Compute time of one request's prefill (its share of the engine's time)."""
        eff = efficiency()
        flops = 2 * self._matmul_params() * input_tokens + self._attention_flops(input_tokens, input_tokens) / 2
        compute_s = flops / self.tensor_parallel / (self._peak_flops() * eff.prefill_compute_efficiency[self.precision])
        memory_s = self.weight_bytes_read_per_gpu(input_tokens) / self._bandwidth_bytes_per_s()
        return max(compute_s, memory_s) + self._allreduces_per_pass_s(input_tokens)

    # -- serving ---------------------------------------------------------------------------------

    def tpot_s(self, concurrency: int, input_tokens: int, output_tokens: int) -> float:
        """TPOT with `concurrency` requests decoding at once, prefills of newcomers included."""
        mean_context = input_tokens + output_tokens / 2
        step = self.decode_step_s(concurrency, mean_context)
        return step + concurrency * self.prefill_s(input_tokens) / output_tokens

    def throughput_rps(self, concurrency: int, input_tokens: int, output_tokens: int) -> float:
        """Requests a second completed when `concurrency` slots are always full."""
        mean_context = input_tokens + output_tokens / 2
        step = self.decode_step_s(concurrency, mean_context)
        return concurrency / (output_tokens * step + concurrency * self.prefill_s(input_tokens))

    def unloaded_ttft_s(self, concurrency: int, input_tokens: int, output_tokens: int) -> float:
        """TTFT without queueing: the prefill plus the step that emits the first token."""
        return self.prefill_s(input_tokens) + self.decode_step_s(concurrency, input_tokens + output_tokens / 2)

    def largest_concurrency_within(self, tpot_limit_s: float, max_concurrency: int, input_tokens: int,
                                   output_tokens: int) -> int:
        """Largest concurrency in 1..max_concurrency whose TPOT is within the limit; 0 if none."""
        low, high = 0, max_concurrency
        while low < high:
            middle = (low + high + 1) // 2
            if self.tpot_s(middle, input_tokens, output_tokens) <= tpot_limit_s:
                low = middle
            else:
                high = middle - 1
        return low


# The TTFT SLO is read as a 90th percentile: the share of requests allowed to wait longer.
TTFT_TAIL_PROBABILITY = 0.10
# Above this many servers Erlang C comes from the Halfin-Whitt approximation (exact within a
# few per cent there) instead of the O(c) recursion, which the solver cannot afford per call.
_EXACT_ERLANG_MAX_SERVERS = 64


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with `offered_load` = lambda * service."""
    if offered_load <= 0:
        return 0.0
    if offered_load >= servers:
        return 1.0
    if servers <= _EXACT_ERLANG_MAX_SERVERS:
        # Erlang B by its stable recursion, then Erlang C from it.
        erlang_b = 1.0
        for k in range(1, servers + 1):
            erlang_b = offered_load * erlang_b / (k + offered_load * erlang_b)
        utilisation = offered_load / servers
        return erlang_b / (1 - utilisation + utilisation * erlang_b)
    beta = (servers - offered_load) / math.sqrt(offered_load)
    if beta > 37:  # the density underflows; no arrival waits
        return 0.0
    density = math.exp(-beta * beta / 2) / math.sqrt(2 * math.pi)
    cumulative = 0.5 * (1 + math.erf(beta / math.sqrt(2)))
    return 1 / (1 + beta * cumulative / density)


def erlang_c_wait_quantile_s(servers: int, arrival_rps: float, service_s: float,
                             tail: float = TTFT_TAIL_PROBABILITY) -> float:
    """Wait exceeded by a fraction `tail` of arrivals in an M/M/c queue (P(W>t) = C e^-(c-a)t/T)."""
    offered = arrival_rps * service_s
    if offered >= servers:
        return math.inf
    waiting = erlang_c(servers, offered)
    if waiting <= tail:
        return 0.0
    return service_s / (servers - offered) * math.log(waiting / tail)


def md1_wait_quantile_s(arrival_rps: float, service_s: float, tail: float = TTFT_TAIL_PROBABILITY) -> float:
    """Wait exceeded by a fraction `tail` of arrivals in an M/D/1 queue.

    The mean wait is Pollaczek-Khinchine's rho*D/(2(1-rho)); an arrival waits with probability
    rho, and the conditional wait is taken as exponential with the matching mean.
    """
    utilisation = arrival_rps * service_s
    if utilisation >= 1:
        return math.inf
    if utilisation <= tail:
        return 0.0
    mean_wait = utilisation * service_s / (2 * (1 - utilisation))
    return mean_wait / utilisation * math.log(utilisation / tail)


@dataclass(frozen=True)
class OperatingPoint:
    """A replica serving a traffic shape at a sustained rate."""

    concurrency: int
    capacity_requests_per_second: float
    ttft_s: float
    tpot_s: float

    @property
    def output_tokens_per_second(self) -> float:
        return self.concurrency / self.tpot_s


@dataclass(frozen=True)
class _ServiceTimes:
    """What one concurrency level costs, computed once and reused by the rate search."""

    concurrency: int
    prefill_s: float
    tpot_s: float
    unloaded_ttft_s: float
    throughput_rps: float

    def ttft_s(self, rate_rps: float, output_tokens: int) -> float:
        slot_hold_s = output_tokens * self.tpot_s + self.prefill_s
        return (
            erlang_c_wait_quantile_s(self.concurrency, rate_rps, slot_hold_s)
            + md1_wait_quantile_s(rate_rps, self.prefill_s)
            + self.unloaded_ttft_s
        )


def _service_times(perf: ReplicaPerformance, concurrency: int, input_tokens: int,
                   output_tokens: int) -> _ServiceTimes:
    prefill = perf.prefill_s(input_tokens)
    step = perf.decode_step_s(concurrency, input_tokens + output_tokens / 2)
    return _ServiceTimes(
        concurrency=concurrency,
        prefill_s=prefill,
        tpot_s=step + concurrency * prefill / output_tokens,
        unloaded_ttft_s=prefill + step,
        throughput_rps=concurrency / (output_tokens * step + concurrency * prefill),
    )


def ttft_at_rate_s(perf: ReplicaPerformance, concurrency: int, rate_rps: float, input_tokens: int,
                   output_tokens: int) -> float:
    """90th-percentile TTFT at `rate_rps` arrivals a second with at most `concurrency` decoding."""
    return _service_times(perf, concurrency, input_tokens, output_tokens).ttft_s(rate_rps, output_tokens)


def _rate_meeting_ttft(times: _ServiceTimes, output_tokens: int, ttft_limit_s: float) -> float:
    """Largest arrival rate at which the TTFT percentile stays within the limit (0 if none)."""
    if times.unloaded_ttft_s > ttft_limit_s:
        return 0.0
    low, high = 0.0, times.throughput_rps
    # 24 halvings: the rate is known to 1e-7 of the ceiling, far below the model's accuracy.
    for _ in range(24):
        middle = (low + high) / 2
        if times.ttft_s(middle, output_tokens) <= ttft_limit_s:
            low = middle
        else:
            high = middle
    return low


def _candidate_concurrencies(best: int) -> list[int]:
    # TPOT and throughput both grow with concurrency, but a smaller batch has a shorter prefill
    # queue and step; a few geometric steps below the TPOT-limited batch cover the trade-off.
    candidates, value = [], best
    while value >= 1 and len(candidates) < 4:
        candidates.append(value)
        value = value * 3 // 4 if value > 4 else value - 1
    return candidates


def sustainable_operating_point(
    perf: ReplicaPerformance,
    max_concurrency: int,
    input_tokens: int,
    output_tokens: int,
    ttft_limit_ms: float,
    tpot_limit_ms: float,
) -> OperatingPoint | None:
    """The highest-rate operating point meeting both SLOs, or None when there is none."""
    best_batch = perf.largest_concurrency_within(tpot_limit_ms / 1e3, max_concurrency, input_tokens, output_tokens)
    best: OperatingPoint | None = None
    for concurrency in _candidate_concurrencies(best_batch):
        times = _service_times(perf, concurrency, input_tokens, output_tokens)
        rate = _rate_meeting_ttft(times, output_tokens, ttft_limit_ms / 1e3)
        if rate <= 0 or (best is not None and rate <= best.capacity_requests_per_second):
            continue
        best = OperatingPoint(
            concurrency=concurrency,
            capacity_requests_per_second=rate,
            ttft_s=times.ttft_s(rate, output_tokens),
            tpot_s=times.tpot_s,
        )
    return best
