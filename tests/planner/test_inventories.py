"""The shipped inventories plan cleanly, through the CLI and through ansible-playbook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from llmops.catalog import instance_types
from llmops.cli import main
from llmops.planning import load_inputs
from llmops.planning.fleet import resolve_pools
from llmops.planning.validator import validate

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = {name: PROJECT_ROOT / "inventories" / name for name in ("example", "lab")}


def inputs_of(inventory: str) -> tuple[Path, Path]:
    group_vars = INVENTORIES[inventory] / "group_vars" / "all"
    return group_vars / "fleet.yml", group_vars / "models.yml"


def test_example_fleet_is_a_realistic_mix():
    fleet, models = load_inputs(*inputs_of("example"))
    pools = resolve_pools(fleet)
    assert len({p.gpu_type.name for p in pools}) >= 4
    cloud = [pool for pool in fleet.pools if pool.max_nodes is not None]
    assert len({pool.zone for pool in cloud}) >= 2
    assert all(pool.instance_type in instance_types() for pool in cloud)
    assert any(pool.nodes for pool in fleet.pools)
    assert len(models.models) >= 8
    assert any(m.hf_config for m in models.models)
    assert {m.spread.value for m in models.models} == {"zone", "node", "none"}


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_llmops_plan_serves_every_model_of_the_inventory(inventory, tmp_path, capsys):
    fleet_path, models_path = inputs_of(inventory)
    output = tmp_path / "plan.json"
    code = main(["plan", "--fleet", str(fleet_path), "--models", str(models_path), "--time-limit", "30",
                 "--output", str(output)])
    assert code == 0, capsys.readouterr().err
    fleet, models = load_inputs(fleet_path, models_path)
    plan = json.loads(output.read_text())
    assert validate(plan, fleet, models) == []
    assert all(m["served"] for m in plan["models"]) and plan["unplaced"] == []


@pytest.mark.slow
@pytest.mark.parametrize("inventory", INVENTORIES)
def test_placement_playbook_writes_a_valid_plan_idempotently(inventory, tmp_path):
    playbook = shutil.which("ansible-playbook")
    assert playbook, "ansible-playbook is not installed"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(PROJECT_ROOT / "collections"),
               ANSIBLE_CONFIG=str(PROJECT_ROOT / "ansible.cfg"), ANSIBLE_HOME=str(PROJECT_ROOT / ".ansible"))
    dest = tmp_path / "plan.json"
    command = [playbook, "-i", str(INVENTORIES[inventory]), str(PROJECT_ROOT / "playbooks" / "placement.yml"),
               "-e", yaml.safe_dump({"placement_plan_path": str(dest)}, default_flow_style=True).strip()]
    first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=1" in first.stdout and "status: optimal" in first.stdout
    fleet, models = load_inputs(*inputs_of(inventory))
    assert validate(json.loads(dest.read_text()), fleet, models) == []
    second = subprocess.run(command, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, check=False)
    assert second.returncode == 0 and "changed=0" in second.stdout, second.stdout
