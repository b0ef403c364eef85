"""`llmops serving-spec`: render the serving spec of a plan as JSON.

Exit codes: 0 written; 2 invalid input (plan, models file, inventory, ports), one line each.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from llmops.planning.spec import InputError
from llmops.serving import DEVICES, ServingSpecError, serving_spec
from llmops.serving.spec import DEFAULT_BASE_PORT

from .plan import EXIT_OK, report_invalid_input
from .validate import read_plan


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serving-spec",
        help="render the per-replica serving spec of a plan as JSON",
        description=(
            "Turn plan.json and the models file into what every replica runs: artifact, node, address, "
            "port, GPUs, vLLM engine arguments, environment, labels and traffic weights, plus the "
            "per-model routes and per-tenant model lists the gateway uses. Exit 0: written; 2: invalid input."
        ),
    )
    parser.add_argument("--plan", required=True, type=Path, help="plan JSON written by `llmops plan`")
    parser.add_argument("--models", required=True, type=Path, help="models file (YAML, keys models and tenants)")
    parser.add_argument(
        "--inventory", type=Path, help="Ansible YAML inventory whose hosts the replicas' nodes must be"
    )
    parser.add_argument(
        "--host", action="append", default=[], metavar="NAME[=ADDRESS]",
        help="an inventory host (repeatable); with =ADDRESS the gateway reaches it there",
    )  # fmt: skip
    parser.add_argument("--device", choices=DEVICES, default="cuda", help="cuda (production) or cpu (the lab)")
    parser.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, help="port of the replica on GPU 0")
    parser.add_argument("--output", type=Path, help="write the JSON here instead of standard output")
    parser.set_defaults(handler=run)


def inventory_hosts(path: Path) -> list[str]:
    """Every host name in a YAML inventory (all groups, nested children)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InputError([f"{path}: cannot read ({exc.strerror or exc})"]) from exc
    except yaml.YAMLError as exc:
        raise InputError([f"{path}: not valid YAML ({exc})"]) from exc
    found: list[str] = []

    def walk(group: object) -> None:
        if not isinstance(group, dict):
            return
        found.extend(name for name in (group.get("hosts") or {}) if name not in found)
        for child in (group.get("children") or {}).values():
            walk(child)

    for group in data.values() if isinstance(data, dict) else []:
        walk(group)
    return found


def run(args: argparse.Namespace) -> int:
    try:
        hosts: dict[str, str] | None = None
        if args.inventory or args.host:
            hosts = {name: name for name in (inventory_hosts(args.inventory) if args.inventory else [])}
            for entry in args.host:
                name, _, address = entry.partition("=")
                hosts[name] = address or name
        spec = serving_spec(
            read_plan(args.plan), args.models, inventory_hosts=hosts, device=args.device, base_port=args.base_port
        )
    except (InputError, ServingSpecError) as exc:
        return report_invalid_input(exc.problems)
    text = json.dumps(spec.to_dict(), indent=2) + "\n"
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"{args.output}: {len(spec.replicas)} replicas on {len(spec.nodes)} nodes ({args.device})")
    else:
        sys.stdout.write(text)
    return EXIT_OK
