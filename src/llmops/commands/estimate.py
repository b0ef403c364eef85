"""`llmops estimate`: memory and speed of one replica (model, GPU type, precision, tensor parallel).

The concurrency the timings are reported at is, in this order: --concurrency C; else the
largest concurrency whose TPOT meets --tpot-ms; else the most sequences the KV cache holds at
input+output tokens each. TTFT is the prefill plus one step at that concurrency, without
queueing (a closed loop of C clients, as `vllm bench serve --max-concurrency C` runs).
Exit codes: 0 printed; 2 invalid input, one line per problem naming the option.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llmops.catalog import (
    ModelArchitecture,
    UnknownCatalogKey,
    architecture,
    architecture_from_hf_config,
    gpu_types,
)
from llmops.planning.performance import ReplicaPerformance
from llmops.planning.sizing import (
    DEFAULT_MEMORY_UTILIZATION,
    PRECISIONS,
    is_valid_tensor_parallel,
    memory_plan,
)

EXIT_OK = 0
EXIT_INVALID_INPUT = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "estimate",
        help="Estimate memory, throughput, TTFT and TPOT of one model replica.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--architecture", metavar="A", help="model catalog key, e.g. llama-3.1-70b")
    source.add_argument("--hf-config", metavar="P", help="path to a Hugging Face config.json")
    parser.add_argument("--gpu", required=True, metavar="G", help="GPU catalog key, e.g. H100-SXM-80GB")
    parser.add_argument("--precision", required=True, metavar="P", help=f"weight precision: {', '.join(PRECISIONS)}")
    parser.add_argument("--tp", required=True, type=int, metavar="N", help="tensor-parallel degree")
    parser.add_argument("--input-tokens", required=True, type=int, metavar="I", help="prompt length in tokens")
    parser.add_argument("--output-tokens", required=True, type=int, metavar="O", help="generated tokens")
    parser.add_argument("--concurrency", type=int, metavar="C", help="requests decoding at once")
    parser.add_argument("--tpot-ms", type=float, metavar="T", help="use the largest concurrency meeting this TPOT")
    parser.add_argument(
        "--max-context", type=int, metavar="N", help="longest request the replica must admit (default I+O)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=run)


def _resolve(args: argparse.Namespace, problems: list[str]) -> ModelArchitecture | None:
    try:
        if args.architecture is not None:
            return architecture(args.architecture)
        return architecture_from_hf_config(args.hf_config)
    except UnknownCatalogKey as exc:
        problems.append(f"--architecture: {exc}")
    except ValueError as exc:
        problems.append(f"--hf-config: {exc}")
    return None


def _check_positive(args: argparse.Namespace, problems: list[str]) -> None:
    for option, value in (
        ("--input-tokens", args.input_tokens),
        ("--output-tokens", args.output_tokens),
        ("--concurrency", args.concurrency),
        ("--tpot-ms", args.tpot_ms),
        ("--max-context", args.max_context),
        ("--tp", args.tp),
    ):
        if value is not None and value <= 0:
            problems.append(f"{option}: must be > 0 (got {value:g})")
    if args.concurrency is not None and args.tpot_ms is not None:
        problems.append("--concurrency, --tpot-ms: give at most one of them")


def _context_problems(args: argparse.Namespace, arch: ModelArchitecture) -> list[str]:
    """A request longer than the model's context window cannot be served; `llmops plan` agrees."""
    limit = arch.max_position_embeddings
    if limit <= 0 or min(args.input_tokens, args.output_tokens) <= 0:
        return []  # unknown window (config without it), or a count already reported as not positive
    if args.max_context is not None:
        if args.max_context > limit:
            return [f"--max-context: {args.max_context} tokens exceeds {arch.key}'s context window of {limit} tokens"]
        if args.input_tokens + args.output_tokens <= args.max_context:
            return []
    request_tokens = args.input_tokens + args.output_tokens
    if request_tokens > limit:
        return [
            f"--input-tokens, --output-tokens: {args.input_tokens} + {args.output_tokens} = {request_tokens} tokens "
            f"exceeds {arch.key}'s context window of {limit} tokens"
        ]
    return []


def estimate(args: argparse.Namespace) -> tuple[dict[str, Any] | None, list[str]]:
    """The report for the parsed arguments, or the list of problems with them."""
    problems: list[str] = []
    _check_positive(args, problems)
    arch = _resolve(args, problems)
    gpu = gpu_types().get(args.gpu)
    if gpu is None:
        problems.append(f"--gpu: unknown GPU type {args.gpu!r}; accepted: {', '.join(sorted(gpu_types()))}")
    if args.precision not in PRECISIONS:
        problems.append(f"--precision: must be one of {', '.join(PRECISIONS)} (got {args.precision!r})")
    elif gpu is not None and not gpu.supports(args.precision):
        supported = [p for p in PRECISIONS if gpu.supports(p)]
        problems.append(f"--precision: {gpu.name} does not support {args.precision}; accepted: {', '.join(supported)}")
    if arch is None and args.tp > 0 and args.tp & (args.tp - 1):
        problems.append(f"--tp: must be a power of two (got {args.tp})")
    if arch is not None and args.tp > 0 and not is_valid_tensor_parallel(arch, args.tp):
        problems.append(
            f"--tp: must be a power of two dividing {arch.key}'s {arch.num_attention_heads} attention heads "
            f"and {arch.num_kv_heads} KV heads (got {args.tp})"
        )
    if arch is not None:
        problems += _context_problems(args, arch)
    if problems or arch is None or gpu is None:
        return None, problems

    request_tokens = args.input_tokens + args.output_tokens
    max_context = args.max_context or request_tokens
    plan = memory_plan(arch, gpu, args.precision, args.tp)
    if not plan.fits_context(max_context):
        needed = plan.required_gib_for_context(max_context)
        return None, [
            f"--tp: {arch.key} at {args.precision} on {args.tp} x {gpu.name} needs {needed:.1f} GiB per GPU for "
            f"weights, runtime overhead and one {max_context}-token sequence, but a GPU holds "
            f"{plan.usable_gib:.1f} GiB at utilisation {DEFAULT_MEMORY_UTILIZATION:.2f}; raise --tp or lower "
            "--precision or --max-context"
        ]
    max_sequences = plan.max_concurrent_sequences(request_tokens)
    perf = ReplicaPerformance.for_plan(arch, gpu, plan)

    if args.concurrency is not None:
        concurrency, basis = args.concurrency, "--concurrency"
        if concurrency > max_sequences:
            return None, [
                f"--concurrency: at most {max_sequences} sequences of {request_tokens} tokens fit in the KV cache "
                f"(got {concurrency})"
            ]
    elif args.tpot_ms is not None:
        concurrency = perf.largest_concurrency_within(args.tpot_ms / 1e3, max_sequences, args.input_tokens,
                                                      args.output_tokens)
        basis = "--tpot-ms"
        if concurrency == 0:
            single = perf.tpot_s(1, args.input_tokens, args.output_tokens) * 1e3
            return None, [f"--tpot-ms: unattainable; one request alone decodes at {single:.1f} ms per token"]
    else:
        concurrency, basis = max_sequences, "max"

    tpot_s = perf.tpot_s(concurrency, args.input_tokens, args.output_tokens)
    throughput_rps = perf.throughput_rps(concurrency, args.input_tokens, args.output_tokens)
    report = {
        "architecture": arch.key,
        "params_billion": round(arch.params_billion, 3),
        "active_params_billion": round(arch.active_params / 1e9, 3),
        "gpu": gpu.name,
        "precision": args.precision,
        "tensor_parallel": args.tp,
        "kv_cache_dtype": "fp8" if plan.kv_bytes_per_element == 1 else "bf16",
        "weights_gib": round(plan.weights_gib, 2),
        "weights_per_gpu_gib": round(plan.weights_per_gpu_gib, 2),
        "runtime_overhead_per_gpu_gib": round(plan.overhead_per_gpu_gib, 2),
        "kv_bytes_per_token": plan.kv_bytes_per_token,
        "kv_cache_tokens": plan.kv_token_capacity,
        "max_concurrent_sequences": max_sequences,
        "concurrency": concurrency,
        "concurrency_from": basis,
        "memory_per_gpu_gib": round(plan.memory_per_gpu_gib(concurrency, request_tokens, max_context), 2),
        "output_tokens_per_second": round(throughput_rps * args.output_tokens, 1),
        "requests_per_second": round(throughput_rps, 3),
        "ttft_ms": round(perf.unloaded_ttft_s(concurrency, args.input_tokens, args.output_tokens) * 1e3, 1),
        "tpot_ms": round(tpot_s * 1e3, 2),
        "input_tokens": args.input_tokens,
        "output_tokens": args.output_tokens,
    }
    return report, []


_TEXT_ROWS = (
    ("weights_gib", "weights (GiB, whole model)"),
    ("weights_per_gpu_gib", "weights per GPU (GiB)"),
    ("runtime_overhead_per_gpu_gib", "runtime overhead per GPU (GiB)"),
    ("kv_bytes_per_token", "KV cache bytes per token"),
    ("kv_cache_dtype", "KV cache dtype"),
    ("kv_cache_tokens", "KV cache capacity (tokens)"),
    ("max_concurrent_sequences", "max concurrent sequences"),
    ("concurrency", "concurrency used"),
    ("memory_per_gpu_gib", "memory per GPU at that concurrency (GiB)"),
    ("output_tokens_per_second", "output tokens per second"),
    ("requests_per_second", "requests per second"),
    ("ttft_ms", "TTFT (ms, no queueing)"),
    ("tpot_ms", "TPOT (ms)"),
)


def format_text(report: dict[str, Any]) -> str:
    title = (
        f"{report['architecture']} ({report['params_billion']:g}B) at {report['precision']} on "
        f"{report['tensor_parallel']} x {report['gpu']}, {report['input_tokens']} in / "
        f"{report['output_tokens']} out tokens, concurrency from {report['concurrency_from']}"
    )
    width = max(len(label) for _, label in _TEXT_ROWS)
    lines = [title] + [f"  {label:<{width}}  {report[field]}" for field, label in _TEXT_ROWS]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report, problems = estimate(args)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID_INPUT
    print(json.dumps(report, indent=2) if args.json else format_text(report))
    return EXIT_OK
