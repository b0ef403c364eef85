"""What the monitoring roles render from an inventory's data, without contacting any host.

The prometheus role's defaults and computed vars are evaluated by ansible-playbook against the real
lab and example inventories: the lab's simulated GPU workers get no DCGM job and no GPU rules, real
GPU hosts do, and Prometheus is pointed at the Alertmanager of the monitoring group. The
alertmanager role's preflight rejects bad inputs before anything is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[6]
PROJECT_ROOT = COLLECTIONS.parent
ROLES = COLLECTIONS / "ansible_collections" / "llmops" / "datacenter" / "roles"

pytestmark = pytest.mark.slow

RENDER = """
- name: Render the prometheus role's targets from the inventory
  hosts: monitoring
  gather_facts: false
  tasks:
    - name: Load the role's defaults and computed vars
      ansible.builtin.include_vars: "{{{{ item }}}}"
      loop: ["{defaults}", "{vars}"]
    - name: Write what the role would render
      ansible.builtin.copy:
        content: "{{{{ {{'dcgm': prometheus_dcgm_exporter_targets, 'jobs': _prometheus_exporter_jobs | map(attribute='job_name') | list,
                    'groups': _prometheus_builtin_rule_groups, 'alerting': _prometheus_alerting}} | to_json }}}}"
        dest: "{out}"
        mode: "0644"
      delegate_to: localhost
      run_once: true
"""

PREFLIGHT = """
- name: Alertmanager role preflight
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the role's preflight
      ansible.builtin.include_role:
        name: llmops.datacenter.alertmanager
        tasks_from: preflight
"""


def _env(tmp_path):
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    return dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
                ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")


def ansible_playbook(tmp_path, inventory, playbook_text, extra_vars=None):
    playbook = tmp_path / "play.yml"
    playbook.write_text(playbook_text)
    (tmp_path / "vars.json").write_text(json.dumps({**(extra_vars or {}), "ansible_python_interpreter": sys.executable}))
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), str(playbook), "-e", f"@{tmp_path / 'vars.json'}"]
    result = subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, check=False)
    return result.returncode, result.stdout + result.stderr


def rendered(tmp_path, inventory):
    out = tmp_path / "rendered.json"
    text = RENDER.format(defaults=ROLES / "prometheus" / "defaults" / "main.yml", vars=ROLES / "prometheus" / "vars" / "main.yml", out=out)
    rc, output = ansible_playbook(tmp_path, inventory, text)
    assert rc == 0, output
    return json.loads(out.read_text())


def test_lab_simulated_gpus_get_no_dcgm_job_and_no_gpu_rules(tmp_path):
    lab = rendered(tmp_path, PROJECT_ROOT / "inventories" / "lab")

    assert lab["dcgm"] == []
    assert "dcgm" not in lab["jobs"] and "node" in lab["jobs"]
    assert lab["groups"] == ["serving", "host_health"]
    assert lab["alerting"] == {"alertmanagers": [{"targets": ["lab-control:9093"], "scheme": "http", "path_prefix": "/"}]}


def test_real_gpu_hosts_are_scraped_and_alerted_on(tmp_path):
    example = rendered(tmp_path, PROJECT_ROOT / "inventories" / "example")

    assert example["dcgm"] == ["dgx-01:9400", "dgx-02:9400"]
    assert example["jobs"][:2] == ["node", "dcgm"]
    assert example["groups"] == ["gpu_health", "serving", "host_health"]
    assert example["alerting"]["alertmanagers"][0]["targets"] == ["mon-01:9093"]


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"alertmanager_install_method": "tarball", "alertmanager_tarball_url": "file:///srv/mirror/am.tar.gz"},
         "alertmanager_tarball_sha256 (64 lower-case hex digits, got '')"),
        ({"alertmanager_default_receiver": "pager"}, "alertmanager_default_receiver 'pager' is not in alertmanager_receivers (names: discard)"),
        ({"alertmanager_smtp_auth_password": "s3cret-smtp-password"}, "alertmanager_smtp_auth_password is set but alertmanager_smtp_auth_username is empty"),
    ],
)
def test_alertmanager_preflight_rejects_bad_input(tmp_path, extra_vars, message):
    rc, output = ansible_playbook(tmp_path, "localhost,", PREFLIGHT, extra_vars)

    assert rc != 0
    assert message in output
    assert "s3cret-smtp-password" not in output


def test_alertmanager_preflight_accepts_the_defaults(tmp_path):
    rc, output = ansible_playbook(tmp_path, "localhost,", PREFLIGHT)
    assert rc == 0, output
