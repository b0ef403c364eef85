"""The project's ansible.cfg is used for real inventories too: it must not turn SSH host key
checking off. The lab reaches its hosts with the podman connection and needs no exception."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def ansible(*args: str, **env: str) -> str:
    environment = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT_ROOT / "ansible.cfg"), **env)
    result = subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / args[0]), *args[1:]], cwd=PROJECT_ROOT,
                            env=environment, capture_output=True, text=True, timeout=120, check=True)
    return result.stdout


def test_host_key_checking_stays_on_for_every_inventory():
    dump = {line.split("(", 1)[0]: line for line in ansible("ansible-config", "dump").splitlines()}
    assert dump["HOST_KEY_CHECKING"].endswith("= True"), dump["HOST_KEY_CHECKING"]
    for inventory in ("lab", "example"):
        hosts = json.loads(ansible("ansible-inventory", "-i", f"inventories/{inventory}", "--list"))
        variables = hosts.get("_meta", {}).get("hostvars", {})
        assert all(v.get("ansible_host_key_checking") is not False for v in variables.values()), inventory


def test_the_lab_needs_no_ssh_exception():
    hosts = json.loads(ansible("ansible-inventory", "-i", "inventories/lab", "--list"))
    variables = hosts["_meta"]["hostvars"]
    assert set(variables) == {"lab-control", "lab-gpu-1", "lab-gpu-2"}
    assert {v["ansible_connection"] for v in variables.values()} == {"containers.podman.podman"}
