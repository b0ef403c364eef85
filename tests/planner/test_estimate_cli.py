"""`llmops estimate` end to end: text and JSON output (exit 0) and invalid input (exit 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from llmops.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
BASE = ["estimate", "--gpu", "H100-SXM-80GB", "--input-tokens", "1024", "--output-tokens", "256"]


def run_json(capsys, *extra: str) -> dict:
    assert main([*BASE, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_report_for_llama_8b_fp8_on_one_h100(capsys):
    report = run_json(capsys, "--architecture", "llama-3.1-8b", "--precision", "fp8", "--tp", "1",
                      "--concurrency", "32")
    assert report["kv_bytes_per_token"] == 65536  # fp8 KV cache: half of bf16's 131072
    assert report["kv_cache_dtype"] == "fp8"
    assert report["weights_gib"] == pytest.approx(8.46, abs=0.05)
    assert report["concurrency"] == 32 and report["concurrency_from"] == "--concurrency"
    assert report["max_concurrent_sequences"] >= 32
    assert report["memory_per_gpu_gib"] <= 0.9 * 79.65
    assert report["output_tokens_per_second"] == pytest.approx(32 / report["tpot_ms"] * 1000, rel=1e-3)
    assert report["ttft_ms"] > 0


def test_tpot_limit_picks_the_largest_concurrency_meeting_it(capsys):
    args = ("--architecture", "llama-3.1-70b", "--precision", "bf16", "--tp", "4")
    limited = run_json(capsys, *args, "--tpot-ms", "40")
    assert limited["tpot_ms"] <= 40 and limited["concurrency_from"] == "--tpot-ms"
    one_more = run_json(capsys, *args, "--concurrency", str(limited["concurrency"] + 1))
    assert one_more["tpot_ms"] > 40
    maximum = run_json(capsys, *args)
    assert maximum["concurrency"] == maximum["max_concurrent_sequences"] >= limited["concurrency"]


def test_text_report_names_every_quantity(capsys):
    assert main([*BASE, "--architecture", "llama-3.1-70b", "--precision", "fp8", "--tp", "4"]) == 0
    text = capsys.readouterr().out
    for label in ("weights (GiB", "KV cache bytes per token", "max concurrent sequences", "memory per GPU",
                  "output tokens per second", "TTFT", "TPOT"):
        assert label in text


def test_hf_config_input(capsys):
    report = run_json(capsys, "--hf-config", str(FIXTURES / "Qwen2.5-7B-Instruct" / "config.json"),
                      "--precision", "bf16", "--tp", "2")
    assert report["architecture"] == "Qwen2.5-7B-Instruct"
    assert report["kv_bytes_per_token"] == 57344


@pytest.mark.parametrize(
    ("extra", "expected_lines"),
    [
        (["--architecture", "llama-9", "--precision", "bf16", "--tp", "1"],
         ["--architecture: unknown model architecture 'llama-9'; accepted: gemma-2-27b"]),
        (["--architecture", "llama-3.1-8b", "--precision", "fp4", "--tp", "3"],
         ["--precision: must be one of bf16, fp8, int8, int4", "--tp: must be a power of two dividing"]),
        (["--architecture", "llama-3.1-70b", "--precision", "bf16", "--tp", "1"],
         ["--tp: llama-3.1-70b at bf16 on 1 x H100-SXM-80GB needs"]),
        (["--architecture", "llama-3.1-8b", "--precision", "bf16", "--tp", "1", "--tpot-ms", "1"],
         ["--tpot-ms: unattainable"]),
        (["--architecture", "llama-3.1-8b", "--precision", "bf16", "--tp", "1", "--concurrency", "0"],
         ["--concurrency: must be > 0"]),
        (["--hf-config", "/nonexistent/config.json", "--precision", "bf16", "--tp", "1"],
         ["--hf-config: /nonexistent/config.json: cannot read"]),
    ],
)
def test_invalid_input_exits_2_with_one_line_per_problem(capsys, extra, expected_lines):
    assert main([*BASE, *extra]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == ""
    assert len(lines) == len(expected_lines)
    for line, expected in zip(lines, expected_lines, strict=True):
        assert line.startswith(expected)


def test_precision_the_gpu_lacks_lists_what_it_accepts(capsys):
    assert main(["estimate", "--gpu", "A100-SXM-80GB", "--architecture", "llama-3.1-8b", "--precision", "fp8",
                 "--tp", "1", "--input-tokens", "10", "--output-tokens", "10"]) == 2
    assert capsys.readouterr().err.strip() == (
        "--precision: A100-SXM-80GB does not support fp8; accepted: bf16, int8, int4"
    )


def test_installed_command_reports_bad_gpu_without_a_traceback():
    result = subprocess.run(
        ["llmops", *BASE[:1], "--gpu", "H100", "--architecture", "llama-3.1-8b", "--precision", "bf16",
         "--tp", "1", "--input-tokens", "10", "--output-tokens", "10"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("--gpu: unknown GPU type 'H100'; accepted: A100-SXM-40GB")
