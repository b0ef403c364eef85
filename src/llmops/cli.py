"""The `llmops` command: plan, replan, estimate, validate, serving-spec.

Each subcommand lives in `llmops.commands.<name>` and exposes `register(subparsers)`; its
handler returns the process exit code (0 ok, 2 invalid input, 3 plan written with unplaced models).
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("plan", "replan", "estimate", "validate", "serving_spec", "model")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmops", description="Plan and run LLM-serving data centers.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"llmops.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
