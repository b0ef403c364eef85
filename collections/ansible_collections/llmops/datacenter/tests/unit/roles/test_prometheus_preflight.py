"""The prometheus role's preflight: bad inputs stop the play before anything is installed.

Runs the role's real tasks with ansible-playbook against localhost, isolated from the project's
inventory and configuration. Only assertions run: the preflight task file directly, or the main entry
point limited to its argument validation and preflight tags, in check mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[6]
PLAYBOOK = """
- name: Prometheus role entry point
  hosts: localhost
  connection: local
  gather_facts: {gather}
  tasks:
    - name: Run the role
      ansible.builtin.include_role:
        name: llmops.datacenter.prometheus
        tasks_from: {tasks_from}
        apply: {apply}
      tags: [always]
"""
VALID_SHA256 = "0" * 63 + "a"

pytestmark = pytest.mark.slow


def run_playbook(tmp_path, extra_vars, tasks_from="preflight"):
    playbook = tmp_path / "play.yml"
    # The preflight file's tasks carry no tags of their own (main.yml tags them when importing it).
    apply = "{tags: [preflight]}" if tasks_from == "preflight" else "{}"
    playbook.write_text(PLAYBOOK.format(tasks_from=tasks_from, gather=str(tasks_from == "main").lower(), apply=apply))
    # The test's own interpreter: discovery could pick an unrelated python3 on the machine.
    (tmp_path / "vars.json").write_text(json.dumps({**extra_vars, "ansible_python_interpreter": sys.executable}))
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", str(playbook),
            "-e", f"@{tmp_path / 'vars.json'}", "--check", "--tags", "preflight"]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    return result.returncode, result.stdout + result.stderr


PASSWORD = {"prometheus_web_admin_password": "a-long-enough-password"}


def test_tarball_without_a_pinned_sha256_fails_preflight(tmp_path):
    rc, output = run_playbook(tmp_path, {**PASSWORD, "prometheus_install_method": "tarball",
                                         "prometheus_tarball_url": "https://mirror.example/prometheus-2.53.0.linux-amd64.tar.gz"})
    assert rc != 0
    assert "prometheus_tarball_sha256 (64 lower-case hex digits, got '')" in output


def test_tarball_with_a_non_url_fails_preflight(tmp_path):
    rc, output = run_playbook(tmp_path, {**PASSWORD, "prometheus_install_method": "tarball",
                                         "prometheus_tarball_url": "prometheus.tar.gz", "prometheus_tarball_sha256": VALID_SHA256})
    assert rc != 0
    assert "needs prometheus_tarball_url (http, https or file URL, got 'prometheus.tar.gz')" in output


def test_tarball_with_url_and_sha256_passes_preflight(tmp_path):
    rc, output = run_playbook(tmp_path, {**PASSWORD, "prometheus_install_method": "tarball",
                                         "prometheus_tarball_url": "file:///srv/mirror/prometheus.tar.gz",
                                         "prometheus_tarball_sha256": VALID_SHA256})
    assert rc == 0, output


def test_short_password_fails_preflight_without_echoing_it(tmp_path):
    rc, output = run_playbook(tmp_path, {"prometheus_web_admin_password": "short-secret"[:8]})
    assert rc != 0
    assert "short-se" not in output


def test_missing_password_stops_the_role_at_argument_validation(tmp_path):
    rc, output = run_playbook(tmp_path, {}, tasks_from="main")
    assert rc != 0
    assert "Validating arguments against arg spec 'main'" in output
    assert "missing required arguments: prometheus_web_admin_password" in output
    assert "Require an admin password" not in output
