"""scripts/check-podman-dns.sh diagnoses a machine whose podman networks have no name resolution.

A fake `podman` first on PATH answers as podman 4.3 does on such a machine (a new network reports
dns_enabled=false); the script must stop before starting any container and name what to install.
The success path runs for real in scripts/setup.sh, the lab start and every molecule scenario.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHECK = PROJECT_ROOT / "scripts" / "check-podman-dns.sh"

FAKE_PODMAN = """#!/bin/bash
# Records every call; answers like podman on a machine without the DNS plugin.
echo "$*" >> "$FAKE_PODMAN_LOG"
case "$1 $2" in
  "image exists"|"network create"|"network rm"|"rm --force") exit 0 ;;
  "network inspect") echo false; exit 0 ;;
  "info --format") echo "$FAKE_PODMAN_BACKEND"; exit 0 ;;
esac
echo "fake podman: unexpected call: $*" >&2
exit 99
"""


def run_check(tmp_path: Path, backend: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    podman = bin_dir / "podman"
    podman.write_text(FAKE_PODMAN)
    podman.chmod(0o755)
    log = tmp_path / "podman.log"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_PODMAN_LOG=str(log),
               FAKE_PODMAN_BACKEND=backend)
    # --force: a success remembered from this machine's real check must not hide the fake answer.
    result = subprocess.run([str(CHECK), "--force"], capture_output=True, text=True, env=env, timeout=60,
                            check=False)
    return result, log.read_text().splitlines() if log.exists() else []


def test_cni_without_the_dns_plugin_names_the_debian_package(tmp_path):
    result, calls = run_check(tmp_path, "cni")
    assert result.returncode == 1
    assert "podman DNS check FAILED" in result.stderr
    assert "dns_enabled=false" in result.stderr
    assert "golang-github-containernetworking-plugin-dnsname" in result.stderr
    # Stopped at the diagnosis: no container was started, the throwaway network was removed.
    assert not any(call.startswith("run ") for call in calls), calls
    created = next(call.split()[-1] for call in calls if call.startswith("network create"))
    assert any(call.startswith("network rm") and created in call for call in calls), calls


def test_netavark_without_aardvark_names_aardvark(tmp_path):
    result, _ = run_check(tmp_path, "netavark")
    assert result.returncode == 1
    assert "install aardvark-dns" in result.stderr


def test_setup_lab_and_molecule_all_run_the_check():
    assert "scripts/check-podman-dns.sh" in (PROJECT_ROOT / "scripts" / "setup.sh").read_text()
    assert "scripts/check-podman-dns.sh" in (PROJECT_ROOT / "scripts" / "lab.sh").read_text()
    test_script = (PROJECT_ROOT / "scripts" / "test.sh").read_text()
    # Run before any scenario starts: the background Kubernetes lane's and the foreground's.
    check = test_script.index("scripts/check-podman-dns.sh ||")
    assert check < test_script.index('kube_lane "$run_kube_scenario" &')
    assert check < test_script.index('step "molecule $scenario" molecule test')
    base = yaml.safe_load((PROJECT_ROOT / ".config" / "molecule" / "config.yml").read_text())
    assert base["dependency"] == {
        "name": "shell", "command": "${MOLECULE_PROJECT_DIRECTORY}/scripts/check-podman-dns.sh"
    }
    # molecule create/converge run the dependency step first by default; test runs it explicitly.
    assert base["scenario"]["test_sequence"][0] == "dependency"
    assert "dependency" not in base["scenario"]["destroy_sequence"]


@pytest.mark.parametrize("scenario", sorted(p.parent.name for p in (PROJECT_ROOT / "molecule").glob("*/molecule.yml")))
def test_no_scenario_replaces_the_check(scenario):
    config = yaml.safe_load((PROJECT_ROOT / "molecule" / scenario / "molecule.yml").read_text()) or {}
    assert "dependency" not in config
    sequence = (config.get("scenario") or {}).get("test_sequence")
    assert sequence is None or sequence[0] == "dependency"
