"""scripts/lab.sh as a user mistypes it: a usage and exit 2, never a shell error. No lab is needed:
these paths stop before any container is touched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAB = PROJECT_ROOT / "scripts" / "lab.sh"
COMMANDS = ("up", "start", "play P", "status", "down")


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(LAB), *args], capture_output=True, text=True, timeout=60, check=False)


def assert_usage(text: str) -> None:
    assert "usage: scripts/lab.sh COMMAND" in text
    for command in COMMANDS:
        assert f"\n  {command} " in text, command
    # Not the script's own source, not a shell error.
    for leak in ("set -euo pipefail", "unbound variable", "source ", "$1"):
        assert leak not in text, leak


@pytest.mark.parametrize("args", [("foo",), ()], ids=["unknown command", "no command"])
def test_an_unknown_or_missing_command_prints_the_usage_and_exits_2(args):
    result = lab(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert_usage(result.stderr)
    if args:
        assert result.stderr.startswith("scripts/lab.sh: unknown command 'foo'\n")


def test_play_without_a_playbook_says_what_is_missing_and_exits_2():
    result = lab("play")
    assert result.returncode == 2
    assert result.stderr.startswith("scripts/lab.sh play: name the playbook to run, e.g. scripts/lab.sh play ")
    assert_usage(result.stderr)


def test_help_prints_the_usage_and_exits_0():
    result = lab("--help")
    assert result.returncode == 0
    assert_usage(result.stdout)


def test_lab_start_proves_container_name_resolution_before_starting_hosts():
    body = LAB.read_text().split("start_hosts() {", 1)[1].split("\n}", 1)[0]
    steps = [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("#")]
    check = steps.index("scripts/check-podman-dns.sh")
    first_podman = next(i for i, step in enumerate(steps) if "podman network" in step or "podman run" in step)
    assert check < first_podman
