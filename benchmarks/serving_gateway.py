#!/usr/bin/env python3
"""What the gateway costs: the same load straight to one replica and through Nginx + njs.

Starts, on loopback only, one llama.cpp llama-server replica (SmolLM2-135M-Instruct on the CPU, from
scripts/llama-peer.sh) and Nginx with the gateway role's own templates and njs router, rendered by
llmops.serving.gateway from a one-replica serving spec. Then:

1. latency: N interleaved pairs of single streaming requests (direct and through the gateway, in
   alternating order) at concurrency 1; the added time to first token (TTFT) is the median of the
   per-pair differences (the goal's measure), shown beside the difference of the two p50s/p95s;
2. throughput: C concurrent streaming clients for D seconds direct, then through the gateway, then
   both again in the opposite order (one connection per request on both paths); output tokens/s
   through the gateway relative to direct, and TTFT p50/p95 under that load.

Goal: added TTFT p50 <= 2 ms and gateway throughput >= 95 % of direct. Prints a table and, with
--json, the raw numbers. Needs nginx and libnginx-mod-http-js (Debian), run as root or a user that
may start nginx on a high port.

    .venv/bin/python benchmarks/serving_gateway.py --pairs 100 --concurrency 16 --duration 30
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jinja2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_load import Client, percentile, run  # noqa: E402

from llmops.serving.gateway import gateway_routes  # noqa: E402

ROLE = ROOT / "collections/ansible_collections/llmops/datacenter/roles/gateway"
MODEL = "smollm2"
GOAL_ADDED_P50_S = 0.002
GOAL_THROUGHPUT_RATIO = 0.95


def free_ports(count: int) -> list[int]:
    """Distinct free ports: all probes stay bound until every port is chosen."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def wait_http(url: str, path: str, timeout: float = 60, expect=(200,)) -> None:
    host, port = url.split("//")[1].split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection(host, int(port), timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status in expect:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{url}{path} did not answer within {timeout} s")


def render_gateway(workdir: Path, replica_port: int, gateway_port: int, status_port: int, key: str) -> Path:
    """The role's templates, rendered exactly as the role renders them (plain Jinja2 builtins only)."""
    spec = {
        "models": {MODEL: {"tenant": "bench", "targets": [{"replica": "r0", "address": "127.0.0.1", "port": replica_port, "weight": 1.0}]}},
        "tenants": {"bench": {"models": [MODEL]}},
    }
    variables = {
        "_gateway_routes": gateway_routes(spec, [{"id": "bench-1", "tenant": "bench", "key": key}]),
        "_gateway_dir": str(workdir),
        "_gateway_njs_module": "/usr/lib/nginx/modules/ngx_http_js_module.so",
        "_gateway_user": "nobody nogroup" if os.geteuid() == 0 else os.environ.get("USER", "nobody"),
        "_gateway_pid_file": str(workdir / "nginx.pid"),
        "_gateway_error_log": str(workdir / "error.log"),
        "_gateway_tls": False,
        "gateway_worker_processes": 1,
        "gateway_worker_connections": 1024,
        "gateway_access_log": str(workdir / "access.log"),
        "gateway_rate_limit_zone_size": "1m",
        # The benchmark measures routing, not the limiter's 429s.
        "gateway_rate_limit": "10000r/s",
        "gateway_rate_limit_burst": 10000,
        "gateway_max_body_size": "1m",
        "gateway_max_fails": 1,
        "gateway_fail_timeout": "10s",
        "gateway_connect_timeout": "2s",
        "gateway_read_timeout": "600s",
        "gateway_next_upstream_tries": 3,
        "gateway_next_upstream_timeout": "10s",
        "gateway_upstream_keepalive": 0,
        "gateway_upstream_keepalive_timeout": "4s",
        "gateway_listen_address": "127.0.0.1",
        "gateway_port": gateway_port,
        "gateway_status_port": status_port,
    }
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROLE / "templates")), keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    for template, name in (("nginx.conf.j2", "nginx.conf"), ("llmops_gateway_data.js.j2", "llmops_gateway_data.js")):
        (workdir / name).write_text(environment.get_template(template).render(**variables), encoding="utf-8")
    shutil.copy(ROLE / "files/llmops_gateway.js", workdir / "llmops_gateway.js")
    return workdir / "nginx.conf"


def ttft(client: Client, max_tokens: int) -> float | None:
    record = client.stream_chat(MODEL, "Say hello.", max_tokens)
    return record["ttft"] if record["error"] is None else None


def latency_pairs(direct_url: str, gateway_url: str, key: str, pairs: int, max_tokens: int) -> dict:
    direct, gateway = Client(direct_url, None, 60), Client(gateway_url, key, 60)
    for _ in range(3):  # warm both paths (connections, njs, the server's prompt cache)
        ttft(direct, max_tokens), ttft(gateway, max_tokens)
    direct_ttfts, gateway_ttfts, differences = [], [], []
    for index in range(pairs):
        first, second = ((direct, gateway) if index % 2 == 0 else (gateway, direct))
        a, b = ttft(first, max_tokens), ttft(second, max_tokens)
        if a is None or b is None:
            continue
        d, g = (a, b) if first is direct else (b, a)
        direct_ttfts.append(d)
        gateway_ttfts.append(g)
        differences.append(g - d)
    direct.close()
    gateway.close()
    return {
        "pairs": len(differences),
        "direct_p50_s": percentile(direct_ttfts, 0.5),
        "direct_p95_s": percentile(direct_ttfts, 0.95),
        "gateway_p50_s": percentile(gateway_ttfts, 0.5),
        "gateway_p95_s": percentile(gateway_ttfts, 0.95),
        "added_p50_s": percentile(gateway_ttfts, 0.5) - percentile(direct_ttfts, 0.5),
        "added_p95_s": percentile(gateway_ttfts, 0.95) - percentile(direct_ttfts, 0.95),
        "paired_difference_p50_s": statistics.median(differences),
    }


def throughput(direct_url: str, gateway_url: str, key: str, concurrency: int, duration: float, max_tokens: int) -> dict:
    runs = {"direct": [], "gateway": []}
    # Untimed first: every slot of the replica holds a prompt prefix afterwards, so neither path
    # pays the cold prefill that only the first requests after a start pay.
    for url, api_key in ((direct_url, None), (gateway_url, key)):
        run(url, api_key, MODEL, concurrency, 1, max_tokens, keep_alive=False)
    for order in (("direct", "gateway"), ("gateway", "direct")):
        for path in order:
            url, api_key = (direct_url, None) if path == "direct" else (gateway_url, key)
            # One connection per request on both paths: llama-server holds an HTTP thread per open
            # connection, so kept-alive direct clients would queue behind each other, not the model.
            summary, _ = run(url, api_key, MODEL, concurrency, duration / 2, max_tokens, keep_alive=False)
            runs[path].append(summary)
    result = {}
    for path, summaries in runs.items():
        tokens = sum(s["output_tokens"] for s in summaries)
        wall = sum(s["wall_s"] for s in summaries)
        result[path] = {
            "requests": sum(s["requests"] for s in summaries),
            "errors": sum(s["errors"] for s in summaries),
            "output_tokens_per_s": tokens / wall if wall else 0.0,
            "ttft_p50_s": statistics.fmean(s["ttft_p50_s"] for s in summaries if s["ttft_p50_s"] is not None),
            "ttft_p95_s": statistics.fmean(s["ttft_p95_s"] for s in summaries if s["ttft_p95_s"] is not None),
        }
    result["throughput_ratio"] = result["gateway"]["output_tokens_per_s"] / result["direct"]["output_tokens_per_s"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="interleaved single-request pairs for latency")
    parser.add_argument("--concurrency", type=int, default=16, help="streaming clients for throughput")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per path (split in two runs)")
    parser.add_argument("--max-tokens", type=int, default=32, help="output tokens per request under load")
    parser.add_argument("--threads", type=int, default=1, help="llama-server compute threads")
    parser.add_argument("--json", action="store_true", help="also print the raw numbers as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 64 or not 0 < args.duration <= 300 or not 1 <= args.pairs <= 1000:
        parser.error("bounded load only: --concurrency 1-64, --duration up to 300 s, --pairs 1-1000")
    if not shutil.which("nginx") or not Path("/usr/lib/nginx/modules/ngx_http_js_module.so").is_file():
        parser.error("needs Debian's nginx and libnginx-mod-http-js")

    peer = Path(subprocess.run([str(ROOT / "scripts/llama-peer.sh")], check=True, capture_output=True, text=True).stdout.split()[-1])
    key = "sk-bench-" + secrets.token_urlsafe(24)
    processes = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmops-gateway-bench-") as temp:
        workdir = Path(temp)
        os.chmod(workdir, 0o755)
        replica_port, gateway_port, status_port = free_ports(3)
        try:
            log = open(workdir / "replica.log", "wb")  # noqa: SIM115 - closed with the directory
            processes.append(subprocess.Popen(
                [str(peer / "bin/llama-server"), "-m", str(peer / "smollm2-135m-instruct-f16.gguf"), "-a", MODEL,
                 "--host", "127.0.0.1", "--port", str(replica_port), "-t", str(args.threads), "-c", "16384",
                 "-np", str(max(args.concurrency, 1)), "--no-webui"],
                stdout=log, stderr=subprocess.STDOUT,
            ))  # fmt: skip
            config = render_gateway(workdir, replica_port, gateway_port, status_port, key)
            subprocess.run(["nginx", "-t", "-q", "-c", str(config)], check=True)
            subprocess.run(["nginx", "-c", str(config)], check=True)
            direct_url, gateway_url = f"http://127.0.0.1:{replica_port}", f"http://127.0.0.1:{gateway_port}"
            wait_http(direct_url, "/health")
            wait_http(gateway_url, "/v1/models", expect=(401,))
            latency = latency_pairs(direct_url, gateway_url, key, args.pairs, 1)
            load = throughput(direct_url, gateway_url, key, args.concurrency, args.duration, args.max_tokens)
        finally:
            pid_file = workdir / "nginx.pid"
            if pid_file.exists():
                subprocess.run(["nginx", "-c", str(workdir / "nginx.conf"), "-s", "stop"], check=False)
            for process in processes:
                process.terminate()
                process.wait(timeout=15)
    elapsed = time.monotonic() - started

    rows = [
        ("TTFT p50, 1 client (ms)", f"{latency['gateway_p50_s'] * 1e3:.2f}", f"{latency['direct_p50_s'] * 1e3:.2f}",
         f"added {latency['added_p50_s'] * 1e3:+.2f} (paired {latency['paired_difference_p50_s'] * 1e3:+.2f}); goal <= +2"),
        ("TTFT p95, 1 client (ms)", f"{latency['gateway_p95_s'] * 1e3:.2f}", f"{latency['direct_p95_s'] * 1e3:.2f}",
         f"added {latency['added_p95_s'] * 1e3:+.2f}"),
        (f"TTFT p50, {args.concurrency} streams (ms)", f"{load['gateway']['ttft_p50_s'] * 1e3:.1f}",
         f"{load['direct']['ttft_p50_s'] * 1e3:.1f}", ""),
        (f"TTFT p95, {args.concurrency} streams (ms)", f"{load['gateway']['ttft_p95_s'] * 1e3:.1f}",
         f"{load['direct']['ttft_p95_s'] * 1e3:.1f}", ""),
        (f"output tokens/s, {args.concurrency} streams", f"{load['gateway']['output_tokens_per_s']:.1f}",
         f"{load['direct']['output_tokens_per_s']:.1f}", f"ratio {load['throughput_ratio']:.3f}; goal >= 0.95"),
        ("errors", str(load["gateway"]["errors"]), str(load["direct"]["errors"]), "goal 0"),
    ]  # fmt: skip
    header = ("measure", "gateway (ours)", "direct (baseline)", "bound / goal")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    print(f"llama-server (SmolLM2-135M F16, CPU, {args.threads} thread) behind Nginx {nginx_version()} + njs on loopback; "
          f"{latency['pairs']} latency pairs, {args.concurrency} streams x {args.duration:.0f} s per path; "
          f"total {elapsed:.0f} s")  # fmt: skip
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    # The paired median cancels what the machine's other load adds to both paths alike; the
    # difference of the two p50s is shown beside it for comparison.
    met = latency["paired_difference_p50_s"] <= GOAL_ADDED_P50_S and load["throughput_ratio"] >= GOAL_THROUGHPUT_RATIO
    print(f"goal {'met' if met else 'NOT met'}: added TTFT p50 (paired) <= 2 ms and throughput >= 95 % of direct")
    if args.json:
        print(json.dumps({"latency": latency, "load": load, "elapsed_s": elapsed}))
    return 0


def nginx_version() -> str:
    result = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
    return result.stderr.strip().split("/")[-1]


if __name__ == "__main__":
    sys.exit(main())
