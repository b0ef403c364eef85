"""scripts/check-podman-dns.sh: a machine without podman's DNS plugin fails fast, naming what is missing.

The machine-without-the-plugin case is real, not simulated: podman runs with a configuration whose CNI
plugin directory holds every installed plugin except `dnsname`, exactly what a fresh Debian 12 machine
with only the `podman` package has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-podman-dns.sh"
CNI_DIR = Path("/usr/lib/cni")

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is installed by scripts/setup.sh")


def _run(conf: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLMOPS_CONTAINERS_CONF": str(conf)}
    return subprocess.run(
        ["bash", str(SCRIPT), "--force"], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_without_the_dns_plugin_the_check_fails_naming_the_package(tmp_path: Path) -> None:
    assert (CNI_DIR / "dnsname").exists(), "setup installs the DNS plugin; this test removes it from view"
    plugins = tmp_path / "cni"
    plugins.mkdir()
    for plugin in CNI_DIR.iterdir():
        if plugin.name != "dnsname":
            (plugins / plugin.name).symlink_to(plugin)
    conf = tmp_path / "containers.conf"
    conf.write_text(
        (ROOT / "lab" / "containers.conf").read_text() + f'\n[network]\ncni_plugin_dirs = ["{plugins}"]\n'
    )
    result = _run(conf)
    assert result.returncode != 0
    assert "dns_enabled=false" in result.stderr
    assert "golang-github-containernetworking-plugin-dnsname" in result.stderr
    # The throwaway network is removed even on failure.
    networks = subprocess.run(["podman", "network", "ls", "--format", "{{.Name}}"], capture_output=True,
                              text=True, check=True, env={**os.environ, "CONTAINERS_CONF": str(conf)})
    assert not [n for n in networks.stdout.split() if n.startswith("llmops-dnscheck-")]


def test_with_the_plugin_two_containers_resolve_each_other() -> None:
    result = _run(ROOT / "lab" / "containers.conf")
    assert result.returncode == 0, result.stderr
    assert "resolve each other by name" in result.stdout
