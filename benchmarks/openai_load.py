#!/usr/bin/env python3
"""Bounded load against an OpenAI-compatible endpoint: N concurrent streaming clients for D seconds.

Standard library only, so it also runs inside test containers. Each client sends chat completions
with "stream": true over one keep-alive connection until the deadline, and records per request:
start time, status, time to first token (first content chunk), chunk arrival times, tokens
(content chunks) and errors. Prints one JSON summary (and, with --records, every request).

    python3 benchmarks/openai_load.py --url http://127.0.0.1:8080 --key KEY --model NAME \
        --concurrency 16 --duration 60 --max-tokens 32
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

PROMPTS = (
    "Write one sentence about the sea.",
    "Name three colours and one fruit.",
    "Explain what a GPU does in one sentence.",
    "Give a short greeting to a new colleague.",
)


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Client:
    """One keep-alive connection; reconnects after any failure."""

    def __init__(self, url: str, key: str | None, timeout: float, keep_alive: bool = True):
        parts = urllib.parse.urlsplit(url)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.key, self.timeout, self.keep_alive = key, timeout, keep_alive
        self.connection = None

    def _connect(self):
        if self.connection is None:
            if self.https:
                import ssl

                context = ssl._create_unverified_context()  # loopback/lab certificates
                self.connection = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=context)
            else:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.connection

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _send(self, body: str, headers: dict):
        """POST once; a kept-alive connection the server closed meanwhile is reopened and the request
        sent again (nothing was answered on it), as HTTP clients do. Any other failure is the result."""
        reused = self.connection is not None
        try:
            connection = self._connect()
            connection.request("POST", f"{self.prefix}/v1/chat/completions", body=body, headers=headers)
            return connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.close()
            if not reused:
                raise
        connection = self._connect()
        connection.request("POST", f"{self.prefix}/v1/chat/completions", body=body, headers=headers)
        return connection.getresponse()

    def stream_chat(self, model: str, prompt: str, max_tokens: int) -> dict:
        body = json.dumps(
            {
                "model": model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "temperature": 0,
                "stream": True,
            }
        )
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        record = {"start": time.time(), "status": None, "ttft": None, "tokens": 0, "chunks": [], "error": None, "text": ""}
        started = time.perf_counter()
        try:
            response = self._send(body, headers)
            record["status"] = response.status
            if response.status != 200:
                record["error"] = response.read().decode("utf-8", "replace")[:300]
                return record
            done = False
            while True:
                line = response.readline()
                if not line:
                    break
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    continue
                event = json.loads(payload)
                for choice in event.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        now = time.perf_counter() - started
                        if record["ttft"] is None:
                            record["ttft"] = now
                        record["chunks"].append(now)
                        record["tokens"] += 1
                        record["text"] += content
            if not done:
                record["error"] = "stream ended without [DONE]"
                self.close()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            self.close()
        finally:
            record["elapsed"] = time.perf_counter() - started
            if not self.keep_alive:
                self.close()
        return record


def run(url, key, model, concurrency, duration, max_tokens, timeout=120.0, keep_alive=True):
    """Run the load; returns (summary, records). keep_alive=False opens one connection per request."""
    deadline = time.monotonic() + duration
    records: list[dict] = []
    lock = threading.Lock()

    def worker(index):
        client = Client(url, key, timeout, keep_alive)
        turn = 0
        while time.monotonic() < deadline:
            record = client.stream_chat(model, PROMPTS[(index + turn) % len(PROMPTS)], max_tokens)
            turn += 1
            with lock:
                records.append(record)
        client.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return summarize(records, wall, concurrency), records


def summarize(records, wall, concurrency):
    ok = [r for r in records if r["error"] is None and r["status"] == 200]
    ttfts = [r["ttft"] for r in ok if r["ttft"] is not None]
    tokens = sum(r["tokens"] for r in ok)
    errors = [r for r in records if r not in ok]
    return {
        "concurrency": concurrency,
        "wall_s": round(wall, 3),
        "requests": len(records),
        "ok": len(ok),
        "errors": len(errors),
        "error_samples": sorted({f"{r['status']}: {r['error']}" for r in errors})[:5],
        "ttft_p50_s": percentile(ttfts, 0.50),
        "ttft_p95_s": percentile(ttfts, 0.95),
        "ttft_mean_s": statistics.fmean(ttfts) if ttfts else None,
        "output_tokens": tokens,
        "output_tokens_per_s": round(tokens / wall, 2) if wall > 0 else None,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--key", help="API key (Bearer); none for a replica without keys")
    parser.add_argument("--model", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds; clients finish their last request")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--records", action="store_true", help="also print every request's record")
    parser.add_argument("--new-connections", action="store_true", help="one connection per request (no keep-alive)")
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 256 or not 0 < args.duration <= 600:
        parser.error("--concurrency must be 1-256 and --duration 0-600 s (the load is bounded)")
    summary, records = run(args.url, args.key, args.model, args.concurrency, args.duration, args.max_tokens,
                           keep_alive=not args.new_connections)
    if args.records:
        summary["records"] = [{k: v for k, v in r.items() if k != "text"} for r in records]
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
