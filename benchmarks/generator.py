"""Seeded generator of heterogeneous fleets and model mixes for the planner benchmarks.

A fleet mixes AWS GPU instance types (prices from the instance catalog) across zones, plus fixed
bare-metal pools (owned A100/H100 machines priced at their amortised hourly cost, about 40% of
the matching cloud instance). A model mix draws catalog architectures with realistic traffic
shapes and SLOs: chat (short prompts), RAG (long prompts), summarisation, batch-ish assistants.

Sizes are (total available nodes, models); the same seed always gives the same instance.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

import yaml

from llmops.catalog import instance_types
from llmops.planning.spec import Fleet, ModelsFile, parse_fleet, parse_models

SIZES: dict[str, tuple[int, int]] = {
    "small": (20, 5),
    "medium": (200, 50),
    "large": (2000, 300),
}

# Cloud instance types offered in every zone (one pool each); weights shape the node split.
CLOUD_INSTANCES: dict[str, float] = {
    "p5.48xlarge": 1.0,  # H100-SXM-80GB x8
    "p5en.48xlarge": 0.6,  # H200-SXM-141GB x8
    "p4de.24xlarge": 0.8,  # A100-SXM-80GB x8
    "p4d.24xlarge": 0.8,  # A100-SXM-40GB x8
    "g6e.48xlarge": 1.0,  # L40S-48GB x8
    "g6e.12xlarge": 0.8,  # L40S-48GB x4
    "g5.12xlarge": 0.8,  # A10G-24GB x4
    "g6.12xlarge": 1.0,  # L4-24GB x4
    "g6.xlarge": 1.0,  # L4-24GB x1
    "p6-b200.48xlarge": 0.3,  # B200-180GB x8
}
# Owned machines: amortised hardware, power and space, relative to the cloud price.
FIXED_INSTANCES: dict[str, float] = {"p4de.24xlarge": 0.4, "p5.48xlarge": 0.45}
FIXED_SHARE = 0.15

# (catalog key, relative frequency, median requests/s per model)
ARCHITECTURES: list[tuple[str, float, float]] = [
    ("llama-3.1-8b", 0.26, 4.0),
    ("mistral-7b", 0.12, 3.0),
    ("qwen2.5-7b", 0.14, 3.0),
    ("gemma-2-27b", 0.12, 1.5),
    ("mixtral-8x7b", 0.10, 1.5),
    ("llama-3.1-70b", 0.14, 1.0),
    ("qwen2.5-72b", 0.09, 1.0),
    ("llama-3.1-405b", 0.03, 0.3),
]
# (name, input tokens, output tokens, ttft_ms, tpot_ms)
WORKLOADS: list[tuple[str, int, int, float, float]] = [
    ("chat", 512, 256, 1500, 60),
    ("rag", 3072, 256, 3000, 80),
    ("summarise", 6144, 512, 6000, 100),
    ("assistant", 1024, 512, 2000, 50),
    ("code", 1536, 128, 1000, 40),
]
PRECISION_CHOICES: list[list[str]] = [["bf16"], ["fp8", "bf16"], ["int4", "fp8", "bf16"], ["fp8"], ["bf16", "int8"]]


def zones_for(total_nodes: int) -> list[str]:
    return ["us-east-1a", "us-east-1b"] if total_nodes < 100 else ["us-east-1a", "us-east-1b", "us-east-1c"]


def generate_fleet(total_nodes: int, rng: random.Random) -> dict:
    """A fleet dict with exactly `total_nodes` available nodes (cloud max_nodes plus fixed machines)."""
    catalog = instance_types()
    zones = zones_for(total_nodes)
    fixed_nodes = max(2, round(total_nodes * FIXED_SHARE))
    cloud_nodes = total_nodes - fixed_nodes
    # Small fleets cannot offer every type in every zone; keep a seeded subset then.
    offers = [(zone, name) for zone in zones for name in CLOUD_INSTANCES]
    rng.shuffle(offers)
    offers = sorted(offers[: max(4, min(len(offers), cloud_nodes // 2))])
    weights = [CLOUD_INSTANCES[name] * rng.uniform(0.5, 1.5) for _, name in offers]
    counts = _split(cloud_nodes, weights)
    pools = []
    for (zone, name), count in zip(offers, counts, strict=True):
        pools.append({"name": f"{name.replace('.', '-')}-{zone[-2:]}", "instance_type": name, "zone": zone,
                      "max_nodes": count})
    fixed_offers = sorted(FIXED_INSTANCES)
    for index, count in enumerate(_split(fixed_nodes, [1.0] * len(fixed_offers))):
        if count == 0:
            continue
        name = fixed_offers[index]
        instance = catalog[name]
        tag = instance.gpu_type.split("-")[0].lower()
        pools.append({
            "name": f"owned-{tag}",
            "gpu_type": instance.gpu_type,
            "gpus_per_node": instance.gpus,
            "node_hourly_cost": round(instance.hourly_usd * FIXED_INSTANCES[name], 2),
            "zone": "dc1-row1",
            "nodes": [f"owned-{tag}-{i:03d}" for i in range(count)],
        })
    return {"pools": pools}


def _split(total: int, weights: list[float]) -> list[int]:
    """Integer parts of `total` proportional to `weights`, each at least 1 while there is enough."""
    if total <= 0:
        return [0] * len(weights)
    raw = [total * w / sum(weights) for w in weights]
    counts = [max(1, math.floor(r)) if total >= len(weights) else 0 for r in raw]
    while sum(counts) > total:
        counts[counts.index(max(counts))] -= 1
    order = sorted(range(len(weights)), key=lambda i: raw[i] - math.floor(raw[i]), reverse=True)
    position = 0
    while sum(counts) < total:
        counts[order[position % len(order)]] += 1
        position += 1
    return counts


def generate_models(count: int, rng: random.Random, load: float = 1.0) -> dict:
    keys = [a[0] for a in ARCHITECTURES]
    frequencies = [a[1] for a in ARCHITECTURES]
    median_rps = {a[0]: a[2] for a in ARCHITECTURES}
    models = []
    for index in range(count):
        key = rng.choices(keys, frequencies)[0]
        workload, input_tokens, output_tokens, ttft, tpot = rng.choice(WORKLOADS)
        rps = round(median_rps[key] * load * math.exp(rng.gauss(0, 0.8)), 2)
        spread = rng.choices(["zone", "node", "none"], [0.5, 0.2, 0.3])[0]
        models.append({
            "name": f"{key.replace('.', '-')}-{workload}-{index}",
            "architecture": key,
            "precisions": rng.choice(PRECISION_CHOICES),
            "max_context_tokens": 2 ** math.ceil(math.log2(input_tokens + output_tokens)),
            "traffic": {"requests_per_second": max(0.05, rps), "input_tokens": input_tokens,
                        "output_tokens": output_tokens},
            "slo": {"ttft_ms": ttft, "tpot_ms": tpot},
            "min_replicas": rng.choices([1, 2, 3], [0.5, 0.4, 0.1])[0],
            "spread": spread,
            "priority": rng.choices([0, 10], [0.8, 0.2])[0],
        })
    return {"models": models}


def generate(size: str, seed: int) -> tuple[Fleet, ModelsFile]:
    """The benchmark instance of one size; also valid planner input files when dumped to YAML."""
    total_nodes, model_count = SIZES[size]
    rng = random.Random(f"{size}-{seed}")
    return parse_fleet(generate_fleet(total_nodes, rng)), parse_models(generate_models(model_count, rng))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a benchmark fleet.yml and models.yml.")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output-dir", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    fleet, models = generate(args.size, args.seed)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, document in (("fleet.yml", fleet), ("models.yml", models)):
        data = document.model_dump(mode="json", exclude_none=True)
        (args.output_dir / name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    print(f"wrote {args.output_dir / 'fleet.yml'} and {args.output_dir / 'models.yml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
