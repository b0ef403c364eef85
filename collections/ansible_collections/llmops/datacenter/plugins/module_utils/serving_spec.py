# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Logic of the serving_spec module: plan + models + inventory -> serving spec and systemd units.

Runs on the controller and imports the `llmops` package; nothing here imports Ansible, so it is
tested directly. All decisions live in llmops.serving; this only maps module options onto it.
"""

from __future__ import annotations

import json
import traceback

try:
    from llmops.planning.spec import InputError
    from llmops.serving import ServingSpecError, render_systemd_unit, serving_spec, unit_name
    from llmops.serving.spec import DEFAULT_RESERVED_PORTS

    HAS_LLMOPS = True
    LLMOPS_IMPORT_ERROR = None
except ImportError:
    HAS_LLMOPS = False
    LLMOPS_IMPORT_ERROR = traceback.format_exc()
    DEFAULT_RESERVED_PORTS = (3000, 9090, 9093, 9100)

    class InputError(ValueError):  # placeholders so `except` clauses still name real classes
        problems: list = []

    class ServingSpecError(ValueError):
        problems: list = []


def read_plan(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise ServingSpecError([f"plan_file: cannot read {path} ({exc.strerror or exc})"]) from exc
    except json.JSONDecodeError as exc:
        raise ServingSpecError([f"plan_file: {path} is not valid JSON ({exc})"]) from exc


def build(params: dict) -> dict:
    """{'spec': ServingSpec as dict, 'units': {node: [unit entry, ...]}} from the module's options.

    Raises ServingSpecError listing every problem; nothing is rendered then.
    """
    plan = params["plan"] if params.get("plan") is not None else read_plan(params["plan_file"])
    models = params["models_file"] if params.get("models_file") else params["models"]
    hosts = params.get("inventory_hosts")
    reserved = params.get("reserved_ports")
    try:
        spec = serving_spec(
            plan,
            models,
            inventory_hosts=hosts,
            device=params["device"],
            base_port=params["base_port"],
            port_overrides=params.get("port_overrides") or {},
            reserved_ports=DEFAULT_RESERVED_PORTS if reserved is None else reserved,
            model_cache_root=params["model_cache_root"],
            state_root=params["state_root"],
            cpu_kvcache_gib=params["cpu_kvcache_gib"],
            hf_config_dir=params.get("hf_config_dir"),
        )
    except InputError as exc:
        raise ServingSpecError(exc.problems) from exc

    units: dict[str, list[dict]] = {}
    unit_options = params.get("unit") or {}
    if unit_options.get("python"):
        for replica in spec.replicas:
            content = render_systemd_unit(
                replica,
                python=unit_options["python"],
                user=unit_options["user"],
                group=unit_options.get("group"),
                memory_max=unit_options.get("memory_max"),
                restart_sec=unit_options.get("restart_sec") or 5,
                nofile=unit_options.get("limit_nofile") or 65536,
            )
            units.setdefault(replica.node, []).append(
                {
                    "id": replica.id,
                    "unit_name": unit_name(replica.id),
                    "content": content,
                    "port": replica.port,
                    "model": replica.model,
                    "state_dir": replica.state_dir,
                    "artifact": {
                        "name": replica.artifact.name,
                        "version": replica.artifact.version,
                        "path": replica.artifact.cache_path,
                    },
                }
            )
    return {"spec": spec.to_dict(), "units": units}
