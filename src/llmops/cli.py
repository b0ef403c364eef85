"""The `llmops` command: plan, replan, estimate, validate, serving-spec.

Each subcommand lives in `llmops.commands.<name>` and exposes `register(subparsers)`; its
handler returns the process exit code (0 ok, 2 invalid input, 3 plan written with unplaced models).
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("plan", "replan", "estimate", "validate", "serving_spec", "model")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand, or only ``only`` (its module alone is imported)."""
    parser = argparse.ArgumentParser(prog="llmops", description="Plan and run LLM-serving data centers.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        if only is None or name == only:
            importlib.import_module(f"llmops.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `llmops model ...` imports only its own module: the serving image's init container runs
    # `llmops model fetch` without the planner's dependencies installed.
    only = "model" if argv[:1] == ["model"] else None
    args = build_parser(only).parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
