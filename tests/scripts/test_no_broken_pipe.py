"""No project script pipes a Python command into a reader that stops early.

`ansible --version | head -1` printed a 40-line `BrokenPipeError` traceback at the end of
scripts/setup.sh: `head` exits after one line, the Python process writing the rest gets EPIPE,
and Python reports it as a traceback. A reader that consumes everything (`sed -n 1p`) does not.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
SCRIPTS = sorted([*PROJECT_ROOT.glob("scripts/*.sh"), PROJECT_ROOT / ".ci" / "run"])

# Readers that exit before their input ends: head, grep -q / -m N, sed '…q', awk '…exit'.
EARLY_EXIT = re.compile(r"^(head\b|grep\s+(-\w*[qm]|--quiet|--max-count)|sed\b.*\dq\b|awk\b.*\bexit\b)")


def is_python_command(word: str) -> bool:
    name = Path(word).name
    if re.fullmatch(r"python(3(\.\d+)?)?", name):
        return True
    candidate = VENV_BIN / name
    if not candidate.is_file():
        return False
    with candidate.open("rb") as handle:
        return b"python" in handle.readline()


def first_word(segment: str) -> str:
    words = segment.rsplit("$(", 1)[-1].split()  # the command inside the innermost substitution
    while words and re.fullmatch(r"\w+=\S*", words[0]):  # VAR=value command
        words.pop(0)
    return words[0] if words else ""


def early_closing_pipes(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split(" #", 1)[0]
        if code.lstrip().startswith("#"):
            continue
        segments = re.split(r"(?<!\|)\|(?!\|)", code)
        for writer, reader in itertools.pairwise(segments):
            if is_python_command(first_word(writer)) and EARLY_EXIT.match(reader.strip()):
                found.append(f"{number}: {line.strip()}")
    return found


def test_the_checker_finds_the_pattern_that_broke_setup():
    assert is_python_command(".venv/bin/ansible")
    assert early_closing_pipes('ansible_version=$(.venv/bin/ansible --version 2>/dev/null | head -1)') != []
    assert early_closing_pipes("python3 -m pip list | grep -q vllm") != []
    assert early_closing_pipes('ansible_version=$(.venv/bin/ansible --version 2>/dev/null | sed -n 1p)') == []
    assert early_closing_pipes("podman images | head -1") == []


def test_no_script_pipes_a_python_command_into_an_early_exit_reader():
    offenders = {
        str(path.relative_to(PROJECT_ROOT)): early_closing_pipes(path.read_text())
        for path in SCRIPTS
        if path.is_file()
    }
    assert {path: lines for path, lines in offenders.items() if lines} == {}


def test_setups_version_line_runs_cleanly_under_pipefail():
    line = next(
        line for line in (PROJECT_ROOT / "scripts" / "setup.sh").read_text().splitlines()
        if line.startswith("ansible_version=")
    )
    result = subprocess.run(
        ["bash", "-c", f'set -euo pipefail\n{line}\necho "$ansible_version"'],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("ansible [core 2.")
