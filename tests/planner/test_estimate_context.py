"""`llmops estimate` refuses requests longer than the model's context window, as `llmops plan` does."""

from __future__ import annotations

import subprocess

import pytest

from llmops.catalog import architecture
from llmops.cli import main

BASE = ["estimate", "--architecture", "llama-3.1-8b", "--gpu", "H100-SXM-80GB", "--precision", "fp8", "--tp", "1"]


def test_the_catalog_window_is_the_limit():
    assert architecture("llama-3.1-8b").max_position_embeddings == 131072


def test_a_prompt_beyond_the_context_window_exits_2_naming_the_fields_and_the_limit():
    result = subprocess.run(["llmops", *BASE, "--input-tokens", "500000", "--output-tokens", "256"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "--input-tokens, --output-tokens: 500000 + 256 = 500256 tokens exceeds llama-3.1-8b's context window "
        "of 131072 tokens"
    )


def test_a_max_context_beyond_the_window_is_named(capsys):
    assert main([*BASE, "--input-tokens", "1024", "--output-tokens", "256", "--max-context", "131073"]) == 2
    assert capsys.readouterr().err.strip() == (
        "--max-context: 131073 tokens exceeds llama-3.1-8b's context window of 131072 tokens"
    )


@pytest.mark.parametrize(("input_tokens", "output_tokens"), [(130816, 256), (1024, 256)])
def test_requests_within_the_window_are_estimated(capsys, input_tokens, output_tokens):
    assert main([*BASE, "--input-tokens", str(input_tokens), "--output-tokens", str(output_tokens)]) == 0
    assert "TTFT" in capsys.readouterr().out
